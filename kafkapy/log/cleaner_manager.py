"""LogCleaner: the background compaction of every log whose cleanup.policy has
"compact" (Kafka's LogCleaner + LogCleanerManager), including __consumer_offsets.

Each pass picks the filthiest cleanable log (cleaner.py decides), builds the offset map
and rewrites its segments group by group in a worker thread (cleaner_edge.py), swapping
each cleaned group in on the trio thread, then records the new first dirty offset in
`cleaner-offset-checkpoint` (Kafka's file and format) of the log's directory.  With
nothing to clean it sleeps log.cleaner.backoff.ms.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import attrs
import trio

from kafkapy.log.checkpoint import CheckpointError, read_offset_checkpoint, write_offset_checkpoint
from kafkapy.log.cleaner import (
    CleanerConfig,
    LogToClean,
    OffsetMap,
    SegmentStat,
    choose_filthiest,
    group_segments_by_size,
    log_to_clean,
)
from kafkapy.log.cleaner_edge import (
    CleaningAborted,
    CleanStats,
    SourceSegment,
    Throttler,
    CLEANED,
    build_offset_map,
    clean_group,
    discard,
    swap_in,
)
from kafkapy.log.log import UnifiedLog, now_ms
from kafkapy.log.records import read_header
from kafkapy.log.topic_partition import TopicPartition

if TYPE_CHECKING:
    from kafkapy.log.manager import LogManager

CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
logger = logging.getLogger(__name__)


@attrs.define(slots=True)
class CleanResult:
    """What one cleaning pass of one log did (kept for tests, tools and the benchmark)."""

    tp: TopicPartition
    first_dirty_offset: int
    end_offset: int
    groups: int
    swapped: int
    stats: CleanStats
    elapsed_s: float
    aborted: bool = False


def segment_stats(log: UnifiedLog, with_first_batch_ts: bool) -> list[SegmentStat]:
    """The decision inputs of `log`'s segments (trio thread; one pread per segment at
    most, only when max.compaction.lag.ms is set)."""
    out = []
    segs = log.segments
    for i, seg in enumerate(segs):
        first_ts = -1
        if with_first_batch_ts and i + 1 < len(segs):
            h = read_header(seg.fd, 0, seg.size)
            first_ts = h.max_timestamp if h is not None else -1
        nxt = segs[i + 1].base_offset if i + 1 < len(segs) else log.log_end_offset
        out.append(SegmentStat(seg.base_offset, seg.size, seg.largest_timestamp(), first_ts, nxt,
                               seg.offset_index.size_bytes, seg.time_index.size_bytes))
    return out


class _PassAbort:
    """Stop flag of one pass: set when its task is cancelled or the cleaner shuts down."""

    __slots__ = ("_mine", "_global")

    def __init__(self, global_flag: threading.Event) -> None:
        self._mine = threading.Event()
        self._global = global_flag

    def set(self) -> None:
        self._mine.set()

    def is_set(self) -> bool:
        return self._mine.is_set() or self._global.is_set()


def _swap_unless_aborted(log: UnifiedLog, cleaned, abort: _PassAbort) -> bool:
    """Trio thread: swap the group in, unless the pass was abandoned meanwhile."""
    if abort.is_set():
        discard(cleaned.segment, CLEANED)
        return False
    return swap_in(log, cleaned, now_ms())


class LogCleaner:
    """Compacts the compacted logs of one LogManager; all state lives on the trio thread."""

    def __init__(self, log_manager: "LogManager", config: CleanerConfig) -> None:
        self.log_manager = log_manager
        self.config = config
        self.checkpoints: dict[TopicPartition, int] = {}
        for d in log_manager.log_dirs:
            try:
                self.checkpoints.update(read_offset_checkpoint(os.path.join(d, CLEANER_CHECKPOINT)))
            except CheckpointError:
                logger.warning("%s: unreadable %s; every compacted log there is dirty again",
                               d, CLEANER_CHECKPOINT)
        self.latest_delete_horizon: dict[TopicPartition, int] = {}
        self.in_progress: set[TopicPartition] = set()
        self.results: list[CleanResult] = []
        self._abort = threading.Event()
        self._wakeup = trio.Event()

    # ---- checkpoint ----------------------------------------------------------------
    def write_checkpoint(self, d: str) -> None:
        lm = self.log_manager
        offsets = {tp: off for tp, off in self.checkpoints.items()
                   if tp in lm.logs and lm.log_dir_of[tp] == d}
        write_offset_checkpoint(os.path.join(d, CLEANER_CHECKPOINT), offsets)

    def on_log_truncated(self, tp: TopicPartition, log_end_offset: int) -> None:
        """Data at and after `log_end_offset` is gone: what comes there later is dirty."""
        off = self.checkpoints.get(tp)
        if off is not None and off > log_end_offset:
            self.checkpoints[tp] = log_end_offset
            d = self.log_manager.log_dir_of.get(tp)
            if d is not None:
                self.write_checkpoint(d)

    def forget(self, tp: TopicPartition, log_dir: str) -> None:
        """The log is deleted: a topic created again with its name starts all dirty."""
        self.latest_delete_horizon.pop(tp, None)
        if self.checkpoints.pop(tp, None) is not None:
            self.write_checkpoint(log_dir)

    # ---- selection -----------------------------------------------------------------
    def log_to_clean(self, tp: TopicPartition, log: UnifiedLog, now: int) -> LogToClean:
        cfg = log.config
        checkpointed = self.checkpoints.get(tp)
        if checkpointed is not None and checkpointed > log.log_end_offset:
            del self.checkpoints[tp]  # truncated or recreated: all of it is dirty again
            checkpointed = None
        stats = segment_stats(log, cfg.max_compaction_lag_ms < 2**63 - 1)
        return log_to_clean(tp, stats, checkpointed, log.log_start_offset, log.log_end_offset,
                            log.last_stable_offset, now, cfg.min_compaction_lag_ms,
                            cfg.max_compaction_lag_ms)

    def grab_filthiest(self, now: int) -> tuple[UnifiedLog, LogToClean] | None:
        """The dirtiest cleanable compacted log; failing that, one whose tombstones'
        delete horizon has passed (so they go away even on an idle topic)."""
        candidates: list[tuple[LogToClean, float]] = []
        logs: dict[TopicPartition, UnifiedLog] = {}
        expired: tuple[UnifiedLog, LogToClean] | None = None
        for tp, log in list(self.log_manager.logs.items()):
            if tp in self.in_progress or log.closed or not log.config.compact_enabled:
                continue
            ltc = self.log_to_clean(tp, log, now)
            logs[tp] = log
            candidates.append((ltc, log.config.min_cleanable_dirty_ratio))
            horizon = self.latest_delete_horizon.get(tp, -1)
            if 0 <= horizon <= now and ltc.first_uncleanable_offset > log.segments[0].base_offset:
                expired = (log, ltc)
        best = choose_filthiest(candidates)
        return (logs[best.name], best) if best is not None else expired

    # ---- cleaning ------------------------------------------------------------------
    async def clean_log(self, log: UnifiedLog, ltc: LogToClean, now: int | None = None) -> CleanResult:
        """One pass over `log` (Kafka's Cleaner.doClean).  The map and each group's
        rewrite run in one worker thread; each group is swapped in on the trio thread as
        soon as it is written, and the checkpoint moves only when every group was."""
        tp = log.tp
        t0 = time.monotonic()
        now = now_ms() if now is None else now
        if log.closed:
            return self._record(CleanResult(tp, ltc.first_dirty_offset, -1, 0, 0, CleanStats(),
                                            0.0, True))
        upper = ltc.first_uncleanable_offset
        segs = log.segments
        sources = [SourceSegment.capture(s) for s in segs[:-1] if s.base_offset < upper]
        bounds = [s.base_offset for s in segs[1:len(sources) + 1]]
        last_batch = {pid: e.last_data_offset for pid, e in log.producer_state.producers.items()
                      if e.last_data_offset >= 0}
        stats = CleanStats()
        abort = _PassAbort(self._abort)
        token = trio.lowlevel.current_trio_token()
        self.in_progress.add(tp)
        try:
            end, groups, swapped = await trio.to_thread.run_sync(
                self._clean_in_thread, log, ltc, sources, bounds, last_batch, now, stats, abort,
                token, abandon_on_cancel=True)
        except CleaningAborted as exc:
            logger.info("%s: cleaning abandoned: %s", tp, exc)
            return self._record(CleanResult(tp, ltc.first_dirty_offset, -1, 0, 0, stats,
                                            time.monotonic() - t0, True))
        except Exception as exc:
            abort.set()
            if log.closed:  # deleted or shut down under the pass (its dir may be gone)
                logger.info("%s: cleaning abandoned, the log was closed: %s", tp, exc)
                return self._record(CleanResult(tp, ltc.first_dirty_offset, -1, 0, 0, stats,
                                                time.monotonic() - t0, True))
            raise
        except BaseException:
            abort.set()  # cancelled: the abandoned thread stops at its next batch
            raise
        finally:
            self.in_progress.discard(tp)
        if swapped < groups:
            logger.info("%s: log changed while cleaning; abandoning this pass", tp)
            return self._record(CleanResult(tp, ltc.first_dirty_offset, end, groups, swapped,
                                            stats, time.monotonic() - t0, True))
        self.checkpoints[tp] = end
        self.write_checkpoint(self.log_manager.log_dir_of.get(tp, os.path.dirname(log.dir)))
        # Only a future horizon can make the log worth another pass on its own (tombstones
        # still kept past an expired horizon lie beyond the map; a normal pass takes them).
        horizon = stats.max_delete_horizon_ms
        self.latest_delete_horizon[tp] = horizon if horizon > now else -1
        result = CleanResult(tp, ltc.first_dirty_offset, end, groups, swapped, stats,
                             time.monotonic() - t0)
        logger.info("%s: cleaned up to offset %d (dirty from %d, %d bytes mapped) in %d "
                    "group(s): %d -> %d bytes, %d of %d records kept, %.2fs", tp, end,
                    ltc.first_dirty_offset, stats.dirty_bytes, groups, stats.bytes_read,
                    stats.bytes_written, stats.records_retained, stats.records_read,
                    result.elapsed_s)
        return self._record(result)

    def _clean_in_thread(self, log: UnifiedLog, ltc: LogToClean, sources: list[SourceSegment],
                         bounds: list[int], last_batch: dict[int, int], now: int,
                         stats: CleanStats, abort: "_PassAbort",
                         token: trio.lowlevel.TrioToken) -> tuple[int, int, int]:
        """Worker thread: map, then rewrite group by group; owns (and closes) the fds."""
        cfg = log.config
        io = self.config.io_buffer_size
        throttler = Throttler(self.config.max_io_bytes_per_second)
        offset_map = OffsetMap(self.config.offset_map_slots)
        upper = ltc.first_uncleanable_offset
        try:
            dirty = [s for s, nxt in zip(sources, bounds) if nxt > ltc.first_dirty_offset]
            end = build_offset_map(dirty, ltc.first_dirty_offset, upper, offset_map, io, abort,
                                   stats, throttler)
            chosen = [(s, nxt) for s, nxt in zip(sources, bounds) if s.base_offset < end]
            by_base = {s.base_offset: s for s, _ in chosen}
            next_base = dict(zip((s.base_offset for s in sources), bounds))
            groups = group_segments_by_size(
                [SegmentStat(s.base_offset, s.size, next_offset=nxt,
                             index_bytes=s.segment.offset_index.size_bytes,
                             time_index_bytes=s.segment.time_index.size_bytes) for s, nxt in chosen],
                cfg.segment_bytes, cfg.segment_index_bytes, upper)
            swapped = 0
            for group in groups:
                cleaned = clean_group(log.dir, [by_base[g.base_offset] for g in group], offset_map,
                                      last_batch, now, cfg.delete_retention_ms,
                                      cfg.index_interval_bytes, cfg.segment_index_bytes, io, abort,
                                      stats, throttler, next_base[group[-1].base_offset])
                try:
                    ok = trio.from_thread.run_sync(_swap_unless_aborted, log, cleaned, abort,
                                                   trio_token=token)
                except BaseException:
                    discard(cleaned.segment, CLEANED)
                    raise CleaningAborted("the broker is stopping") from None
                if not ok:
                    break
                swapped += 1
            return end, len(groups), swapped
        finally:
            for s in sources:
                s.close()

    def _record(self, result: CleanResult) -> CleanResult:
        self.results.append(result)
        del self.results[:-100]
        return result

    async def clean_filthiest(self) -> CleanResult | None:
        """Clean the filthiest log once; None when nothing is cleanable."""
        now = now_ms()
        chosen = self.grab_filthiest(now)
        if chosen is None:
            return None
        log, ltc = chosen
        return await self.clean_log(log, ltc, now)

    def wakeup(self) -> None:
        """Start the next pass now instead of after the backoff (tools and tests)."""
        self._wakeup.set()

    async def _worker(self, n: int) -> None:
        backoff = self.config.backoff_ms / 1000
        while True:
            try:
                result = await self.clean_filthiest()
            except trio.Cancelled:
                raise
            except Exception:
                # Kafka marks the partition uncleanable; here the pass is retried after
                # the backoff, and the log stays readable because nothing was swapped.
                logger.exception("log cleaner %d failed", n)
                result = None
            if result is None or result.aborted:
                with trio.move_on_after(backoff):
                    await self._wakeup.wait()
                self._wakeup = trio.Event()
            else:
                await trio.sleep(0)

    async def run(self) -> None:
        """log.cleaner.threads workers until cancelled."""
        if not self.config.enable_cleaner or self.config.num_threads <= 0:
            return
        logger.info("Starting the log cleaner (%d thread(s))", self.config.num_threads)
        try:
            async with trio.open_nursery() as nursery:
                for n in range(self.config.num_threads):
                    nursery.start_soon(self._worker, n)
        finally:
            self._abort.set()

    def shutdown(self) -> None:
        """Stop any worker thread at its next batch; `.cleaned` leftovers are removed
        at the next load."""
        self._abort.set()
