"""Thin Python face of the cffi extension `kafkapy._native` (C sources in native/).

`scan_batches` sits on the produce hot path, so this module keeps per-call overhead to a
few microseconds: the C scan writes a flat int64 array, `struct.iter_unpack` turns it
into tuples in one step, and `BatchInfo` *is* a tuple (a NamedTuple), so building one
costs a single `tuple.__new__`.

Every function accepts bytes, bytearray, memoryview (C-contiguous) or mmap; the writing
functions need a writable buffer (bytearray, writable memoryview or mmap).
"""
from __future__ import annotations

import struct
import threading
from typing import NamedTuple

import attrs

from kafkapy._native import ffi, lib
from kafkapy.protocol.errors import ErrorCode, KafkaError

__all__ = [
    "BatchInfo",
    "BatchScan",
    "assign_offsets",
    "crc32c",
    "crc32c_hw",
    "crc32c_hw_available",
    "crc32c_table",
    "offset_index_lookup",
    "scan_batches",
    "set_crc32c_impl",
    "set_log_append_time",
    "time_index_lookup",
]

_from_buffer = ffi.from_buffer
_kp_crc32c = lib.kp_crc32c
_kp_scan = lib.kp_scan_batches

_FIELDS = lib.KP_BATCH_FIELDS
_ROW = struct.Struct(f"={_FIELDS}q")
_ROW_BYTES = _ROW.size
_SCRATCH_ROWS = 256

ATTR_COMPRESSION_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40


class BatchInfo(NamedTuple):
    """Header fields of one magic-2 batch; `position`/`size` locate it in the scanned
    buffer. A NamedTuple because the hot path builds one per produced batch."""

    position: int
    size: int
    base_offset: int
    partition_leader_epoch: int
    magic: int
    crc: int
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
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        """Codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & ATTR_COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 CreateTime, 1 LogAppendTime."""
        return (self.attributes & ATTR_TIMESTAMP_TYPE) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def last_sequence(self) -> int:
        """baseSequence + lastOffsetDelta, wrapping past 2^31-1 to 0 as Kafka does."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


_new_info = tuple.__new__


@attrs.define(slots=True)
class BatchScan:
    """Result of `scan_batches`: the whole valid batches from the start of the buffer,
    and why the scan stopped early (error None = the buffer was all valid batches)."""

    batches: list[BatchInfo]
    valid_bytes: int
    error: ErrorCode | None = None
    error_message: str = ""


class _Scratch(threading.local):
    """Per-thread output array for the C scan (recovery may scan from worker threads)."""

    def __init__(self) -> None:
        self.out = ffi.new("int64_t[]", _SCRATCH_ROWS * _FIELDS)
        self.res = ffi.new("kp_scan_result *")
        self.view = ffi.buffer(self.out)


_scratch = _Scratch()


def _error(kind: int, pos: int, detail: int, length: int) -> tuple[ErrorCode, str]:
    if kind == lib.KP_SCAN_TRUNCATED:
        if length - pos < 12:
            why = f"torn tail at byte {pos}: {length - pos} bytes, less than a batch header"
        else:
            why = f"torn tail at byte {pos}: batch needs {detail} bytes, {length - pos} left"
        return ErrorCode.CORRUPT_MESSAGE, why
    if kind == lib.KP_SCAN_SHORT:
        return ErrorCode.CORRUPT_MESSAGE, (
            f"record batch at byte {pos} has batchLength {detail}, below the header size"
        )
    if kind == lib.KP_SCAN_MAGIC:
        return ErrorCode.INVALID_RECORD, (
            f"record batch at byte {pos} has magic {detail}, expected magic 2"
        )
    if kind == lib.KP_SCAN_CRC:
        return ErrorCode.CORRUPT_MESSAGE, (
            f"record batch at byte {pos} fails its CRC-32C check (computed {detail:#010x})"
        )
    return ErrorCode.INVALID_RECORD, (
        f"record batch at byte {pos} has recordsCount {detail}, inconsistent with its "
        "lastOffsetDelta"
    )


def scan_batches(buf, allow_gaps: bool = False) -> BatchScan:
    """Validate and describe the v2 batches of `buf` without reading records; stops at
    the first bad or incomplete batch (see `BatchScan.error`).

    `allow_gaps=True` accepts recordsCount < lastOffsetDelta + 1, which log compaction
    produces: use it for recovery and follower appends, never for produce."""
    cbuf = _from_buffer(buf)
    length = len(cbuf)
    flags = 1 if allow_gaps else 0
    s = _scratch
    out, res, view = s.out, s.res, s.view
    _kp_scan(cbuf, length, 0, flags, out, _SCRATCH_ROWS, res)
    batches = [_new_info(BatchInfo, t) for t in _ROW.iter_unpack(view[: res.count * _ROW_BYTES])]
    start = res.valid_bytes
    while res.error == lib.KP_SCAN_FULL:
        _kp_scan(cbuf, length, start, flags, out, _SCRATCH_ROWS, res)
        batches += [
            _new_info(BatchInfo, t) for t in _ROW.iter_unpack(view[: res.count * _ROW_BYTES])
        ]
        start += res.valid_bytes
    if res.error == 0:
        return BatchScan(batches, start)
    code, message = _error(res.error, res.error_position, res.detail, length)
    return BatchScan(batches, start, code, message)


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of `data`, continuing from a previous result `crc`."""
    cbuf = _from_buffer(data)
    return _kp_crc32c(crc, cbuf, len(cbuf))


