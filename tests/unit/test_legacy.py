"""kafkapy.protocol.legacy: up-conversion of magic 0/1 produce data to one v2 batch and
down-conversion of stored v2 batches for Fetch v0-3, read back by kafkapy and by
kafka-python's record classes as an independent oracle."""
from __future__ import annotations

import struct

import pytest
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from kafkapy.protocol import records as R
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.legacy import downconvert, fetch_magic, magic_of, upconvert
from kafkapy.protocol.records import Record

pytestmark = pytest.mark.unit

CODECS = [R.NONE, R.GZIP, R.SNAPPY, R.LZ4, R.ZSTD]
#: The codec a legacy reader sees: lz4/zstd are re-compressed with gzip (legacy.py explains).
LEGACY_CODEC = {R.NONE: R.NONE, R.GZIP: R.GZIP, R.SNAPPY: R.SNAPPY, R.LZ4: R.GZIP, R.ZSTD: R.GZIP}


def sample(n: int, base_ts: int = 1_700_000_000_000) -> list[Record]:
    return [Record(f"k{i % 7}".encode(), f"value {i} ".encode() * 5,
                   [("h", str(i).encode()), ("src", b"x")], base_ts + 3 * i) for i in range(n)]


def oracle_legacy(buf: bytes) -> list[tuple]:
    """(offset, key, value, timestamp, wrapper codec) as kafka-python reads a legacy set."""
    mr = MemoryRecords(buf)
    out = []
    while mr.has_next():
        batch = mr.next_batch()
        assert batch.magic in (0, 1)
        for r in batch:
            out.append((r.offset, r.key, r.value, r.timestamp, batch.compression_type))
    return out


def wrapper_codecs(buf: bytes) -> list[int]:
    """Attributes codec of each top-level legacy message."""
    out, pos = [], 0
    while pos < len(buf):
        _, size = struct.unpack_from(">qi", buf, pos)
        out.append(buf[pos + 17] & 0x07)
        pos += 12 + size
    return out


def kafka_node_set(recs: list[Record], magic: int, codec: int) -> bytes:
    """What kafka-node sends: every offset 0, compressed inner messages included."""
    zeros = [Record(r.key, r.value, [], r.timestamp, offset=0) for r in recs]
    return R.build_message_set(zeros, magic=magic, compression=codec)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("magic", [0, 1])
def test_v2_to_legacy_to_v2(magic: int, codec: int) -> None:
    recs = sample(25)
    stored = R.build_batch(recs, base_offset=100, compression=codec)
    legacy = downconvert(stored, magic, 100, 1 << 20)
    assert magic_of(legacy) == magic
    got = oracle_legacy(legacy)
    want_ts = [r.timestamp if magic else None for r in recs]
    assert [(o, k, v, t) for o, k, v, t, _ in got] == [
        (100 + i, r.key, r.value, ts) for i, (r, ts) in enumerate(zip(recs, want_ts))]
    want_codec = LEGACY_CODEC[codec]
    assert wrapper_codecs(legacy) == ([want_codec] if want_codec else [0] * len(recs))

    back = list(R.iter_batches(upconvert(legacy)))
    assert len(back) == 1
    assert back[0].info.compression == want_codec
    assert [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in back[0].records] == [
        (i, r.key, r.value, [], r.timestamp if magic else -1) for i, r in enumerate(recs)]


@pytest.mark.parametrize("codec", [R.NONE, R.GZIP, R.SNAPPY])
@pytest.mark.parametrize("magic", [0, 1])
def test_kafka_node_style_sets_get_fresh_offsets(magic: int, codec: int) -> None:
    recs = sample(12)
    sent = kafka_node_set(recs, magic, codec)
    assert {m.offset for m in R.iter_legacy_messages(sent)} == {0}
    batch = upconvert(sent)
    scan = R.native.scan_batches(batch)
    assert scan.error is None and len(scan.batches) == 1
    info = scan.batches[0]
    assert (info.compression, info.record_count, info.last_offset_delta) == (codec, 12, 11)
    # kafka-python decodes the v2 batch we built the same way
    theirs = DefaultRecordBatch(batch)
    assert [(r.offset, r.key, r.value, r.timestamp) for r in theirs] == [
        (i, r.key, r.value, r.timestamp if magic else -1) for i, r in enumerate(recs)]


