"""Idempotent producer rules (duplicates, sequences, epochs) and snapshot files."""
from __future__ import annotations

import os
import struct

import pytest

from kafkapy import native
from kafkapy.log.producer_state import (
    INT32_MAX,
    ProducerBatch,
    ProducerStateManager,
    decode_snapshot,
    increment_seq,
)
from kafkapy.log.txn_index import CONTROL_COMMIT
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import build_batch, control_record

from test_log_helpers import make_batch, open_log, read_all

pytestmark = pytest.mark.unit

PID = 4242


def produce(log, seq: int, n: int = 1, epoch: int = 0, pid: int = PID, txn: bool = False):
    data = make_batch([b"r%d" % i for i in range(n)], producer_id=pid, producer_epoch=epoch,
                      base_sequence=seq, transactional=txn)
    return log.append_as_leader(memoryview(data), 0, 5_000)


def test_duplicates_return_original_offsets_without_writing(tmp_path):
    log = open_log(tmp_path)
    first = [produce(log, seq, n=2) for seq in range(0, 12, 2)]  # 6 batches
    size = log.size_in_bytes()
    # the last 5 batches are cached: each retry is answered with its original offsets
    for orig, seq in zip(first[1:], range(2, 12, 2)):
        dup = produce(log, seq, n=2)
        assert dup.duplicate and (dup.first_offset, dup.last_offset) == (orig.first_offset, orig.last_offset)
    assert log.size_in_bytes() == size and log.log_end_offset == 12
    # the 6th-newest batch fell out of the cache: a retry of it is out of order
    with pytest.raises(KafkaError) as e:
        produce(log, 0, n=2)
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_out_of_order_and_epoch_rules(tmp_path):
    log = open_log(tmp_path)
    produce(log, 0)
    with pytest.raises(KafkaError) as e:
        produce(log, 2)  # gap
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    produce(log, 1)
    with pytest.raises(KafkaError) as e:
        produce(log, 5, epoch=1)  # a new epoch must start at sequence 0
    assert e.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    produce(log, 0, epoch=1)
    with pytest.raises(KafkaError) as e:
        produce(log, 2, epoch=0)  # fenced
    assert e.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert log.log_end_offset == 3
    # an unknown producer may start at any sequence
    assert not produce(log, 777, pid=99).duplicate


def test_sequence_wraps_at_int32_max(tmp_path):
    log = open_log(tmp_path)
    produce(log, INT32_MAX - 1, n=2)  # sequences MAX-1, MAX
    assert log.producer_state.producers[PID].last_seq == INT32_MAX
    info = produce(log, 0, n=3)
    assert not info.duplicate and info.first_offset == 2
    assert increment_seq(INT32_MAX - 1, 3) == 1
    dup = produce(log, INT32_MAX - 1, n=2)
    assert dup.duplicate and dup.first_offset == 0


def test_batch_crossing_wrap_is_a_duplicate_on_retry(tmp_path):
    log = open_log(tmp_path)
    produce(log, INT32_MAX - 1, n=4)  # MAX-1, MAX, 0, 1
    assert log.producer_state.producers[PID].last_seq == 1
    assert produce(log, INT32_MAX - 1, n=4).duplicate
    assert not produce(log, 2).duplicate


def test_snapshot_round_trip_and_format(tmp_path):
    psm = ProducerStateManager(str(tmp_path))
    psm.update_from_batch(ProducerBatch(1, 3, 10, 0, 4, 111))
    psm.update_from_batch(ProducerBatch(2, 0, 0, 5, 5, 222, is_transactional=True))
    psm.update_from_batch(ProducerBatch(-1, -1, -1, 6, 9, 333))
    psm.take_snapshot()
    path = tmp_path / f"{10:020d}.snapshot"
    raw = path.read_bytes()
    version, crc, count = struct.unpack_from(">hIi", raw)
    assert (version, count) == (1, 2) and crc == native.crc32c(raw[6:])
    assert len(raw) == 10 + 2 * 46
    other = ProducerStateManager(str(tmp_path))
    assert other.load_snapshot(10)
    e1, e2 = other.producers[1], other.producers[2]
    assert (e1.producer_epoch, e1.last_seq, e1.last_data_offset, e1.batches[-1].offset_delta) == (3, 14, 4, 4)
    assert e2.current_txn_first_offset == 5 and e2.last_timestamp == 222
    assert other.first_unstable_offset() == 5
    # corrupt snapshots are rejected and removed
    bad = bytearray(raw)
    bad[-1] ^= 1
    with pytest.raises(ValueError):
        decode_snapshot(bytes(bad))
    path.write_bytes(bytes(bad))
    assert not other.load_snapshot(10) and not path.exists()


def test_producer_state_survives_restart(tmp_path):
    log = open_log(tmp_path)
    for seq in range(0, 30, 3):
        produce(log, seq, n=3)
    log.close()  # snapshot at the LEO
    assert os.path.exists(tmp_path / "topic-0" / f"{30:020d}.snapshot")
    log = open_log(tmp_path, had_clean_shutdown=True)
    assert produce(log, 27, n=3).duplicate
    with pytest.raises(KafkaError):
        produce(log, 31)
    assert produce(log, 30).first_offset == 30


def test_producer_state_rebuilt_from_log_without_snapshot(tmp_path):
    log = open_log(tmp_path)
    for seq in range(0, 20, 2):
        produce(log, seq, n=2)
    log.close()
    for name in os.listdir(tmp_path / "topic-0"):
        if name.endswith(".snapshot"):
            os.unlink(tmp_path / "topic-0" / name)
    log = open_log(tmp_path)
    assert log.producer_state.producers[PID].last_seq == 19
    assert produce(log, 18, n=2).duplicate
    assert len(read_all(log)) == 10


def test_transactional_batches_hold_back_lso(tmp_path):
    log = open_log(tmp_path)
    produce(log, 0, n=2)
    produce(log, 0, n=2, pid=7, txn=True)
    produce(log, 2, n=2)
    log.update_high_watermark(log.log_end_offset)
    assert log.high_watermark == 6 and log.last_stable_offset == 2
    marker = build_batch([control_record(CONTROL_COMMIT, 0, 6_000)], producer_id=7, producer_epoch=0,
                         is_transactional=True, is_control=True)
    log.append_as_leader(memoryview(marker), 0, 6_000, from_client=False)
    log.update_high_watermark(log.log_end_offset)
    assert log.last_stable_offset == 7


def test_duplicate_on_log_append_time_topic_returns_original_time(tmp_path):
    from test_log_helpers import small_config

    log = open_log(tmp_path, small_config(message_timestamp_type="LogAppendTime"))
    data = make_batch([b"a"], producer_id=PID, producer_epoch=0, base_sequence=0)
    first = log.append_as_leader(memoryview(data), 0, 50_000)
    dup = log.append_as_leader(memoryview(data), 0, 90_000)
    assert dup.duplicate and dup.log_append_time == first.log_append_time == 50_000
