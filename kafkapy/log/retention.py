"""Retention (§5.9): delete a prefix of segments by time, size, or log start offset.

Only segments wholly below the high watermark and never the active segment; deleted
segments are renamed `.deleted` and removed after file.delete.delay.ms.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from kafkapy.log.segment import LogSegment

if TYPE_CHECKING:
    from kafkapy.log.log import UnifiedLog

Predicate = Callable[[LogSegment, LogSegment], bool]


def _delete_prefix(log: "UnifiedLog", predicate: Predicate, now: int) -> int:
    """Delete leading segments while `predicate(segment, next_segment)` holds."""
    doomed: list[LogSegment] = []
    segs = log.segments
    for i in range(len(segs) - 1):  # the active (last) segment is never deleted
        seg, nxt = segs[i], segs[i + 1]
        if log.high_watermark < nxt.base_offset or not predicate(seg, nxt):
            break
        doomed.append(seg)
    for seg in doomed:
        log._retire_segment(seg, now)
    if doomed:
        log.maybe_increment_log_start_offset(log.segments[0].base_offset)
    return len(doomed)


def delete_segments_below_log_start(log: "UnifiedLog", now: int) -> int:
    return _delete_prefix(log, lambda seg, nxt: nxt.base_offset <= log.log_start_offset, now)


def delete_old_segments(log: "UnifiedLog", now: int) -> int:
    """One retention pass; returns the number of segments deleted."""
    cfg = log.config
    deleted = 0
    if cfg.delete_enabled:
        if cfg.retention_ms >= 0:
            deleted += _delete_prefix(
                log, lambda seg, nxt: now - seg.largest_timestamp() > cfg.retention_ms, now)
        if cfg.retention_bytes >= 0:
            excess = [log.size_in_bytes() - cfg.retention_bytes]

            def over_size(seg: LogSegment, nxt: LogSegment) -> bool:
                if excess[0] - seg.size >= 0:
                    excess[0] -= seg.size
                    return True
                return False

            deleted += _delete_prefix(log, over_size, now)
    deleted += delete_segments_below_log_start(log, now)
    return deleted
