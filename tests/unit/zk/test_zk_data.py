"""Byte-for-byte checks of the znode codecs against the reference JSON (kafka-zk-architecture §1)."""
from __future__ import annotations

import pytest

from kafkapy.zk import data, paths

pytestmark = pytest.mark.unit

TOPIC_ID_STR = "q0Ms2x5OQ2ulV3ZJYhA8Kw"


def test_broker_registration_v5_bytes() -> None:
    reg = data.BrokerRegistration(
        broker_id=1,
        endpoints=[data.EndPoint("PLAINTEXT", "host1", 9092, "PLAINTEXT"),
                   data.EndPoint("SSL", "host1", 9093, "SSL")],
        rack="r1", timestamp_ms=1700000000000)
    expected = (b'{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT","SSL":"SSL"},'
                b'"endpoints":["PLAINTEXT://host1:9092","SSL://host1:9093"],"jmx_port":-1,"port":9092,'
                b'"host":"host1","version":5,"timestamp":"1700000000000","rack":"r1"}')
    assert reg.encode() == expected
    back = data.BrokerRegistration.decode(1, expected, epoch=77)
    assert back.endpoints == reg.endpoints and back.rack == "r1" and back.epoch == 77
    assert back.timestamp_ms == 1700000000000


def test_broker_registration_without_rack_or_plaintext() -> None:
    reg = data.BrokerRegistration(
        broker_id=3, endpoints=[data.EndPoint("INTERNAL", "h", 1, "SASL_SSL")], timestamp_ms=5)
    encoded = reg.encode()
    assert b'"rack"' not in encoded
    assert b'"port":-1,"host":null' in encoded
    assert data.BrokerRegistration.decode(3, encoded).endpoints[0].security_protocol == "SASL_SSL"


def test_broker_registration_decodes_v1_and_ipv6() -> None:
    old = data.BrokerRegistration.decode(0, b'{"jmx_port":-1,"timestamp":"1","host":"a","version":1,"port":9092}')
    assert old.endpoints == [data.EndPoint("PLAINTEXT", "a", 9092, "PLAINTEXT")]
    ep = data.EndPoint("PLAINTEXT", "::1", 9092, "PLAINTEXT")
    assert ep.connection_string() == "PLAINTEXT://[::1]:9092"
    assert data.EndPoint.parse("PLAINTEXT://[::1]:9092") == ep


def test_topic_assignment_v3_bytes() -> None:
    raw_id = data.uuid_from_str(TOPIC_ID_STR)
    assignment = data.TopicAssignment({1: [2, 3, 1], 0: [1, 2, 3]}, topic_id=raw_id)
    expected = (b'{"version":3,"partitions":{"0":[1,2,3],"1":[2,3,1]},"adding_replicas":{},'
                b'"removing_replicas":{},"topic_id":"q0Ms2x5OQ2ulV3ZJYhA8Kw"}')
    assert assignment.encode() == expected
    back = data.TopicAssignment.decode(expected)
    assert back.partitions == {0: [1, 2, 3], 1: [2, 3, 1]} and back.topic_id == raw_id


def test_topic_assignment_reassigning_and_v1() -> None:
    a = data.TopicAssignment({0: [4, 1]}, topic_id=b"\x01" * 16,
                             adding_replicas={0: [4]}, removing_replicas={0: [1]})
    back = data.TopicAssignment.decode(a.encode())
    assert back.adding_replicas == {0: [4]} and back.removing_replicas == {0: [1]}
    v1 = data.TopicAssignment.decode(b'{"version":1,"partitions":{"0":[1]}}')
    assert v1.topic_id is None and v1.partitions == {0: [1]}


def test_uuid_round_trip() -> None:
    raw = data.uuid_from_str(TOPIC_ID_STR)
    assert len(raw) == 16 and data.uuid_to_str(raw) == TOPIC_ID_STR
    for _ in range(50):
        fresh = data.random_uuid()
        text = data.uuid_to_str(fresh)
        assert len(text) == 22 and "=" not in text and not text.startswith("-")
        assert data.uuid_from_str(text) == fresh
    with pytest.raises(ValueError):
        data.uuid_from_str("short")


