"""Helpers shared by the log tests: batch building and a small-segment log factory."""
from __future__ import annotations

from kafkapy import native
from kafkapy.log import LogConfig, TopicPartition, UnifiedLog
from kafkapy.protocol.records import Record, build_batch


def make_batch(values: list[bytes], *, base_offset: int = 0, timestamps: list[int] | None = None,
               producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
               transactional: bool = False, control: bool = False, leader_epoch: int = -1,
               compression: int = 0) -> bytes:
    """One magic-2 batch of keyless records `values` with deterministic timestamps."""
    ts = timestamps if timestamps is not None else [1_000 + i for i in range(len(values))]
    return build_batch([Record(None, v, timestamp=t) for v, t in zip(values, ts)],
                       base_offset=base_offset, compression=compression, producer_id=producer_id,
                       producer_epoch=producer_epoch, base_sequence=base_sequence,
                       is_transactional=transactional, is_control=control,
                       partition_leader_epoch=leader_epoch)


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
