"""Log compaction decisions (Kafka's LogCleanerManager/Cleaner rules) as plain functions.

Nothing here touches files: which logs are cleanable and how dirty they are, where the
dirty section ends, how segments are grouped for rewriting, the offset map, and whether
one record or one batch survives.  The file work is in cleaner_edge.py and the
background task in cleaner_manager.py.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import attrs

NO_TIMESTAMP = -1
INT32_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
# Kafka's SkimpyOffsetMap spends an MD5 hash (16 bytes) plus an offset (8 bytes) per key;
# the map capacity is derived from log.cleaner.dedupe.buffer.size the same way.
OFFSET_MAP_ENTRY_BYTES = 24


@attrs.define(slots=True, frozen=True)
class CleanerConfig:
    """Broker-level log.cleaner.* settings (Kafka's names and defaults)."""

    enable_cleaner: bool = True
    num_threads: int = 1
    dedupe_buffer_size: int = 134217728
    dedupe_buffer_load_factor: float = 0.9
    io_buffer_size: int = 524288
    max_io_bytes_per_second: float = float("inf")
    backoff_ms: int = 15000

    @classmethod
    def from_broker(cls, cfg: Any) -> "CleanerConfig":
        """From a KafkaConfig (anything with `.get(name)`)."""
        return cls(
            enable_cleaner=bool(cfg.get("log.cleaner.enable")),
            num_threads=int(cfg.get("log.cleaner.threads")),
            dedupe_buffer_size=int(cfg.get("log.cleaner.dedupe.buffer.size")),
            dedupe_buffer_load_factor=float(cfg.get("log.cleaner.io.buffer.load.factor")),
            io_buffer_size=int(cfg.get("log.cleaner.io.buffer.size")),
            max_io_bytes_per_second=float(cfg.get("log.cleaner.io.max.bytes.per.second")),
            backoff_ms=int(cfg.get("log.cleaner.backoff.ms")),
        )

    @property
    def offset_map_slots(self) -> int:
        """Keys one cleaning pass may deduplicate (per thread, scaled by the load factor)."""
        per_thread = self.dedupe_buffer_size // max(1, self.num_threads)
        return max(1, int(per_thread // OFFSET_MAP_ENTRY_BYTES * self.dedupe_buffer_load_factor))


@attrs.define(slots=True, frozen=True)
class SegmentStat:
    """What the decisions need to know about one segment."""

    base_offset: int
    size: int
    largest_timestamp: int = NO_TIMESTAMP
    first_batch_timestamp: int = NO_TIMESTAMP
    next_offset: int = -1  # offset after its last batch (grouping needs it)
    index_bytes: int = 0
    time_index_bytes: int = 0


@attrs.define(slots=True, frozen=True)
class LogToClean:
    """One compacted log's dirty section: [first_dirty_offset, first_uncleanable_offset)."""

    name: Any
    clean_bytes: int
    cleanable_bytes: int
    first_dirty_offset: int
    first_uncleanable_offset: int
    needs_compaction_now: bool = False

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        return self.cleanable_bytes / self.total_bytes if self.total_bytes else 0.0


def first_dirty_offset(checkpointed: int | None, log_start_offset: int, log_end_offset: int) -> int:
    """The cleaner checkpoint, clamped as Kafka does: below the log start (retention or
    DeleteRecords moved it) or past the log end (the log was truncated or replaced) it
    restarts at the log start offset."""
    if checkpointed is None or checkpointed < log_start_offset or checkpointed > log_end_offset:
        return log_start_offset
    return checkpointed


def first_uncleanable_offset(segments: Sequence[SegmentStat], first_dirty: int,
                             last_stable_offset: int, now: int, min_compaction_lag_ms: int) -> int:
    """Where cleaning must stop: the active segment (the last of `segments`), the last
    stable offset (never clean what may still be truncated or is in an open transaction),
    and the first dirty segment younger than min.compaction.lag.ms."""
    limit = min(segments[-1].base_offset, last_stable_offset)
    if min_compaction_lag_ms > 0:
        for i, seg in enumerate(segments[:-1]):
            nxt = segments[i + 1].base_offset
            if nxt <= first_dirty:
                continue
            if seg.largest_timestamp > now - min_compaction_lag_ms:
                limit = min(limit, seg.base_offset)
                break
    return limit


def _bytes_in(segments: Sequence[SegmentStat], start: int, end: int) -> int:
    """Size of the segments overlapping offsets [start, end) (Kafka's logSegments(from, to))."""
    total = 0
    for i, seg in enumerate(segments):
        upper = segments[i + 1].base_offset if i + 1 < len(segments) else LONG_MAX
        if upper > start and seg.base_offset < end:
            total += seg.size
    return total


def log_to_clean(name: Any, segments: Sequence[SegmentStat], checkpointed: int | None,
                 log_start_offset: int, log_end_offset: int, last_stable_offset: int,
                 now: int, min_compaction_lag_ms: int,
                 max_compaction_lag_ms: int) -> LogToClean:
    """Dirty-ratio inputs of one log (segments in offset order, active last)."""
    dirty = first_dirty_offset(checkpointed, log_start_offset, log_end_offset)
    uncleanable = first_uncleanable_offset(segments, dirty, last_stable_offset, now,
                                           min_compaction_lag_ms)
    dirty = min(dirty, uncleanable)
    clean_bytes = _bytes_in(segments, -1, dirty)
    cleanable_bytes = _bytes_in(segments, dirty, uncleanable) if uncleanable > dirty else 0
    return LogToClean(name, clean_bytes, cleanable_bytes, dirty, uncleanable,
                      needs_compaction(segments, dirty, now, max_compaction_lag_ms))


def needs_compaction(segments: Sequence[SegmentStat], first_dirty: int, now: int,
                     max_compaction_lag_ms: int) -> bool:
    """max.compaction.lag.ms: the oldest dirty non-active segment's first batch (or its
    largest timestamp when unknown) is older than the lag."""
    if max_compaction_lag_ms >= LONG_MAX:
        return False
    for i, seg in enumerate(segments[:-1]):
        if segments[i + 1].base_offset <= first_dirty:
            continue
        ts = seg.first_batch_timestamp if seg.first_batch_timestamp >= 0 else seg.largest_timestamp
        return ts >= 0 and now - ts > max_compaction_lag_ms
    return False


def is_cleanable(ltc: LogToClean, min_cleanable_ratio: float) -> bool:
    """Kafka's filter: overdue with something to clean, or dirtier than the ratio
    (strictly greater, as Kafka compares)."""
    if ltc.cleanable_bytes <= 0:
        return False
    return ltc.needs_compaction_now or ltc.cleanable_ratio > min_cleanable_ratio


def choose_filthiest(candidates: Iterable[tuple[LogToClean, float]]) -> LogToClean | None:
    """Among the cleanable logs (each with its min.cleanable.dirty.ratio), the one with
    the highest dirty ratio, as Kafka orders them; None when none is cleanable."""
    best: LogToClean | None = None
    for ltc, ratio in candidates:
        if is_cleanable(ltc, ratio) and (best is None or ltc.cleanable_ratio > best.cleanable_ratio):
            best = ltc
    return best


def group_segments_by_size(segments: Sequence[SegmentStat], max_size: int, max_index_size: int,
                           first_uncleanable: int) -> list[list[SegmentStat]]:
    """Consecutive segments merged into one cleaned segment while the group's log and
    index sizes stay within segment.bytes / segment.index.bytes and its offsets within a
    32-bit delta of the first base offset (Kafka's groupSegmentsBySize)."""
    groups: list[list[SegmentStat]] = []
    rest = list(segments)
    while rest:
        group = [rest.pop(0)]
        log_size, idx, tidx = group[0].size, group[0].index_bytes, group[0].time_index_bytes
        while rest:
            nxt = rest[0]
            last = (rest[1].base_offset if len(rest) > 1 else
                    (nxt.next_offset if nxt.next_offset >= 0 else first_uncleanable)) - 1
            if (log_size + nxt.size > max_size or idx + nxt.index_bytes > max_index_size
                    or tidx + nxt.time_index_bytes > max_index_size
                    or last - group[0].base_offset > INT32_MAX):
                break
            group.append(rest.pop(0))
            log_size += nxt.size
            idx += nxt.index_bytes
            tidx += nxt.time_index_bytes
        groups.append(group)
    return groups


class OffsetMap:
    """key -> offset of its latest record in the dirty section, with a fixed capacity.

    Kafka hashes keys into a fixed buffer; a dict of the keys themselves gives the same
    answers without hash collisions, and `slots` bounds it the way the buffer does."""

    __slots__ = ("slots", "_map", "latest_offset")

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._map: dict[bytes, int] = {}
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self._map)

    @property
    def full(self) -> bool:
        return len(self._map) >= self.slots

    def put(self, key: bytes, offset: int) -> None:
        self._map[key] = offset
        if offset > self.latest_offset:
            self.latest_offset = offset

    def get(self, key: bytes) -> int:
        return self._map.get(key, -1)

    def note_offset(self, offset: int) -> None:
        """Records without a key still move the map's high-water offset."""
        if offset > self.latest_offset:
            self.latest_offset = offset


def should_retain_record(offset_map: OffsetMap, key: bytes | None, has_value: bool, offset: int,
                         delete_horizon_ms: int, now: int) -> bool:
    """Kafka's rule for one data record of a v2 batch.

    Beyond what the map covers: kept (not deduplicated yet).  No key: dropped (a
    compacted topic refuses them on produce).  Older than the key's latest offset:
    dropped.  A tombstone that is the latest for its key: kept until its batch's delete
    horizon (stamped the first time it was cleaned) has passed."""
    if offset > offset_map.latest_offset:
        return True
    if key is None:
        return False
    if offset < offset_map.get(key):
        return False
    if has_value:
        return True
    return delete_horizon_ms == NO_TIMESTAMP or now < delete_horizon_ms


@attrs.define(slots=True, frozen=True)
class BatchVerdict:
    """What becomes of one batch: `action` is "original" (copy its bytes), "rebuild"
    (write the retained records with the same base/last offsets), "empty" (a
    record-less header keeps the producer's last sequence) or "drop"."""

    action: str
    retained: tuple[int, ...] = ()  # indexes of the retained records
    delete_horizon_ms: int = NO_TIMESTAMP
    has_tombstones: bool = False


def batch_verdict(retain: Sequence[bool], tombstone: Sequence[bool], existing_horizon_ms: int,
                  is_last_batch_of_producer: bool, now: int, delete_retention_ms: int) -> BatchVerdict:
    """Decide a data batch from its per-record retain flags.

    A batch that keeps tombstones and has no delete horizon yet gets one (now +
    delete.retention.ms, KIP-534) and is therefore rewritten even if nothing is dropped.
    The last batch of a live producer id survives as an empty batch so the broker still
    knows that producer's last sequence after the records are gone."""
    kept = tuple(i for i, r in enumerate(retain) if r)
    kept_tombstones = any(tombstone[i] for i in kept)
    if not kept:
        if is_last_batch_of_producer:
            return BatchVerdict("empty")
        return BatchVerdict("drop")
    horizon = existing_horizon_ms
    set_horizon = kept_tombstones and existing_horizon_ms == NO_TIMESTAMP
    if set_horizon:
        horizon = now + delete_retention_ms
    if len(kept) == len(retain) and not set_horizon:
        return BatchVerdict("original", kept, horizon, kept_tombstones)
    return BatchVerdict("rebuild", kept, horizon, kept_tombstones)
