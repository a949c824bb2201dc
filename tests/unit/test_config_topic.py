"""Topic configs: validation, effective values, DescribeConfigs sources, incremental alters."""
from __future__ import annotations

import pytest

from kafkapy.config import KafkaConfig
from kafkapy.config.topic import (
    AlterOp,
    ConfigSource,
    ConfigSynonym,
    apply_incremental,
    describe_broker_configs,
    describe_topic_configs,
    effective_topic_props,
    validate_topic_configs,
)
from kafkapy.protocol.errors import ErrorCode, KafkaError

pytestmark = pytest.mark.unit
Src = ConfigSource


def broker(**extra: str) -> KafkaConfig:
    props = {"zookeeper.connect": "localhost:2181", "broker.id": "0"}
    props.update({k.replace("__", "."): v for k, v in extra.items()})
    return KafkaConfig.from_props(props)


def by_name(entries):
    return {e.name: e for e in entries}


def test_valid_topic_configs_pass():
    validate_topic_configs({"cleanup.policy": "compact,delete", "retention.ms": "-1",
                            "min.insync.replicas": "2", "compression.type": "zstd",
                            "leader.replication.throttled.replicas": "0:1,1:2",
                            "follower.replication.throttled.replicas": "*"})


@pytest.mark.parametrize("configs,message", [
    ({"retention.mss": "1"}, "Unknown topic config name: retention.mss"),
    ({"log.retention.ms": "1"}, "Unknown topic config name: log.retention.ms"),
    ({"segment.bytes": "10"}, "Invalid value '10' for configuration 'segment.bytes': "
                              "value must be at least 14"),
    ({"cleanup.policy": "compact,shred"}, "'shred' is not one of [compact, delete]"),
    ({"min.cleanable.dirty.ratio": "1.5"}, "value must be between 0 and 1"),
    ({"retention.ms": "-2"}, "value must be at least -1"),
    ({"message.timestamp.type": "createtime"}, "not one of [CreateTime, LogAppendTime]"),
    ({"preallocate": "yes"}, "expected true or false"),
    ({"retention.ms": None}, "Null value not supported for topic configs: retention.ms"),
    ({"leader.replication.throttled.replicas": "0-1"}, "[partitionId]:[brokerId]"),
    ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
     "min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
    ({"remote.storage.enable": "true"}, "Tiered storage"),
])
def test_invalid_topic_configs(configs, message):
    with pytest.raises(KafkaError) as err:
        validate_topic_configs(configs)
    assert err.value.code == ErrorCode.INVALID_CONFIG
    assert message in err.value.message


def test_cross_checks_use_broker_defaults():
    b = broker(log__cleaner__max__compaction__lag__ms="100")
    validate_topic_configs({"min.compaction.lag.ms": "500"})
    with pytest.raises(KafkaError, match=r"\(500\) > max.compaction.lag.ms \(100\)"):
        validate_topic_configs({"min.compaction.lag.ms": "500"}, b)


def test_effective_props_follow_broker_synonyms():
    b = broker(log__segment__bytes="5000", log__retention__minutes="3",
               log__roll__hours="2", message__max__bytes="2000", log__cleanup__policy="compact",
               log__flush__interval__ms="700")
    props = effective_topic_props(b, {"segment.bytes": " 9000 ", "preallocate": "TRUE"})
    assert props["segment.bytes"] == "9000"
    assert props["preallocate"] == "true"
    assert props["retention.ms"] == "180000"
    assert props["segment.ms"] == "7200000"
    assert props["max.message.bytes"] == "2000"
    assert props["cleanup.policy"] == "compact"
    assert props["flush.ms"] == "700"
    assert props["min.cleanable.dirty.ratio"] == "0.5"
    assert props["leader.replication.throttled.replicas"] == ""
    assert all(isinstance(v, str) for v in props.values())


def test_effective_props_without_broker_are_topic_defaults():
    props = effective_topic_props(None, {})
    assert props["retention.ms"] == "604800000"
    assert props["segment.bytes"] == "1073741824"
    assert props["flush.messages"] == str(2**63 - 1)


