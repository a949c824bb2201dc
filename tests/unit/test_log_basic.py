"""UnifiedLog append/read/roll/index/truncate behaviour against real files."""
from __future__ import annotations

import os

import pytest

from kafkapy import native
from kafkapy.log import FileRecords, TopicPartition, UnifiedLog
from kafkapy.log.log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP
from kafkapy.protocol.errors import ErrorCode, KafkaError

from test_log_helpers import make_batch, open_log, read_all, small_config

pytestmark = pytest.mark.unit


def append(log: UnifiedLog, n: int = 1, size: int = 100, epoch: int = 0, now: int = 10_000, ts=None):
    return log.append_as_leader(memoryview(make_batch([b"v" * size] * n, timestamps=ts)), epoch, now)


def test_append_read_round_trip_and_dense_offsets_across_rolls(tmp_path):
    log = open_log(tmp_path)
    infos = [append(log, n=1 + i % 4) for i in range(60)]
    assert len(log.segments) > 3, "segment.bytes=4096 must roll"
    expect = 0
    for info in infos:
        assert info.first_offset == expect
        expect = info.last_offset + 1
    assert log.log_end_offset == expect
    batches = read_all(log)
    assert [(b, l) for b, l, _ in batches] == [(i.first_offset, i.last_offset) for i in infos]
    for base, _, raw in batches:  # offsets and epoch patched, CRC still valid
        scan = native.scan_batches(raw)
        assert scan.error is None and scan.batches[0].base_offset == base
        assert scan.batches[0].partition_leader_epoch == 0
    # segment names are 20-digit base offsets matching the first batch of each
    for seg in log.segments:
        assert os.path.basename(seg.log_path) == f"{seg.base_offset:020d}.log"
        first = seg.translate_offset(seg.base_offset)
        assert first is None or first.base_offset == seg.base_offset


def test_read_limits_hw_max_bytes_and_min_one_message(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20))
    sizes = [append(log, n=2, size=200) for _ in range(5)]
    batch_size = len(make_batch([b"v" * 200] * 2))
    # max_offset (HW) = 5 => only batches wholly below offset 5: [0,1],[2,3]
    info = log.read(0, 1 << 20, max_offset=5)
    assert isinstance(info.records, FileRecords) and info.records.is_file_records
    assert len(info.records) == 2 * batch_size
    # fetching from inside a batch returns the whole batch
    info = log.read(3, 1 << 20, max_offset=10)
    data = info.records.tobytes()
    assert native.scan_batches(data).batches[0].base_offset == 2
    # max_bytes smaller than one batch: one whole batch with min_one_message, else nothing
    assert len(log.read(0, 10, max_offset=10).records) == batch_size
    assert log.read(0, 10, max_offset=10, min_one_message=False).records == b""
    # max_bytes exactly two batches and a bit: two whole batches, never a partial one
    assert len(log.read(0, 2 * batch_size + 5, max_offset=10).records) == 2 * batch_size
    # at the HW or LEO: empty
    assert log.read(10, 100).records == b""
    assert log.read(4, 1 << 20, max_offset=4).records == b""
    with pytest.raises(KafkaError) as e:
        log.read(11, 100)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert sizes[-1].last_offset == 9


def test_validation_errors(tmp_path):
    log = open_log(tmp_path, small_config(max_message_bytes=500))
    good = bytearray(make_batch([b"a" * 50]))
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(bad_crc), 0, 1)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    bad_magic = bytearray(good)
    bad_magic[16] = 1
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(bad_magic), 0, 1)
    assert e.value.code == ErrorCode.INVALID_RECORD
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(make_batch([b"x" * 600])), 0, 1)
    assert e.value.code == ErrorCode.MESSAGE_TOO_LARGE
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(bytes(good) + b"\x00\x01"), 0, 1)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(make_batch([b"c"], control=True, producer_id=1,
                                                   producer_epoch=0)), 0, 1)
    assert e.value.code == ErrorCode.INVALID_RECORD
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(make_batch([b"c"], producer_id=1, producer_epoch=0)), 0, 1)
    assert e.value.code == ErrorCode.INVALID_RECORD  # producer id without a sequence
    assert log.log_end_offset == 0 and log.active_segment.size == 0
    # the request buffer is read-only bytes: append must not need to mutate it
    info = log.append_as_leader(memoryview(bytes(good)), 0, 1)
    assert (info.first_offset, info.last_offset, info.record_count) == (0, 0, 1)