def crc32c_table(data, crc: int = 0) -> int:
    """CRC-32C through the slice-by-8 table path only (for tests and benchmarks)."""
    cbuf = _from_buffer(data)
    return lib.kp_crc32c_table(crc, cbuf, len(cbuf))


def crc32c_hw(data, crc: int = 0) -> int:
    """CRC-32C through the SSE4.2 path (the table when the CPU lacks SSE4.2)."""
    cbuf = _from_buffer(data)
    return lib.kp_crc32c_hw(crc, cbuf, len(cbuf))


def crc32c_hw_available() -> bool:
    return bool(lib.kp_crc32c_hw_available())


def set_crc32c_impl(force_table: bool) -> bool:
    """Force the table path process-wide (True) or return to auto-detection (False).
    Returns whether the hardware path is now in use. Meant for tests."""
    return bool(lib.kp_crc32c_select(1 if force_table else 0))


def assign_offsets(buf, base_offset: int, leader_epoch: int) -> int:
    """Patch consecutive baseOffsets and the leader epoch into every batch of `buf`
    (both lie outside the CRC); returns the offset after the last batch."""
    cbuf = _from_buffer(buf, require_writable=True)
    nxt = lib.kp_assign_offsets(cbuf, len(cbuf), base_offset, leader_epoch)
    if nxt < 0:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "assign_offsets: malformed batch frame")
    return nxt


def set_log_append_time(buf, ts: int) -> None:
    """Stamp LogAppendTime `ts` as maxTimestamp of every batch and refresh each CRC."""
    cbuf = _from_buffer(buf, require_writable=True)
    if lib.kp_set_log_append_time(cbuf, len(cbuf), ts) < 0:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "set_log_append_time: malformed batch frame")


def _index_buffer(index_buf, entries: int, entry_size: int):
    cbuf = _from_buffer(index_buf)
    if entries < 0 or entries * entry_size > len(cbuf):
        raise ValueError(
            f"index of {len(cbuf)} bytes cannot hold {entries} entries of {entry_size} bytes"
        )
    return cbuf


def offset_index_lookup(index_buf, entries: int, relative_offset: int) -> int:
    """Slot of the greatest offset-index entry with relativeOffset <= target, or -1."""
    return lib.kp_offset_index_lookup(_index_buffer(index_buf, entries, 8), entries, relative_offset)


def time_index_lookup(index_buf, entries: int, ts: int) -> int:
    """Slot of the greatest time-index entry with timestamp <= ts, or -1."""
    return lib.kp_time_index_lookup(_index_buffer(index_buf, entries, 12), entries, ts)
