"""BrokerConnection's header helpers against the broker-side codec (no sockets)."""
from __future__ import annotations

import pytest

from kafkapy.network.client import (
    encode_request_header,
    parse_response_header,
    request_header_version,
)
from kafkapy.protocol.headers import decode_request_header, encode_response_header

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("api_key", "version", "flexible", "expected"),
    [(7, 0, False, 0), (7, 1, False, 1), (3, 8, False, 1), (3, 9, True, 2), (18, 3, True, 2)],
)
def test_request_header_version_rule(api_key: int, version: int, flexible: bool, expected: int) -> None:
    assert request_header_version(api_key, version, flexible) == expected


@pytest.mark.parametrize(
    ("api_key", "version", "client_id"),
    [(3, 1, "ctl"), (3, 12, "ctl-ü"), (3, 12, None), (18, 3, ""), (7, 0, "ignored"), (0, 9, "p")],
)
def test_request_header_round_trips_through_broker_decoder(
    api_key: int, version: int, client_id: str | None
) -> None:
    from kafkapy.protocol.messages import REQUESTS

    fl = REQUESTS[api_key].FLEXIBLE_FROM
    hv = request_header_version(api_key, version, fl is not None and version >= fl)
    raw = encode_request_header(api_key, version, 123456, client_id, hv) + b"BODY"
    hdr = decode_request_header(memoryview(raw))
    assert (hdr.api_key, hdr.api_version, hdr.correlation_id) == (api_key, version, 123456)
    assert hdr.client_id == (None if hv == 0 else client_id)
    assert raw[hdr.body_offset:] == b"BODY"


@pytest.mark.parametrize("flexible", [False, True])
def test_response_header_parse(flexible: bool) -> None:
    raw = encode_response_header(-7, flexible) + b"rest"
    corr, pos = parse_response_header(memoryview(raw), flexible)
    assert corr == -7 and raw[pos:] == b"rest"


def test_response_header_skips_unknown_tagged_fields() -> None:
    # two tags: (tag 0, 3 bytes), (tag 300 as a 2-byte varint, 0 bytes)
    raw = (42).to_bytes(4, "big") + b"\x02" + b"\x00\x03abc" + b"\xac\x02\x00" + b"body"
    corr, pos = parse_response_header(memoryview(raw), True)
    assert corr == 42 and raw[pos:] == b"body"


@pytest.mark.parametrize("raw", [b"", b"\x00\x00\x00", (1).to_bytes(4, "big") + b"\x01\x00\x09ab"])
def test_response_header_rejects_truncation(raw: bytes) -> None:
    with pytest.raises((ValueError, IndexError)):
        parse_response_header(memoryview(raw), True)