def test_log_append_time(tmp_path):
    log = open_log(tmp_path, small_config(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(memoryview(make_batch([b"a", b"b"], timestamps=[5, 6])), 3, 777_000)
    assert info.log_append_time == 777_000 and info.max_timestamp == 777_000
    b = native.scan_batches(log.read(0, 1 << 20).records.tobytes()).batches[0]
    assert b.timestamp_type == 1 and b.max_timestamp == 777_000 and b.partition_leader_epoch == 3
    create = open_log(tmp_path / "c")
    info = create.append_as_leader(memoryview(make_batch([b"a", b"b"], timestamps=[5, 9])), 3, 777_000)
    assert info.log_append_time == -1 and info.max_timestamp == 9 and info.offset_of_max_timestamp == 1


def test_offset_index_entries_and_lookup(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20, index_interval_bytes=300))
    for _ in range(40):
        append(log, n=2, size=100)
    seg = log.active_segment
    idx = seg.offset_index
    assert idx.entries > 5
    prev = -1
    for slot in range(idx.entries):
        off, pos = idx.entry(slot)
        h = seg.translate_offset(off)
        assert h.position == pos and h.last_offset == off  # entry = (batch last offset, batch start)
        assert off > prev
        prev = off
    for target in range(80):
        off, pos = idx.lookup(target)
        assert off <= target or (off, pos) == (0, 0)
        assert seg.translate_offset(target).base_offset <= target <= seg.translate_offset(target).last_offset


def test_time_lookup_and_special_targets(tmp_path):
    log = open_log(tmp_path, small_config(index_interval_bytes=0))
    for i in range(30):
        append(log, n=2, size=100, ts=[1000 + 10 * i, 1005 + 10 * i])
    assert len(log.segments) > 1
    assert log.fetch_offset_by_timestamp(0).offset == 0
    r = log.fetch_offset_by_timestamp(1100)  # batch 10 holds offsets 20,21 with ts 1100,1105
    assert (r.offset, r.timestamp) == (20, 1100)
    r = log.fetch_offset_by_timestamp(1103)
    assert (r.offset, r.timestamp) == (21, 1105)
    assert log.fetch_offset_by_timestamp(10_000) is None
    assert log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP).offset == 0
    assert log.fetch_offset_by_timestamp(LATEST_TIMESTAMP).offset == 60
    m = log.fetch_offset_by_timestamp(MAX_TIMESTAMP)
    assert (m.timestamp, m.offset) == (1295, 59)


def test_roll_on_segment_ms_and_index_full(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20, segment_ms=1000))
    append(log, ts=[1000])
    append(log, ts=[1500])
    assert len(log.segments) == 1
    append(log, ts=[2500])
    assert len(log.segments) == 2 and log.active_segment.base_offset == 2
    small = open_log(tmp_path / "s", small_config(segment_bytes=1 << 20, index_interval_bytes=0,
                                                  segment_index_bytes=48))  # 6 entries
    for _ in range(20):
        append(small)
    assert len(small.segments) > 2
    for seg in small.segments[:-1]:  # rolled segments have trimmed indexes
        assert os.path.getsize(seg.offset_index.path) == seg.offset_index.entries * 8
    assert os.path.getsize(small.active_segment.offset_index.path) == 48


def test_follower_append_keeps_offsets_and_epochs(tmp_path):
    log = open_log(tmp_path)
    data = make_batch([b"a"] * 3, base_offset=0, leader_epoch=2) + \
        make_batch([b"b"] * 2, base_offset=3, leader_epoch=5)
    info = log.append_as_follower(memoryview(data))
    assert (info.first_offset, info.last_offset, log.log_end_offset) == (0, 4, 5)
    assert log.leader_epoch_cache.entries == [(2, 0), (5, 3)]
    assert log.read(0, 1 << 20).records.tobytes() == data
    with pytest.raises(KafkaError):
        log.append_as_follower(memoryview(make_batch([b"c"], base_offset=4, leader_epoch=5)))
    # a gap (e.g. compacted leader) is accepted
    log.append_as_follower(memoryview(make_batch([b"c"], base_offset=9, leader_epoch=5)))
    assert log.log_end_offset == 10


