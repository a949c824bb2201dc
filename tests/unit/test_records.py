"""kafkapy.protocol.records: round trips for every codec, checked by the native scan and
by kafka-python's record classes as an independent oracle (tests only).

Random inputs use a seeded RNG; the seed is printed and can be pinned with
KAFKAPY_TEST_SEED.
"""
from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Iterator

import cramjam
import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from kafkapy import native
from kafkapy.protocol import records as R
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import Record

pytestmark = pytest.mark.unit

CODECS = [R.NONE, R.GZIP, R.SNAPPY, R.LZ4, R.ZSTD]


@pytest.fixture
def rng() -> Iterator[random.Random]:
    seed = int(os.environ.get("KAFKAPY_TEST_SEED", time.time_ns() % 2**32))
    print(f"random seed: {seed} (KAFKAPY_TEST_SEED={seed} to replay)")
    yield random.Random(seed)


def random_records(rng: random.Random, n: int) -> list[Record]:
    base = rng.randint(0, 2**41)
    return [
        Record(
            rng.choice([None, b"", rng.randbytes(rng.randint(1, 30))]),
            rng.choice([None, b"", rng.randbytes(rng.randint(1, 3000)), b"z" * 70_000]),
            [(f"h{j}\u00e9", rng.choice([None, rng.randbytes(5)])) for j in range(rng.randint(0, 3))],
            base + rng.randint(-1000, 1000),  # deltas may be negative
        )
        for _ in range(n)
    ]


def fields(recs) -> list[tuple]:
    return [(r.key, r.value, list(r.headers), r.timestamp) for r in recs]


# ---- varints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,encoded",
    [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (63, b"\x7e"), (-64, b"\x7f"), (64, b"\x80\x01"),
     (2**31 - 1, b"\xfe\xff\xff\xff\x0f"), (-(2**63), b"\xff" * 9 + b"\x01")],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    out = bytearray()
    R.write_varint(value, out)
    assert bytes(out) == encoded
    assert R.read_varint(encoded, 0) == (value, len(encoded))


def test_varint_round_trip_and_errors(rng: random.Random) -> None:
    for _ in range(500):
        v = rng.randint(-(2**63), 2**63 - 1)
        out = bytearray()
        R.write_varint(v, out)
        assert R.read_varint(bytes(out), 0) == (v, len(out))
    with pytest.raises(KafkaError):
        R.read_varint(b"\x80\x80", 0)
    with pytest.raises(KafkaError):
        R.read_varint(b"\xff" * 11, 0)


# ---- magic 2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_build_round_trip_checked_by_scan_and_kafka_python(rng: random.Random, codec: int) -> None:
    recs = random_records(rng, rng.randint(1, 40))
    batch = R.build_batch(recs, base_offset=500, compression=codec, producer_id=77,
                          producer_epoch=3, base_sequence=2**31 - 5, is_transactional=True,
                          partition_leader_epoch=9)
    scan = native.scan_batches(batch)
    assert scan.error is None and scan.valid_bytes == len(batch)
    info = scan.batches[0]
    assert (info.compression, info.record_count, info.last_offset_delta) == (
        codec, len(recs), len(recs) - 1)
    assert (info.producer_id, info.producer_epoch, info.base_sequence) == (77, 3, 2**31 - 5)
    assert info.is_transactional and info.partition_leader_epoch == 9
    assert info.first_timestamp == recs[0].timestamp
    assert info.max_timestamp == max(r.timestamp for r in recs)

    mine = list(R.iter_records(batch))
    assert fields(mine) == fields(recs)
    assert [r.offset for r in mine] == list(range(500, 500 + len(recs)))

    oracle = DefaultRecordBatch(batch)
    assert oracle.validate_crc() and oracle.compression_type == codec
    assert (oracle.producer_id, oracle.producer_epoch, oracle.base_sequence) == (77, 3, 2**31 - 5)
    assert oracle.is_transactional and not oracle.is_control_batch
    theirs = [(r.key, r.value, list(r.headers), r.timestamp) for r in oracle]
    assert theirs == fields(recs)


@pytest.mark.parametrize("codec", CODECS)
def test_reader_decodes_kafka_python_batches(rng: random.Random, codec: int) -> None:
    recs = random_records(rng, rng.randint(1, 30))
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=2**24)
    for i, r in enumerate(recs):
        builder.append(i, timestamp=r.timestamp, key=r.key, value=r.value,
                       headers=[(k, v) for k, v in r.headers])
    batch = bytes(builder.build())
    assert native.scan_batches(batch).error is None
    mine = list(R.iter_records(batch))
    assert fields(mine) == fields(recs)
    assert [r.offset for r in mine] == list(range(len(recs)))


