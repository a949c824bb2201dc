"""Conversion between legacy message sets (magic 0/1) and stored v2 record batches.

kafka-node 5.0.0 only speaks pre-0.11 Kafka: it produces magic 0 (Produce v0-1) or magic 1
(Produce v2) and can only read magic 0/1. The log stores v2 batches only, so, as Kafka 3.x
does, legacy data is converted at the edges: up on produce, down on fetch. Only legacy
clients pay for it; the v3+/v4+ paths never come here.

Choices (documented because Kafka leaves some open):
* Up-conversion builds ONE v2 batch per partition, offsets 0..n-1 (kafka-node's compressed
  wrappers carry inner offsets that are all 0, so the source offsets are never trusted),
  keeps keys, values and CreateTime stamps (magic 0 has none: -1, NO_TIMESTAMP, as Kafka),
  and keeps the producer's codec (the first compressed wrapper's codec).
* Down-conversion writes one message per record for uncompressed batches and one wrapper
  per batch for gzip/snappy batches (for magic 1 the wrapper offset is the last inner
  offset and inner offsets are relative, which is what kafka-node decodes). lz4 and zstd
  batches are re-compressed with gzip: every legacy reader has gzip, few have lz4 framing
  of that era and none has zstd. Control batches are skipped, headers are dropped (legacy
  formats have none), records before the fetch offset are left out.
"""
from __future__ import annotations

from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import (
    GZIP,
    LZ4,
    SNAPPY,
    ZSTD,
    Record,
    build_batch,
    build_message_set,
    iter_batches,
    iter_legacy_messages,
)

#: Conversions of more than this many bytes run in a worker thread (pure Python, ~75 ms per
#: MiB), so the event loop keeps answering other clients (kafka-node's ApiVersions: 500 ms).
OFFLOAD_BYTES = 32 * 1024

MAGIC_OFFSET = 16  # offset(8) + length(4) + crc(4): same place in legacy sets and v2 batches


def magic_of(records: bytes | memoryview) -> int:
    """Magic byte of the first message/batch, or -1 when the data is too short to say."""
    return records[MAGIC_OFFSET] if len(records) > MAGIC_OFFSET else -1


def fetch_magic(fetch_version: int) -> int:
    """The message format a Fetch version may carry: v0-1 => 0, v2-3 => 1, v4+ => 2."""
    if fetch_version <= 1:
        return 0
    return 1 if fetch_version <= 3 else 2


def upconvert(message_set: bytes | memoryview) -> bytes:
    """A magic 0/1 message set from a Produce v0-2 request as one v2 batch.

    Raises KafkaError: CORRUPT_MESSAGE for a bad CRC-32 or a torn message, INVALID_RECORD
    for a magic 2 batch or an empty set."""
    magic = magic_of(message_set)
    if magic not in (0, 1):
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"Produce v0-2 carries magic 0/1 message sets, not magic {magic}")
    records: list[Record] = []
    codec = 0
    for m in iter_legacy_messages(message_set):
        if m.compression and not codec:
            codec = m.compression
        records.append(Record(m.key, m.value, [], m.timestamp))
    if not records:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request without messages")
    return build_batch(records, compression=codec)


def _convert_batch(recs: list[Record], codec: int, magic: int, timestamp_type: int) -> list[bytes]:
    """Legacy units (messages or one wrapper) for the records of one v2 batch."""
    if codec in (LZ4, ZSTD):
        codec = GZIP
    if codec in (GZIP, SNAPPY):
        return [build_message_set(recs, magic=magic, compression=codec,
                                  timestamp_type=timestamp_type)]
    return [build_message_set([r], magic=magic, timestamp_type=timestamp_type) for r in recs]


def downconvert(data: bytes | memoryview, magic: int, fetch_offset: int, max_bytes: int) -> bytes:
    """Stored v2 batches as a magic 0/1 message set of at most `max_bytes` bytes.

    Only whole messages (or whole wrappers) are returned; the first one is returned even
    when it alone is larger than `max_bytes`, so a consumer can always make progress."""
    if magic not in (0, 1):
        raise ValueError(f"down-conversion target must be magic 0 or 1, not {magic}")
    out: list[bytes] = []
    size = 0
    for batch in iter_batches(data, allow_truncated=True):
        info = batch.info
        if info.is_control:
            continue
        recs = [r for r in batch.records if r.offset >= fetch_offset]
        if not recs:
            continue
        if magic == 0:
            for r in recs:
                r.timestamp = -1
        for unit in _convert_batch(recs, info.compression, magic, info.timestamp_type):
            if out and size + len(unit) > max_bytes:
                return b"".join(out)
            out.append(unit)
            size += len(unit)
    return b"".join(out)
