"""Wire-level behaviour of the codec: unknown tags, truncation, records, absent fields,
headers and ApiVersions bodies."""
from __future__ import annotations

import io
import os
import random

import protocol_oracle as po
import pytest

from kafkapy.protocol._codec import uvarint
from kafkapy.protocol.api import ADVERTISED, API_SPECS, ApiKey
from kafkapy.protocol.api_versions import (
    api_versions_response,
    build_api_versions_responses,
)
from kafkapy.protocol.errors import DecodeError
from kafkapy.protocol.headers import (
    InvalidRequestError,
    decode_request_header,
    encode_response_header,
    response_header_flexible,
)
from kafkapy.protocol.messages import REQUESTS, RESPONSES
from kafkapy.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafkapy.protocol.messages.fetch import FetchResponse
from kafkapy.protocol.messages.produce import ProduceRequest, ProduceResponse

SEED = int(os.environ.get("KAFKAPY_TEST_SEED", random.randrange(1 << 30)))
pytestmark = pytest.mark.unit


def _flexible_versions() -> list[tuple[int, str, int]]:
    return [
        (k, kind, v) for k, kind, v in po.message_versions()
        if v in po.APIS[k][0 if kind == "request" else 1].flexible
    ]


def _cls(key: int, kind: str):
    return (REQUESTS if kind == "request" else RESPONSES)[key]


@pytest.mark.parametrize("key,kind,version", _flexible_versions())
def test_unknown_top_level_tags_are_skipped(key: int, kind: str, version: int) -> None:
    cls = _cls(key, kind)
    obj = cls()
    wire = po.encode(obj, version)
    assert wire[-1] == 0  # empty tag section of the top-level struct
    extra = uvarint(2) + uvarint(5000) + uvarint(3) + b"xyz" + uvarint(90000) + uvarint(0)
    back, end = cls.decode(memoryview(wire[:-1] + extra + b"trailing"), 0, version)
    assert back == obj
    assert end == len(wire) - 1 + len(extra)


def test_unknown_nested_tag_next_to_known_tag() -> None:
    part_cls = FetchResponse.PartitionData
    part = part_cls(partition_index=3, records=b"abc")
    wire = po.encode(part, 12)
    assert wire[-1] == 0
    leader = FetchResponse.LeaderIdAndEpoch(leader_id=7, leader_epoch=9)
    lw = po.encode(leader, 12)
    tags = uvarint(2) + uvarint(1) + uvarint(len(lw)) + lw + uvarint(77) + uvarint(2) + b"??"
    back, end = part_cls.decode(memoryview(wire[:-1] + tags), 0, 12)
    assert end == len(wire) - 1 + len(tags)
    assert back.current_leader == leader
    assert bytes(back.records) == b"abc"


def test_truncated_buffers_raise_decode_error() -> None:
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    for key, kind, v in po.message_versions():
        req, resp = po.APIS[key]
        msg = req if kind == "request" else resp
        mod = po.our_module(req)
        obj = po.make(msg.root, v, v in msg.flexible, mod, None, rng)
        wire = po.encode(obj, v)
        cuts = set(rng.sample(range(len(wire)), min(len(wire), 6))) | {0, len(wire) - 1}
        for cut in sorted(c for c in cuts if 0 <= c < len(wire)):
            with pytest.raises(DecodeError):
                type(obj).decode(memoryview(wire[:cut]), 0, v)


def test_bad_lengths_varints_and_utf8() -> None:
    # Produce v3: transactional id (nullable string) length -2 is invalid
    body = b"\xff\xfe" + b"\x00\x01" + b"\x00\x00\x03\xe8" + b"\x00\x00\x00\x00"
    with pytest.raises(DecodeError):
        ProduceRequest.decode(memoryview(body), 0, 3)
    # -1 (null) is fine
    ok, end = ProduceRequest.decode(memoryview(b"\xff\xff" + body[2:]), 0, 3)
    assert ok.transactional_id is None and ok.acks == 1 and end == len(body)
    # array length -2
    with pytest.raises(DecodeError):
        ProduceRequest.decode(memoryview(b"\xff\xff\x00\x01\x00\x00\x03\xe8\xff\xff\xff\xfe"), 0, 3)
    # varint longer than 5 bytes in a flexible version
    with pytest.raises(DecodeError):
        ProduceRequest.decode(memoryview(b"\x80\x80\x80\x80\x80\x01" + b"\0" * 10), 0, 9)
    # invalid UTF-8 in a topic name
    bad = b"\xff\xff\x00\x01\x00\x00\x03\xe8\x00\x00\x00\x01\x00\x02\xc3\x28\x00\x00\x00\x00"
    with pytest.raises(DecodeError):
        ProduceRequest.decode(memoryview(bad), 0, 3)
    # array count larger than the bytes left
    with pytest.raises(DecodeError):
        ProduceRequest.decode(memoryview(b"\xff\xff\x00\x01\x00\x00\x03\xe8\x7f\xff\xff\xff"), 0, 3)


