"""kafkapy.native against known vectors and a pure-Python reference written here.

Random inputs come from a seeded RNG; the seed is printed (pytest -s, or shown on failure)
and can be pinned with KAFKAPY_TEST_SEED.
"""
from __future__ import annotations

import bisect
import mmap
import os
import random
import struct
import time
from collections.abc import Iterator

import pytest

from kafkapy import native
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import Record, build_batch

pytestmark = pytest.mark.unit


@pytest.fixture
def rng() -> Iterator[random.Random]:
    seed = int(os.environ.get("KAFKAPY_TEST_SEED", time.time_ns() % 2**32))
    print(f"random seed: {seed} (KAFKAPY_TEST_SEED={seed} to replay)")
    yield random.Random(seed)


# ---- pure-Python reference ------------------------------------------------------------


def _ref_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _ref_table()


def ref_crc32c(data: bytes, crc: int = 0) -> int:
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


_HDR = struct.Struct(">qiibIhiqqqhii")


def ref_scan(buf: bytes, allow_gaps: bool = False) -> tuple[list[tuple], int, ErrorCode | None]:
    """The scan rules spelled out slowly: returns (batch tuples, valid bytes, error)."""
    pos, out = 0, []
    while pos < len(buf):
        rest = len(buf) - pos
        if rest < 12:
            return out, pos, ErrorCode.CORRUPT_MESSAGE
        (blen,) = struct.unpack_from(">i", buf, pos + 8)
        if blen < 14:
            return out, pos, ErrorCode.CORRUPT_MESSAGE
        if 12 + blen > rest:
            return out, pos, ErrorCode.CORRUPT_MESSAGE
        if buf[pos + 16] != 2:
            return out, pos, ErrorCode.INVALID_RECORD
        if 12 + blen < 61:
            return out, pos, ErrorCode.CORRUPT_MESSAGE
        f = _HDR.unpack_from(buf, pos)
        (base, _, epoch, magic, crc, attrs, lod, fts, mts, pid, pepoch, bseq, count) = f
        if ref_crc32c(buf[pos + 21 : pos + 12 + blen]) != crc:
            return out, pos, ErrorCode.CORRUPT_MESSAGE
        if count < 0 or count > lod + 1 or (count and not allow_gaps and count != lod + 1):
            return out, pos, ErrorCode.INVALID_RECORD
        out.append((pos, 12 + blen, base, epoch, magic, crc, attrs, lod, fts, mts, pid, pepoch,
                    bseq, count))
        pos += 12 + blen
    return out, pos, None


def check_against_ref(buf: bytes, allow_gaps: bool = False) -> native.BatchScan:
    scan = native.scan_batches(buf, allow_gaps=allow_gaps)
    batches, valid, error = ref_scan(buf, allow_gaps)
    assert [tuple(b) for b in scan.batches] == batches
    assert scan.valid_bytes == valid
    assert scan.error == error
    assert bool(scan.error_message) == (error is not None)
    return scan


def random_batch(rng: random.Random, base_offset: int = 0) -> bytes:
    n = rng.randint(1, 8)
    recs = [
        Record(
            rng.choice([None, rng.randbytes(rng.randint(0, 20))]),
            rng.choice([None, rng.randbytes(rng.randint(0, 200))]),
            [("h", rng.randbytes(3))] * rng.randint(0, 2),
            rng.randint(0, 2**41),
        )
        for _ in range(n)
    ]
    return build_batch(
        recs,
        base_offset=base_offset,
        compression=rng.choice([0, 0, 1, 2, 3, 4]),
        producer_id=rng.choice([-1, rng.randint(0, 2**40)]),
        producer_epoch=rng.choice([-1, 3]),
        base_sequence=rng.choice([-1, rng.randint(0, 2**31 - 1)]),
        is_transactional=rng.random() < 0.3,
        partition_leader_epoch=rng.randint(-1, 100),
        timestamp_type=rng.randint(0, 1),
    )


def fix_crc(batch: bytearray, pos: int = 0) -> None:
    (blen,) = struct.unpack_from(">i", batch, pos + 8)
    struct.pack_into(">I", batch, pos + 17, ref_crc32c(bytes(batch[pos + 21 : pos + 12 + blen])))


# ---- CRC-32C ---------------------------------------------------------------------------

