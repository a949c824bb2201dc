"""The file side of log compaction: read segments, build the offset map, write
`.cleaned` segments, and swap them in.

`build_offset_map` and `clean_group` run in a worker thread on duplicated file
descriptors of non-active (immutable) segments, so the event loop keeps serving and a
segment retired meanwhile stays readable.  `swap_in` runs on the trio thread: it checks
the log still holds exactly the segments that were cleaned, then renames
`.cleaned` -> `.swap`, retires the old segments to `.deleted` (readers holding their file
objects finish; removal waits file.delete.delay.ms) and renames `.swap` -> final name.
A crash at any point is repaired by recovery.py at the next load.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Iterator, Protocol

import attrs

from kafkapy import native
from kafkapy.log.checkpoint import fsync_dir, write_atomic
from kafkapy.log.cleaner import (
    NO_TIMESTAMP,
    OffsetMap,
    batch_verdict,
    should_retain_record,
)
from kafkapy.log.cleaner_records import (
    delete_horizon_of,
    empty_batch,
    iter_keys,
    parse_records,
    rebuild_batch,
    records_blob,
)
from kafkapy.log.segment import LogSegment, segment_file
from kafkapy.native import BatchInfo
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import BATCH_HEADER

if TYPE_CHECKING:
    from kafkapy.log.log import UnifiedLog

CLEANED = ".cleaned"
SWAP = ".swap"
# kafkapy's own marker beside a `.cleaned`/`.swap` segment: the base offset of the segment
# after the cleaned group.  The cleaned file can end early (its last batches compacted
# away); with this, recovery after a crash mid-swap removes exactly the whole group.
GROUP_END = ".cleaner-group-end"
YIELD_EVERY_S = 0.002
YIELD_FOR_S = 0.0002


class AbortFlag(Protocol):
    """Checked by the worker before each read (a threading.Event will do)."""

    def is_set(self) -> bool: ...


class CleaningAborted(Exception):
    """The log changed (truncated, deleted, closed) or the broker is stopping."""


@attrs.define(slots=True)
class SourceSegment:
    """A non-active segment as the worker thread sees it: its own fd and fixed size."""

    segment: LogSegment
    base_offset: int
    size: int
    fd: int
    mtime: float

    @classmethod
    def capture(cls, seg: LogSegment) -> "SourceSegment":
        """Call on the trio thread; the dup keeps the data readable whatever happens."""
        try:
            mtime = os.stat(seg.log_path).st_mtime
        except OSError:
            mtime = time.time()
        return cls(seg, seg.base_offset, seg.size, os.dup(seg.fd), mtime)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@attrs.define(slots=True)
class Throttler:
    """log.cleaner.io.max.bytes.per.second for the worker thread (sleeps, never on trio)."""

    max_bytes_per_second: float
    _start: float = attrs.field(factory=time.monotonic)
    _bytes: int = 0
    _last_yield: float = attrs.field(factory=time.monotonic)

    def maybe_yield(self) -> None:
        """Give the GIL to the event loop every couple of ms of Python work: a
        CPU-bound thread otherwise makes each loop wakeup wait for the switch interval."""
        t = time.monotonic()
        if t - self._last_yield >= YIELD_EVERY_S:
            time.sleep(YIELD_FOR_S)
            self._last_yield = time.monotonic()

    def maybe_throttle(self, n: int) -> None:
        self._bytes += n
        if self.max_bytes_per_second == float("inf") or self.max_bytes_per_second <= 0:
            return
        elapsed = time.monotonic() - self._start
        wanted = self._bytes / self.max_bytes_per_second
        if wanted > elapsed:
            time.sleep(min(wanted - elapsed, 1.0))


@attrs.define(slots=True)
class CleanStats:
    dirty_bytes: int = 0  # read to build the offset map
    bytes_read: int = 0  # of the segments rewritten
    bytes_written: int = 0
    records_read: int = 0
    records_retained: int = 0
    # Largest delete horizon of a written batch that still holds tombstones (-1: none):
    # once it passes, the log is worth cleaning again even if it is not dirty.
    max_delete_horizon_ms: int = NO_TIMESTAMP


def iter_batches(src: SourceSegment, io_buffer_size: int, abort: AbortFlag,
                 throttler: Throttler | None = None) -> Iterator[tuple[bytes, BatchInfo]]:
    """Every batch of a segment as (buffer, info with position inside buffer)."""
    pos = 0
    chunk = max(io_buffer_size, 64 * 1024)
    while pos < src.size:
        if abort.is_set():
            raise CleaningAborted("cleaner stopping")
        want = min(chunk, src.size - pos)
        buf = os.pread(src.fd, want, pos)
        if len(buf) < want:
            # Only a truncation (follower divergence) shrinks a non-active segment.
            raise CleaningAborted(f"segment {src.base_offset} shrank while being cleaned")
        if throttler is not None:
            throttler.maybe_throttle(len(buf))
        scan = native.scan_batches(buf, allow_gaps=True)
        for info in scan.batches:
            if throttler is not None:
                throttler.maybe_yield()
            yield buf, info
        if scan.batches:
            pos += scan.valid_bytes
            continue
        # No whole batch in the buffer: the next batch is bigger than the chunk.
        length = int.from_bytes(buf[8:12], "big", signed=True) if len(buf) >= 12 else -1
        need = length + 12
        if length < 49 or pos + need > src.size or need <= len(buf):
            raise KafkaError(scan.error or ErrorCode.CORRUPT_MESSAGE,
                             f"segment {src.base_offset}: bad batch at {pos}: {scan.error_message}")
        chunk = need


def build_offset_map(sources: list[SourceSegment], first_dirty: int, upper: int,
                     offset_map: OffsetMap, io_buffer_size: int, abort: AbortFlag,
                     stats: CleanStats, throttler: Throttler | None = None) -> int:
    """Map every key of [first_dirty, upper) to its latest offset; stops early (at a
    batch boundary) when the map is full.  Returns the end offset the map covers; every
    offset below it is then either mapped or known not to be the latest for its key."""
    for src in sources:
        for buf, info in iter_batches(src, io_buffer_size, abort, throttler):
            if info.base_offset >= upper:
                offset_map.note_offset(upper - 1)
                return upper
            if info.last_offset < first_dirty:
                continue
            stats.dirty_bytes += info.size
            if not info.is_control and info.magic == 2:
                base = info.base_offset
                put = offset_map.put
                for delta, key in iter_keys(records_blob(buf, info), info.record_count):
                    if key is not None and first_dirty <= base + delta < upper:
                        put(key, base + delta)
            if offset_map.full and info.last_offset + 1 < upper:
                offset_map.note_offset(info.last_offset)
                return info.last_offset + 1
    offset_map.note_offset(upper - 1)
    return upper


@attrs.define(slots=True)
class CleanedGroup:
    """A `.cleaned` segment written in place of `sources` (all still in the log)."""

    segment: LogSegment
    sources: list[SourceSegment]


def clean_group(log_dir: str, sources: list[SourceSegment], offset_map: OffsetMap,
                last_batch_of_producer: dict[int, int], now: int, delete_retention_ms: int,
                index_interval_bytes: int, max_index_size: int, io_buffer_size: int,
                abort: AbortFlag, stats: CleanStats,
                throttler: Throttler | None = None, group_end: int = -1) -> CleanedGroup:
    """Write the retained batches of `sources` to `<first base>.log.cleaned` (indexes
    rebuilt as batches are appended), fsync it and return it unswapped.  `group_end`,
    the base offset of the segment after the group, is recorded for crash recovery."""
    base = sources[0].base_offset
    if group_end >= 0:
        write_atomic(segment_file(log_dir, base, GROUP_END), b"%d\n" % group_end)
    for suffix in (".log", ".index", ".timeindex", ".txnindex"):
        leftover = os.path.join(log_dir, f"{base:020d}{suffix}{CLEANED}")
        if os.path.exists(leftover):
            os.unlink(leftover)
    seg = LogSegment(log_dir, base, index_interval_bytes, max_index_size, int(now),
                     file_suffix=CLEANED)
    try:
        out = bytearray()
        entries: list[tuple[int, int, int, int]] = []

        def flush() -> None:
            if out:
                seg.append(out, entries)
                stats.bytes_written += len(out)
                out.clear()
                entries.clear()

        latest = offset_map.latest_offset
        for src in sources:
            for buf, info in iter_batches(src, io_buffer_size, abort, throttler):
                stats.bytes_read += info.size
                written = _filter_batch(buf, info, offset_map, latest, last_batch_of_producer,
                                        now, delete_retention_ms, stats)
                if written is None:
                    continue
                data, max_ts = written
                entries.append((len(out), len(data), info.last_offset, max_ts))
                out += data
                if len(out) >= io_buffer_size:
                    flush()
        flush()
        for src in sources:
            for txn in src.segment.txn_index.entries:
                seg.txn_index.append(txn)
        seg.on_become_inactive()
        seg.flush()
        # Time-based retention of compact,delete topics must not restart at the clean.
        os.utime(segment_file(log_dir, base, ".log" + CLEANED),
                 (sources[-1].mtime, sources[-1].mtime))
        return CleanedGroup(seg, sources)
    except BaseException:
        discard(seg, CLEANED)
        raise


def _filter_batch(buf: bytes, info: BatchInfo, offset_map: OffsetMap, latest: int,
                  last_batch_of_producer: dict[int, int], now: int, delete_retention_ms: int,
                  stats: CleanStats) -> tuple[bytes | memoryview, int] | None:
    """The bytes to write for one batch and its max timestamp, or None to drop it."""
    original = memoryview(buf)[info.position: info.position + info.size]
    if info.is_control or info.magic != 2 or info.base_offset > latest:
        # Control batches stay as written (no transactions to resolve yet); batches past
        # the map's reach have not been deduplicated.
        return original, info.max_timestamp
    blob = records_blob(buf, info)
    records = parse_records(blob, info.record_count)
    horizon = delete_horizon_of(info)
    retain = [should_retain_record(offset_map, r.key, r.has_value, info.base_offset + r.offset_delta,
                                   horizon, now) for r in records]
    tombstone = [not r.has_value for r in records]
    is_last = info.producer_id >= 0 and \
        last_batch_of_producer.get(info.producer_id) == info.last_offset
    verdict = batch_verdict(retain, tombstone, horizon, is_last, now, delete_retention_ms)
    stats.records_read += len(records)
    stats.records_retained += len(verdict.retained)
    if verdict.has_tombstones and verdict.delete_horizon_ms > stats.max_delete_horizon_ms:
        stats.max_delete_horizon_ms = verdict.delete_horizon_ms
    if verdict.action == "drop":
        return None
    if verdict.action == "original":
        return original, info.max_timestamp
    if verdict.action == "empty":
        data = empty_batch(info)
    else:
        data = rebuild_batch(info, blob, records, verdict.retained, verdict.delete_horizon_ms)
    return data, BATCH_HEADER.unpack_from(data)[8]


def discard(seg: LogSegment, suffix: str) -> None:
    """Remove a `<suffix>` (`.cleaned`) segment that will not be swapped in."""
    seg.close()
    for path in (seg.offset_index.path, seg.time_index.path, seg.txn_index.path,
                 segment_file(seg.dir, seg.base_offset, ".log" + suffix),
                 segment_file(seg.dir, seg.base_offset, GROUP_END)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class _RetiredSegment:
    """A replaced segment waiting for file.delete.delay.ms: its files are `.deleted`
    and its base offset's plain names now belong to the cleaned segment, so only the
    `.deleted` names may be removed."""

    __slots__ = ("segment",)

    def __init__(self, segment: LogSegment) -> None:
        self.segment = segment

    def delete_files(self) -> None:
        seg = self.segment
        seg.offset_index.delete()
        seg.time_index.delete()
        seg.txn_index.delete()
        if not seg.file.closed:
            seg.file.close()
        try:
            os.unlink(seg.log_path + ".deleted")
        except FileNotFoundError:
            pass


def still_current(log: "UnifiedLog", group: CleanedGroup) -> int:
    """Index of the group's first segment in the log when the log still holds exactly
    those segments, none active and none changed in size; else -1."""
    if log.closed:
        return -1
    old = [s.segment for s in group.sources]
    try:
        i = log.segments.index(old[0])
    except ValueError:
        return -1
    here = log.segments[i: i + len(old)]
    if len(here) != len(old) or any(a is not b for a, b in zip(here, old)):
        return -1
    if i + len(old) >= len(log.segments):  # the last one became the active segment
        return -1
    if any(s.segment.size != s.size for s in group.sources):
        return -1
    return i


def swap_in(log: "UnifiedLog", group: CleanedGroup, now: int) -> bool:
    """Replace the group's old segments by the cleaned one (trio thread, no awaits).

    Order as Kafka: `.cleaned` -> `.swap` (from here recovery completes the swap),
    old segments -> `.deleted`, `.swap` -> final names."""
    i = still_current(log, group)
    if i < 0:
        discard(group.segment, CLEANED)
        return False
    new = group.segment
    new.change_file_suffixes(CLEANED, SWAP)
    fsync_dir(log.dir)
    n = len(group.sources)
    del log.segments[i: i + n]
    del log._bases[i: i + n]
    log.segments.insert(i, new)
    log._bases.insert(i, new.base_offset)
    for src in group.sources:
        src.segment.rename_to_deleted()
        log.pending_deletes.append((now + log.config.file_delete_delay_ms,
                                    _RetiredSegment(src.segment)))
    new.change_file_suffixes(SWAP, "")
    fsync_dir(log.dir)
    try:
        os.unlink(segment_file(log.dir, new.base_offset, GROUP_END))
    except FileNotFoundError:
        pass
    return True