def test_effective_props_feed_log_config():
    from kafkapy.log import LogConfig

    cfg = LogConfig.from_props(effective_topic_props(broker(), {"segment.bytes": "4096"}))
    assert cfg.segment_bytes == 4096
    assert cfg.retention_ms == 604800000


def test_describe_topic_sources_and_synonyms():
    b = broker(log__segment__bytes="5000")
    entries = by_name(describe_topic_configs(b, {"retention.bytes": "100"}))
    rb = entries["retention.bytes"]
    assert (rb.value, rb.source, rb.read_only, rb.is_sensitive, rb.config_type) == \
        ("100", Src.DYNAMIC_TOPIC_CONFIG, False, False, 5)
    assert rb.synonyms == [ConfigSynonym("retention.bytes", "100", 1),
                           ConfigSynonym("log.retention.bytes", "-1", 5)]
    sb = entries["segment.bytes"]
    assert (sb.value, sb.source) == ("5000", Src.STATIC_BROKER_CONFIG)
    assert sb.synonyms == [ConfigSynonym("log.segment.bytes", "5000", 4),
                           ConfigSynonym("log.segment.bytes", "1073741824", 5)]
    cp = entries["cleanup.policy"]
    assert (cp.value, cp.source, cp.config_type) == ("delete", Src.DEFAULT_CONFIG, 7)
    thr = entries["leader.replication.throttled.replicas"]
    assert (thr.source, thr.synonyms) == (Src.DEFAULT_CONFIG, [])
    # Kafka lists retention.ms synonyms only from log.retention.ms on (its dropWhile), so the
    # default log.retention.hours does not show up.
    assert (entries["retention.ms"].value, entries["retention.ms"].synonyms) == ("604800000", [])
    assert entries["min.cleanable.dirty.ratio"].config_type == 6
    assert entries["preallocate"].config_type == 1