RFC3720_PDU = bytes.fromhex(
    "01c00000000000000000000000000000140000000000040000000014000000182800000000000000"
    "0200000000000000"
)


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"", 0),
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (RFC3720_PDU, 0xD9963A56),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert native.crc32c(data) == expected
    assert native.crc32c_table(data) == expected
    assert native.crc32c_hw(data) == expected
    assert ref_crc32c(data) == expected


def test_crc32c_accepts_buffer_types_and_chains() -> None:
    data = b"123456789"
    for view in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert native.crc32c(view) == 0xE3069283
    for cut in range(len(data) + 1):
        assert native.crc32c(data[cut:], native.crc32c(data[:cut])) == 0xE3069283
        assert native.crc32c_table(data[cut:], native.crc32c_hw(data[:cut])) == 0xE3069283


def test_crc32c_paths_agree_on_random_buffers(rng: random.Random) -> None:
    blob = rng.randbytes(70_000)
    for _ in range(300):
        start = rng.randint(0, 64)  # misaligned starts exercise the head loop
        n = rng.choice([rng.randint(0, 40), rng.randint(0, 5000), rng.randint(0, 65_000)])
        view = memoryview(blob)[start : start + n]
        seed = rng.choice([0, rng.getrandbits(32)])
        assert native.crc32c_hw(view, seed) == native.crc32c_table(view, seed)
        assert native.crc32c(view, seed) == native.crc32c_table(view, seed)
    for _ in range(20):
        small = rng.randbytes(rng.randint(0, 300))
        assert native.crc32c(small) == ref_crc32c(small)


def test_forced_table_path_is_used_process_wide(rng: random.Random) -> None:
    data = b"".join(random_batch(rng, i * 10) for i in range(5))
    expected = native.scan_batches(data)
    try:
        assert native.set_crc32c_impl(True) is False
        assert native.crc32c(b"123456789") == 0xE3069283
        assert native.scan_batches(data) == expected
    finally:
        in_use = native.set_crc32c_impl(False)
    assert in_use == native.crc32c_hw_available()


# ---- scan ------------------------------------------------------------------------------


def test_scan_matches_reference_on_valid_batches(rng: random.Random) -> None:
    data = b"".join(random_batch(rng, rng.randint(0, 2**40)) for _ in range(20))
    scan = check_against_ref(data)
    assert scan.error is None and scan.valid_bytes == len(data) and len(scan.batches) == 20
    b = scan.batches[0]
    assert b.last_offset == b.base_offset + b.last_offset_delta
    assert b.next_offset == b.last_offset + 1
    assert b.compression == b.attributes & 7
    assert b.timestamp_type == (b.attributes >> 3) & 1
    assert b.is_transactional == bool(b.attributes & 0x10)
    assert b.is_control is False


def test_scan_empty_buffer() -> None:
    scan = native.scan_batches(b"")
    assert scan.batches == [] and scan.valid_bytes == 0 and scan.error is None


def test_scan_more_batches_than_scratch_rows() -> None:
    one = build_batch([Record(b"k", b"v", [], 1)])
    data = b"".join(one for _ in range(700))
    scan = check_against_ref(data)
    assert len(scan.batches) == 700 and scan.valid_bytes == len(data)
    assert [b.position for b in scan.batches] == [i * len(one) for i in range(700)]
    bad = bytearray(data)
    bad[600 * len(one) + 30] ^= 1
    scan = check_against_ref(bytes(bad))
    assert len(scan.batches) == 600 and scan.valid_bytes == 600 * len(one)


def test_scan_every_truncation_point(rng: random.Random) -> None:
    data = random_batch(rng) + random_batch(rng)
    first = native.scan_batches(data).batches[0].size
    for cut in range(len(data)):
        scan = check_against_ref(data[:cut])
        if cut not in (0, first):
            assert scan.error == ErrorCode.CORRUPT_MESSAGE
            assert "torn tail" in scan.error_message
        assert scan.valid_bytes == (first if cut >= first else 0)


def test_scan_corrupted_crc_each_byte(rng: random.Random) -> None:
    a, b = random_batch(rng), random_batch(rng)
    for i in rng.sample(range(21, len(b)), min(40, len(b) - 21)) + [17, 18, 19, 20]:
        bad = bytearray(a + b)
        bad[len(a) + i] ^= 1 << rng.randint(0, 7)
        scan = check_against_ref(bytes(bad))
        assert scan.error == ErrorCode.CORRUPT_MESSAGE, i
        assert scan.valid_bytes == len(a) and len(scan.batches) == 1
        assert "CRC" in scan.error_message


