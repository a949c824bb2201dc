"""Pre-0.11 message formats over the wire (what kafka-node sends and expects): Produce v0-2
magic 0/1 sets are stored as v2 batches, Fetch v0-1 answers magic 0, v2-3 magic 1, v4+ the
stored v2 batches; bad legacy data gets Kafka's error codes."""
from __future__ import annotations

import time
import uuid

import pytest
import trio

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_configs import AlterConfigsRequest
from kafkapy.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from kafkapy.protocol.legacy import OFFLOAD_BYTES, magic_of
from kafkapy.protocol.records import GZIP, SNAPPY, Record, build_message_set, iter_legacy_messages

from tests.broker_fixture import BrokerCluster
from tests.zk_fixture import ZooKeeperServer
from tests.integration.kafka_wire import (
    batch,
    connect,
    create_topic,
    fetch,
    produce,
    records_of,
    wait_for_leaders,
)

pytestmark = pytest.mark.integration


def kafka_node_set(values: list[bytes], magic: int, codec: int = 0, ts: int = 1_000) -> bytes:
    """kafka-node's layout: every offset 0, inner ones included."""
    return build_message_set([Record(b"k", v, [], ts + i, offset=0) for i, v in enumerate(values)],
                             magic=magic, compression=codec)


def legacy(data) -> list[tuple]:
    raw = bytes(data)
    return [(m.offset, m.magic, m.value, m.timestamp) for m in iter_legacy_messages(raw)]


async def test_legacy_produce_and_fetch_by_version(broker):
    topic = f"legacy-{uuid.uuid4().hex[:8]}"
    async with connect(broker) as conn:
        assert (await create_topic(conn, topic, partitions=1)).error_code == 0
        await wait_for_leaders(conn, topic, 1)
        r = await produce(conn, topic, 0, kafka_node_set([b"a", b"b", b"c"], 1, GZIP), version=2)
        assert (r.error_code, r.base_offset) == (0, 0)
        r = await produce(conn, topic, 0, kafka_node_set([b"d", b"e"], 0), version=0)
        assert (r.error_code, r.base_offset) == (0, 3)
        r = await produce(conn, topic, 0, kafka_node_set([b"f"], 1, SNAPPY, ts=7), version=1)
        assert (r.error_code, r.base_offset) == (0, 5)

        for version in (0, 1):
            data = await fetch(conn, topic, 0, 0, version=version)
            assert data.error_code == 0 and magic_of(data.records) == 0
            assert legacy(data.records) == [(i, 0, bytes([v]), -1) for i, v in enumerate(b"abcdef")]
        for version in (2, 3):
            data = await fetch(conn, topic, 0, 1, version=version)
            assert data.error_code == 0 and magic_of(data.records) == 1
            assert legacy(data.records) == [(1, 1, b"b", 1001), (2, 1, b"c", 1002),
                                            (3, 1, b"d", -1), (4, 1, b"e", -1), (5, 1, b"f", 7)]
        data = await fetch(conn, topic, 0, 0, version=4)
        assert magic_of(data.records) == 2
        assert [(x.offset, x.value, x.headers) for x in records_of(data.records)] == [
            (i, bytes([v]), []) for i, v in enumerate(b"abcdef")]


async def test_legacy_produce_errors(broker):
    topic = f"legacy-bad-{uuid.uuid4().hex[:8]}"
    async with connect(broker) as conn:
        assert (await create_topic(conn, topic, partitions=1)).error_code == 0
        await wait_for_leaders(conn, topic, 1)
        bad = bytearray(kafka_node_set([b"x", b"y"], 1))
        bad[-1] ^= 1
        cases = [(bytes(bad), 2, ErrorCode.CORRUPT_MESSAGE),      # CRC-32 mismatch
                 (batch([b"z"]), 2, ErrorCode.INVALID_RECORD),     # v2 batch in Produce v2
                 (kafka_node_set([b"z"], 1), 3, ErrorCode.INVALID_RECORD)]  # magic 1 in v3
        for records, version, code in cases:
            assert (await produce(conn, topic, 0, records, version=version)).error_code == code
        # nothing of the above was stored
        assert (await fetch(conn, topic, 0, 0, version=4)).high_watermark == 0


async def test_large_fetch_is_converted_whole_messages_within_limits(broker):
    topic = f"legacy-big-{uuid.uuid4().hex[:8]}"
    values = [b"%05d:" % i + b"x" * 200 for i in range(600)]  # > OFFLOAD_BYTES: worker thread
    async with connect(broker) as conn:
        assert (await create_topic(conn, topic, partitions=1)).error_code == 0
        await wait_for_leaders(conn, topic, 1)
        for start in range(0, 600, 200):
            assert (await produce(conn, topic, 0, batch(values[start:start + 200]))).error_code == 0
        data = await fetch(conn, topic, 0, 0, version=2)
        assert len(data.records) > OFFLOAD_BYTES
        assert [(o, v) for o, _, v, _ in legacy(data.records)] == list(enumerate(values))


async def test_down_conversion_disabled_answers_unsupported_version(broker):
    topic = f"legacy-off-{uuid.uuid4().hex[:8]}"
    async with connect(broker) as conn:
        created = await create_topic(conn, topic, partitions=1,
                                     configs={"message.downconversion.enable": "false"})
        assert created.error_code == 0, created.error_message
        await wait_for_leaders(conn, topic, 1)
        assert (await produce(conn, topic, 0, batch([b"a"]))).error_code == 0
        old = await fetch(conn, topic, 0, 0, version=2)
        assert old.error_code == ErrorCode.UNSUPPORTED_VERSION
        modern = await fetch(conn, topic, 0, 0, version=4)
        assert modern.error_code == 0 and [x.value for x in records_of(modern.records)] == [b"a"]