def test_truncate_to_and_fully(tmp_path):
    log = open_log(tmp_path)
    for e in range(3):
        for _ in range(10):
            append(log, n=2, epoch=e)
    log.update_high_watermark(60)
    assert log.leader_epoch_cache.entries == [(0, 0), (1, 20), (2, 40)]
    nseg = len(log.segments)
    assert log.truncate_to(30)
    assert log.log_end_offset == 30 and log.high_watermark == 30
    assert log.leader_epoch_cache.entries == [(0, 0), (1, 20)]
    assert [b for b, _, _ in read_all(log)] == list(range(0, 30, 2))
    assert len(log.segments) <= nseg
    info = append(log, n=2, epoch=3)
    assert info.first_offset == 30
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (100, 100, 100)
    assert log.leader_epoch_cache.entries == []
    assert append(log).first_offset == 100
    log.close()
    log2 = open_log(tmp_path)
    assert (log2.log_start_offset, log2.log_end_offset) == (100, 101)


def test_flush_messages_moves_recovery_point(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20, flush_messages=5))
    for _ in range(4):
        append(log)
    assert log.recovery_point == 0
    append(log)
    assert log.recovery_point == 5 and log.unflushed_messages == 0


def test_partition_metadata_topic_id(tmp_path):
    tid = bytes(range(16))
    log = UnifiedLog(str(tmp_path / "t-0"), TopicPartition("t", 0), small_config(), topic_id=tid)
    log.close()
    text = open(tmp_path / "t-0" / "partition.metadata").read()
    assert text.startswith("version: 0\ntopic_id: ")
    again = UnifiedLog(str(tmp_path / "t-0"), TopicPartition("t", 0), small_config())
    assert again.topic_id == tid
    with pytest.raises(KafkaError):
        UnifiedLog(str(tmp_path / "t-0"), TopicPartition("t", 0), small_config(), topic_id=b"\1" * 16)


def test_max_timestamp_known_after_clean_restart(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20, index_interval_bytes=1 << 20))
    for i in range(5):
        append(log, ts=[100 + i])
    log.close()
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20), had_clean_shutdown=True)
    assert (log.active_segment.max_timestamp_so_far, log.active_segment.offset_of_max_timestamp_so_far) == (104, 4)
    assert log.fetch_offset_by_timestamp(MAX_TIMESTAMP).offset == 4


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_time_lookup_and_read_back(tmp_path, codec):
    from kafkapy.protocol.records import iter_records

    log = open_log(tmp_path, small_config(segment_bytes=1 << 20))
    for i in range(5):
        vals = [b"c%d-%d" % (i, k) for k in range(4)]
        log.append_as_leader(memoryview(make_batch(vals, compression=codec,
                                                   timestamps=[100 * i + k for k in range(4)])), 0, 1)
    r = log.fetch_offset_by_timestamp(302)  # batch 3 holds offsets 12..15 with ts 300..303
    assert (r.offset, r.timestamp) == (14, 302)
    recs = list(iter_records(log.read(0, 1 << 20).records.tobytes()))
    assert [r.offset for r in recs] == list(range(20))
    assert recs[13].value == b"c3-1"


def test_roll_on_offset_overflow_and_jitter(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20, segment_jitter_ms=500))
    log.append_as_follower(memoryview(make_batch([b"a"], base_offset=0, leader_epoch=0)))
    far = 2**31 + 10
    log.append_as_follower(memoryview(make_batch([b"b"], base_offset=far, leader_epoch=0)))
    assert [s.base_offset for s in log.segments] == [0, far]
    assert os.path.exists(os.path.join(log.dir, f"{far:020d}.log"))
    assert all(0 <= s.roll_jitter_ms < 500 for s in log.segments)
    assert log.read(far, 1 << 20).records.tobytes()[:8] == far.to_bytes(8, "big")


def test_read_reports_the_offset_after_what_it_returned(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20))
    for n in (3, 2, 4):                       # offsets 0-2, 3-4, 5-8
        append(log, n=n)
    assert log.read(0, 1 << 20, 9).next_offset == 9
    assert log.read(0, 1 << 20, 5).next_offset == 5      # stops before the batch reaching 5
    assert log.read(3, 1, 9).next_offset == 5            # one whole batch (min_one_message)
    assert log.read(9, 1 << 20, 9).next_offset == -1     # nothing returned
