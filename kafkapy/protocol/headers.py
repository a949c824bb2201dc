"""Request header decode (v0/v1/v2) and response header encode (v0/v1).

Header version rules (as Kafka): request header v2 when the request version is flexible,
v1 otherwise, v0 only for ControlledShutdown v0 (no client id). The client id is a legacy
nullable string even in v2. Response header v1 (with an empty tag buffer) for flexible
versions, v0 otherwise -- except ApiVersions, whose responses always use v0 so that a client
can read the answer before it knows what the broker supports (KIP-511).

What Kafka does with a request it cannot serve, and what we return for it:
* unknown API key or unsupported version (other than ApiVersions): Kafka closes the
  connection. We raise `InvalidRequestError` carrying api_key, api_version and
  correlation_id so the network layer can log it and close.
* ApiVersions at a version above the supported range: Kafka answers with a v0-layout
  UNSUPPORTED_VERSION body (see api_versions.py). We return the header normally (parsed as
  header v2, as Kafka does for versions above the known range); the caller must not decode
  the body and should answer `api_versions_response(version)`.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping

import attrs

from kafkapy.protocol._codec import read_nullable_string, read_uvarint, skip_tag
from kafkapy.protocol.api import ADVERTISED, ApiKey
from kafkapy.protocol.errors import DecodeError
from kafkapy.protocol.messages import REQUESTS

_HHI = struct.Struct(">hhi")
_I32 = struct.Struct(">i")
_FLEXIBLE_FROM: dict[int, int | None] = {k: c.FLEXIBLE_FROM for k, c in REQUESTS.items()}


@attrs.frozen(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int


class InvalidRequestError(DecodeError):
    """A request the broker cannot serve; Kafka closes the connection on these."""

    def __init__(
        self, message: str, api_key: int | None, api_version: int | None,
        correlation_id: int | None,
    ) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


def is_flexible(api_key: int, api_version: int) -> bool:
    """Whether `api_version` of the API uses compact encoding and tagged fields."""
    fl = _FLEXIBLE_FROM.get(api_key)
    return fl is not None and api_version >= fl


def request_header_version(api_key: int, api_version: int) -> int:
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and api_version == 0:
        return 0
    return 2 if is_flexible(api_key, api_version) else 1


def response_header_flexible(api_key: int, api_version: int) -> bool:
    """True when the response carries header v1 (tag buffer after the correlation id)."""
    if api_key == ApiKey.API_VERSIONS:
        return False
    return is_flexible(api_key, api_version)


def decode_request_header(
    buf: memoryview, advertised: Mapping[int, tuple[int, int]] = ADVERTISED
) -> RequestHeader:
    """Parse the header of one request frame (without the 4-byte size prefix)."""
    if len(buf) < 8:
        raise InvalidRequestError(f"request of {len(buf)} bytes has no header", None, None, None)
    api_key, api_version, correlation_id = _HHI.unpack_from(buf, 0)
    rng = advertised.get(api_key)
    if rng is None or api_key not in _FLEXIBLE_FROM:
        raise InvalidRequestError(
            f"unknown or unsupported api key {api_key}", api_key, api_version, correlation_id
        )
    lo, hi = rng
    if api_key == ApiKey.API_VERSIONS:
        if api_version < 0:
            raise InvalidRequestError(
                f"ApiVersions version {api_version}", api_key, api_version, correlation_id
            )
    elif not lo <= api_version <= hi:
        raise InvalidRequestError(
            f"api key {api_key} version {api_version} not in {lo}-{hi}",
            api_key, api_version, correlation_id,
        )
    hv = request_header_version(api_key, api_version)
    pos = 8
    client_id = None
    try:
        if hv >= 1:
            client_id, pos = read_nullable_string(buf, pos)
        if hv >= 2:
            nt, pos = read_uvarint(buf, pos)
            for _ in range(nt):
                _tag, pos = read_uvarint(buf, pos)
                size, pos = read_uvarint(buf, pos)
                pos = skip_tag(buf, pos, size)
    except (DecodeError, struct.error, IndexError, ValueError) as e:
        raise InvalidRequestError(
            f"malformed request header: {e}", api_key, api_version, correlation_id
        ) from e
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def encode_response_header(correlation_id: int, flexible: bool) -> bytes:
    """Response header v1 (flexible) or v0."""
    if flexible:
        return _I32.pack(correlation_id) + b"\0"
    return _I32.pack(correlation_id)
