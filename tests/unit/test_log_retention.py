"""Retention by time/size/log start, DeleteRecords, delayed file deletion."""
from __future__ import annotations

import os

import pytest

from kafkapy.log.retention import delete_old_segments
from kafkapy.protocol.errors import ErrorCode, KafkaError

from test_log_helpers import make_batch, open_log, read_all, small_config

pytestmark = pytest.mark.unit


def fill(log, n: int, ts0: int = 1_000, step: int = 100) -> None:
    for i in range(n):
        log.append_as_leader(memoryview(make_batch([b"x" * 200] * 2, timestamps=[ts0 + i * step] * 2)),
                             0, ts0 + i * step)


def test_retention_by_time_respects_hw_and_active_segment(tmp_path):
    log = open_log(tmp_path, small_config(retention_ms=1_000, file_delete_delay_ms=50))
    fill(log, 40)
    n = len(log.segments)
    assert n >= 4
    now = 1_000_000
    assert delete_old_segments(log, now) == 0  # HW 0: nothing is deletable
    log.update_high_watermark(log.segments[2].base_offset)
    first_doomed = log.segments[0]
    assert delete_old_segments(log, now) == 2
    assert log.log_start_offset == log.segments[0].base_offset
    assert os.path.exists(first_doomed.log_path + ".deleted")
    log.update_high_watermark(log.log_end_offset)
    assert delete_old_segments(log, now) == n - 3
    assert len(log.segments) == 1  # the active segment stays
    log.delete_pending(now + 100)
    assert not any(n.endswith(".deleted") for n in os.listdir(log.dir))


def test_retention_by_time_keeps_recent_segments(tmp_path):
    log = open_log(tmp_path, small_config(retention_ms=1_000))
    fill(log, 40, step=100)
    log.update_high_watermark(log.log_end_offset)
    newest_old = log.segments[-2].max_timestamp_so_far
    deleted = delete_old_segments(log, newest_old + 500)
    for seg in log.segments[:-1]:
        assert newest_old + 500 - seg.largest_timestamp() <= 1_000
    assert deleted >= 1


def test_retention_by_size(tmp_path):
    log = open_log(tmp_path, small_config(retention_bytes=5_000))
    fill(log, 60)
    log.update_high_watermark(log.log_end_offset)
    delete_old_segments(log, 2_000)
    assert log.size_in_bytes() <= 5_000 + log.segments[0].size
    assert log.size_in_bytes() - log.segments[0].size < 5_000
    assert read_all(log, log.log_start_offset)[0][0] == log.log_start_offset


def test_open_file_records_survive_until_delete_delay(tmp_path):
    log = open_log(tmp_path, small_config(retention_ms=0, file_delete_delay_ms=60_000))
    fill(log, 30)
    log.update_high_watermark(log.log_end_offset)
    in_flight = log.read(0, 1 << 20).records
    want = in_flight.tobytes()
    delete_old_segments(log, 10**9)
    assert log.log_start_offset > 0
    assert in_flight.tobytes() == want  # renamed, not closed
    log.delete_pending(10**9 + 60_000)
    assert in_flight.file.closed


def test_delete_records_before(tmp_path):
    log = open_log(tmp_path)
    fill(log, 40)
    log.update_high_watermark(50)
    with pytest.raises(KafkaError) as e:
        log.delete_records_before(51)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    seen = []
    log.checkpoint_listener = lambda lg: seen.append(lg.log_start_offset)
    assert log.delete_records_before(45) == 45 and seen == [45]
    assert all(s.base_offset <= 45 for s in log.segments[:1])
    assert log.segments[0].base_offset <= 45 < (log.segments[1].base_offset if len(log.segments) > 1 else 10**9)
    with pytest.raises(KafkaError) as e:
        log.read(44, 100)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert read_all(log, 45)[0][0] == 44  # the batch holding 45 starts at 44
    assert log.delete_records_before(10) == 45  # never moves backwards
