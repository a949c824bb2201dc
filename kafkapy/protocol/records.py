"""Record batches outside the hot path: build and read magic-2 batches record by record,
plus legacy magic 0/1 message sets for format conversion.

Produce never comes here (it only scans headers natively); the group coordinator, the
transaction markers, tools, tests and down/up-conversion do. Pure Python on purpose:
these paths are rare and clarity beats speed. Compression goes through cramjam.
"""
from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable, Iterator

import attrs
import cramjam

from kafkapy import native
from kafkapy.native import BatchInfo
from kafkapy.protocol.errors import ErrorCode, KafkaError

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

CONTROL_ABORT, CONTROL_COMMIT = 0, 1

BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_OVERHEAD = BATCH_HEADER.size  # 61
_CRC_START = 21

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024


@attrs.define(slots=True)
class Record:
    """One record. `offset` and `is_control` are filled by the readers; on build an
    offset >= 0 fixes the record's offset (gaps model compacted batches)."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = attrs.field(factory=list)
    timestamp: int | None = None
    offset: int = -1
    is_control: bool = False


@attrs.define(slots=True)
class RecordBatch:
    """A decoded v2 batch: its header (as the native scan reports it) and its records."""

    info: BatchInfo
    records: list[Record]


# ---- compression --------------------------------------------------------------------


def compress(codec: int, data: bytes) -> bytes:
    """Compress a records blob the way Java producers do: standard gzip, xerial-framed
    snappy, LZ4 frame with independent blocks (Kafka decodes each block on its own),
    standard zstd frame."""
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == SNAPPY:
        out = [_XERIAL_HEADER]
        for i in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[i : i + _XERIAL_BLOCK]))
            out += (struct.pack(">i", len(block)), block)
        return b"".join(out)
    if codec == LZ4:
        comp = cramjam.lz4.Compressor(block_linked=False, content_checksum=False)
        comp.compress(data)
        return bytes(comp.finish())
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown codec {codec}")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Inverse of `compress`; snappy may be xerial-framed (Java) or raw (librdkafka)."""
    try:
        if codec == GZIP:
            return bytes(cramjam.gzip.decompress(bytes(data)))
        if codec == SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        if codec == ZSTD:
            return bytes(cramjam.zstd.decompress(bytes(data)))
    except cramjam.DecompressionError as e:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"{CODEC_NAMES[codec]}: {e}") from e
    raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown codec {codec}")


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    pos, out = len(_XERIAL_HEADER), []
    while pos < len(data):
        if pos + 4 > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "snappy: torn xerial block header")
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if n < 0 or pos + n > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "snappy: torn xerial block")
        out.append(bytes(cramjam.snappy.decompress_raw(data[pos : pos + n])))
        pos += n
    return b"".join(out)


# ---- varints (zig-zag, as protobuf sint) ------------------------------------------