def test_snappy_reader_accepts_raw_and_xerial() -> None:
    blob = b"".join(struct.pack(">i", i) * 50 for i in range(2000))  # spans several blocks
    xerial = R.compress(R.SNAPPY, blob)
    assert xerial.startswith(b"\x82SNAPPY\x00")
    assert R.decompress(R.SNAPPY, xerial) == blob
    raw = bytes(cramjam.snappy.compress_raw(blob))
    assert R.decompress(R.SNAPPY, raw) == blob
    # a whole batch whose records blob is raw snappy, as librdkafka writes it
    plain = R.build_batch([Record(b"k", b"v" * 100, [], 1)] * 3)
    raw_blob = bytes(cramjam.snappy.compress_raw(plain[61:]))
    batch = bytearray(plain[:61] + raw_blob)
    struct.pack_into(">ih", batch, 8, len(batch) - 12, 0)
    struct.pack_into(">h", batch, 21, R.SNAPPY)
    struct.pack_into(">I", batch, 17, native.crc32c(bytes(batch[21:])))
    assert [r.value for r in R.iter_records(bytes(batch))] == [b"v" * 100] * 3


def test_lz4_is_a_frame_with_independent_blocks() -> None:
    blob = bytes(range(256)) * 2000  # > one 64 KiB block
    frame = R.compress(R.LZ4, blob)
    assert frame[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic
    assert frame[4] & 0xC0 == 0x40 and frame[4] & 0x20  # version 01, block independence
    assert R.decompress(R.LZ4, frame) == blob
    assert bytes(cramjam.lz4.decompress(frame)) == blob


def test_decompress_errors_are_corrupt_message() -> None:
    for codec in (R.GZIP, R.LZ4, R.ZSTD):
        with pytest.raises(KafkaError) as e:
            R.decompress(codec, b"definitely not compressed")
        assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(KafkaError):
        R.decompress(R.SNAPPY, b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + b"\x00\x00\x01")
    with pytest.raises(KafkaError) as e:
        R.compress(7, b"x")
    assert e.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_explicit_offsets_build_a_compacted_batch() -> None:
    recs = [Record(b"a", b"1", [], 10, offset=100), Record(b"b", b"2", [], 11, offset=104)]
    batch = R.build_batch(recs, base_offset=100)
    assert native.scan_batches(batch).error == ErrorCode.INVALID_RECORD
    assert native.scan_batches(batch, allow_gaps=True).batches[0].last_offset_delta == 4
    assert [r.offset for r in R.iter_records(batch)] == [100, 104]
    assert [r.offset for r in DefaultRecordBatch(batch)] == [100, 104]
    with pytest.raises(ValueError):
        R.build_batch([Record(b"a", b"1", [], 1, offset=5), Record(b"b", b"1", [], 1, offset=5)],
                      base_offset=5)
    with pytest.raises(ValueError):
        R.build_batch([])


def test_log_append_time_records_report_the_batch_time() -> None:
    batch = bytearray(R.build_batch([Record(b"k", b"v", [], 5), Record(b"k", b"v", [], 6)]))
    native.set_log_append_time(batch, 99_999)
    assert {r.timestamp for r in R.iter_records(bytes(batch))} == {99_999}
    built = R.build_batch([Record(b"k", b"v", [], 5)], timestamp_type=1)
    assert native.scan_batches(built).batches[0].timestamp_type == 1


def test_missing_timestamp_means_now() -> None:
    before = int(time.time() * 1000)
    (rec,) = R.iter_records(R.build_batch([Record(b"k", b"v")]))
    assert before <= rec.timestamp <= int(time.time() * 1000)


def test_control_batches_round_trip() -> None:
    marker = R.control_record(R.CONTROL_COMMIT, 17, timestamp=123)
    batch = R.build_batch([marker], base_offset=40, producer_id=5, producer_epoch=2,
                          is_transactional=True, is_control=True)
    info = native.scan_batches(batch).batches[0]
    assert info.is_control and info.is_transactional
    (rec,) = R.iter_records(batch)
    assert rec.is_control and rec.offset == 40
    assert R.parse_control_record(rec) == (R.CONTROL_COMMIT, 17)
    oracle = DefaultRecordBatch(batch)
    assert oracle.is_control_batch
    abort = R.control_record(R.CONTROL_ABORT, 3)
    assert R.parse_control_record(abort) == (R.CONTROL_ABORT, 3)


def test_iter_records_over_several_batches_and_torn_tails(rng: random.Random) -> None:
    a = R.build_batch(random_records(rng, 3), base_offset=0, compression=R.GZIP)
    b = R.build_batch(random_records(rng, 2), base_offset=3)
    assert [r.offset for r in R.iter_records(a + b)] == [0, 1, 2, 3, 4]
    torn = a + b[: len(b) // 2]
    with pytest.raises(KafkaError):
        list(R.iter_records(torn))
    assert [r.offset for r in R.iter_records(torn, allow_truncated=True)] == [0, 1, 2]
    assert len(list(R.iter_batches(memoryview(a + b)))) == 2
    bad_crc = bytearray(a + b)
    bad_crc[len(a) + 30] ^= 0xFF
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(bytes(bad_crc), allow_truncated=True))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_inconsistent_records_inside_a_valid_crc_raise() -> None:
    batch = bytearray(R.build_batch([Record(b"key", b"value", [], 1)]))
    batch[61] = 0x7E  # record length varint now claims 63 bytes
    struct.pack_into(">I", batch, 17, native.crc32c(bytes(batch[21:])))
    with pytest.raises(KafkaError) as e:
        list(R.iter_records(bytes(batch)))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    extra = bytearray(R.build_batch([Record(b"key", b"value", [], 1)]) + b"\0")
    struct.pack_into(">i", extra, 8, len(extra) - 12)
    struct.pack_into(">I", extra, 17, native.crc32c(bytes(extra[21:])))
    with pytest.raises(KafkaError):
        list(R.iter_records(bytes(extra)))


# ---- legacy magic 0/1 --------------------------------------------------------------------


def _oracle_legacy(buf: bytes) -> list[tuple]:
    mr = MemoryRecords(buf)
    out = []
    while mr.has_next():
        for r in mr.next_batch():
            out.append((r.offset, r.key, r.value, r.timestamp, r.timestamp_type))
    return out


@pytest.mark.parametrize("magic,codec", [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)])
@pytest.mark.parametrize("ts_type", [0, 1])
def test_legacy_round_trip_vs_kafka_python(rng: random.Random, magic: int, codec: int,
                                           ts_type: int) -> None:
    recs = [Record(r.key, r.value, [], r.timestamp) for r in random_records(rng, rng.randint(1, 20))]
    buf = R.build_message_set(recs, magic=magic, base_offset=1000, compression=codec,
                              timestamp_type=ts_type)
    mine = list(R.iter_legacy_messages(buf))
    assert [(m.offset, m.key, m.value) for m in mine] == [
        (1000 + i, r.key, r.value) for i, r in enumerate(recs)]
    assert all(m.magic == magic and m.compression == codec for m in mine)
    if magic == 1:
        want = ([max(r.timestamp for r in recs)] * len(recs) if ts_type and codec
                else [r.timestamp for r in recs])
        assert [m.timestamp for m in mine] == want
        assert {m.timestamp_type for m in mine} == {ts_type}
    else:
        assert {m.timestamp for m in mine} == {-1}
    assert _oracle_legacy(buf) == [
        (m.offset, m.key, m.value, m.timestamp if magic else None, m.timestamp_type if magic else None)
        for m in mine]


