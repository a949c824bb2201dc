"""Byte-level work of the log cleaner: list the records of a v2 batch (key, tombstone,
offset) without decoding headers, and write a batch that keeps only some of them.

Retained records are copied byte for byte; only the timestamp delta is re-encoded when
the batch's base timestamp changes (a delete horizon is stamped), so headers and values
survive compaction exactly as produced.
"""
from __future__ import annotations

import struct
from typing import Sequence

import attrs

from kafkapy import native
from kafkapy.native import ATTR_DELETE_HORIZON, BatchInfo
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import (
    BATCH_HEADER,
    BATCH_OVERHEAD,
    compress,
    decompress,
    read_varint,
    write_varint,
)

NO_TIMESTAMP = -1
_CRC_START = 21
_CRC_AT = 17


@attrs.define(slots=True)
class RawRecord:
    """One record inside a (decompressed) records blob: blob[start:end] is the whole
    record including its length varint; blob[tail:end] is key, value and headers."""

    start: int
    end: int
    ts_delta: int
    offset_delta: int
    tail: int
    key: bytes | None
    has_value: bool


def delete_horizon_of(info: BatchInfo) -> int:
    """The batch's delete horizon (KIP-534: its base timestamp when the flag is set)."""
    return info.first_timestamp if info.attributes & ATTR_DELETE_HORIZON else NO_TIMESTAMP


def records_blob(batch: bytes | memoryview, info: BatchInfo) -> bytes | memoryview:
    """The records section of the batch at info.position in `batch`, decompressed."""
    body = memoryview(batch)[info.position + BATCH_OVERHEAD: info.position + info.size]
    return decompress(info.compression, body) if info.compression else body


def _varint(buf, pos: int) -> tuple[int, int]:
    """Zig-zag varint; the one-byte case (most lengths and deltas) without a call."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    return read_varint(buf, pos)


def parse_records(blob: bytes | memoryview, count: int) -> list[RawRecord]:
    """Walk `count` records; keys are copied out, values only tested for null."""
    out: list[RawRecord] = []
    pos = 0
    n = len(blob)
    try:
        for _ in range(count):
            length, body = _varint(blob, pos)
            end = body + length
            if length < 1 or end > n:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record length runs past the batch")
            ts_delta, p = _varint(blob, body + 1)
            offset_delta, tail = _varint(blob, p)
            key_len, p = _varint(blob, tail)
            key = None
            if key_len >= 0:
                key = bytes(blob[p: p + key_len])
                p += key_len
            out.append(RawRecord(pos, end, ts_delta, offset_delta, tail, key, blob[p] != 1))
            pos = end
    except IndexError:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record runs past the batch") from None
    if pos != n:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch has bytes after its records")
    return out


def iter_keys(blob: bytes | memoryview, count: int):
    """(offset delta, key) of each record, for building the offset map."""
    pos = 0
    try:
        for _ in range(count):
            length, body = _varint(blob, pos)
            if length < 1:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record length runs past the batch")
            _, p = _varint(blob, body + 1)
            offset_delta, p = _varint(blob, p)
            key_len, p = _varint(blob, p)
            yield offset_delta, (bytes(blob[p: p + key_len]) if key_len >= 0 else None)
            pos = body + length
    except IndexError:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record runs past the batch") from None


def _header(info: BatchInfo, length: int, attributes: int, first_ts: int, max_ts: int,
            count: int) -> bytearray:
    return bytearray(BATCH_HEADER.pack(
        info.base_offset, length, info.partition_leader_epoch, 2, 0, attributes,
        info.last_offset_delta, first_ts, max_ts, info.producer_id, info.producer_epoch,
        info.base_sequence, count))


def _seal(batch: bytearray) -> bytes:
    struct.pack_into(">I", batch, _CRC_AT, native.crc32c(memoryview(batch)[_CRC_START:]))
    return bytes(batch)


def rebuild_batch(info: BatchInfo, blob: bytes | memoryview, records: Sequence[RawRecord],
                  keep: Sequence[int], delete_horizon_ms: int) -> bytes:
    """A batch holding records[keep] with the original base offset, last offset delta
    (so the producer's last sequence is unchanged), producer fields, epoch and codec.

    The base timestamp stays the original one unless a delete horizon is stamped, in
    which case it becomes the horizon and every kept record's timestamp delta is
    re-encoded against it, so each record's absolute timestamp is unchanged."""
    old_base = info.first_timestamp
    new_base = delete_horizon_ms if delete_horizon_ms != NO_TIMESTAMP else old_base
    log_append = info.timestamp_type == 1
    out = bytearray()
    max_ts = NO_TIMESTAMP
    for i in keep:
        r = records[i]
        ts = old_base + r.ts_delta
        if ts > max_ts:
            max_ts = ts
        if new_base == old_base:
            out += blob[r.start: r.end]
            continue
        body = bytearray(b"\x00")
        write_varint(ts - new_base, body)
        write_varint(r.offset_delta, body)
        body += blob[r.tail: r.end]
        write_varint(len(body), out)
        out += body
    if log_append:
        max_ts = info.max_timestamp
    data = compress(info.compression, bytes(out)) if info.compression else out
    attributes = info.attributes & ~ATTR_DELETE_HORIZON
    if delete_horizon_ms != NO_TIMESTAMP:
        attributes |= ATTR_DELETE_HORIZON
    batch = _header(info, BATCH_OVERHEAD - 12 + len(data), attributes, new_base, max_ts, len(keep))
    batch += data
    return _seal(batch)


def empty_batch(info: BatchInfo) -> bytes:
    """A record-less batch with the original offsets and producer fields: it keeps the
    producer's last sequence (and its offsets) once all its records are compacted away."""
    attributes = info.attributes & ~(ATTR_DELETE_HORIZON | 0x07)
    batch = _header(info, BATCH_OVERHEAD - 12, attributes, info.max_timestamp, info.max_timestamp, 0)
    return _seal(batch)


def require_keys(records: bytes | memoryview, batches: Sequence[BatchInfo]) -> None:
    """Produce to a compacted topic: every data record needs a key (Kafka's validator
    refuses the request with INVALID_RECORD), since the cleaner could not keep it."""
    for info in batches:
        if info.is_control:
            continue
        for r in parse_records(records_blob(records, info), info.record_count):
            if r.key is None:
                raise KafkaError(ErrorCode.INVALID_RECORD,
                                 "Compacted topic cannot accept message without key")
