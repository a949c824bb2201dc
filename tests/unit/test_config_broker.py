"""KafkaConfig: Kafka defaults, errors, derived values, listeners, dynamic overlay."""
from __future__ import annotations

import pytest

from kafkapy.config import ConfigError, Endpoint, KafkaConfig
from kafkapy.config.broker import DYNAMIC_BROKER_CONFIGS, validate_dynamic_broker_configs
from kafkapy.protocol.errors import ErrorCode, KafkaError

pytestmark = pytest.mark.unit
ZK = {"zookeeper.connect": "localhost:2181"}


def make(props: dict) -> KafkaConfig:
    return KafkaConfig.from_props({**ZK, **props})


def test_defaults_are_kafkas():
    c = make({})
    expected = {
        "broker.id": -1, "num.partitions": 1, "default.replication.factor": 1,
        "log.segment.bytes": 1073741824, "log.retention.hours": 168, "log.retention.bytes": -1,
        "log.index.interval.bytes": 4096, "log.index.size.max.bytes": 10485760,
        "message.max.bytes": 1048588, "socket.request.max.bytes": 104857600,
        "zookeeper.session.timeout.ms": 18000, "replica.lag.time.max.ms": 30000,
        "offsets.topic.replication.factor": 3, "offsets.topic.num.partitions": 50,
        "transaction.state.log.min.isr": 2, "group.initial.rebalance.delay.ms": 3000,
        "group.max.session.timeout.ms": 1800000, "auto.create.topics.enable": True,
        "unclean.leader.election.enable": False, "log.cleanup.policy": ["delete"],
        "log.cleaner.min.cleanable.ratio": 0.5, "compression.type": "producer",
        "log.message.timestamp.type": "CreateTime", "controlled.shutdown.max.retries": 3,
        "transaction.max.timeout.ms": 900000, "producer.id.expiration.ms": 86400000,
        "num.network.threads": 3, "num.io.threads": 8, "queued.max.requests": 500,
        "connections.max.idle.ms": 600000, "replica.socket.timeout.ms": 30000,
        "zookeeper.set.acl": False, "broker.rack": None, "log.retention.ms": None,
    }
    assert {k: c.get(k) for k in expected} == expected
    assert c.log_dirs == ("/tmp/kafka-logs",)
    assert c.listeners == (Endpoint("PLAINTEXT", "", 9092),)
    assert c.log_retention_ms == 168 * 3600 * 1000
    assert c.log_roll_ms == 168 * 3600 * 1000 and c.log_roll_jitter_ms == 0
    assert c.log_flush_interval_ms == 2**63 - 1
    assert c.zookeeper_connection_timeout_ms == 18000
    assert c.offsets_retention_ms == 10080 * 60000


def test_typed_attribute_access_for_any_key():
    c = make({"num.partitions": "4", "offsets.topic.replication.factor": "1"})
    assert c.num_partitions == 4 and c.offsets_topic_replication_factor == 1
    with pytest.raises(AttributeError, match="no broker key 'no.such.key'"):
        _ = c.no_such_key
    with pytest.raises(KeyError):
        c.get("no.such.key")


def test_zookeeper_connect_is_required():
    with pytest.raises(ConfigError, match="Missing required configuration 'zookeeper.connect'"):
        KafkaConfig.from_props({})


def test_unknown_key_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        make({"log.segmnt.bytes": "1000"})
    msg = str(err.value)
    assert "Unknown configuration 'log.segmnt.bytes' (value '1000')" in msg
    assert "Did you mean 'log.segment.bytes'?" in msg
    assert "'kafkapy.'" in msg


def test_removed_keys_point_to_the_replacement():
    with pytest.raises(ConfigError, match="'port'.*removed in Kafka 3.0; use listeners"):
        make({"port": "9092"})


def test_kafkapy_prefix_and_ignored_kafka_keys_are_accepted():
    c = make({"kafkapy.some.setting": "x", "zookeeper.sync.time.ms": "2000"})
    assert c.originals()["kafkapy.some.setting"] == "x"
    assert c.get("kafkapy.some.setting") == "x"


def test_invalid_value_names_key_value_and_expectation():
    with pytest.raises(ConfigError) as err:
        make({"num.partitions": "0"})
    assert str(err.value) == ("Invalid value '0' for configuration 'num.partitions': "
                              "value must be at least 1")
    with pytest.raises(ConfigError, match="'maybe' for configuration 'delete.topic.enable'"):
        make({"delete.topic.enable": "maybe"})
    with pytest.raises(ConfigError, match=r"'zip' is not one of \[uncompressed"):
        make({"compression.type": "zip"})


