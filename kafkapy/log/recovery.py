"""Loading a partition directory (§5.8): clean up transient files, open segments,
re-validate everything after the recovery point (or only the indexes after a clean
shutdown), truncate at the first bad byte, then rebuild producer state and trim the
leader epoch cache to what the log really holds.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from kafkapy.log.producer_state import ProducerBatch
from kafkapy.log.records import iter_headers, read_header
from kafkapy.log.segment import LogSegment
from kafkapy.log.txn_index import CONTROL_ABORT, AbortedTxn, control_type

if TYPE_CHECKING:
    from kafkapy.log.log import UnifiedLog

_SEGMENT_SUFFIXES = (".log", ".index", ".timeindex", ".txnindex")
logger = logging.getLogger(__name__)


def _cleanup_dir(dir_path: str) -> list[int]:
    """Remove leftovers of interrupted operations; returns the segment base offsets."""
    bases: set[int] = set()
    names = os.listdir(dir_path)
    swaps: list[str] = []
    group_ends: dict[int, int] = {}
    for name in names:
        path = os.path.join(dir_path, name)
        if name.endswith((".tmp", ".cleaned", ".deleted")):
            os.unlink(path)
        elif name.endswith(".log.swap"):
            swaps.append(path)
        elif name.endswith(".swap"):
            os.unlink(path)  # a swapped-in segment's indexes are rebuilt from its log
        elif name.endswith(_GROUP_END):
            group_ends[_group_end_base(name)] = _read_group_end(path)
            os.unlink(path)
    for path in swaps:
        _complete_swap(dir_path, path, group_ends)
    for name in os.listdir(dir_path):
        stem, dot, ext = name.partition(".")
        if dot and ext == "log" and len(stem) == 20 and stem.isdigit():
            bases.add(int(stem))
    for name in os.listdir(dir_path):
        stem, dot, ext = name.partition(".")
        if dot and "." + ext in _SEGMENT_SUFFIXES and ext != "log" and stem.isdigit() \
                and int(stem) not in bases:
            os.unlink(os.path.join(dir_path, name))  # index without its log
    return sorted(bases)


_GROUP_END = ".cleaner-group-end"  # kafkapy.log.cleaner_edge.GROUP_END


def _group_end_base(name: str) -> int:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else -1


def _read_group_end(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return int(f.read().strip() or b"-1")
    except (OSError, ValueError):
        return -1  # torn: the swap file's own range still applies


def _complete_swap(dir_path: str, swap_path: str, group_ends: dict[int, int]) -> None:
    """Finish a log cleaner swap interrupted by a crash: the `.log.swap` file is a
    complete, fsynced cleaned segment, so the old segments whose base offsets fall in
    its offset range are removed and it takes its final name (Kafka's rule).  The range
    reaches the cleaner's recorded group end, since the cleaned file may end early."""
    name = os.path.basename(swap_path)
    try:
        base = int(name.split(".", 1)[0])
    except ValueError:
        os.unlink(swap_path)
        return
    fd = os.open(swap_path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        next_offset = base
        for h in iter_headers(fd, 0, size):
            next_offset = h.last_offset + 1
    finally:
        os.close(fd)
    for other in os.listdir(dir_path):
        stem, dot, ext = other.partition(".")
        if not (dot and "." + ext in _SEGMENT_SUFFIXES and len(stem) == 20 and stem.isdigit()):
            continue
        if base <= int(stem) < max(next_offset, base + 1, group_ends.get(base, -1)):
            os.unlink(os.path.join(dir_path, other))
    logger.info("%s: completing interrupted cleaner swap of segment %d (offsets %d..%d)",
                dir_path, base, base, next_offset - 1)
    os.replace(swap_path, swap_path[: -len(".swap")])


def load_log(log: "UnifiedLog", had_clean_shutdown: bool, now: int) -> None:
    """Populate `log` from its directory, recovering unflushed data."""
    cfg = log.config
    bases = _cleanup_dir(log.dir)
    recover_from = len(bases)
    if not had_clean_shutdown and bases:
        below = [i for i, b in enumerate(bases) if b <= log.recovery_point]
        recover_from = below[-1] if below else 0
    for i, base in enumerate(bases):
        missing = any(not os.path.exists(os.path.join(log.dir, f"{base:020d}{s}"))
                      for s in (".index", ".timeindex"))
        seg = LogSegment(log.dir, base, cfg.index_interval_bytes, cfg.segment_index_bytes, now)
        log._add_segment(seg)
        if i < recover_from and (missing or not seg.sanity_check()):
            # A bad or missing index is rebuilt even after a clean shutdown; the
            # transaction index needs producer state, so recover from here on.
            recover_from = i
    recovered = recover_from < len(log.segments)
    if recovered:
        _recover_segments(log, recover_from)

    if not log.segments:
        log._add_segment(LogSegment(log.dir, log.log_start_offset, cfg.index_interval_bytes,
                                    cfg.segment_index_bytes, now, preallocate=False))
    active = log.active_segment
    active.roll_jitter_ms = log.roll_jitter()
    log._log_end_offset = active.read_next_offset()
    first = read_header(active.fd, 0, active.size)
    if first is not None:
        active.rolling_based_timestamp = first.max_timestamp
    active.offset_index.resize(active.offset_index.max_index_size)
    active.time_index.resize(active.time_index.max_index_size)

    leo = log._log_end_offset
    if not recovered:
        rebuild_producer_state(log)
    if log.log_start_offset > leo:
        # The log start was checkpointed past data we no longer have: start over there.
        log.truncate_fully_and_start_at(log.log_start_offset)
        return
    log.log_start_offset = max(log.log_start_offset, log.segments[0].base_offset)
    # Clean shutdown flushed everything; otherwise the recovered tail was fsynced.
    log.recovery_point = leo
    cache = log.leader_epoch_cache
    if not cache.entries and leo > log.log_start_offset:
        rebuild_epoch_cache(log)  # checkpoint lost or unreadable
    cache.truncate_from_end(leo)
    cache.truncate_from_start(log.log_start_offset)
    ps = log.producer_state
    ps.map_end_offset = leo
    ps.delete_snapshots_outside(log.log_start_offset, leo)


def _recover_segments(log: "UnifiedLog", start: int) -> None:
    """Re-validate segments[start:] batch by batch, rebuilding their indexes,
    producer state, aborted-transaction entries and leader epochs; truncate at the
    first bad byte and drop every later segment."""
    ps = log.producer_state
    rebuild_producer_state(log, upto=log.segments[start].base_offset)
    pending: list[tuple[int, int]] = []
    current: list[LogSegment] = []

    def on_batch(b, chunk: bytes) -> None:
        if b.partition_leader_epoch >= 0 and (not pending or b.partition_leader_epoch != pending[-1][0]):
            pending.append((b.partition_leader_epoch, b.base_offset))
        is_abort = b.is_control and control_type(chunk, b.position) == CONTROL_ABORT
        done = ps.update_from_batch(ProducerBatch(
            b.producer_id, b.producer_epoch, b.base_sequence, b.base_offset, b.last_offset,
            b.max_timestamp, b.is_transactional, b.is_control, is_abort))
        if done is not None and done.is_aborted:
            current[0].txn_index.append(AbortedTxn(done.producer_id, done.first_offset,
                                                   done.last_offset, ps.last_stable_offset_after(done)))

    for i in range(start, len(log.segments)):
        seg = log.segments[i]
        current[:] = [seg]
        truncated = seg.rebuild(on_batch=on_batch)
        if truncated:
            logger.warning("%s: invalid bytes at %d of segment %d; truncated %d bytes and "
                           "dropped %d later segments", log.tp, seg.size, seg.base_offset,
                           truncated, len(log.segments) - i - 1)
            for later in list(log.segments[i + 1:]):
                log._remove_segment(later)
                later.delete_files()
            break
    cache = log.leader_epoch_cache
    for epoch, off in pending:
        cache.assign(epoch, off, flush=False)
    cache.flush()
    for seg in log.segments[start:]:
        if seg is not log.segments[-1]:
            seg.offset_index.trim_to_valid_size()  # rebuilt indexes grow preallocated
            seg.time_index.trim_to_valid_size()
        seg.flush()


def rebuild_epoch_cache(log: "UnifiedLog") -> None:
    """Recreate (epoch, start offset) pairs by walking every batch header."""
    cache = log.leader_epoch_cache
    for seg in log.segments:
        for h in iter_headers(seg.fd, 0, seg.size):
            if h.partition_leader_epoch > cache.latest_epoch:
                cache.assign(h.partition_leader_epoch, h.base_offset, flush=False)
    cache.flush()


def rebuild_producer_state(log: "UnifiedLog", upto: int | None = None) -> None:
    """Newest snapshot at or below `upto` (default LEO), then replay batch headers up
    to `upto`.  Transaction index entries already exist for replayed data."""
    ps = log.producer_state
    end = log.log_end_offset if upto is None else upto
    ps.clear()
    ps.map_end_offset = log.log_start_offset
    start = log.segments[0].base_offset if log.segments else end
    for off in reversed(ps.snapshot_offsets()):
        if off <= end and ps.load_snapshot(off):
            start = off
            break
    for i, seg in enumerate(log.segments):
        if i + 1 < len(log.segments) and log.segments[i + 1].base_offset <= start:
            continue
        if seg.base_offset >= end:
            break
        _, pos = seg.offset_index.lookup(start)
        for h in iter_headers(seg.fd, pos, seg.size):
            if h.base_offset >= end:
                break
            if h.last_offset < start:
                continue
            is_abort = h.is_control and control_type(os.pread(seg.fd, h.size, h.position)) == CONTROL_ABORT
            ps.update_from_batch(ProducerBatch(h.producer_id, h.producer_epoch, h.base_sequence,
                                               h.base_offset, h.last_offset, h.max_timestamp,
                                               h.is_transactional, h.is_control, is_abort))
    ps.map_end_offset = end