def write_varint(value: int, out: bytearray) -> None:
    """Append `value` zig-zag encoded (64-bit range)."""
    v = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Zig-zag varint at `pos` -> (value, next position)."""
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: varint longer than 10 bytes")
    return (result >> 1) ^ -(result & 1), pos


def _write_bytes(data: bytes | str | None, out: bytearray) -> None:
    if data is None:
        write_varint(-1, out)
        return
    if isinstance(data, str):
        data = data.encode()
    write_varint(len(data), out)
    out += data


def _read_bytes(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > len(buf):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: field runs past the end")
    return bytes(buf[pos : pos + n]), pos + n


# ---- magic 2 -------------------------------------------------------------------------


def _encode_record(rec: Record, offset_delta: int, ts_delta: int) -> bytes:
    body = bytearray(b"\x00")  # record attributes: unused, always 0
    write_varint(ts_delta, body)
    write_varint(offset_delta, body)
    _write_bytes(rec.key, body)
    _write_bytes(rec.value, body)
    write_varint(len(rec.headers), body)
    for hk, hv in rec.headers:
        _write_bytes(hk, body)
        _write_bytes(hv, body)
    out = bytearray()
    write_varint(len(body), out)
    return bytes(out + body)


def build_batch(
    records: Iterable[Record],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: int = 0,
) -> bytes:
    """One v2 batch with a correct CRC-32C. Records without a timestamp get the current
    time; records with offset >= 0 keep it (the batch then has offset gaps)."""
    recs = list(records)
    if not recs:
        raise ValueError("a record batch needs at least one record")
    now = int(time.time() * 1000)
    stamps = [now if r.timestamp is None else r.timestamp for r in recs]
    base_ts = stamps[0]
    deltas = [i if r.offset < 0 else r.offset - base_offset for i, r in enumerate(recs)]
    if any(b <= a for a, b in zip(deltas, deltas[1:])) or deltas[0] < 0:
        raise ValueError("record offsets must increase from base_offset")
    blob = b"".join(_encode_record(r, d, t - base_ts) for r, d, t in zip(recs, deltas, stamps))
    if compression:
        blob = compress(compression, blob)
    attributes = (
        (compression & 0x07)
        | (0x08 if timestamp_type else 0)
        | (0x10 if is_transactional else 0)
        | (0x20 if is_control else 0)
    )
    header = bytearray(
        BATCH_HEADER.pack(
            base_offset, BATCH_OVERHEAD - 12 + len(blob), partition_leader_epoch, 2, 0,
            attributes, deltas[-1], base_ts, max(stamps), producer_id, producer_epoch,
            base_sequence, len(recs),
        )
    )
    batch = header + blob
    struct.pack_into(">I", batch, 17, native.crc32c(memoryview(batch)[_CRC_START:]))
    return bytes(batch)


def decode_batch(batch: bytes | memoryview, info: BatchInfo) -> list[Record]:
    """Records of one already-validated batch (`info` from the native scan)."""
    mv = memoryview(batch)[info.position : info.position + info.size]
    blob: bytes | memoryview = mv[BATCH_OVERHEAD:]
    if info.compression:
        blob = memoryview(decompress(info.compression, blob))
    log_append = info.timestamp_type == 1
    control = info.is_control
    out: list[Record] = []
    pos = 0
    for _ in range(info.record_count):
        length, pos = read_varint(blob, pos)
        end = pos + length
        if length < 1 or end > len(blob):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: length runs past the batch")
        ts_delta, p = read_varint(blob, pos + 1)
        offset_delta, p = read_varint(blob, p)
        key, p = _read_bytes(blob, p)
        value, p = _read_bytes(blob, p)
        n_headers, p = read_varint(blob, p)
        if n_headers < 0:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: negative header count")
        headers = []
        for _h in range(n_headers):
            hk, p = _read_bytes(blob, p)
            hv, p = _read_bytes(blob, p)
            if hk is None:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: null header key")
            headers.append((hk.decode("utf-8", "replace"), hv))
        if p != end:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record: length disagrees with fields")
        pos = end
        ts = info.max_timestamp if log_append else info.first_timestamp + ts_delta
        out.append(Record(key, value, headers, ts, info.base_offset + offset_delta, control))
    if pos != len(blob):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch has bytes after its records")
    return out


def iter_batches(buf: bytes | memoryview, *, allow_truncated: bool = False) -> Iterator[RecordBatch]:
    """Decode every v2 batch of `buf`. A bad batch raises KafkaError; a torn tail (as at
    the end of a fetch response) is skipped only when `allow_truncated`."""
    scan = native.scan_batches(buf, allow_gaps=True)
    for info in scan.batches:
        yield RecordBatch(info, decode_batch(buf, info))
    if scan.error is not None and not (allow_truncated and _is_torn_tail(buf, scan.valid_bytes)):
        raise KafkaError(scan.error, scan.error_message)


def iter_records(batch: bytes | memoryview, *, allow_truncated: bool = False) -> Iterator[Record]:
    """Every record (control records included, flagged `is_control`) of a run of batches."""
    for b in iter_batches(batch, allow_truncated=allow_truncated):
        yield from b.records


def _is_torn_tail(buf: bytes | memoryview, pos: int) -> bool:
    rest = len(buf) - pos
    if rest < 12:
        return True
    (blen,) = struct.unpack_from(">i", buf, pos + 8)
    return blen >= 14 and 12 + blen > rest


def control_record(kind: int, coordinator_epoch: int, timestamp: int | None = None) -> Record:
    """The single record of a transaction marker batch (build with is_control=True)."""
    return Record(struct.pack(">hh", 0, kind), struct.pack(">hi", 0, coordinator_epoch),
                  [], timestamp)


def parse_control_record(rec: Record) -> tuple[int, int]:
    """(kind, coordinator_epoch) of a control record (coordinator_epoch -1 if absent)."""
    if rec.key is None or len(rec.key) < 4:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "control record key too short")
    _, kind = struct.unpack_from(">hh", rec.key)
    epoch = struct.unpack_from(">hi", rec.value)[1] if rec.value and len(rec.value) >= 6 else -1
    return kind, epoch


# ---- legacy magic 0/1 ------------------------------------------------------------------


@attrs.define(slots=True)
class LegacyMessage:
    """One (inner) message of a magic 0/1 message set, offsets made absolute.
    `timestamp` is -1 for magic 0; `timestamp_type` 1 = LogAppendTime (from the wrapper
    when the message was compressed); `compression` is the wrapper's codec."""

    offset: int
    magic: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    compression: int = 0