class FakeFileRecords:
    is_file_records = True

    def __len__(self) -> int:
        return 20000

    def __getattr__(self, name: str):  # only len() may be used by the codec
        raise AssertionError(f"codec touched FileRecords.{name}")


def test_records_zero_copy_and_file_records_chunk() -> None:
    T, P = ProduceRequest.TopicProduceData, ProduceRequest.PartitionProduceData
    big = bytes(range(256)) * 64
    req = ProduceRequest(acks=-1, timeout_ms=5, topic_data=[T(name="t", partition_data=[
        P(index=0, records=big), P(index=1, records=b"small")])])
    out: list = []
    req.encode(9, out)
    assert any(c is big for c in out)  # large blob appended, not copied
    wire = memoryview(b"".join(out))
    back, _ = ProduceRequest.decode(wire, 0, 9)
    rec = back.topic_data[0].partition_data[0].records
    assert isinstance(rec, memoryview) and rec.obj is wire.obj and rec == big

    fr = FakeFileRecords()
    resp = FetchResponse(responses=[FetchResponse.FetchableTopicResponse(
        topic="t", partitions=[FetchResponse.PartitionData(partition_index=0, records=fr)])])
    for v in (4, 12, 16):
        out = []
        resp.encode(v, out)
        assert sum(c is fr for c in out) == 1
        prefix = b"".join(bytes(c) for c in out[: out.index(fr)])
        length = prefix[-4:] if v < 12 else uvarint(20001)
        assert prefix.endswith(length) and (v >= 12 or int.from_bytes(length, "big") == 20000)


def test_absent_fields_requests_strict_responses_lenient() -> None:
    with pytest.raises(ValueError):
        po.encode(ProduceRequest(transactional_id="tx"), 2)
    assert po.encode(ProduceRequest(transactional_id=None), 2)
    # responses: handlers fill fields generically; absent ones are dropped silently
    r = ProduceResponse(throttle_time_ms=5)
    assert po.encode(r, 0) == b"\x00\x00\x00\x00"


def test_none_in_non_nullable_fields() -> None:
    T = ProduceRequest.TopicProduceData
    with pytest.raises(ValueError):
        po.encode(ProduceRequest(topic_data=[T(name=None)]), 9)
    with pytest.raises(ValueError):
        po.encode(ProduceRequest(topic_data=None), 3)
    # responses write the empty value instead
    R = ProduceResponse.TopicProduceResponse
    lenient = ProduceResponse(responses=[R(name=None, partition_responses=None)])
    assert po.encode(lenient, 9) == po.encode(ProduceResponse(responses=[R(name="")]), 9)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 2**28, 2**32 - 1])
def test_uvarint_round_trip(n: int) -> None:
    from kafkapy.protocol._codec import read_uvarint

    b = uvarint(n)
    assert read_uvarint(memoryview(b + b"\xff"), 0) == (n, len(b))
    with pytest.raises(ValueError):
        uvarint(2**32)


# ------------------------------------------------------------------------- headers


def _header(key: int, version: int, corr: int, client: bytes | None, tags: bytes | None) -> bytes:
    b = key.to_bytes(2, "big") + version.to_bytes(2, "big", signed=True) + corr.to_bytes(4, "big")
    if client is not None:
        b += len(client).to_bytes(2, "big") + client
    if tags is not None:
        b += tags
    return b


