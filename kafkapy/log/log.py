"""UnifiedLog: one partition directory — append, read, roll, flush, truncate.

The produce path never decodes records: native scan -> checks -> offsets patched in
place -> one pwrite to the active segment.  Loading/recovery lives in recovery.py and
retention in retention.py; both operate on this object.
"""
from __future__ import annotations

import bisect
import os
import random
import time
from typing import Callable

from kafkapy import native
from kafkapy.log.checkpoint import read_partition_metadata, write_partition_metadata
from kafkapy.log.cleaner_records import require_keys
from kafkapy.log.config import LogConfig
from kafkapy.log.epoch_cache import LeaderEpochFileCache
from kafkapy.log.list_offsets import (  # noqa: F401  (re-exported for callers)
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIERED_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    TimestampOffset,
    fetch_offset_by_timestamp,
)
from kafkapy.log.producer_state import CompletedTxn, ProducerBatch, ProducerStateManager
from kafkapy.log.records import FetchDataInfo, LogAppendInfo
from kafkapy.log.segment import LogSegment
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.log.txn_index import CONTROL_ABORT, AbortedTxn, collect_aborted, control_type
from kafkapy.protocol.errors import ErrorCode, KafkaError

_ATTR_LOG_APPEND_TIME = 0x08


def now_ms() -> int:
    return int(time.time() * 1000)


class UnexpectedAppendOffsetError(KafkaError):
    """A follower append does not start at or after the log end offset."""

    def __init__(self, message: str, first_offset: int, last_offset: int) -> None:
        super().__init__(ErrorCode.UNKNOWN_SERVER_ERROR, message)
        self.first_offset = first_offset
        self.last_offset = last_offset