async def _fetch_error_until(conn, topic: str, want: int, timeout: float = 30.0) -> float:
    """Fetch v2 until it answers `want`; returns the seconds it took (a config change reaches
    the log through /config/changes, asynchronously, as in Kafka)."""
    start = time.monotonic()
    while True:
        got = (await fetch(conn, topic, 0, 0, version=2)).error_code
        if got == want:
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"fetch v2 still answers {got}, not {want}"
        await trio.sleep(0.1)


async def test_down_conversion_follows_topic_config_changes(broker):
    """message.downconversion.enable lives in the log's config: switching it with
    IncrementalAlterConfigs and AlterConfigs (and deleting the override) changes what a
    Fetch v2 gets, without a restart."""
    topic = f"legacy-toggle-{uuid.uuid4().hex[:8]}"
    IAC, AC = IncrementalAlterConfigsRequest, AlterConfigsRequest
    async with connect(broker) as conn:
        assert (await create_topic(conn, topic, partitions=1)).error_code == 0
        await wait_for_leaders(conn, topic, 1)
        assert (await produce(conn, topic, 0, batch([b"a"]))).error_code == 0
        on = await fetch(conn, topic, 0, 0, version=2)
        assert on.error_code == 0 and magic_of(on.records) == 1

        async def incremental(op: int, value: str | None) -> None:
            resp = await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, IAC(
                validate_only=False, resources=[IAC.AlterConfigsResource(
                    resource_type=2, resource_name=topic, configs=[IAC.AlterableConfig(
                        name="message.downconversion.enable", config_operation=op,
                        value=value)])]))
            assert resp.responses[0].error_code == 0, resp.responses[0].error_message

        await incremental(0, "false")                       # SET
        await _fetch_error_until(conn, topic, ErrorCode.UNSUPPORTED_VERSION)
        modern = await fetch(conn, topic, 0, 0, version=4)
        assert modern.error_code == 0 and [x.value for x in records_of(modern.records)] == [b"a"]
        await incremental(1, None)                          # DELETE: back to the default
        await _fetch_error_until(conn, topic, ErrorCode.NONE)

        resp = await conn.send(ApiKey.ALTER_CONFIGS, 1, AC(validate_only=False, resources=[
            AC.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[
                AC.AlterableConfig(name="message.downconversion.enable", value="false")])]))
        assert resp.responses[0].error_code == 0, resp.responses[0].error_message
        await _fetch_error_until(conn, topic, ErrorCode.UNSUPPORTED_VERSION)
        # AlterConfigs replaces the whole set: an empty set clears the override
        resp = await conn.send(ApiKey.ALTER_CONFIGS, 1, AC(validate_only=False, resources=[
            AC.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[])]))
        assert resp.responses[0].error_code == 0, resp.responses[0].error_message
        await _fetch_error_until(conn, topic, ErrorCode.NONE)
        data = await fetch(conn, topic, 0, 0, version=2)
        assert legacy(data.records)[0][:3] == (0, 1, b"a")


async def test_legacy_fetch_needs_no_zookeeper(tmp_path):
    """The down-conversion setting is in the log's config: the cluster-wide broker default
    (log.message.downconversion.enable, a dynamic broker config) reaches it, and with the
    broker's ZooKeeper down, Fetch v0 and v2 still answer at once (they used to wait for
    ZooKeeper on every request). Own ZooKeeper and broker: the default is cluster-wide."""
    IAC = IncrementalAlterConfigsRequest
    zk = ZooKeeperServer(tmp_path / "zk").start()
    cluster = BrokerCluster(zk.connect, tmp_path / "cluster")
    topic = f"legacy-nozk-{uuid.uuid4().hex[:8]}"
    try:
        broker = cluster.start(broker_id=0)
        async with connect(broker) as conn:
            assert (await create_topic(conn, topic, partitions=1)).error_code == 0
            await wait_for_leaders(conn, topic, 1)
            assert (await produce(conn, topic, 0, batch([b"a", b"b"]))).error_code == 0
            for op, value, want in ((0, "false", ErrorCode.UNSUPPORTED_VERSION),
                                    (1, None, ErrorCode.NONE)):  # SET, then DELETE
                resp = await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, IAC(
                    validate_only=False, resources=[IAC.AlterConfigsResource(
                        resource_type=4, resource_name="", configs=[IAC.AlterableConfig(
                            name="log.message.downconversion.enable", config_operation=op,
                            value=value)])]))
                assert resp.responses[0].error_code == 0, resp.responses[0].error_message
                await _fetch_error_until(conn, topic, want)
            zk.stop()
            with trio.fail_after(15):
                for version, magic in ((0, 0), (2, 1), (0, 0)):
                    data = await fetch(conn, topic, 0, 0, version=version)
                    assert data.error_code == 0 and magic_of(data.records) == magic
                    assert [(o, v) for o, _, v, _ in legacy(data.records)] == [(0, b"a"),
                                                                               (1, b"b")]
    finally:
        for b in cluster.brokers.values():
            b.kill9()  # a controlled shutdown would wait for the ZooKeeper that is gone
        zk.stop()
