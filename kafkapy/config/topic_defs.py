"""Topic-level config definitions (LogConfig's keys), their broker synonyms, validation and the effective
per-topic values.

A topic's value comes from its override in `/config/topics/<t>`, else from the broker key that
is its synonym (`retention.ms` <- `log.retention.ms`/`.minutes`/`.hours`, ...), else from the
topic default. The same synonym table drives DescribeConfigs (see `describe.py`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..protocol.errors import ErrorCode, KafkaError
from .broker_defs import CLEANUP_POLICIES, COMPRESSION_TYPES, LATEST_MESSAGE_FORMAT, \
    TIMESTAMP_TYPES, VERSION, at_least, between
from .definitions import LONG_MAX, ConfigDef, ConfigError, ConfigType, OneOf, Predicate, \
    to_string

if TYPE_CHECKING:
    from .broker import KafkaConfig

B, S, I, L, D, LI = (ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.LONG,
                     ConfigType.DOUBLE, ConfigType.LIST)


def _check_throttled(value: list[str]) -> str | None:
    """`*`, or `partition:brokerId` pairs (leader/follower.replication.throttled.replicas)."""
    if value == ["*"] or not value:
        return None
    for item in value:
        part, sep, broker = item.partition(":")
        if not (sep and part.strip().isdigit() and broker.strip().isdigit()):
            return ("must be the wildcard (*) or a list of replicas in the format "
                    "[partitionId]:[brokerId],[partitionId]:[brokerId],...")
    return None


TOPIC_DEFS = ConfigDef()
_d = TOPIC_DEFS.define
_d("cleanup.policy", LI, "delete", OneOf(CLEANUP_POLICIES))
_d("compression.type", S, "producer", OneOf(COMPRESSION_TYPES))
_d("delete.retention.ms", L, 86400000, at_least(0))
_d("file.delete.delay.ms", L, 60000, at_least(0))
_d("flush.messages", L, LONG_MAX, at_least(1))
_d("flush.ms", L, LONG_MAX, at_least(0))
_d("follower.replication.throttled.replicas", LI, "", Predicate(_check_throttled, "replicas"))
_d("index.interval.bytes", I, 4096, at_least(0))
_d("leader.replication.throttled.replicas", LI, "", Predicate(_check_throttled, "replicas"))
_d("local.retention.bytes", L, -2, at_least(-2))
_d("local.retention.ms", L, -2, at_least(-2))
_d("max.compaction.lag.ms", L, LONG_MAX, at_least(1))
_d("max.message.bytes", I, 1048588, at_least(0))
_d("message.downconversion.enable", B, True)
_d("message.format.version", S, LATEST_MESSAGE_FORMAT, VERSION)
_d("message.timestamp.after.max.ms", L, LONG_MAX, at_least(0))
_d("message.timestamp.before.max.ms", L, LONG_MAX, at_least(0))
_d("message.timestamp.difference.max.ms", L, LONG_MAX, at_least(0))
_d("message.timestamp.type", S, "CreateTime", OneOf(TIMESTAMP_TYPES))
_d("min.cleanable.dirty.ratio", D, 0.5, between(0, 1))
_d("min.compaction.lag.ms", L, 0, at_least(0))
_d("min.insync.replicas", I, 1, at_least(1))
_d("preallocate", B, False)
_d("remote.storage.enable", B, False)
_d("retention.bytes", L, -1)
_d("retention.ms", L, 604800000, at_least(-1))
_d("segment.bytes", I, 1073741824, at_least(14))
_d("segment.index.bytes", I, 10485760, at_least(4))
_d("segment.jitter.ms", L, 0, at_least(0))
_d("segment.ms", L, 604800000, at_least(1))
_d("unclean.leader.election.enable", B, False)

# topic key -> its broker synonyms, highest precedence first (Kafka's TopicConfigSynonyms).
TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "segment.bytes": ("log.segment.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "segment.jitter.ms": ("log.roll.jitter.ms", "log.roll.jitter.hours"),
    "segment.index.bytes": ("log.index.size.max.bytes",),
    "flush.messages": ("log.flush.interval.messages",),
    "flush.ms": ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
    "retention.bytes": ("log.retention.bytes",),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "max.message.bytes": ("message.max.bytes",),
    "index.interval.bytes": ("log.index.interval.bytes",),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms",),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms",),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms",),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms",),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio",),
    "cleanup.policy": ("log.cleanup.policy",),
    "unclean.leader.election.enable": ("unclean.leader.election.enable",),
    "min.insync.replicas": ("min.insync.replicas",),
    "compression.type": ("compression.type",),
    "preallocate": ("log.preallocate",),
    "message.format.version": ("log.message.format.version",),
    "message.timestamp.type": ("log.message.timestamp.type",),
    "message.timestamp.difference.max.ms": ("log.message.timestamp.difference.max.ms",),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms",),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms",),
    "message.downconversion.enable": ("log.message.downconversion.enable",),
    "local.retention.ms": ("log.local.retention.ms",),
    "local.retention.bytes": ("log.local.retention.bytes",),
}

# Broker values that are derived from several keys rather than read from one.
_DERIVED = {
    "retention.ms": "log_retention_ms",
    "segment.ms": "log_roll_ms",
    "segment.jitter.ms": "log_roll_jitter_ms",
    "flush.ms": "log_flush_interval_ms",
}


def broker_synonyms(name: str) -> tuple[str, ...]:
    """Broker keys that together set `name` (Kafka's brokerConfigSynonyms)."""
    for group in TOPIC_SYNONYMS.values():
        if name in group and len(group) > 1:
            return group
    return (name,)


def _invalid(msg: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_CONFIG, msg)


def parse_topic_configs(configs: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values of the given overrides; KafkaError(INVALID_CONFIG) on any problem."""
    nulls = [k for k, v in configs.items() if v is None]
    if nulls:
        raise _invalid(f"Null value not supported for topic configs: {','.join(nulls)}")
    typed: dict[str, Any] = {}
    for name, raw in configs.items():
        key = TOPIC_DEFS.get(name)
        if key is None:
            raise _invalid(f"Unknown topic config name: {name}")
        try:
            typed[name] = key.parse(raw)
        except ConfigError as exc:
            raise _invalid(str(exc)) from exc
    return typed


def validate_topic_configs(configs: Mapping[str, Any],
                           broker_cfg: KafkaConfig | None = None) -> None:
    """Check a topic's overrides as CreateTopics / AlterConfigs / kafka-configs.sh send them.
    Cross-key rules use the broker defaults when `broker_cfg` is given."""
    typed = parse_topic_configs(configs)
    if typed.get("remote.storage.enable"):
        raise _invalid("Tiered storage (remote.storage.enable=true) is not supported by kafkapy")
    defaults = effective_topic_props(broker_cfg, {}) if broker_cfg is not None else \
        TOPIC_DEFS.default_strings()

    def value(name: str) -> Any:
        return typed[name] if name in typed else TOPIC_DEFS[name].parse(defaults[name])

    min_lag, max_lag = value("min.compaction.lag.ms"), value("max.compaction.lag.ms")
    if min_lag > max_lag:
        raise _invalid(f"conflict topic config setting min.compaction.lag.ms ({min_lag}) > "
                       f"max.compaction.lag.ms ({max_lag})")


def broker_default_for(broker_cfg: KafkaConfig, name: str) -> str | None:
    """The broker-level value of topic key `name` as a string (None: no broker synonym)."""
    if name in _DERIVED:
        return str(getattr(broker_cfg, _DERIVED[name]))
    synonyms = TOPIC_SYNONYMS.get(name)
    if not synonyms:
        return None
    return to_string(TOPIC_DEFS[name].type, broker_cfg.get(synonyms[0]))


def effective_topic_props(broker_cfg: KafkaConfig | None,
                          overrides: Mapping[str, Any]) -> dict[str, str]:
    """Every topic key as a string: override > broker synonym > topic default. Overrides are
    normalised through their type (" 1000 " -> "1000"); ready for LogConfig.from_props."""
    typed = parse_topic_configs(overrides)
    props: dict[str, str] = {}
    for name, key in TOPIC_DEFS.keys.items():
        if name in typed:
            text = to_string(key.type, typed[name])
        elif broker_cfg is not None and name in TOPIC_SYNONYMS:
            text = broker_default_for(broker_cfg, name)
        else:
            text = key.default_string()
        props[name] = "" if text is None else text
    return props


def topic_config_type(name: str) -> ConfigType:
    return TOPIC_DEFS.type_of(name)
