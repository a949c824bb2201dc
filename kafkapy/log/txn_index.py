"""`.txnindex`: aborted transactions of one segment, for read_committed fetches.

34-byte entries `version int16 (0), producerId int64, firstOffset int64, lastOffset
int64, lastStableOffset int64`, appended when an ABORT marker lands in the segment.
The file is created on the first entry (most segments never have one).
"""
from __future__ import annotations

import os
import struct
from typing import Iterable

import attrs

_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34
CONTROL_ABORT = 0
CONTROL_COMMIT = 1


@attrs.frozen(slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    """Ordered by last_offset (markers are appended in offset order)."""

    __slots__ = ("path", "entries", "_fd")

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self.entries: list[AbortedTxn] = []
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        usable = len(data) // ENTRY_SIZE * ENTRY_SIZE
        for version, pid, first, last, lso in _ENTRY.iter_unpack(data[:usable]):
            self.entries.append(AbortedTxn(pid, first, last, lso))

    def sanity_check(self) -> bool:
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return True
        lasts = [e.last_offset for e in self.entries]
        return size % ENTRY_SIZE == 0 and lasts == sorted(lasts)

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def append(self, txn: AbortedTxn) -> None:
        if self.entries and txn.last_offset <= self.entries[-1].last_offset:
            raise ValueError(f"aborted txn at {txn.last_offset} not after {self.entries[-1].last_offset}")
        os.pwrite(self._open(), _ENTRY.pack(0, txn.producer_id, txn.first_offset, txn.last_offset,
                                            txn.last_stable_offset), len(self.entries) * ENTRY_SIZE)
        self.entries.append(txn)

    def truncate_to(self, offset: int) -> None:
        """Drop entries whose marker is at or after `offset`."""
        keep = [e for e in self.entries if e.last_offset < offset]
        if len(keep) != len(self.entries) or (os.path.exists(self.path)
                                               and os.path.getsize(self.path) != len(keep) * ENTRY_SIZE):
            self.entries = keep
            os.ftruncate(self._open(), len(keep) * ENTRY_SIZE)

    def reset(self) -> None:
        self.entries = []
        if os.path.exists(self.path):
            os.ftruncate(self._open(), 0)

    def collect(self, fetch_offset: int, upper_offset: int) -> tuple[list[AbortedTxn], bool]:
        """Entries overlapping [fetch_offset, upper_offset); complete=True once an
        entry's LSO shows no later segment can hold an overlapping abort."""
        out = []
        for e in self.entries:
            if e.last_offset >= fetch_offset and e.first_offset < upper_offset:
                out.append(e)
            if e.last_stable_offset >= upper_offset:
                return out, True
        return out, False

    def flush(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def rename(self, new_path: str) -> None:
        if os.path.exists(self.path):
            os.replace(self.path, new_path)
        self.path = new_path

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def collect_aborted(indexes: Iterable[TransactionIndex], fetch_offset: int,
                    upper_offset: int) -> list[AbortedTxn]:
    """Aborted transactions overlapping a fetch, searching segments in order."""
    out: list[AbortedTxn] = []
    for idx in indexes:
        found, complete = idx.collect(fetch_offset, upper_offset)
        out += found
        if complete:
            break
    return out


def control_type(batch: bytes | memoryview, position: int = 0) -> int:
    """Marker type (0 ABORT, 1 COMMIT) of the uncompressed control batch at
    `position`, or -1 when its first record is not a well-formed control record."""
    try:
        pos = position + 61
        pos = _skip_varint(batch, pos)          # record length
        pos += 1                                # attributes
        pos = _skip_varint(batch, pos)          # timestampDelta
        pos = _skip_varint(batch, pos)          # offsetDelta
        if batch[pos] != 8:                     # keyLength zig-zag(4): version + type
            return -1
        return struct.unpack_from(">h", batch, pos + 3)[0]
    except (IndexError, struct.error):
        return -1


def _skip_varint(buf: bytes | memoryview, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1