def test_request_header_versions() -> None:
    h = decode_request_header(memoryview(_header(0, 7, 42, b"cli", None) + b"BODY"))
    assert (h.api_key, h.api_version, h.correlation_id, h.client_id, h.body_offset) == (0, 7, 42, "cli", 13)
    tags = uvarint(1) + uvarint(9) + uvarint(2) + b"zz"
    h = decode_request_header(memoryview(_header(0, 9, 43, b"cli", tags) + b"BODY"))
    assert (h.client_id, h.body_offset) == ("cli", 13 + len(tags))
    h = decode_request_header(memoryview(_header(7, 0, 44, None, None) + b"\x00\x00\x00\x01"))
    assert (h.client_id, h.body_offset) == (None, 8)
    h = decode_request_header(memoryview(_header(18, 3, 45, b"", b"\x00")))
    assert h.body_offset == 11
    null_client = b"\x00\x03\x00\x01\x00\x00\x00\x05\xff\xff"
    assert decode_request_header(memoryview(null_client)).client_id is None


def test_request_header_errors_carry_ids() -> None:
    with pytest.raises(InvalidRequestError) as ei:
        decode_request_header(memoryview(_header(999, 0, 77, b"c", None)))
    assert (ei.value.api_key, ei.value.correlation_id) == (999, 77)
    with pytest.raises(InvalidRequestError) as ei:
        decode_request_header(memoryview(_header(0, 11, 78, b"c", b"\x00")))
    assert (ei.value.api_key, ei.value.api_version, ei.value.correlation_id) == (0, 11, 78)
    with pytest.raises(InvalidRequestError):
        decode_request_header(memoryview(_header(3, 1, 79, b"clientid", None)[:12]))
    with pytest.raises(InvalidRequestError):
        decode_request_header(memoryview(b"\x00\x03\x00"))
    filtered = {k: r for k, r in ADVERTISED.items() if k != ApiKey.END_TXN}
    with pytest.raises(InvalidRequestError):
        decode_request_header(memoryview(_header(26, 1, 80, b"c", None)), filtered)
    # ApiVersions above the supported range still parses (answered with the fallback)
    h = decode_request_header(memoryview(_header(18, 4, 81, b"c", b"\x00") + b"junk"))
    assert (h.api_version, h.correlation_id, h.body_offset) == (4, 81, 12)


def test_response_headers() -> None:
    assert encode_response_header(5, False) == b"\x00\x00\x00\x05"
    assert encode_response_header(5, True) == b"\x00\x00\x00\x05\x00"
    assert response_header_flexible(ApiKey.API_VERSIONS, 3) is False
    assert response_header_flexible(ApiKey.PRODUCE, 9) is True
    assert response_header_flexible(ApiKey.PRODUCE, 8) is False
    assert response_header_flexible(ApiKey.CONTROLLED_SHUTDOWN, 3) is True


# ------------------------------------------------------------------------- ApiVersions


def test_api_versions_bodies_match_advertised_and_kio() -> None:
    from kio.serial import entity_reader, entity_writer

    for v in range(4):
        body = api_versions_response(v)
        ours, end = ApiVersionsResponse.decode(memoryview(body), 0, v)
        assert end == len(body) and ours.error_code == 0 and ours.throttle_time_ms == 0
        assert {k.api_key: (k.min_version, k.max_version) for k in ours.api_keys} == ADVERTISED
        kcls = po.kio_module(po.APIS[18][0], po.APIS[18][1], v).ApiVersionsResponse
        kobj, size = entity_reader(kcls)(body, 0)
        buf = io.BytesIO()
        entity_writer(kcls)(buf, kobj)
        assert size == len(body) and buf.getvalue() == body
    assert set(ADVERTISED) == set(API_SPECS)


def test_api_versions_fallback_is_v0_layout() -> None:
    body = api_versions_response(4)
    assert body == b"\x00\x23" + b"\x00\x00\x00\x01" + b"\x00\x12\x00\x00\x00\x03"
    assert api_versions_response(127) == body
    filtered = {k: r for k, r in ADVERTISED.items() if k not in (24, 25, 26)}
    r = build_api_versions_responses(filtered)
    back, _ = ApiVersionsResponse.decode(memoryview(r.for_version(2)), 0, 2)
    assert {k.api_key for k in back.api_keys} == set(filtered)
    assert r.for_version(5) == body


def test_api_versions_v3_request_software_name() -> None:
    body = uvarint(16) + b"confluent-kafka" + uvarint(7) + b"2.16.0" + b"\x00"
    req, end = ApiVersionsRequest.decode(memoryview(body), 0, 3)
    assert (req.client_software_name, req.client_software_version, end) == ("confluent-kafka", "2.16.0", len(body))
