"""ListOffsets lookups on a log: by timestamp via the time indexes, and Kafka's
special targets (-2 earliest, -1 latest, -3 max timestamp, -4/-5 local/tiered)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from kafkapy.log.log import UnifiedLog

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5


@attrs.frozen(slots=True)
class TimestampOffset:
    """ListOffsets answer: offset found, its timestamp, and the epoch that wrote it."""

    timestamp: int
    offset: int
    leader_epoch: int


def fetch_offset_by_timestamp(log: "UnifiedLog", timestamp: int) -> TimestampOffset | None:
    """Earliest offset whose record timestamp is >= `timestamp`, or a special target."""
    cache = log.leader_epoch_cache

    def epoch(offset: int) -> int:
        ep = cache.epoch_for_offset(offset)
        return -1 if ep is None else ep

    if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        return TimestampOffset(-1, log.log_start_offset, epoch(log.log_start_offset))
    if timestamp in (LATEST_TIMESTAMP, LATEST_TIERED_TIMESTAMP):
        return TimestampOffset(-1, log.log_end_offset, cache.latest_epoch)
    if timestamp == MAX_TIMESTAMP:
        best = None
        for seg in log.segments:
            if seg.max_timestamp_so_far >= 0 and (
                    best is None or seg.max_timestamp_so_far > best.max_timestamp_so_far):
                best = seg
        if best is None:
            return None
        off = best.offset_of_max_timestamp_so_far
        return TimestampOffset(best.max_timestamp_so_far, off, epoch(off))
    for seg in log.segments:
        if seg.size == 0 or seg.largest_timestamp() < timestamp:
            continue
        found = seg.find_offset_by_timestamp(timestamp, log.log_start_offset)
        if found is not None:
            return TimestampOffset(found[1], found[0], epoch(found[0]))
    return None
