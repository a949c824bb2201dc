"""Precomputed ApiVersions response bodies (v0-v3) and the KIP-511 fallback.

ApiVersions must be answered instantly (kafka-node gives up after 500 ms), so the bodies are
encoded once per advertised table. A request at a version above 3 gets what Kafka 3.9 sends:
a *v0-layout* body with UNSUPPORTED_VERSION and only the ApiVersions entry, from which
librdkafka and kafka-python read the highest ApiVersions version and retry there.
"""
from __future__ import annotations

from collections.abc import Mapping

import attrs

from kafkapy.protocol.api import ADVERTISED, ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.api_versions import (
    ApiVersionsResponse,
    ApiVersionsResponse_ApiVersion,
)

SUPPORTED_VERSIONS = range(0, 4)
"""ApiVersions versions answered with a full body (must match ADVERTISED[API_VERSIONS])."""


def _encode(resp: ApiVersionsResponse, version: int) -> bytes:
    out: list = []
    resp.encode(version, out)
    return b"".join(out)


@attrs.frozen(slots=True)
class ApiVersionsResponses:
    """Encoded bodies (no response header; ApiVersions always uses header v0)."""

    bodies: tuple[bytes, ...]
    fallback: bytes

    def for_version(self, version: int) -> bytes:
        if 0 <= version < len(self.bodies):
            return self.bodies[version]
        return self.fallback


def build_api_versions_responses(
    advertised: Mapping[int, tuple[int, int]],
) -> ApiVersionsResponses:
    """Bodies listing exactly `advertised` (sorted by key), error 0, throttle 0."""
    lo, hi = advertised[ApiKey.API_VERSIONS]
    if (lo, hi) != (SUPPORTED_VERSIONS.start, SUPPORTED_VERSIONS.stop - 1):
        raise ValueError(f"ApiVersions must be advertised as 0-3, not {lo}-{hi}")
    keys = [
        ApiVersionsResponse_ApiVersion(api_key=k, min_version=a, max_version=b)
        for k, (a, b) in sorted(advertised.items())
    ]
    full = ApiVersionsResponse(error_code=0, api_keys=keys, throttle_time_ms=0)
    bodies = tuple(_encode(full, v) for v in SUPPORTED_VERSIONS)
    unsupported = ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersionsResponse_ApiVersion(
                api_key=ApiKey.API_VERSIONS, min_version=lo, max_version=hi
            )
        ],
    )
    return ApiVersionsResponses(bodies=bodies, fallback=_encode(unsupported, 0))


DEFAULT = build_api_versions_responses(ADVERTISED)


def api_versions_response(version: int) -> bytes:
    """Body for an ApiVersions request at `version` against the default table."""
    return DEFAULT.for_version(version)
