"""Sparse segment indexes: `.index` (relOffset int32, position int32) and `.timeindex`
(timestamp int64, relOffset int32), both big-endian.

The entries live in a bytearray (the native binary search runs over it) and are
mirrored to the file with pwrite.  The active segment's file is preallocated to
`segment.index.bytes` like Kafka's mmapped index and trimmed to the used entries at
roll and close, so a cleanly closed index is exactly `entries * entry_size` bytes.
Indexes carry no checksum: `sanity_check` decides whether to rebuild from the log.
"""
from __future__ import annotations

import os
import struct

from kafkapy import native

_OFF = struct.Struct(">ii")
_TIME = struct.Struct(">qi")


class _Index:
    """Shared file handling for both index kinds."""

    __slots__ = ("path", "base_offset", "max_index_size", "_buf", "_fd", "entries", "_file_size")
    ENTRY: struct.Struct = _OFF

    def __init__(self, path: str, base_offset: int, max_index_size: int, preallocate: bool = False) -> None:
        self.path = path
        self.base_offset = base_offset
        size = self.ENTRY.size
        self.max_index_size = max(size, max_index_size // size * size)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        existing = os.fstat(self._fd).st_size
        data = os.pread(self._fd, existing, 0) if existing else b""
        usable = existing // size * size
        self._buf = bytearray(data[:usable])
        self.entries = usable // size
        self._file_size = existing
        if preallocate:
            self.resize(self.max_index_size)

    @property
    def max_entries(self) -> int:
        return self.max_index_size // self.ENTRY.size

    @property
    def size_bytes(self) -> int:
        return self.entries * self.ENTRY.size

    def is_full(self) -> bool:
        return self.entries >= self.max_entries

    def _write_entry(self, packed: bytes) -> None:
        pos = self.entries * self.ENTRY.size
        if pos + len(packed) > self._file_size:
            self.resize(max(self.max_index_size, pos + len(packed)))
        os.pwrite(self._fd, packed, pos)
        self._buf += packed
        self.entries += 1

    def resize(self, new_size: int) -> None:
        """Set the file length (preallocate for appends, or trim to the used entries)."""
        new_size = max(new_size, self.size_bytes)
        if new_size != self._file_size:
            os.ftruncate(self._fd, new_size)
            self._file_size = new_size

    def trim_to_valid_size(self) -> None:
        self.resize(self.size_bytes)

    def _truncate_entries(self, keep: int) -> None:
        keep = max(0, min(keep, self.entries))
        old = self.size_bytes
        del self._buf[keep * self.ENTRY.size:]
        self.entries = keep
        if self._file_size <= old:
            os.ftruncate(self._fd, self.size_bytes)
            self._file_size = self.size_bytes
        elif old > self.size_bytes:
            # Preallocated file: zero the dropped slots so a crash cannot resurrect them.
            os.pwrite(self._fd, bytes(old - self.size_bytes), self.size_bytes)

    def reset(self) -> None:
        """Drop every entry (before a rebuild)."""
        self._truncate_entries(0)

    def flush(self) -> None:
        os.fsync(self._fd)

    def rename(self, new_path: str) -> None:
        os.replace(self.path, new_path)
        self.path = new_path

    def close(self) -> None:
        if self._fd >= 0:
            self.trim_to_valid_size()
            os.close(self._fd)
            self._fd = -1

    def close_without_trim(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close_without_trim()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class OffsetIndex(_Index):
    """Maps offsets to byte positions in the segment's `.log` file."""

    __slots__ = ()
    ENTRY = _OFF

    def entry(self, slot: int) -> tuple[int, int]:
        rel, pos = _OFF.unpack_from(self._buf, slot * 8)
        return self.base_offset + rel, pos

    @property
    def last_offset(self) -> int:
        return self.entry(self.entries - 1)[0] if self.entries else self.base_offset

    def append(self, offset: int, position: int) -> bool:
        """Add (offset, position) if past the last entry and there is room.

        A full index only makes lookups scan further; the log rolls before the next
        append (should_roll), so skipping here never leaves data unindexed for long."""
        if (self.entries and offset <= self.last_offset) or self.is_full():
            return False
        self._write_entry(_OFF.pack(offset - self.base_offset, position))
        return True

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """Greatest entry with offset <= target, else (base_offset, 0)."""
        rel = target_offset - self.base_offset
        if self.entries == 0 or rel < 0:
            return self.base_offset, 0
        slot = native.offset_index_lookup(self._buf, self.entries, min(rel, 2**31 - 1))
        if slot < 0:
            return self.base_offset, 0
        return self.entry(slot)

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= `offset`."""
        keep = self.entries
        while keep and self.entry(keep - 1)[0] >= offset:
            keep -= 1
        self._truncate_entries(keep)

    def sanity_check(self, log_size: int) -> bool:
        """Entries strictly increasing and pointing inside the log file."""
        if self._file_size % 8:
            return False
        prev_off, prev_pos = -1, -1
        for rel, pos in _OFF.iter_unpack(self._buf):
            if rel <= prev_off or pos < prev_pos or pos >= max(log_size, 1) or rel < 0:
                return False
            prev_off, prev_pos = rel, pos
        return True


class TimeIndex(_Index):
    """Maps timestamps to offsets; entries only when the segment's max timestamp grows."""

    __slots__ = ()
    ENTRY = _TIME

    def is_full(self) -> bool:
        # Keep one slot for the final entry written when the segment becomes inactive.
        return self.entries >= self.max_entries - 1

    def entry(self, slot: int) -> tuple[int, int]:
        ts, rel = _TIME.unpack_from(self._buf, slot * 12)
        return ts, self.base_offset + rel

    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base_offset)."""
        return self.entry(self.entries - 1) if self.entries else (-1, self.base_offset)

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Add (timestamp, offset) when the timestamp grows; the last slot is kept for
        the final entry written at roll (skip_full_check)."""
        if not skip_full_check and self.is_full():
            return
        if self.entries:
            last_ts, last_off = self.last_entry()
            if timestamp <= last_ts or offset < last_off:
                return
        if self.entries >= self.max_entries:
            return
        self._write_entry(_TIME.pack(timestamp, offset - self.base_offset))

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """Greatest entry with timestamp <= target, else (-1, base_offset)."""
        if self.entries == 0:
            return -1, self.base_offset
        slot = native.time_index_lookup(self._buf, self.entries, timestamp)
        if slot < 0:
            return -1, self.base_offset
        return self.entry(slot)

    def truncate_to(self, offset: int) -> None:
        keep = self.entries
        while keep and self.entry(keep - 1)[1] >= offset:
            keep -= 1
        self._truncate_entries(keep)

    def sanity_check(self, last_log_offset: int) -> bool:
        """Timestamps strictly increasing, offsets non-decreasing and within the log."""
        if self._file_size % 12:
            return False
        prev_ts, prev_rel = None, -1
        for ts, rel in _TIME.iter_unpack(self._buf):
            if rel < prev_rel or (prev_ts is not None and ts <= prev_ts) or rel < 0:
                return False
            if self.base_offset + rel > last_log_offset:
                return False
            prev_ts, prev_rel = ts, rel
        return True