class UnifiedLog:
    """The log of one partition replica (leader or follower)."""

    def __init__(self, dir_path: str, tp: TopicPartition, config: LogConfig, *,
                 recovery_point: int = 0, log_start_offset: int = 0, high_watermark: int = 0,
                 had_clean_shutdown: bool = False, topic_id: bytes | None = None,
                 now: int | None = None) -> None:
        from kafkapy.log.recovery import load_log

        self.dir = dir_path
        self.tp = tp
        self.config = config
        os.makedirs(dir_path, exist_ok=True)
        self.segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._log_end_offset = 0
        self.log_start_offset = log_start_offset
        self.recovery_point = recovery_point
        self.high_watermark = 0
        self.leader_epoch_cache = LeaderEpochFileCache(
            os.path.join(dir_path, "leader-epoch-checkpoint"), lambda: self._log_end_offset)
        self.producer_state = ProducerStateManager(dir_path)
        self.unflushed_messages = 0
        self.last_flush_ms = now_ms() if now is None else now
        self.pending_deletes: list[tuple[int, LogSegment]] = []
        # Set by LogManager: persists this dir's recovery-point and log-start
        # checkpoints when they move backwards (truncation) or log start moves.
        self.checkpoint_listener: Callable[["UnifiedLog"], None] | None = None
        self.closed = False
        self.topic_id = self._init_topic_id(topic_id)
        load_log(self, had_clean_shutdown, self.last_flush_ms)
        self.update_high_watermark(high_watermark)

    # ---- basic properties -------------------------------------------------------
    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @property
    def last_stable_offset(self) -> int:
        first_unstable = self.producer_state.first_unstable_offset()
        if first_unstable is None:
            return self.high_watermark
        return min(first_unstable, self.high_watermark)

    def size_in_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def _init_topic_id(self, topic_id: bytes | None) -> bytes | None:
        path = os.path.join(self.dir, "partition.metadata")
        stored = read_partition_metadata(path)
        if topic_id is not None and topic_id != b"\0" * 16:
            if stored is not None and stored != topic_id:
                raise KafkaError(ErrorCode.INCONSISTENT_TOPIC_ID,
                                 f"{self.tp}: partition.metadata has a different topic id")
            if stored is None:
                write_partition_metadata(path, topic_id)
            return topic_id
        return stored

    def assign_topic_id(self, topic_id: bytes) -> None:
        self.topic_id = self._init_topic_id(topic_id)

    def update_config(self, config: LogConfig) -> None:
        self.config = config

    # ---- segment bookkeeping ----------------------------------------------------
    def _add_segment(self, seg: LogSegment) -> None:
        i = bisect.bisect_left(self._bases, seg.base_offset)
        if i < len(self._bases) and self._bases[i] == seg.base_offset:
            self.segments[i] = seg
        else:
            self._bases.insert(i, seg.base_offset)
            self.segments.insert(i, seg)

    def _remove_segment(self, seg: LogSegment) -> None:
        i = self._bases.index(seg.base_offset)
        del self._bases[i]
        del self.segments[i]

    def roll_jitter(self) -> int:
        """Random segment.ms reduction per segment so partitions do not roll together."""
        return random.randrange(self.config.segment_jitter_ms) if self.config.segment_jitter_ms > 0 else 0

    def _new_segment(self, base_offset: int, now: int) -> LogSegment:
        jitter = self.roll_jitter()
        for suffix in (".log", ".index", ".timeindex"):
            path = os.path.join(self.dir, f"{base_offset:020d}{suffix}")
            if os.path.exists(path) and os.path.getsize(path) > 0 and suffix == ".log":
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"segment {path} already exists")
        return LogSegment(self.dir, base_offset, self.config.index_interval_bytes,
                          self.config.segment_index_bytes, now, jitter, preallocate=True)

    def _segment_floor_index(self, offset: int) -> int:
        return bisect.bisect_right(self._bases, offset) - 1

    # ---- append -----------------------------------------------------------------
    def append_as_leader(self, records: memoryview, leader_epoch: int, now_ms: int,
                         from_client: bool = True) -> LogAppendInfo:
        """Validate, assign offsets, stamp epoch (and LogAppendTime), write.

        `from_client=False` is for coordinator-written data (transaction markers),
        which may carry control batches and skips the sequence checks."""
        self._check_open()
        records = memoryview(records)
        scan = native.scan_batches(records)
        if scan.error is not None:
            raise KafkaError(scan.error, scan.error_message)
        if scan.valid_bytes != len(records):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "trailing bytes after the last batch")
        batches = scan.batches
        if not batches:
            return LogAppendInfo(-1, -1, -1, -1, -1, self.log_start_offset, 0)
        cfg = self.config
        if from_client and cfg.compact_enabled:
            require_keys(records, batches)
        log_append_time = cfg.log_append_time
        nxt = self._log_end_offset
        first_offset = nxt
        prod: list[ProducerBatch] = []
        entries: list[tuple[int, int, int, int]] = []
        max_ts, offset_of_max, count = -1, first_offset, 0
        for b in batches:
            if b.size > cfg.max_message_bytes:
                raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE,
                                 f"batch of {b.size} bytes exceeds max.message.bytes={cfg.max_message_bytes}")
            if from_client:
                if b.is_control:
                    raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
                if b.record_count <= 0:
                    raise KafkaError(ErrorCode.INVALID_RECORD, f"batch reports {b.record_count} records")
                if b.producer_id >= 0 and b.base_sequence < 0:
                    raise KafkaError(ErrorCode.INVALID_RECORD, "idempotent batch without a sequence")
            last = nxt + b.last_offset_delta
            ts = now_ms if log_append_time else b.max_timestamp
            if ts > max_ts:
                max_ts, offset_of_max = ts, last
            if b.is_control and control_type(records, b.position) not in (0, 1):
                raise KafkaError(ErrorCode.INVALID_RECORD, "malformed control record")
            if b.producer_id >= 0:
                is_abort = b.is_control and control_type(records, b.position) == CONTROL_ABORT
                prod.append(ProducerBatch(b.producer_id, b.producer_epoch, b.base_sequence, nxt, last,
                                          ts, b.is_transactional, b.is_control, is_abort))
            entries.append((b.position, b.size, last, ts))
            count += b.record_count
            nxt = last + 1
        updates, dup, completed = self.producer_state.prepare(prod, from_client)
        if dup is not None:
            # The original batch's timestamp is its LogAppendTime on such topics.
            return LogAppendInfo(dup.first_offset, dup.last_offset, dup.timestamp, dup.last_offset,
                                 dup.timestamp if log_append_time else -1, self.log_start_offset,
                                 dup.offset_delta + 1, duplicate=True)
        buf = records if not records.readonly else bytearray(records)
        native.assign_offsets(buf, first_offset, leader_epoch)
        if log_append_time:
            native.set_log_append_time(buf, now_ms)
        if leader_epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(leader_epoch, first_offset)
        self._write(buf, entries, first_offset, nxt - 1, max_ts, now_ms)
        self.producer_state.commit(updates, nxt)
        for txn in completed:
            self._index_completed_txn(txn)
        self._after_append(nxt, count, now_ms)
        return LogAppendInfo(first_offset, nxt - 1, max_ts, offset_of_max,
                             now_ms if log_append_time else -1, self.log_start_offset, count,
                             valid_bytes=scan.valid_bytes)

    def append_as_follower(self, records: memoryview, now: int | None = None) -> LogAppendInfo:
        """Append replicated batches as the leader wrote them (offsets and epochs kept)."""
        self._check_open()
        t = now_ms() if now is None else now
        scan = native.scan_batches(records, allow_gaps=True)
        if scan.error is not None:
            raise KafkaError(scan.error, scan.error_message)
        if scan.valid_bytes != len(records):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "trailing bytes after the last batch")
        batches = scan.batches
        if not batches:
            return LogAppendInfo(-1, -1, -1, -1, -1, self.log_start_offset, 0)
        first_offset, last_offset = batches[0].base_offset, batches[-1].last_offset
        if first_offset < self._log_end_offset:
            raise UnexpectedAppendOffsetError(
                f"{self.tp}: follower append at {first_offset} below log end {self._log_end_offset}",
                first_offset, last_offset)
        entries: list[tuple[int, int, int, int]] = []
        prev = self._log_end_offset - 1
        max_ts, offset_of_max, count = -1, first_offset, 0
        for b in batches:
            if b.base_offset <= prev:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{self.tp}: offsets not increasing")
            # No max.message.bytes check: the leader accepted it, and a replica that
            # refused would stall replication forever (Kafka's ignoreRecordSize).
            prev = b.last_offset
            if b.max_timestamp > max_ts:
                max_ts, offset_of_max = b.max_timestamp, b.last_offset
            entries.append((b.position, b.size, b.last_offset, b.max_timestamp))
            count += b.record_count
        self._write(records, entries, first_offset, last_offset, max_ts, t)
        cache = self.leader_epoch_cache
        for b in batches:
            if b.partition_leader_epoch > cache.latest_epoch:
                cache.assign(b.partition_leader_epoch, b.base_offset)
            is_abort = b.is_control and control_type(records, b.position) == CONTROL_ABORT
            done = self.producer_state.update_from_batch(ProducerBatch(
                b.producer_id, b.producer_epoch, b.base_sequence, b.base_offset, b.last_offset,
                b.max_timestamp, b.is_transactional, b.is_control, is_abort))
            if done is not None:
                self._index_completed_txn(done)
        self._after_append(last_offset + 1, count, t)
        lat = max_ts if batches[0].attributes & _ATTR_LOG_APPEND_TIME else -1
        return LogAppendInfo(first_offset, last_offset, max_ts, offset_of_max, lat,
                             self.log_start_offset, count, valid_bytes=scan.valid_bytes)

    def _write(self, data, entries: list[tuple[int, int, int, int]], first_offset: int,
               last_offset: int, max_ts: int, now: int) -> None:
        seg = self.active_segment
        try:
            if seg.should_roll(len(data), max_ts, last_offset, now, self.config.segment_bytes,
                               self.config.segment_ms) or not seg.can_hold_offset(first_offset):
                seg = self.roll(now, first_offset)
            seg.append(data, entries)
        except OSError as exc:
            # Nothing was acknowledged: the segment size only moves after a whole write.
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self.tp}: {exc}") from exc

    def _index_completed_txn(self, txn: CompletedTxn) -> None:
        """Aborted transactions go to the `.txnindex` of the segment holding the marker."""
        if txn.is_aborted:
            lso = self.producer_state.last_stable_offset_after(txn)
            self.active_segment.txn_index.append(
                AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset, lso))

    def _after_append(self, next_offset: int, count: int, now: int) -> None:
        self._log_end_offset = next_offset
        self.unflushed_messages += count
        if self.unflushed_messages >= self.config.flush_messages:
            self.flush(now=now)

    def _notify_checkpoint(self) -> None:
        if self.checkpoint_listener is not None:
            self.checkpoint_listener(self)

    def _check_open(self) -> None:
        if self.closed:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"log {self.tp} is closed")

    # ---- read -------------------------------------------------------------------
    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_message: bool = True, include_aborted: bool = False) -> FetchDataInfo:
        """Whole batches from `offset`, only those wholly below `max_offset` (HW for
        consumers, LSO for read_committed, LEO for followers), within `max_bytes`
        (one whole batch anyway when min_one_message).  `include_aborted` fills
        `aborted_transactions` for read_committed fetches."""
        self._check_open()
        leo = self._log_end_offset
        if offset > leo or offset < self.log_start_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"{self.tp}: offset {offset} outside [{self.log_start_offset}, {leo}]")
        limit = leo if max_offset is None else min(max_offset, leo)
        if offset >= limit:
            return FetchDataInfo(offset, b"")
        i = max(self._segment_floor_index(offset), 0)
        for seg in self.segments[i:]:
            info = seg.read(offset, max_bytes, limit, min_one_message)
            if info is not None:
                if include_aborted and info.records:
                    info.aborted_transactions = self.collect_aborted_transactions(offset, limit)
                return info
        return FetchDataInfo(offset, b"")

    # ---- roll / flush -----------------------------------------------------------
    def roll(self, now: int | None = None, expected_next_offset: int | None = None) -> LogSegment:
        """Start a new active segment at the log end offset; the old one is trimmed,
        snapshotted (producer state) and fsynced."""
        self._check_open()
        t = now_ms() if now is None else now
        new_base = max(self._log_end_offset, expected_next_offset or 0)
        old = self.active_segment
        if old.base_offset == new_base and old.size == 0:
            return old
        # An empty old segment (truncated mid-batch) stays, as in Kafka: reads skip it.
        old.on_become_inactive()
        self.producer_state.take_snapshot(new_base)
        seg = self._new_segment(new_base, t)
        self._add_segment(seg)
        self.flush(new_base, now=t)
        return seg

    def flush(self, offset: int | None = None, now: int | None = None) -> None:
        """fsync every segment holding data below `offset` (default LEO) and move the
        recovery point there."""
        upto = self._log_end_offset if offset is None else offset
        if upto <= self.recovery_point:
            return
        i = max(self._segment_floor_index(self.recovery_point), 0)
        for seg in self.segments[i:]:
            if seg.base_offset >= upto:
                break
            seg.flush()
        self.recovery_point = upto
        if upto >= self._log_end_offset:
            self.unflushed_messages = 0
        self.last_flush_ms = now_ms() if now is None else now

    # ---- high watermark / log start --------------------------------------------
    def update_high_watermark(self, offset: int) -> int:
        """Set the HW, clamped to [log_start_offset, log_end_offset]; returns it."""
        self.high_watermark = min(max(offset, self.log_start_offset), self._log_end_offset)
        return self.high_watermark

    def maybe_increment_log_start_offset(self, offset: int) -> bool:
        if offset <= self.log_start_offset:
            return False
        self.log_start_offset = offset
        self.leader_epoch_cache.truncate_from_start(offset)
        self.producer_state.delete_snapshots_outside(offset, self._log_end_offset)
        if self.recovery_point < offset:
            self.recovery_point = offset
        self._notify_checkpoint()
        return True

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset to `offset` (<= HW)."""
        self._check_open()
        if offset > self.high_watermark or offset < 0:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"{self.tp}: cannot delete before {offset}, high watermark is {self.high_watermark}")
        self.maybe_increment_log_start_offset(offset)
        from kafkapy.log.retention import delete_segments_below_log_start

        delete_segments_below_log_start(self, now_ms())
        return self.log_start_offset

    # ---- truncation -------------------------------------------------------------
    def truncate_to(self, target: int) -> bool:
        """Remove every batch holding an offset >= `target` (follower divergence).

        The LEO becomes the end of the remaining data (= `target` when it is a batch
        boundary, as truncation points always are in replication).  Kafka sets it to
        `target` even mid-batch and then derives a smaller LEO after a restart; here
        it is the same before and after a restart."""
        self._check_open()
        if target < 0:
            raise ValueError("cannot truncate to a negative offset")
        if target >= self._log_end_offset:
            return False
        if self.segments[0].base_offset > target:
            self.truncate_fully_and_start_at(target)
            return True
        t = now_ms()
        for seg in [s for s in self.segments if s.base_offset > target]:
            self._retire_segment(seg, t)
        active = self.active_segment
        active.truncate_to(target)
        active.offset_index.resize(active.offset_index.max_index_size)
        active.time_index.resize(active.time_index.max_index_size)
        leo = max(active.read_next_offset(), self.log_start_offset)
        self._log_end_offset = leo
        self.leader_epoch_cache.truncate_from_end(leo)
        self.recovery_point = min(self.recovery_point, leo)
        self.high_watermark = min(self.high_watermark, leo)
        from kafkapy.log.recovery import rebuild_producer_state

        self.producer_state.delete_snapshots_outside(self.log_start_offset, leo)
        rebuild_producer_state(self)
        self._notify_checkpoint()
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment and restart the log empty at `offset`."""
        self._check_open()
        t = now_ms()
        for seg in list(self.segments):
            self._retire_segment(seg, t)
        self._add_segment(self._new_segment(offset, t))
        self._log_end_offset = offset
        self.leader_epoch_cache.clear_and_flush()
        self.producer_state.clear()
        self.producer_state.map_end_offset = offset
        self.producer_state.delete_all_snapshots()
        self.log_start_offset = offset
        self.recovery_point = offset
        self.high_watermark = offset
        self._notify_checkpoint()

    def _retire_segment(self, seg: LogSegment, now: int) -> None:
        """Unlink from the log now; rename `.deleted`; remove after file.delete.delay.ms
        so FileRecords already handed to the network stay readable."""
        self._remove_segment(seg)
        seg.rename_to_deleted()
        self.pending_deletes.append((now + self.config.file_delete_delay_ms, seg))

    def delete_pending(self, now: int, force: bool = False) -> int:
        """Remove `.deleted` segments whose delay passed; returns how many."""
        keep, done = [], 0
        for deadline, seg in self.pending_deletes:
            if force or deadline <= now:
                seg.delete_files()
                done += 1
            else:
                keep.append((deadline, seg))
        self.pending_deletes = keep
        return done

    # ---- ListOffsets / read_committed -----------------------------------------
    def fetch_offset_by_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """Earliest offset with timestamp >= `timestamp`, or the special targets
        -2 earliest, -1 latest, -3 max timestamp, -4 earliest local."""
        return fetch_offset_by_timestamp(self, timestamp)

    def collect_aborted_transactions(self, fetch_offset: int, upper_offset: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_offset) for a
        read_committed fetch (upper_offset: the LSO, or the end of the fetched data)."""
        i = max(self._segment_floor_index(fetch_offset), 0)
        return collect_aborted((s.txn_index for s in self.segments[i:]), fetch_offset, upper_offset)

    # ---- close ------------------------------------------------------------------
    def close(self) -> None:
        """Flush, snapshot producer state at the LEO, trim indexes, close files."""
        if self.closed:
            return
        self.flush()
        self.producer_state.take_snapshot(self._log_end_offset)
        self.producer_state.delete_snapshots_outside(self.log_start_offset, self._log_end_offset)
        for seg in self.segments:
            seg.close()
        self.delete_pending(0, force=True)
        self.closed = True

    def close_files_without_flush(self) -> None:
        """Release handles without flushing (used when the directory is being deleted)."""
        for seg in self.segments:
            seg.close()
        self.delete_pending(0, force=True)
        self.closed = True
