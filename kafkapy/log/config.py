"""LogConfig: the topic-level settings one log obeys (Kafka's names and 3.7 defaults)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import attrs

from kafkapy.protocol.errors import ErrorCode, KafkaError

_LONG_MAX = 2**63 - 1


def _bool(v: str) -> bool:
    s = v.strip().lower()
    if s not in ("true", "false"):
        raise ValueError(f"expected true/false, got {v!r}")
    return s == "true"


@attrs.define(slots=True)
class LogConfig:
    """Per-log settings; a topic config change replaces the whole object on the log."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    segment_jitter_ms: int = 0
    retention_ms: int = 604800000
    retention_bytes: int = -1
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10485760
    flush_messages: int = _LONG_MAX
    flush_ms: int = _LONG_MAX
    max_message_bytes: int = 1048588
    message_timestamp_type: str = "CreateTime"
    cleanup_policy: str = "delete"
    file_delete_delay_ms: int = 60000
    min_insync_replicas: int = 1
    unclean_leader_election_enable: bool = False
    compression_type: str = "producer"
    # read by Fetch v0-3 (kafka-node) on every request: kept here, current with dynamic topic
    # config changes, so a legacy fetch never waits on (or fails with) ZooKeeper
    message_downconversion_enable: bool = True
    # Log compaction (read by the log cleaner, kafkapy.log.cleaner*).
    delete_retention_ms: int = 86400000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = _LONG_MAX

    @classmethod
    def from_props(cls, props: Mapping[str, str], base: "LogConfig | None" = None) -> "LogConfig":
        """Build from topic-level keys (`segment.bytes`...) on top of `base` (or defaults).

        Unknown keys are ignored here: topic configs unrelated to the log (e.g.
        `follower.replication.throttled.replicas`) are validated by kafkapy.config.topic.
        """
        values: dict[str, Any] = attrs.asdict(base) if base is not None else {}
        for key, raw in props.items():
            spec = _KEYS.get(key)
            if spec is None:
                continue
            attr, conv = spec
            try:
                values[attr] = conv(str(raw))
            except ValueError as exc:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"{key}={raw!r}: {exc}") from None
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Reject values Kafka rejects, so a bad config never reaches the hot path."""
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"message.timestamp.type={self.message_timestamp_type}")
        if self.segment_bytes < 14:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"segment.bytes={self.segment_bytes}")
        if self.segment_index_bytes < 12:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"segment.index.bytes={self.segment_index_bytes}")
        if self.segment_ms < 1 or self.index_interval_bytes < 0 or self.max_message_bytes < 0:
            raise KafkaError(ErrorCode.INVALID_CONFIG, "negative or zero size/time setting")

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def delete_enabled(self) -> bool:
        return "delete" in self.cleanup_policy.replace(" ", "").split(",")

    @property
    def compact_enabled(self) -> bool:
        return "compact" in self.cleanup_policy.replace(" ", "").split(",")


_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "segment.bytes": ("segment_bytes", int),
    "segment.ms": ("segment_ms", int),
    "segment.jitter.ms": ("segment_jitter_ms", int),
    "retention.ms": ("retention_ms", int),
    "retention.bytes": ("retention_bytes", int),
    "index.interval.bytes": ("index_interval_bytes", int),
    "segment.index.bytes": ("segment_index_bytes", int),
    "flush.messages": ("flush_messages", int),
    "flush.ms": ("flush_ms", int),
    "max.message.bytes": ("max_message_bytes", int),
    "message.timestamp.type": ("message_timestamp_type", str),
    "cleanup.policy": ("cleanup_policy", str),
    "file.delete.delay.ms": ("file_delete_delay_ms", int),
    "min.insync.replicas": ("min_insync_replicas", int),
    "unclean.leader.election.enable": ("unclean_leader_election_enable", _bool),
    "compression.type": ("compression_type", str),
    "message.downconversion.enable": ("message_downconversion_enable", _bool),
    "delete.retention.ms": ("delete_retention_ms", int),
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", float),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", int),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", int),
}