def test_describe_topic_dynamic_broker_sources():
    b = broker(log__segment__bytes="5000").with_dynamic(
        {"log.segment.bytes": "6000", "log.retention.ms": "1000"}, {"log.segment.bytes": "7000"})
    entries = by_name(describe_topic_configs(b, {}))
    sb = entries["segment.bytes"]
    assert (sb.value, sb.source) == ("7000", Src.DYNAMIC_BROKER_CONFIG)
    assert [s.source for s in sb.synonyms] == [2, 3, 4, 5]
    rm = entries["retention.ms"]
    assert (rm.value, rm.source) == ("1000", Src.DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert rm.synonyms[0] == ConfigSynonym("log.retention.ms", "1000", 3)


def test_describe_topic_key_filter_and_no_synonyms():
    entries = describe_topic_configs(broker(), {}, ["segment.ms", "bogus"],
                                     include_synonyms=False)
    assert [(e.name, e.value, e.synonyms) for e in entries] == [("segment.ms", "604800000", [])]
    assert len(describe_topic_configs(broker(), {}, [])) > 25


def test_describe_broker_configs():
    b = broker(num__io__threads="4", ssl__key__password="secret").with_dynamic(
        {"log.cleaner.threads": "2"}, {"num.io.threads": "6"})
    entries = by_name(describe_broker_configs(b))
    io = entries["num.io.threads"]
    assert (io.value, io.source, io.read_only) == ("6", Src.DYNAMIC_BROKER_CONFIG, False)
    assert io.synonyms == [ConfigSynonym("num.io.threads", "6", 2),
                           ConfigSynonym("num.io.threads", "4", 4),
                           ConfigSynonym("num.io.threads", "8", 5)]
    bid = entries["broker.id"]
    assert (bid.value, bid.source, bid.read_only) == ("0", Src.STATIC_BROKER_CONFIG, True)
    np = entries["num.partitions"]
    assert (np.value, np.source) == ("1", Src.DEFAULT_CONFIG)
    pw = entries["ssl.key.password"]
    assert (pw.value, pw.is_sensitive, pw.config_type) == (None, True, 9)
    assert all(s.value is None for s in pw.synonyms)
    lr = entries["log.retention.ms"]
    assert (lr.value, lr.source) == (None, Src.DEFAULT_CONFIG)
    hours = entries["log.retention.hours"]
    assert hours.synonyms == [ConfigSynonym("log.retention.hours", "168", 5)]
    default = describe_broker_configs(b, per_broker=False)
    assert [(e.name, e.value, e.source) for e in default] == [
        ("log.cleaner.threads", "2", Src.DYNAMIC_DEFAULT_BROKER_CONFIG)]
    assert default[0].synonyms == [ConfigSynonym("log.cleaner.threads", "2", 3)]


def test_incremental_set_delete():
    out = apply_incremental({"retention.ms": "1000", "segment.bytes": "2000"},
                            [("retention.ms", AlterOp.DELETE, None),
                             ("max.message.bytes", AlterOp.SET, "500")], "topic")
    assert out == {"segment.bytes": "2000", "max.message.bytes": "500"}


def test_incremental_append_subtract_lists():
    out = apply_incremental({}, [("cleanup.policy", AlterOp.APPEND, "compact")], "topic")
    assert out == {"cleanup.policy": "delete,compact"}
    out = apply_incremental(out, [("cleanup.policy", AlterOp.APPEND, "compact")], "topic")
    assert out == {"cleanup.policy": "delete,compact"}
    out = apply_incremental(out, [("cleanup.policy", AlterOp.SUBTRACT, "delete")], "topic")
    assert out == {"cleanup.policy": "compact"}
    out = apply_incremental({}, [("leader.replication.throttled.replicas", 2, "0:1,1:2")],
                            "topic")
    assert out == {"leader.replication.throttled.replicas": "0:1,1:2"}


@pytest.mark.parametrize("ops,code,message", [
    ([("retention.ms", AlterOp.APPEND, "1000")], ErrorCode.INVALID_REQUEST,
     "Config value append is not allowed for config key: retention.ms"),
    ([("retention.ms", AlterOp.SUBTRACT, "1000")], ErrorCode.INVALID_REQUEST,
     "Config value subtract is not allowed for config key: retention.ms"),
    ([("bogus", AlterOp.APPEND, "x")], ErrorCode.INVALID_CONFIG,
     "Unknown topic config name: bogus"),
    ([("bogus", AlterOp.SET, "x")], ErrorCode.INVALID_CONFIG, "Unknown topic config name: bogus"),
    ([("retention.ms", AlterOp.SET, "1"), ("retention.ms", AlterOp.DELETE, None)],
     ErrorCode.INVALID_REQUEST, "duplicate config keys"),
    ([("retention.ms", AlterOp.SET, None)], ErrorCode.INVALID_REQUEST, "Null value"),
    ([("retention.ms", 7, "1")], ErrorCode.INVALID_REQUEST, "Unknown alter config operation"),
    ([("min.cleanable.dirty.ratio", AlterOp.SET, "1.1")], ErrorCode.INVALID_CONFIG,
     "between 0 and 1"),
])
def test_incremental_errors(ops, code, message):
    with pytest.raises(KafkaError) as err:
        apply_incremental({"retention.ms": "5"}, ops, "topic")
    assert err.value.code == code
    assert message in err.value.message


def test_incremental_broker_kind():
    out = apply_incremental({}, [("log.cleanup.policy", AlterOp.APPEND, "compact"),
                                 ("num.io.threads", AlterOp.SET, "4")], "broker")
    assert out == {"log.cleanup.policy": "delete,compact", "num.io.threads": "4"}
    with pytest.raises(KafkaError) as err:
        apply_incremental({}, [("log.dirs", AlterOp.SET, "/x")], "broker")
    assert err.value.code == ErrorCode.INVALID_REQUEST
    assert "Cannot update these configs dynamically: Set(log.dirs)" == err.value.message
    with pytest.raises(ValueError):
        apply_incremental({}, [], "group")
