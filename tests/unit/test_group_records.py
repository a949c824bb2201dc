"""`__consumer_offsets` key/value formats against hand-assembled bytes (layouts of §6)."""
from __future__ import annotations

import pytest

from kafkapy.coordinator.group.records import (
    GroupKey, GroupValue, MemberRecord, OffsetKey, OffsetValue, RecordFormatError,
    decode_group_value, decode_key, decode_offset_value, encode_group_key, encode_group_value,
    encode_offset_key, encode_offset_value, replay)

pytestmark = pytest.mark.unit

I64_5 = bytes.fromhex("0000000000000005")
I64_100 = bytes.fromhex("0000000000000064")


def test_offset_key_v1() -> None:
    raw = bytes.fromhex("0001" "0001") + b"g" + bytes.fromhex("0001") + b"t" + \
        bytes.fromhex("00000001")
    assert encode_offset_key("g", "t", 1) == raw
    assert decode_key(raw) == OffsetKey("g", "t", 1)
    assert decode_key(b"\x00\x00" + raw[2:]) == OffsetKey("g", "t", 1)  # key v0 identical


def test_offset_value_v3_and_v1() -> None:
    v3 = bytes.fromhex("0003") + I64_5 + bytes.fromhex("00000002") + \
        bytes.fromhex("0001") + b"m" + I64_100
    assert encode_offset_value(OffsetValue(5, 2, "m", 100)) == v3
    assert decode_offset_value(v3) == OffsetValue(5, 2, "m", 100)
    v1 = bytes.fromhex("0001") + I64_5 + bytes.fromhex("0000") + I64_100 + \
        bytes.fromhex("00000000000000c8")
    assert encode_offset_value(OffsetValue(5, -1, "", 100, expire_timestamp=200)) == v1
    assert decode_offset_value(v1) == OffsetValue(5, -1, "", 100, 200)


def test_offset_value_old_and_flexible_versions() -> None:
    v0 = bytes.fromhex("0000") + I64_5 + bytes.fromhex("0001") + b"m" + I64_100
    assert decode_offset_value(v0) == OffsetValue(5, -1, "m", 100)
    v2 = b"\x00\x02" + v0[2:]
    assert decode_offset_value(v2) == OffsetValue(5, -1, "m", 100)
    # v4: compact string (length + 1 as unsigned varint) and an empty tagged-field section
    v4 = bytes.fromhex("0004") + I64_5 + bytes.fromhex("00000007") + b"\x02m" + I64_100 + b"\x00"
    assert decode_offset_value(v4) == OffsetValue(5, 7, "m", 100)
    with pytest.raises(RecordFormatError):
        decode_offset_value(bytes.fromhex("0009"))
    with pytest.raises(RecordFormatError):
        decode_offset_value(v0[:-1])


def test_group_key_v2() -> None:
    raw = bytes.fromhex("0002" "0001") + b"g"
    assert encode_group_key("g") == raw
    assert decode_key(raw) == GroupKey("g")
    assert decode_key(bytes.fromhex("0003" "0001") + b"g") is None  # KIP-848 record kinds


def test_group_value_v3() -> None:
    value = GroupValue("consumer", 1, "range", "m1", 7, [
        MemberRecord("m1", None, "c", "/h", 300, 100, b"\x01", b"")])
    raw = (bytes.fromhex("0003") + b"\x00\x08consumer" + bytes.fromhex("00000001")
           + b"\x00\x05range" + b"\x00\x02m1" + bytes.fromhex("0000000000000007")
           + bytes.fromhex("00000001")
           + b"\x00\x02m1" + b"\xff\xff" + b"\x00\x01c" + b"\x00\x02/h"
           + bytes.fromhex("0000012c") + bytes.fromhex("00000064")
           + bytes.fromhex("00000001") + b"\x01" + bytes.fromhex("00000000"))
    assert encode_group_value(value) == raw
    assert decode_group_value(raw) == value


def test_group_value_v0_and_v1_layouts() -> None:
    head = b"\x00\x08consumer" + bytes.fromhex("00000003") + b"\xff\xff" + b"\xff\xff"
    member_v0 = b"\x00\x01a" + b"\x00\x01c" + b"\x00\x01h" + bytes.fromhex("00002710") + \
        bytes.fromhex("00000000") + bytes.fromhex("00000001") + b"z"
    v0 = b"\x00\x00" + head + bytes.fromhex("00000001") + member_v0
    got = decode_group_value(v0)
    assert got.generation == 3 and got.protocol is None and got.leader is None
    assert got.members == [MemberRecord("a", None, "c", "h", 10000, 10000, b"", b"z")]
    member_v1 = b"\x00\x01a" + b"\x00\x01c" + b"\x00\x01h" + bytes.fromhex("00007530") + \
        bytes.fromhex("00002710") + bytes.fromhex("00000000") + bytes.fromhex("00000000")
    v1 = b"\x00\x01" + head + bytes.fromhex("00000001") + member_v1
    assert decode_group_value(v1).members[0].rebalance_timeout_ms == 30000
    assert decode_group_value(v1).members[0].session_timeout_ms == 10000


def test_replay_latest_wins_and_tombstones() -> None:
    k1 = encode_offset_key("g", "t", 0)
    k2 = encode_offset_key("g", "t", 1)
    gk = encode_group_key("g")
    gv = encode_group_value(GroupValue("consumer", 2, None, None, 5, []))
    recs = [
        (k1, encode_offset_value(OffsetValue(1))),
        (k2, encode_offset_value(OffsetValue(2))),
        (k1, encode_offset_value(OffsetValue(3))),
        (gk, gv),
        (k2, None),
        (encode_offset_key("h", "t", 0), encode_offset_value(OffsetValue(9))),
        (encode_offset_key("h", "t", 0), None),
        (encode_group_key("dead"), gv),
        (encode_group_key("dead"), None),
    ]
    loaded = replay(recs)
    assert loaded.offsets == {"g": {("t", 0): OffsetValue(3)}}
    assert set(loaded.groups) == {"g"} and loaded.groups["g"].generation == 2
