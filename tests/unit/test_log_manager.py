"""LogManager: dirs, lock, meta.properties, checkpoints, load, delete, run()."""
from __future__ import annotations

import json
import os

import pytest
import trio

from kafkapy.log import LogDirError, LogManager, TopicPartition
from kafkapy.log.checkpoint import read_offset_checkpoint

from test_log_helpers import make_batch, read_all, small_config

pytestmark = pytest.mark.unit

TP = TopicPartition("orders", 0)


def fill(log, n: int) -> None:
    for _ in range(n):
        log.append_as_leader(memoryview(make_batch([b"y" * 100] * 2)), 0, 1_000)
    log.update_high_watermark(log.log_end_offset)


def test_dirs_meta_and_clean_restart(tmp_path):
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    m = LogManager(dirs, 3, small_config(), cluster_id="clu")
    logs = [m.get_or_create_log(TopicPartition("t", p), bytes(16 * [p + 1])) for p in range(4)]
    assert sorted(m.log_dir_of.values()).count(dirs[0]) == 2  # spread by partition count
    for log in logs:
        fill(log, 10)
    m.shutdown()
    for d in dirs:
        assert json.loads(open(os.path.join(d, ".kafka_cleanshutdown")).read())["version"] == 0
        assert open(os.path.join(d, "meta.properties")).read().endswith(
            "version=0\nbroker.id=3\ncluster.id=clu\n")
    hw = read_offset_checkpoint(os.path.join(dirs[0], "replication-offset-checkpoint"))
    assert set(hw.values()) == {20}
    m2 = LogManager(dirs, 3, small_config(), cluster_id="clu")
    assert not any(os.path.exists(os.path.join(d, ".kafka_cleanshutdown")) for d in dirs)
    for p in range(4):
        log = m2.get_log(TopicPartition("t", p))
        assert (log.log_end_offset, log.high_watermark, log.topic_id) == (20, 20, bytes(16 * [p + 1]))
        assert len(read_all(log)) == 10
    with pytest.raises(LogDirError, match="lock"):
        LogManager(dirs, 3, small_config())
    m2.shutdown()
    with pytest.raises(LogDirError, match="broker.id"):
        LogManager(dirs, 4, small_config())
    with pytest.raises(LogDirError, match="Cluster ID"):
        LogManager(dirs, 3, small_config(), cluster_id="other")


def test_unclean_restart_recovers_and_keeps_data(tmp_path):
    d = str(tmp_path / "d")
    m = LogManager([d], 1, small_config())
    log = m.get_or_create_log(TP)
    fill(log, 30)
    m.write_checkpoints()
    for seg in log.segments:  # "crash": release nothing cleanly
        seg.offset_index.close_without_trim()
        seg.time_index.close_without_trim()
        seg.file.close()
    m._release_locks()
    m2 = LogManager([d], 1, small_config())
    log2 = m2.get_log(TP)
    assert log2.log_end_offset == 60 and log2.high_watermark == 60
    assert log2.recovery_point == 60
    m2.shutdown()


def test_delete_log_and_config_update(tmp_path):
    d = str(tmp_path / "d")
    m = LogManager([d], 1, small_config())
    log = m.get_or_create_log(TP)
    fill(log, 3)
    m.update_topic_config("orders", small_config(retention_ms=5))
    assert log.config.retention_ms == 5
    assert m.delete_log(TP) and m.get_log(TP) is None
    assert not os.path.exists(os.path.join(d, "orders-0"))
    pending = [n for n in os.listdir(d) if n.endswith("-delete")]
    assert len(pending) == 1 and pending[0].startswith("orders-0.")
    m.delete_pending_files(10**15)
    assert not any(n.endswith("-delete") for n in os.listdir(d))
    m.shutdown()


def test_log_start_checkpoint_written_on_delete_records(tmp_path):
    d = str(tmp_path / "d")
    m = LogManager([d], 1, small_config())
    log = m.get_or_create_log(TP)
    fill(log, 30)
    log.delete_records_before(33)
    assert read_offset_checkpoint(os.path.join(d, "log-start-offset-checkpoint")) == {TP: 33}
    m.shutdown()
    m2 = LogManager([d], 1, small_config())
    assert m2.get_log(TP).log_start_offset == 33
    m2.shutdown()


async def test_run_does_retention_flush_and_checkpoints(tmp_path):
    d = str(tmp_path / "d")
    cfg = small_config(retention_ms=0, flush_ms=0)
    m = LogManager([d], 1, cfg, retention_check_interval_ms=10, flush_check_interval_ms=10,
                   hw_checkpoint_interval_ms=10, recovery_point_checkpoint_interval_ms=10)
    log = m.get_or_create_log(TP)
    fill(log, 30)
    hw_file = os.path.join(d, "replication-offset-checkpoint")
    async with trio.open_nursery() as n:
        n.start_soon(m.run)
        with trio.fail_after(10):
            while not (len(log.segments) == 1 and log.recovery_point == log.log_end_offset
                       and read_offset_checkpoint(hw_file).get(TP) == 60):
                await trio.sleep(0.01)
        n.cancel_scope.cancel()
    assert log.log_start_offset == log.active_segment.base_offset
    m.shutdown()


def test_truncation_checkpoints_recovery_point(tmp_path):
    d = str(tmp_path / "d")
    m = LogManager([d], 1, small_config(flush_messages=1))
    log = m.get_or_create_log(TP)
    fill(log, 10)
    m.write_checkpoints()
    rp_file = os.path.join(d, "recovery-point-offset-checkpoint")
    assert read_offset_checkpoint(rp_file) == {TP: 20}
    log.truncate_to(8)
    assert read_offset_checkpoint(rp_file) == {TP: 8}  # never ahead of rewritten data
    m.shutdown()
