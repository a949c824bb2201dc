"""Value types crossing the log boundary, and the batch-header walk used by reads.

FileRecords is a slice of a segment file that the network layer hands to os.sendfile;
the hot path never copies record bytes into Python.
"""
from __future__ import annotations

import os
import struct
from typing import IO, Iterator

import attrs

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength
NO_TIMESTAMP = -1


@attrs.define(slots=True)
class FileRecords:
    """`size` bytes at `position` of an open segment file: whole batches only."""

    file: IO[bytes]
    position: int
    size: int
    is_file_records = True

    def __len__(self) -> int:
        return self.size

    def tobytes(self) -> bytes:
        """Copy the slice out (for paths that cannot sendfile, and for tests)."""
        out = bytearray()
        fd = self.file.fileno()
        while len(out) < self.size:
            chunk = os.pread(fd, self.size - len(out), self.position + len(out))
            if not chunk:
                raise EOFError(f"segment file shorter than the slice ({len(out)} < {self.size})")
            out += chunk
        return bytes(out)


@attrs.define(slots=True)
class FetchDataInfo:
    """Result of UnifiedLog.read; `records` is b"" when there is nothing to return."""

    fetch_offset: int
    records: "FileRecords | bytes"
    segment_base_offset: int = -1
    position: int = 0
    aborted_transactions: list | None = None
    # Offset after the last batch in `records` (-1 when empty): the read walked the batch
    # headers anyway, so callers (the commit audit) need not walk them again.
    next_offset: int = -1

    @property
    def size(self) -> int:
        return len(self.records)


@attrs.define(slots=True)
class LogAppendInfo:
    """What an append did; the produce response is built from it."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int
    log_start_offset: int
    record_count: int
    duplicate: bool = False
    valid_bytes: int = 0


@attrs.frozen(slots=True)
class BatchHeader:
    """The 61-byte v2 batch header read back from a segment file."""

    position: int
    base_offset: int
    size: int  # whole batch including the 12-byte log overhead
    partition_leader_epoch: int
    magic: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & 0x10)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & 0x20)


def read_header(fd: int, position: int, end: int) -> BatchHeader | None:
    """Header of the batch at `position`, or None if no whole batch fits before `end`."""
    if position + HEADER_SIZE > end:
        return None
    raw = os.pread(fd, HEADER_SIZE, position)
    if len(raw) < HEADER_SIZE:
        return None
    (base, length, ple, magic, _crc, attrs_, lod, first_ts, max_ts, pid, pepoch, bseq,
     count) = HEADER.unpack(raw)
    size = length + LOG_OVERHEAD
    if length < HEADER_SIZE - LOG_OVERHEAD or position + size > end:
        return None
    return BatchHeader(position, base, size, ple, magic, attrs_, lod, first_ts, max_ts, pid,
                       pepoch, bseq, count)


def iter_headers(fd: int, start: int, end: int) -> Iterator[BatchHeader]:
    """Walk batch headers from `start` until `end` or the first incomplete batch."""
    pos = start
    while True:
        h = read_header(fd, pos, end)
        if h is None:
            return
        yield h
        pos += h.size
