"""LogSegment: one `.log` file plus its `.index` and `.timeindex`.

Appends are one pwrite of already-validated batches; index entries are added per
batch after more than `index.interval.bytes` since the last one, pointing at that
batch's start with its last offset, as Kafka does.
"""
from __future__ import annotations

import os
from typing import IO, Callable, Iterable, Sequence

from kafkapy import native
from kafkapy.log.index import OffsetIndex, TimeIndex
from kafkapy.log.txn_index import TransactionIndex
from kafkapy.log.records import (
    HEADER_SIZE,
    BatchHeader,
    FetchDataInfo,
    FileRecords,
    iter_headers,
)

_SCAN_CHUNK = 8 * 1024 * 1024
INT32_MAX = 2**31 - 1


def segment_file(dir_path: str, base_offset: int, suffix: str) -> str:
    return os.path.join(dir_path, f"{base_offset:020d}{suffix}")


class LogSegment:
    """A contiguous run of batches starting at `base_offset`."""

    __slots__ = ("dir", "base_offset", "file", "offset_index", "time_index", "txn_index", "size",
                 "bytes_since_last_index_entry", "index_interval_bytes", "max_timestamp_so_far",
                 "offset_of_max_timestamp_so_far", "created_ms", "rolling_based_timestamp",
                 "roll_jitter_ms")

    def __init__(self, dir_path: str, base_offset: int, index_interval_bytes: int,
                 max_index_size: int, now_ms: int, roll_jitter_ms: int = 0,
                 preallocate: bool = False, file_suffix: str = "") -> None:
        self.dir = dir_path
        self.base_offset = base_offset
        path = segment_file(dir_path, base_offset, ".log" + file_suffix)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.file: IO[bytes] = os.fdopen(fd, "r+b", buffering=0)
        self.size = os.fstat(fd).st_size
        self.offset_index = OffsetIndex(segment_file(dir_path, base_offset, ".index" + file_suffix),
                                        base_offset, max_index_size, preallocate)
        self.time_index = TimeIndex(segment_file(dir_path, base_offset, ".timeindex" + file_suffix),
                                    base_offset, max_index_size, preallocate)
        self.txn_index = TransactionIndex(segment_file(dir_path, base_offset,
                                                       ".txnindex" + file_suffix))
        self.index_interval_bytes = index_interval_bytes
        self.bytes_since_last_index_entry = 0
        ts, off = self.time_index.last_entry() if self.time_index.entries else (-1, base_offset)
        self.max_timestamp_so_far = ts
        self.offset_of_max_timestamp_so_far = off
        self.created_ms = now_ms
        self.rolling_based_timestamp: int | None = None
        self.roll_jitter_ms = roll_jitter_ms

    # ---- paths -------------------------------------------------------------------
    @property
    def log_path(self) -> str:
        return segment_file(self.dir, self.base_offset, ".log")

    @property
    def fd(self) -> int:
        return self.file.fileno()

    # ---- append ------------------------------------------------------------------
    def append(self, data: memoryview | bytes, batches: Sequence[tuple[int, int, int, int]]) -> None:
        """Write `data` (whole batches) at the end; `batches` lists, per batch,
        (position in data, size, last offset, max timestamp)."""
        start = self.size
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(self.fd, view[written:], start + written)
        if self.size == 0 and batches:
            self.rolling_based_timestamp = batches[0][3]
        for pos, size, last_offset, max_ts in batches:
            if max_ts > self.max_timestamp_so_far:
                self.max_timestamp_so_far = max_ts
                self.offset_of_max_timestamp_so_far = last_offset
            if self.bytes_since_last_index_entry > self.index_interval_bytes:
                self.offset_index.append(last_offset, start + pos)
                self.time_index.maybe_append(self.max_timestamp_so_far,
                                             self.offset_of_max_timestamp_so_far)
                self.bytes_since_last_index_entry = 0
            self.bytes_since_last_index_entry += size
        self.size = start + len(view)

    def can_hold_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= INT32_MAX

    def should_roll(self, incoming_size: int, max_ts: int, last_offset: int, now_ms: int,
                    segment_bytes: int, segment_ms: int) -> bool:
        """Kafka's roll conditions (§5.7) for an append of `incoming_size` bytes."""
        if self.size > segment_bytes - incoming_size:
            return True
        if self.size > 0 and self.time_waited_for_roll(now_ms, max_ts) > segment_ms - self.roll_jitter_ms:
            return True
        if self.offset_index.is_full() or self.time_index.is_full():
            return True
        return not self.can_hold_offset(last_offset)

    def time_waited_for_roll(self, now_ms: int, largest_ts: int) -> int:
        if self.rolling_based_timestamp is not None and self.rolling_based_timestamp >= 0:
            return largest_ts - self.rolling_based_timestamp
        return now_ms - self.created_ms

    # ---- read --------------------------------------------------------------------
    def translate_offset(self, offset: int, start_position: int = 0) -> BatchHeader | None:
        """Header of the first batch whose last offset is >= `offset`, or None."""
        _, pos = self.offset_index.lookup(offset)
        for h in iter_headers(self.fd, max(pos, start_position), self.size):
            if h.last_offset >= offset:
                return h
        return None

    def read(self, start_offset: int, max_size: int, max_offset: int,
             min_one_message: bool) -> FetchDataInfo | None:
        """Whole batches from the one holding `start_offset`, each with last offset
        < max_offset, within max_size (the first one regardless if min_one_message).
        None when no batch here holds `start_offset`."""
        first = self.translate_offset(start_offset)
        if first is None:
            return None
        total = 0
        next_offset = -1
        for h in iter_headers(self.fd, first.position, self.size):
            if h.last_offset >= max_offset:
                break
            if total + h.size > max_size and not (total == 0 and min_one_message):
                break
            total += h.size
            next_offset = h.last_offset + 1
        records: FileRecords | bytes = FileRecords(self.file, first.position, total) if total else b""
        return FetchDataInfo(start_offset, records, self.base_offset, first.position,
                             next_offset=next_offset)

    def read_next_offset(self) -> int:
        """Offset after the last batch (walks from the last index entry)."""
        _, pos = self.offset_index.lookup(2**62)
        nxt = self.base_offset
        for h in iter_headers(self.fd, pos, self.size):
            nxt = h.last_offset + 1
        return nxt

    def find_offset_by_timestamp(self, timestamp: int, starting_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp` and
        offset >= starting_offset, or None."""
        _, off = self.time_index.lookup(timestamp)
        _, pos = self.offset_index.lookup(max(off, starting_offset))
        for h in iter_headers(self.fd, pos, self.size):
            if h.max_timestamp < timestamp or h.last_offset < starting_offset:
                continue
            if h.attributes & 0x08:  # LogAppendTime: every record carries max_timestamp
                return max(h.base_offset, starting_offset), h.max_timestamp
            batch = os.pread(self.fd, h.size, h.position)
            for off, ts in record_timestamps(batch, h):
                if ts >= timestamp and off >= starting_offset:
                    return off, ts
        return None

    # ---- recovery ----------------------------------------------------------------
    def rebuild(self, max_batch_size: int = 1 << 28,
                on_batch: Callable[[object, bytes], None] | None = None) -> int:
        """Re-validate every batch, rebuild the offset and time indexes, truncate at
        the first bad byte; returns the number of bytes truncated.  `on_batch(info,
        chunk)` sees each valid batch (position relative to chunk) in order, so the
        caller can rebuild producer state, epochs and the transaction index."""
        self.offset_index.reset()
        self.time_index.reset()
        self.txn_index.reset()
        self.bytes_since_last_index_entry = 0
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = self.base_offset
        self.rolling_based_timestamp = None
        valid = self._scan_valid(max_batch_size, on_batch)
        truncated = self.size - valid
        if truncated:
            self.file.truncate(valid)
            self.size = valid
        if self.size == 0:
            self.rolling_based_timestamp = None
        return truncated

    def _scan_valid(self, max_batch_size: int, on_batch: Callable[[object, bytes], None] | None) -> int:
        """Bytes of whole, valid, offset-ordered batches from the start of the file."""
        pos = 0
        next_offset = self.base_offset
        chunk = _SCAN_CHUNK
        while pos < self.size:
            buf = os.pread(self.fd, min(chunk, self.size - pos), pos)
            scan = native.scan_batches(buf, allow_gaps=True)
            good: list[tuple[int, int, int, int]] = []
            bad = False
            for b in scan.batches:
                if b.base_offset < next_offset or not self.can_hold_offset(b.last_offset):
                    bad = True
                    break
                good.append((b.position, b.size, b.last_offset, b.max_timestamp))
                next_offset = b.last_offset + 1
                if on_batch is not None:
                    on_batch(b, buf)
            if good:
                self._index_batches(pos, good)
            buf_end = pos + len(buf)
            pos += good[-1][0] + good[-1][1] if good else 0
            if bad or (scan.error is None and not good):
                break
            if scan.error is None:
                continue
            # Error: a batch torn only by our chunk boundary gets a bigger chunk.
            if buf_end >= self.size:
                break
            head = os.pread(self.fd, 12, pos)
            length = int.from_bytes(head[8:12], "big", signed=True) if len(head) == 12 else -1
            need = length + 12
            if length < 49 or pos + need <= buf_end or pos + need > self.size or need > max_batch_size:
                break
            chunk = max(chunk, need)
        return pos

    def _index_batches(self, chunk_pos: int, entries: Iterable[tuple[int, int, int, int]]) -> None:
        if self.size and self.rolling_based_timestamp is None:
            for e in entries:
                self.rolling_based_timestamp = e[3]
                break
        for rel, size, last_offset, max_ts in entries:
            if max_ts > self.max_timestamp_so_far:
                self.max_timestamp_so_far = max_ts
                self.offset_of_max_timestamp_so_far = last_offset
            if self.bytes_since_last_index_entry > self.index_interval_bytes:
                self.offset_index.append(last_offset, chunk_pos + rel)
                self.time_index.maybe_append(self.max_timestamp_so_far,
                                             self.offset_of_max_timestamp_so_far)
                self.bytes_since_last_index_entry = 0
            self.bytes_since_last_index_entry += size

    def sanity_check(self) -> bool:
        """Cheap check of both indexes against this log file."""
        last = self.base_offset + INT32_MAX
        return (self.offset_index.sanity_check(self.size) and self.time_index.sanity_check(last)
                and self.txn_index.sanity_check())

    # ---- truncation / lifecycle --------------------------------------------------
    def truncate_to(self, offset: int) -> int:
        """Drop batches whose last offset is >= `offset`; returns bytes removed."""
        h = self.translate_offset(offset)
        if h is None:
            return 0
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        removed = self.size - h.position
        self.file.truncate(h.position)
        self.size = h.position
        self.bytes_since_last_index_entry = 0
        ts, off = self.time_index.last_entry()
        self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far = ts, off
        if self.size == 0:
            self.rolling_based_timestamp = None
        return removed

    def on_become_inactive(self) -> None:
        """At roll: record the final max timestamp and trim the preallocated indexes."""
        if self.max_timestamp_so_far >= 0:
            self.time_index.maybe_append(self.max_timestamp_so_far,
                                         self.offset_of_max_timestamp_so_far, skip_full_check=True)
        self.offset_index.trim_to_valid_size()
        self.time_index.trim_to_valid_size()

    def largest_timestamp(self) -> int:
        """Max batch timestamp, else file mtime (as Kafka's retention uses)."""
        if self.max_timestamp_so_far >= 0:
            return self.max_timestamp_so_far
        try:
            return int(os.stat(self.log_path).st_mtime * 1000)
        except OSError:
            return -1

    def flush(self) -> None:
        os.fsync(self.fd)
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        """Record the final max timestamp (so a reopened segment knows it), trim, close."""
        if self.max_timestamp_so_far >= 0 and not self.file.closed:
            self.time_index.maybe_append(self.max_timestamp_so_far,
                                         self.offset_of_max_timestamp_so_far, skip_full_check=True)
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()
        if not self.file.closed:
            self.file.close()

    def rename_to_deleted(self) -> None:
        """Rename the three files to `.deleted`; open handles stay valid for readers."""
        base = segment_file(self.dir, self.base_offset, "")
        for suffix, idx in ((".index", self.offset_index), (".timeindex", self.time_index),
                            (".txnindex", self.txn_index)):
            try:
                idx.rename(base + suffix + ".deleted")
            except FileNotFoundError:
                pass
        try:
            os.replace(base + ".log", base + ".log.deleted")
        except FileNotFoundError:
            pass

    def change_file_suffixes(self, old_suffix: str, new_suffix: str) -> None:
        """Rename the four files from `<name><old_suffix>` to `<name><new_suffix>` (the
        log cleaner's `.cleaned` -> `.swap` -> "" steps); open handles stay valid."""
        base = segment_file(self.dir, self.base_offset, "")
        for suffix, idx in ((".index", self.offset_index), (".timeindex", self.time_index),
                            (".txnindex", self.txn_index)):
            if os.path.exists(base + suffix + old_suffix):
                idx.rename(base + suffix + new_suffix)
            else:
                idx.path = base + suffix + new_suffix
        os.replace(base + ".log" + old_suffix, base + ".log" + new_suffix)

    def delete_files(self) -> None:
        """Close and unlink (after rename_to_deleted or directly)."""
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()
        if not self.file.closed:
            self.file.close()
        base = segment_file(self.dir, self.base_offset, "")
        for name in (".log", ".log.deleted"):
            try:
                os.unlink(base + name)
            except FileNotFoundError:
                pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Zig-zag varint at `pos` -> (value, next position)."""
    shift = raw = 0
    while True:
        b = buf[pos]
        pos += 1
        raw |= (b & 0x7F) << shift
        if not b & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7


def record_timestamps(batch: bytes, h: BatchHeader) -> Iterable[tuple[int, int]]:
    """(offset, timestamp) of each record of one batch (ListOffsets by time only).

    Uncompressed records are walked here; compressed ones go through
    kafkapy.protocol.records, which owns the codecs."""
    if h.attributes & 0x07:
        from kafkapy.protocol.records import iter_records

        for rec in iter_records(batch):
            yield rec.offset, rec.timestamp
        return
    pos = HEADER_SIZE
    for _ in range(h.record_count):
        length, body = _varint(batch, pos)
        ts_delta, p = _varint(batch, body + 1)  # body starts with attributes int8
        offset_delta, _ = _varint(batch, p)
        yield h.base_offset + offset_delta, h.first_timestamp + ts_delta
        pos = body + length