@pytest.mark.parametrize("magic,codec", [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)])
def test_legacy_reader_decodes_kafka_python_sets(rng: random.Random, magic: int, codec: int) -> None:
    recs = random_records(rng, rng.randint(1, 20))
    builder = LegacyRecordBatchBuilder(magic=magic, compression_type=codec, batch_size=2**24)
    for i, r in enumerate(recs):
        builder.append(i, timestamp=r.timestamp if magic else None, key=r.key, value=r.value)
    mine = list(R.iter_legacy_messages(bytes(builder.build())))
    assert [(m.key, m.value) for m in mine] == [(r.key, r.value) for r in recs]
    # a producer leaves the wrapper offset 0; relative spacing must still hold
    assert [m.offset - mine[0].offset for m in mine] == list(range(len(recs)))


def test_legacy_corruption_is_detected() -> None:
    buf = bytearray(R.build_message_set([Record(b"k", b"v", [], 5)] * 3, magic=1))
    bad = bytearray(buf)
    bad[-1] ^= 1
    with pytest.raises(KafkaError) as e:
        list(R.iter_legacy_messages(bytes(bad)))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(KafkaError):
        list(R.iter_legacy_messages(bytes(buf[:-3])))
    assert len(list(R.iter_legacy_messages(bytes(buf[:-3]), allow_truncated=True))) == 2
    with pytest.raises(KafkaError):
        R.build_message_set([Record(b"k", b"v", [], 5)], magic=0, compression=R.LZ4)
    with pytest.raises(ValueError):
        R.build_message_set([Record(b"k", b"v", [], 5)], magic=2)
    v2 = R.build_batch([Record(b"k", b"v", [], 5)])
    with pytest.raises(KafkaError) as e:
        list(R.iter_legacy_messages(v2))