def test_scan_header_fields_outside_crc_do_not_fail_it(rng: random.Random) -> None:
    bad = bytearray(random_batch(rng))
    bad[0:8] = struct.pack(">q", 12345)
    bad[12:16] = struct.pack(">i", 77)
    scan = check_against_ref(bytes(bad))
    assert scan.error is None
    assert scan.batches[0].base_offset == 12345 and scan.batches[0].partition_leader_epoch == 77


def test_scan_garbage_appended(rng: random.Random) -> None:
    good = random_batch(rng)
    for _ in range(50):
        garbage = rng.randbytes(rng.randint(1, 200))
        scan = check_against_ref(good + garbage)
        assert scan.valid_bytes == len(good) and len(scan.batches) == 1
        assert scan.error in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD)
    scan = check_against_ref(good + bytes(100))  # zero padding, as in a preallocated file
    assert scan.error == ErrorCode.CORRUPT_MESSAGE and scan.valid_bytes == len(good)


@pytest.mark.parametrize("magic", [0, 1, 3, -1])
def test_scan_wrong_magic_is_invalid_record_naming_it(rng: random.Random, magic: int) -> None:
    bad = bytearray(random_batch(rng))
    bad[16] = magic & 0xFF
    scan = check_against_ref(bytes(bad))
    assert scan.error == ErrorCode.INVALID_RECORD
    assert f"magic {magic}" in scan.error_message
    assert scan.valid_bytes == 0


def test_scan_legacy_message_smaller_than_v2_header_reports_magic() -> None:
    # magic-1 message: crc, magic, attributes, timestamp, key -1, value len 1 "x"
    body = struct.pack(">bbqi", 1, 0, 5, -1) + struct.pack(">i", 1) + b"x"
    msg = struct.pack(">qiI", 0, len(body) + 4, 0) + body
    scan = check_against_ref(msg)
    assert scan.error == ErrorCode.INVALID_RECORD and "magic 1" in scan.error_message


@pytest.mark.parametrize("length", [-5, 0, 13, 14, 48])
def test_scan_short_length(length: int) -> None:
    good = bytearray(build_batch([Record(b"k", b"v", [], 1)]))
    struct.pack_into(">i", good, 8, length)
    scan = check_against_ref(bytes(good))
    assert scan.error == ErrorCode.CORRUPT_MESSAGE and scan.valid_bytes == 0


def test_scan_record_count_mismatch_and_gaps() -> None:
    recs = [Record(b"a", b"1", [], 1), Record(b"b", b"2", [], 2, offset=5)]
    gapped = build_batch(recs)  # lastOffsetDelta 5, two records: a compacted batch
    strict = check_against_ref(gapped)
    assert strict.error == ErrorCode.INVALID_RECORD and strict.valid_bytes == 0
    relaxed = check_against_ref(gapped, allow_gaps=True)
    assert relaxed.error is None and relaxed.batches[0].record_count == 2
    assert relaxed.batches[0].last_offset_delta == 5

    too_many = bytearray(build_batch([Record(b"a", b"1", [], 1)] * 3))
    struct.pack_into(">i", too_many, 23, 1)  # lastOffsetDelta 1 < count - 1
    fix_crc(too_many)
    for gaps in (False, True):
        scan = check_against_ref(bytes(too_many), allow_gaps=gaps)
        assert scan.error == ErrorCode.INVALID_RECORD

    empty = bytearray(build_batch([Record(b"a", b"1", [], 1)] * 3))
    struct.pack_into(">i", empty, 57, 0)  # empty batch kept by compaction
    fix_crc(empty)
    assert check_against_ref(bytes(empty)).error is None
    struct.pack_into(">i", empty, 57, -1)
    fix_crc(empty)
    assert check_against_ref(bytes(empty)).error == ErrorCode.INVALID_RECORD


def test_scan_random_mutations_match_reference(rng: random.Random) -> None:
    data = b"".join(random_batch(rng) for _ in range(3))
    for _ in range(200):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            bad[rng.randrange(len(bad))] = rng.getrandbits(8)
        check_against_ref(bytes(bad[: rng.randint(0, len(bad))]), allow_gaps=rng.random() < 0.5)


def test_scan_accepts_bytearray_memoryview_mmap(rng: random.Random) -> None:
    data = random_batch(rng) + random_batch(rng)
    expected = native.scan_batches(data)
    assert native.scan_batches(bytearray(data)) == expected
    assert native.scan_batches(memoryview(data)) == expected
    with mmap.mmap(-1, len(data)) as m:
        m[:] = data
        assert native.scan_batches(m) == expected