def test_typed_values_in_from_props():
    c = make({"num.partitions": 3, "auto.create.topics.enable": False})
    assert c.num_partitions == 3 and c.auto_create_topics_enable is False
    assert c.originals()["auto.create.topics.enable"] == "false"


@pytest.mark.parametrize("props,expected", [
    ({}, 604800000),
    ({"log.retention.hours": "1"}, 3600000),
    ({"log.retention.hours": "1", "log.retention.minutes": "2"}, 120000),
    ({"log.retention.hours": "1", "log.retention.minutes": "2", "log.retention.ms": "5"}, 5),
    ({"log.retention.ms": "-1"}, -1),
    ({"log.retention.hours": "-5"}, -1),
])
def test_retention_precedence(props, expected):
    assert make(props).log_retention_ms == expected


def test_retention_zero_is_rejected():
    with pytest.raises(ConfigError, match="log.retention.ms must be unlimited"):
        make({"log.retention.ms": "0"})


def test_roll_and_jitter_precedence():
    c = make({"log.roll.hours": "2", "log.roll.jitter.hours": "1"})
    assert (c.log_roll_ms, c.log_roll_jitter_ms) == (7200000, 3600000)
    c = make({"log.roll.hours": "2", "log.roll.ms": "1000", "log.roll.jitter.ms": "10"})
    assert (c.log_roll_ms, c.log_roll_jitter_ms) == (1000, 10)
    assert make({"log.flush.interval.ms": "50"}).log_flush_interval_ms == 50


def test_listener_parsing():
    c = make({"listeners": "PLAINTEXT://:0"})
    assert c.listeners == (Endpoint("PLAINTEXT", "", 0),)
    assert c.advertised_listeners == c.listeners
    c = make({"listeners": "plaintext://[::1]:9093"})
    assert c.listeners[0] == Endpoint("PLAINTEXT", "::1", 9093)
    assert c.listeners[0].connection_string() == "PLAINTEXT://[::1]:9093"
    c = make({
        "listeners": "INTERNAL://0.0.0.0:9093,EXTERNAL://:9094",
        "advertised.listeners": "INTERNAL://broker1:9093,EXTERNAL://public.example:9094",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
    })
    assert [e.listener_name for e in c.listeners] == ["INTERNAL", "EXTERNAL"]
    assert c.inter_broker_endpoint == Endpoint("INTERNAL", "broker1", 9093)


@pytest.mark.parametrize("props,fragment", [
    ({"listeners": "SSL://:9093"},
     "listener SSL uses security protocol SSL, but kafkapy supports only PLAINTEXT"),
    ({"listeners": "localhost:9092"}, "is not of the form LISTENER_NAME://host:port"),
    ({"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"}, "different name"),
    ({"listeners": "PLAINTEXT://:9092,X://:9092",
      "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,X:PLAINTEXT"}, "different port"),
    ({"listeners": "FOO://:9092"}, "no security protocol defined for listener FOO"),
    ({"listeners": "PLAINTEXT://:70000"}, "must be between 0 and 65535"),
    ({"listeners": ""}, "at least one listener"),
    ({"listeners": "PLAINTEXT://0.0.0.0:9092"}, "nonroutable meta-address 0.0.0.0"),
    ({"listeners": "X://:9092", "listener.security.protocol.map": "X:PLAINTEXT"},
     "inter.broker.listener.name must be a listener name defined in advertised.listeners"),
    ({"listener.security.protocol.map": "PLAINTEXT:TLS"}, "PROTOCOL one of"),
    ({"inter.broker.listener.name": "PLAINTEXT", "security.inter.broker.protocol": "PLAINTEXT"},
     "Only one of inter.broker.listener.name and security.inter.broker.protocol"),
])
def test_listener_errors(props, fragment):
    with pytest.raises(ConfigError) as err:
        make(props)
    assert fragment in str(err.value)


def test_zookeeper_connect_chroot_split():
    c = make({"zookeeper.connect": "zk1:2181,zk2:2182/kafka/prod"})
    assert c.zookeeper_hosts == "zk1:2181,zk2:2182"
    assert c.zookeeper_chroot == "/kafka/prod"
    assert c.zookeeper_connect == "zk1:2181,zk2:2182/kafka/prod"
    assert make({"zookeeper.connect": "zk1"}).zookeeper_chroot == ""
    for bad in ("/kafka", "zk1:2181/kafka/", "zk1:abc", "zk1:2181,,zk2:2181"):
        with pytest.raises(ConfigError, match="zookeeper.connect"):
            make({"zookeeper.connect": bad})


def test_log_dirs_fall_back_to_log_dir():
    assert make({"log.dir": "/data/a"}).log_dirs == ("/data/a",)
    assert make({"log.dir": "/data/a", "log.dirs": "/d1, /d2,"}).log_dirs == ("/d1", "/d2")
    with pytest.raises(ConfigError, match="At least one log directory"):
        make({"log.dirs": " , "})


