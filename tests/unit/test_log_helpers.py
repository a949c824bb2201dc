"""Helpers shared by the log tests: a small v2 batch builder and a log factory.

kept private to the log tests so they do not depend on kafkapy.protocol.records.
"""
from __future__ import annotations

import struct

from kafkapy import native
from kafkapy.log import LogConfig, TopicPartition, UnifiedLog


def _varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def make_batch(values: list[bytes], *, base_offset: int = 0, timestamps: list[int] | None = None,
               producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
               transactional: bool = False, control: bool = False, leader_epoch: int = -1) -> bytes:
    """One uncompressed magic-2 batch of `values` (keyless records)."""
    ts = timestamps if timestamps is not None else [1_000 + i for i in range(len(values))]
    first_ts = ts[0]
    recs = bytearray()
    for i, v in enumerate(values):
        body = (b"\x00" + _varint(ts[i] - first_ts) + _varint(i) + _varint(-1)
                + _varint(len(v)) + v + _varint(0))
        recs += _varint(len(body)) + body
    attrs = (0x10 if transactional else 0) | (0x20 if control else 0)
    after_crc = struct.pack(">hiqqqhii", attrs, len(values) - 1, first_ts, max(ts), producer_id,
                            producer_epoch, base_sequence, len(values)) + bytes(recs)
    crc = native.crc32c(after_crc)
    head = struct.pack(">ibI", leader_epoch, 2, crc)
    return struct.pack(">qi", base_offset, len(head) + len(after_crc)) + head + after_crc


def small_config(**kw) -> LogConfig:
    base = dict(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=1200,
                file_delete_delay_ms=0)
    base.update(kw)
    return LogConfig(**base)


def open_log(path, config: LogConfig | None = None, **kw) -> UnifiedLog:
    return UnifiedLog(str(path / "topic-0"), TopicPartition("topic", 0), config or small_config(), **kw)


def read_all(log: UnifiedLog, start: int = 0) -> list[tuple[int, int, bytes]]:
    """(base_offset, last_offset, raw batch) for every batch from `start` to the LEO."""
    out = []
    off = start
    while off < log.log_end_offset:
        info = log.read(off, 1 << 20, log.log_end_offset)
        if not info.records:
            break
        data = info.records.tobytes()
        scan = native.scan_batches(data, allow_gaps=True)
        assert scan.error is None and scan.valid_bytes == len(data)
        for b in scan.batches:
            out.append((b.base_offset, b.last_offset, data[b.position:b.position + b.size]))
        off = scan.batches[-1].last_offset + 1
    return out