# ---- writers -------------------------------------------------------------------------


def test_assign_offsets_patches_every_batch(rng: random.Random) -> None:
    batches = [random_batch(rng) for _ in range(4)]
    buf = bytearray(b"".join(batches))
    before = native.scan_batches(buf)
    nxt = native.assign_offsets(buf, 1000, 42)
    after = check_against_ref(bytes(buf))
    assert after.error is None  # offsets and epoch are outside the CRC
    expected = 1000
    for b, old in zip(after.batches, before.batches):
        assert b.base_offset == expected and b.partition_leader_epoch == 42
        assert b.crc == old.crc and b.last_offset_delta == old.last_offset_delta
        expected = b.next_offset
    assert nxt == expected
    view = memoryview(buf)[: before.batches[0].size]
    assert native.assign_offsets(view, 7, -1) == 7 + before.batches[0].last_offset_delta + 1
    assert native.assign_offsets(bytearray(), 9, 0) == 9


def test_writers_need_writable_buffers_and_well_formed_frames(rng: random.Random) -> None:
    data = random_batch(rng)
    with pytest.raises(BufferError):
        native.assign_offsets(data, 0, 0)
    with pytest.raises(BufferError):
        native.set_log_append_time(memoryview(data), 0)
    for bad in (bytearray(data[:-1]), bytearray(data) + b"\0" * 5):
        with pytest.raises(KafkaError):
            native.assign_offsets(bad, 0, 0)
        with pytest.raises(KafkaError):
            native.set_log_append_time(bad, 0)


def test_set_log_append_time_restamps_and_recomputes_crc(rng: random.Random) -> None:
    from kafka.record.default_records import DefaultRecordBatch

    buf = bytearray(random_batch(rng) + random_batch(rng))
    ts = 1_700_000_000_123
    native.set_log_append_time(buf, ts)
    scan = check_against_ref(bytes(buf))
    assert scan.error is None
    for b in scan.batches:
        assert b.timestamp_type == 1 and b.max_timestamp == ts
        oracle = DefaultRecordBatch(bytes(buf[b.position : b.position + b.size]))
        assert oracle.validate_crc()
        assert {r.timestamp for r in oracle} == {ts}


# ---- index lookups -----------------------------------------------------------------------


def _offset_index(keys: list[int], spare: int) -> bytes:
    return b"".join(struct.pack(">ii", k, i * 100) for i, k in enumerate(keys)) + bytes(8 * spare)


def _time_index(keys: list[int], spare: int) -> bytes:
    return b"".join(struct.pack(">qi", k, i) for i, k in enumerate(keys)) + bytes(12 * spare)


def test_offset_index_lookup_vs_bisect(rng: random.Random) -> None:
    for _ in range(200):
        keys = sorted(rng.sample(range(0, 2**31 - 1, 7), rng.randint(0, 60)))
        buf = _offset_index(keys, rng.randint(0, 5))  # preallocated tail of zeros
        for target in [rng.randint(-10, 2**31 - 1) for _ in range(10)] + keys[:3] + [-1]:
            assert native.offset_index_lookup(buf, len(keys), target) == (
                bisect.bisect_right(keys, target) - 1
            )


def test_time_index_lookup_vs_bisect_with_repeats(rng: random.Random) -> None:
    for _ in range(200):
        keys = sorted(rng.choices(range(-5, 2**45, 2**40), k=rng.randint(0, 60)))
        buf = bytearray(_time_index(keys, rng.randint(0, 5)))
        for target in [rng.randint(-10, 2**45) for _ in range(10)] + keys[:3]:
            assert native.time_index_lookup(buf, len(keys), target) == (
                bisect.bisect_right(keys, target) - 1
            )


def test_index_lookup_bounds() -> None:
    buf = _offset_index([0, 10, 20], 0)
    assert native.offset_index_lookup(buf, 0, 100) == -1
    assert native.offset_index_lookup(memoryview(buf), 3, 15) == 1
    with pytest.raises(ValueError):
        native.offset_index_lookup(buf, 4, 15)
    with pytest.raises(ValueError):
        native.time_index_lookup(_time_index([1], 0), 2, 5)
    with pytest.raises(ValueError):
        native.offset_index_lookup(buf, -1, 5)
