"""KafkaApis: one frame in, one response out.

Decodes the request header, answers ApiVersions from precomputed bytes before anything else
(kafka-node gives up after 500 ms), decodes the body with the generated codec, runs the
handler and encodes the response with the right response header. Requests Kafka would refuse
to parse (unknown API key, unsupported version, malformed body) close the connection, as
Kafka's socket server does; the broker keeps serving every other connection.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable

from kafkapy.network.errors import CloseConnection
from kafkapy.network.pipeline import DeferredResponse
from kafkapy.network.server import ConnectionInfo
from kafkapy.protocol.api import ADVERTISED, API_SPECS, ApiKey
from kafkapy.protocol.api_versions import build_api_versions_responses
from kafkapy.protocol.errors import DecodeError
from kafkapy.protocol.headers import (
    InvalidRequestError,
    decode_request_header,
    encode_response_header,
    response_header_flexible,
)
from kafkapy.server.context import RequestContext
from kafkapy.server.handlers import (
    admin,
    alter_partition,
    cluster,
    configs,
    control,
    elect_leaders,
    fetch,
    group,
    metadata,
    offsets,
    produce,
    producer_id,
    reassignments,
)

log = logging.getLogger(__name__)
request_log = logging.getLogger("kafkapy.request")

Handler = Callable[[RequestContext, Any], Awaitable[Any]]


def all_handlers() -> dict[int, Handler]:
    handlers: dict[int, Handler] = {}
    for module in (produce, fetch, metadata, offsets, admin, configs, cluster, control,
                   producer_id, group, alter_partition, elect_leaders, reassignments):
        handlers.update(module.HANDLERS)
    return handlers


class KafkaApis:
    """Routes decoded requests to handlers; advertises exactly the APIs it can serve."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.handlers = all_handlers()
        advertised = {k: v for k, v in ADVERTISED.items()
                      if k in self.handlers or k == ApiKey.API_VERSIONS}
        self.advertised = advertised
        self.api_versions = build_api_versions_responses(advertised)

    async def handle(self, frame: memoryview, conn: ConnectionInfo) -> list | None:
        try:
            header = decode_request_header(frame, self.advertised)
        except InvalidRequestError as e:
            raise CloseConnection(f"unparseable request header from {conn.peer_host}: {e}")
        api_key, version = header.api_key, header.api_version
        if api_key == ApiKey.API_VERSIONS:
            body = self.api_versions.for_version(version)
            return [encode_response_header(header.correlation_id, False), body]
        spec = API_SPECS[api_key]
        try:
            request, _ = spec.request_class.decode(frame, header.body_offset, version)
        except DecodeError as e:
            raise CloseConnection(f"malformed {spec.name} v{version} request from "
                                  f"{conn.peer_host}: {e}")
        ctx = RequestContext(api_key, version, header.correlation_id, header.client_id,
                             conn.peer_host, self.server, conn.connection_id)
        started = time.monotonic()
        response = await self.handlers[api_key](ctx, request)
        if isinstance(response, DeferredResponse):  # Produce acks=all: encoded when complete
            wait = response.wait

            async def complete() -> list | None:
                return self._encode(header, spec, conn, started, await wait())

            return DeferredResponse(complete)
        return self._encode(header, spec, conn, started, response)

    @staticmethod
    def _encode(header: Any, spec: Any, conn: ConnectionInfo, started: float,
                response: Any) -> list | None:
        if request_log.isEnabledFor(logging.DEBUG):
            request_log.debug("%s v%d from %s (%s) in %.1f ms", spec.name, header.api_version,
                              header.client_id, conn.peer_host,
                              (time.monotonic() - started) * 1000)
        if response is None:
            return None
        out: list = [encode_response_header(header.correlation_id, response_header_flexible(
            header.api_key, header.api_version))]
        response.encode(header.api_version, out)
        return out