def _legacy_message(offset: int, magic: int, attributes: int, timestamp: int,
                    key: bytes | None, value: bytes | None) -> bytes:
    body = bytearray(struct.pack(">bb", magic, attributes))
    if magic == 1:
        body += struct.pack(">q", timestamp)
    for field in (key, value):
        if field is None:
            body += struct.pack(">i", -1)
        else:
            body += struct.pack(">i", len(field)) + field
    crc = zlib.crc32(body)
    return struct.pack(">qiI", offset, len(body) + 4, crc) + body


def build_message_set(
    records: Iterable[Record],
    *,
    magic: int,
    base_offset: int = 0,
    compression: int = 0,
    timestamp_type: int = 0,
) -> bytes:
    """A legacy message set. Uncompressed: one message per record. Compressed: one
    wrapper whose value is the compressed inner set; inner offsets are absolute for
    magic 0 and relative (0..n-1) for magic 1, and the wrapper carries the last offset."""
    if magic not in (0, 1):
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    if compression == LZ4 and magic == 0:
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "lz4 needs magic 1")
    recs = list(records)
    now = int(time.time() * 1000)
    stamps = [(now if r.timestamp is None else r.timestamp) if magic else -1 for r in recs]
    offsets = [base_offset + i if r.offset < 0 else r.offset for i, r in enumerate(recs)]
    ts_bit = 0x08 if (timestamp_type and magic == 1) else 0
    if not compression:
        return b"".join(_legacy_message(o, magic, ts_bit, t, r.key, r.value)
                        for o, r, t in zip(offsets, recs, stamps))
    if not recs:
        raise ValueError("a compressed message set needs at least one record")
    inner = b"".join(
        _legacy_message(o - offsets[0] if magic == 1 else o, magic, 0, t, r.key, r.value)
        for o, r, t in zip(offsets, recs, stamps)
    )
    wrapper_ts = max(stamps) if magic == 1 else -1
    return _legacy_message(offsets[-1], magic, compression | ts_bit, wrapper_ts, None,
                           compress(compression, inner))


def iter_legacy_messages(buf: bytes | memoryview, *, allow_truncated: bool = False,
                         _depth: int = 0) -> Iterator[LegacyMessage]:
    """Walk a magic 0/1 message set, checking each CRC-32 and expanding compressed
    wrappers into their inner messages."""
    mv = memoryview(buf)
    pos = 0
    while pos < len(mv):
        if len(mv) - pos < 12:
            if allow_truncated:
                return
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"torn message header at byte {pos}")
        offset, size = struct.unpack_from(">qi", mv, pos)
        if size < 14:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"message at byte {pos}: size {size}")
        if pos + 12 + size > len(mv):
            if allow_truncated:
                return
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"torn message at byte {pos}")
        msg = mv[pos + 12 : pos + 12 + size]
        pos += 12 + size
        (crc,) = struct.unpack_from(">I", msg, 0)
        if zlib.crc32(msg[4:]) != crc:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"message at offset {offset}: bad CRC")
        magic, attributes = msg[4], msg[5]
        if magic > 1:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"magic {magic} in a legacy message set")
        p = 6
        timestamp = -1
        if magic == 1:
            (timestamp,) = struct.unpack_from(">q", msg, p)
            p += 8
        key, p = _legacy_bytes(msg, p)
        value, p = _legacy_bytes(msg, p)
        ts_type = (attributes >> 3) & 1 if magic == 1 else 0
        codec = attributes & 0x07
        if not codec:
            yield LegacyMessage(offset, magic, timestamp, ts_type, key, value)
            continue
        if _depth or value is None:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "nested or empty compressed wrapper")
        inner = list(iter_legacy_messages(decompress(codec, value), _depth=1))
        last_rel = inner[-1].offset if inner else 0
        for m in inner:
            m.offset = offset - last_rel + m.offset if magic == 1 else m.offset
            if magic == 1 and ts_type == 1:
                m.timestamp = timestamp
            m.timestamp_type = ts_type
            m.compression = codec
            yield m


def _legacy_bytes(msg: memoryview, p: int) -> tuple[bytes | None, int]:
    if p + 4 > len(msg):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "message field runs past the end")
    (n,) = struct.unpack_from(">i", msg, p)
    p += 4
    if n < 0:
        return None, p
    if p + n > len(msg):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "message field runs past the end")
    return bytes(msg[p : p + n]), p + n