def test_partition_state_bytes() -> None:
    state = data.PartitionState(leader=1, leader_epoch=0, isr=[1, 2, 3], controller_epoch=1)
    expected = b'{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2,3]}'
    assert state.encode() == expected
    back = data.PartitionState.decode(expected, zk_version=4)
    assert back == data.PartitionState(1, 0, [1, 2, 3], 1, 0, 4)
    recovering = data.PartitionState(2, 5, [2], 3, data.LEADER_RECOVERY_RECOVERING)
    assert recovering.encode().endswith(b',"leader_recovery_state":1}')


def test_controller_nodes() -> None:
    info = data.ControllerInfo(1, 1700000000000)
    expected = b'{"version":2,"brokerid":1,"timestamp":"1700000000000","kraftControllerEpoch":-1}'
    assert info.encode() == expected
    assert data.ControllerInfo.decode(expected) == info
    assert data.ControllerInfo.decode(b'{"version":1,"brokerid":7,"timestamp":"3"}').broker_id == 7
    assert data.encode_controller_epoch(5) == b"5"
    assert data.decode_controller_epoch(b"5") == 5


def test_cluster_id_and_configs() -> None:
    assert data.encode_cluster_id("abc") == b'{"version":"1","id":"abc"}'
    assert data.decode_cluster_id(b'{"version":"1","id":"abc"}') == "abc"
    assert data.encode_entity_config({"retention.ms": "1000"}) == \
        b'{"version":1,"config":{"retention.ms":"1000"}}'
    assert data.decode_entity_config(b'{"version":1,"config":{"retention.ms":"1000"}}') == \
        {"retention.ms": "1000"}
    assert data.decode_entity_config(b"") == {}
    assert data.encode_config_change("topics", "my-topic") == \
        b'{"version":2,"entity_path":"topics/my-topic"}'
    assert data.decode_config_change(b'{"version":2,"entity_path":"brokers/<default>"}') == \
        ("brokers", "<default>")
    assert data.decode_config_change(
        b'{"version":1,"entity_type":"topics","entity_name":"t"}') == ("topics", "t")


def test_producer_id_block() -> None:
    first = data.first_producer_id_block(0)
    assert first.encode() == b'{"version":1,"broker":0,"block_start":"0","block_end":"999"}'
    nxt = data.ProducerIdBlock.decode(first.encode()).next_block(2)
    assert (nxt.broker, nxt.block_start, nxt.block_end) == (2, 1000, 1999)


def test_admin_and_notification_nodes() -> None:
    reassign = data.encode_reassignment({("t", 0): [1, 2, 3]})
    assert reassign == b'{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}'
    assert data.decode_reassignment(reassign) == {("t", 0): [1, 2, 3]}
    pre = data.encode_preferred_replica_election([("t", 0)])
    assert pre == b'{"version":1,"partitions":[{"topic":"t","partition":0}]}'
    assert data.decode_isr_change(pre) == [("t", 0)]
    assert data.encode_log_dir_event(1) == b'{"version":1,"broker":1,"event":1}'
    assert data.decode_log_dir_event(b'{"version":1,"broker":1,"event":1}') == (1, 1)
    assert data.decode_consumer_offset(data.encode_consumer_offset(42)) == 42


def test_paths() -> None:
    assert paths.partition_state_path("t", 3) == "/brokers/topics/t/partitions/3/state"
    assert paths.broker_path(2) == "/brokers/ids/2"
    assert paths.topic_config_path("t") == "/config/topics/t"
    assert paths.broker_config_path("<default>") == "/config/brokers/<default>"
    assert paths.consumer_offset_path("g", "t", 1) == "/consumers/g/offsets/t/1"
    assert paths.config_change_prefix_path() == "/config/changes/config_change_"
    assert "/config/ips" in paths.PERSISTENT_ZK_PATHS
    assert paths.parent("/controller") == "/" and paths.parent("/a/b") == "/a"


def test_split_connect_string() -> None:
    from kafkapy.zk.session import split_connect

    assert split_connect("h1:2181,h2:2181/kafka") == ("h1:2181,h2:2181", "/kafka")
    assert split_connect("h1:2181/a/b/") == ("h1:2181", "/a/b")
    assert split_connect("h1:2181") == ("h1:2181", "")
    assert split_connect("h1:2181/") == ("h1:2181", "")
