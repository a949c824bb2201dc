"""Aborted transactions: `.txnindex` entries, LSO, collection, rebuild on recovery."""
from __future__ import annotations

import os

import pytest

from kafkapy.log.txn_index import CONTROL_ABORT, CONTROL_COMMIT, ENTRY_SIZE, AbortedTxn
from kafkapy.protocol.records import build_batch, control_record

from test_log_helpers import make_batch, open_log, small_config

pytestmark = pytest.mark.unit


def txn(log, pid: int, seq: int, n: int = 2):
    data = make_batch([b"t%d" % pid] * n, producer_id=pid, producer_epoch=0, base_sequence=seq,
                      transactional=True)
    return log.append_as_leader(memoryview(data), 0, 1_000)


def marker(log, pid: int, kind: int):
    data = build_batch([control_record(kind, 3, 2_000)], producer_id=pid, producer_epoch=0,
                       is_transactional=True, is_control=True)
    return log.append_as_leader(memoryview(data), 0, 2_000, from_client=False)


def scenario(log) -> list[AbortedTxn]:
    log.append_as_leader(memoryview(make_batch([b"plain"])), 0, 1)      # 0
    a = txn(log, 7, 0)                                                  # 1-2
    b = txn(log, 8, 0)                                                  # 3-4
    txn(log, 7, 2)                                                      # 5-6
    abort7 = marker(log, 7, CONTROL_ABORT)                              # 7
    commit8 = marker(log, 8, CONTROL_COMMIT)                            # 8
    c = txn(log, 9, 0)                                                  # 9-10
    abort9 = marker(log, 9, CONTROL_ABORT)                              # 11
    log.update_high_watermark(log.log_end_offset)
    return [AbortedTxn(7, a.first_offset, abort7.first_offset, b.first_offset),
            AbortedTxn(9, c.first_offset, abort9.first_offset, abort9.first_offset + 1)], commit8


def test_abort_markers_indexed_and_collected(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20))
    want, _ = scenario(log)
    assert log.active_segment.txn_index.entries == want
    assert os.path.getsize(log.active_segment.txn_index.path) == 2 * ENTRY_SIZE
    assert log.collect_aborted_transactions(0, log.log_end_offset) == want
    assert log.collect_aborted_transactions(8, 11) == [want[1]]
    assert log.collect_aborted_transactions(0, 1) == []
    assert log.last_stable_offset == log.high_watermark == 12


def test_txn_index_rebuilt_by_recovery_and_truncation(tmp_path):
    cfg = small_config(segment_bytes=300)  # markers land in different segments
    log = open_log(tmp_path, cfg)
    want, _ = scenario(log)
    assert log.collect_aborted_transactions(0, 12) == want
    for seg in log.segments:  # crash, then lose every .txnindex
        seg.offset_index.close_without_trim()
        seg.time_index.close_without_trim()
        seg.txn_index.close()
        seg.file.close()
    for name in os.listdir(log.dir):
        if name.endswith(".txnindex"):
            os.unlink(os.path.join(log.dir, name))
    log = open_log(tmp_path, cfg)  # recovery point 0
    assert log.collect_aborted_transactions(0, 12) == want
    log.truncate_to(11)  # drop the second ABORT marker
    log.update_high_watermark(log.log_end_offset)
    assert log.collect_aborted_transactions(0, 12) == want[:1]
    assert log.last_stable_offset == 9  # pid 9's transaction is open again
    log.close()


def test_corrupt_txn_index_after_clean_shutdown_is_rebuilt(tmp_path):
    cfg = small_config(segment_bytes=1 << 20)
    log = open_log(tmp_path, cfg)
    want, _ = scenario(log)
    path = log.active_segment.txn_index.path
    log.close()
    with open(path, "ab") as f:
        f.write(b"\x00" * 5)
    log = open_log(tmp_path, cfg, had_clean_shutdown=True)
    assert log.collect_aborted_transactions(0, 12) == want
    assert os.path.getsize(path) == 2 * ENTRY_SIZE


def test_follower_markers_indexed(tmp_path):
    leader = open_log(tmp_path / "l", small_config(segment_bytes=1 << 20))
    want, _ = scenario(leader)
    data = leader.read(0, 1 << 20).records.tobytes()
    follower = open_log(tmp_path / "f", small_config(segment_bytes=1 << 20))
    follower.append_as_follower(memoryview(data))
    assert follower.collect_aborted_transactions(0, 12) == want


def test_malformed_control_batch_rejected(tmp_path):
    from kafkapy.protocol.errors import ErrorCode, KafkaError

    log = open_log(tmp_path)
    bad = make_batch([b"m"], producer_id=7, producer_epoch=0, transactional=True, control=True)
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(memoryview(bad), 0, 1, from_client=False)
    assert e.value.code == ErrorCode.INVALID_RECORD


def test_read_committed_includes_aborted_transactions(tmp_path):
    log = open_log(tmp_path, small_config(segment_bytes=1 << 20))
    want, _ = scenario(log)
    info = log.read(0, 1 << 20, max_offset=log.last_stable_offset, include_aborted=True)
    assert info.aborted_transactions == want
    assert log.read(0, 1 << 20).aborted_transactions is None