def test_broker_id_rules():
    assert make({"broker.id": "-1"}).broker_id == -1
    assert make({"broker.id": "1000"}).broker_id == 1000
    with pytest.raises(ConfigError, match="reserved.broker.max.id"):
        make({"broker.id": "1001"})
    assert make({"broker.id": "5000", "broker.id.generation.enable": "false"}).broker_id == 5000
    with pytest.raises(ConfigError, match="broker.id.generation.enable is false"):
        make({"broker.id": "-1", "broker.id.generation.enable": "false"})
    assert make({"broker.id": "-1"}).with_broker_id(1001).broker_id == 1001


def test_kraft_mode_is_refused():
    with pytest.raises(ConfigError, match="ZooKeeper mode only"):
        make({"process.roles": "broker"})


def test_cross_key_checks():
    with pytest.raises(ConfigError, match="replica.socket.timeout.ms should always be at least"):
        make({"replica.fetch.wait.max.ms": "40000"})
    with pytest.raises(ConfigError, match="offsets.commit.required.acks"):
        make({"offsets.topic.replication.factor": "1", "offsets.commit.required.acks": "2"})


def test_from_file_with_overrides(tmp_path):
    path = tmp_path / "server.properties"
    path.write_text("broker.id=0\nzookeeper.connect=zk:2181\nnum.partitions=2\n")
    c = KafkaConfig.from_file(str(path), ["num.partitions=6", "kafkapy.note=a=b"])
    assert c.broker_id == 0 and c.num_partitions == 6
    assert c.get("kafkapy.note") == "a=b"
    with pytest.raises(ConfigError, match="Invalid override 'num.partitions'"):
        KafkaConfig.from_file(str(path), ["num.partitions"])


def test_with_dynamic_precedence_and_filtering():
    static = make({"broker.id": "1", "log.retention.hours": "10", "log.segment.bytes": "1000",
                   "num.io.threads": "4"})
    dyn = static.with_dynamic(
        {"log.segment.bytes": "2000", "log.retention.ms": "500", "num.io.threads": "2",
         "log.dirs": "/elsewhere", "min.insync.replicas": "0"},
        {"log.segment.bytes": "3000"})
    assert dyn.log_segment_bytes == 3000          # per-broker > default > static
    assert dyn.log_retention_ms == 500            # dynamic ms beats static hours
    assert dyn.num_io_threads == 2
    assert dyn.log_dirs == static.log_dirs        # not dynamic: ignored
    assert dyn.min_insync_replicas == 1           # invalid value: ignored
    assert dyn.dynamic_default == {"log.segment.bytes": "2000", "log.retention.ms": "500",
                                   "num.io.threads": "2"}
    assert dyn.dynamic_broker == {"log.segment.bytes": "3000"}
    assert static.log_segment_bytes == 1000       # the static config is untouched
    assert dyn.with_dynamic({}, {}).log_segment_bytes == 1000


def test_with_dynamic_keeps_generated_broker_id():
    c = make({}).with_broker_id(1001).with_dynamic({"num.io.threads": "3"}, {})
    assert c.broker_id == 1001 and c.num_io_threads == 3


def test_validate_dynamic_broker_configs():
    validate_dynamic_broker_configs({"log.retention.ms": "1000", "num.io.threads": "4"})
    with pytest.raises(KafkaError) as err:
        validate_dynamic_broker_configs({"log.dirs": "/x", "broker.id": "3",
                                         "log.segment.bytes": "1000"})
    assert err.value.code == ErrorCode.INVALID_REQUEST
    assert err.value.message == "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
    with pytest.raises(KafkaError, match="'abc' for configuration 'num.io.threads'") as err:
        validate_dynamic_broker_configs({"num.io.threads": "abc"})
    assert err.value.code == ErrorCode.INVALID_REQUEST
    with pytest.raises(KafkaError, match="Unknown broker configs"):
        validate_dynamic_broker_configs({"no.such": "1"})
    current = make({"broker.id": "0"})
    with pytest.raises(KafkaError, match="log.retention.ms must be unlimited"):
        validate_dynamic_broker_configs({"log.retention.ms": "0"}, current=current)


def test_dynamic_set_covers_kafka_dynamic_log_keys():
    for key in ("log.retention.ms", "log.segment.bytes", "log.cleaner.threads",
                "message.max.bytes", "num.io.threads", "log.flush.interval.ms"):
        assert key in DYNAMIC_BROKER_CONFIGS
    for key in ("broker.id", "log.dirs", "zookeeper.connect", "log.retention.hours"):
        assert key not in DYNAMIC_BROKER_CONFIGS