def test_magic0_has_no_timestamp() -> None:
    recs = sample(4)
    batch = upconvert(R.build_message_set(recs, magic=0))
    info = R.native.scan_batches(batch).batches[0]
    assert (info.first_timestamp, info.max_timestamp) == (-1, -1)
    # magic 0 messages have no timestamp field at all: 4 header + 2 + key + value
    legacy = downconvert(R.build_batch(recs, base_offset=0), 0, 0, 1 << 20)
    _, size = struct.unpack_from(">qi", legacy, 0)
    assert size == 4 + 2 + 4 + len(recs[0].key) + 4 + len(recs[0].value)


def test_kafka_python_legacy_producer_set_up_converts() -> None:
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=R.GZIP, batch_size=2**24)
    for i in range(9):
        builder.append(i, timestamp=1000 + i, key=b"k%d" % i, value=b"v%d" % i)
    batch = upconvert(bytes(builder.build()))
    assert [(r.offset, r.key, r.timestamp) for r in R.iter_records(batch)] == [
        (i, b"k%d" % i, 1000 + i) for i in range(9)]


@pytest.mark.parametrize("codec", [R.NONE, R.GZIP])
def test_crc_corruption_is_corrupt_message(codec: int) -> None:
    buf = bytearray(kafka_node_set(sample(3), 1, codec))
    buf[-1] ^= 0x01  # last value byte (or compressed payload byte), covered by the CRC
    with pytest.raises(KafkaError) as e:
        upconvert(bytes(buf))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_bad_inputs() -> None:
    with pytest.raises(KafkaError) as e:
        upconvert(R.build_batch(sample(2)))
    assert e.value.code == ErrorCode.INVALID_RECORD
    with pytest.raises(KafkaError) as e:
        upconvert(b"")
    assert e.value.code == ErrorCode.INVALID_RECORD
    torn = R.build_message_set(sample(2), magic=1)[:-5]
    with pytest.raises(KafkaError) as e:
        upconvert(torn)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(ValueError):
        downconvert(R.build_batch(sample(1)), 2, 0, 100)


def test_downconvert_skips_control_and_older_records() -> None:
    data = (R.build_batch(sample(5), base_offset=0, producer_id=7, producer_epoch=0,
                          base_sequence=0, is_transactional=True)
            + R.build_batch([R.control_record(R.CONTROL_COMMIT, 0)], base_offset=5, is_control=True,
                            producer_id=7, producer_epoch=0, is_transactional=True)
            + R.build_batch(sample(3), base_offset=6, compression=R.GZIP))
    legacy = downconvert(data, 1, 3, 1 << 20)
    assert [o for o, *_ in oracle_legacy(legacy)] == [3, 4, 6, 7, 8]


def test_downconvert_max_bytes_whole_messages_only() -> None:
    recs = sample(10)
    stored = R.build_batch(recs) + R.build_batch(recs, base_offset=10, compression=R.GZIP)
    one = len(downconvert(R.build_batch(recs[:1]), 1, 0, 1 << 20))
    limited = downconvert(stored, 1, 0, 3 * one + one // 2)
    assert [o for o, *_ in oracle_legacy(limited)] == [0, 1, 2]
    assert len(limited) == 3 * one
    # the first message goes out even when it alone exceeds the limit
    assert [o for o, *_ in oracle_legacy(downconvert(stored, 1, 0, 1))] == [0]
    # a compressed batch is one wrapper: all of it or none of it
    everything = downconvert(stored, 1, 0, 1 << 20)
    just_short = downconvert(stored, 1, 0, len(everything) - 1)
    assert [o for o, *_ in oracle_legacy(just_short)] == list(range(10))
    assert [o for o, *_ in oracle_legacy(downconvert(stored, 1, 10, 1))] == list(range(10, 20))


def test_fetch_magic() -> None:
    assert [fetch_magic(v) for v in range(6)] == [0, 0, 1, 1, 2, 2]
