"""Exceptions of the network layer.

`CloseConnection` is how a request handler asks the server to drop a connection (Kafka
closes a channel on e.g. an unparseable header) without that being logged as a crash.
The `BrokerConnectionError` family is raised by `BrokerConnection`; they subclass
`ConnectionError` so callers that retry on network trouble can catch one builtin type.
"""
from __future__ import annotations


class CloseConnection(Exception):
    """Raised by a request handler: close this connection, log the reason, no traceback."""


class BrokerConnectionError(ConnectionError):
    """Base of every error `BrokerConnection` raises about the connection itself."""


class BrokerConnectFailed(BrokerConnectionError):
    """The TCP connection to the broker could not be established."""


class ConnectionClosedError(BrokerConnectionError):
    """The connection is closed (by us, by the peer, or after an I/O error)."""


class CorrelationIdMismatch(BrokerConnectionError):
    """A response arrived whose correlation id is not the oldest one in flight."""


class ResponseDecodeError(BrokerConnectionError):
    """A response frame could not be decoded with the expected response class."""


class RequestTimedOut(BrokerConnectionError):
    """No response arrived within the request timeout."""
