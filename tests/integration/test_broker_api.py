"""The broker's APIs against a real ZooKeeper and a real broker process, over the wire.

Each test asserts what a client relies on: acknowledged offsets readable, the Kafka error
code for each mistake, configs that take effect.
"""
from __future__ import annotations

import uuid

import pytest
import trio

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.api_versions import ApiVersionsRequest
from kafkapy.protocol.messages.create_partitions import CreatePartitionsRequest
from kafkapy.protocol.messages.delete_records import DeleteRecordsRequest
from kafkapy.protocol.messages.delete_topics import DeleteTopicsRequest
from kafkapy.protocol.messages.describe_cluster import DescribeClusterRequest
from kafkapy.protocol.messages.describe_configs import DescribeConfigsRequest
from kafkapy.protocol.messages.incremental_alter_configs import IncrementalAlterConfigsRequest
from kafkapy.protocol.messages.init_producer_id import InitProducerIdRequest
from kafkapy.protocol.messages.list_offsets import ListOffsetsRequest
from kafkapy.protocol.messages.offset_for_leader_epoch import OffsetForLeaderEpochRequest

from tests.integration.kafka_wire import (
    batch,
    connect,
    create_topic,
    fetch,
    metadata,
    produce,
    records_of,
    wait_for_leaders,
)

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_api_versions_advertises_what_is_served(broker):
    async with connect(broker) as conn:
        resp = await conn.send(ApiKey.API_VERSIONS, 3, ApiVersionsRequest(
            client_software_name="kafkapy-tests", client_software_version="1"))
    assert resp.error_code == 0
    ranges = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert ranges[ApiKey.PRODUCE] == (0, 10)
    assert ranges[ApiKey.FETCH] == (0, 16)
    assert ranges[ApiKey.METADATA] == (0, 12)
    # Transactions are not served yet, so they must not be advertised.
    assert ApiKey.ADD_PARTITIONS_TO_TXN not in ranges
    assert ApiKey.END_TXN not in ranges


async def test_produce_then_fetch_returns_every_record(broker):
    topic = unique("roundtrip")
    async with connect(broker) as conn:
        created = await create_topic(conn, topic, partitions=3)
        assert created.error_code == 0, created.error_message
        assert created.topic_id != b"\0" * 16
        await wait_for_leaders(conn, topic, 3)
        first = await produce(conn, topic, 1, batch([b"a", b"b", b"c"]))
        second = await produce(conn, topic, 1, batch([b"d"]))
        assert (first.error_code, first.base_offset) == (0, 0)
        assert (second.error_code, second.base_offset) == (0, 3)
        data = await fetch(conn, topic, 1, 0)
        assert data.error_code == 0
        assert data.high_watermark == 4
        recs = records_of(data.records)
        assert [(r.offset, r.value) for r in recs] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]
        assert all(r.headers == [("h", b"1")] for r in recs)
        # Fetch v16 addresses the topic by id.
        md = await metadata(conn, [topic])
        assert md.topics[0].topic_id == created.topic_id


async def test_produce_error_codes(broker):
    topic = unique("errors")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        bad_acks = await produce(conn, topic, 0, batch([b"x"]), acks=2)
        assert bad_acks.error_code == ErrorCode.INVALID_REQUIRED_ACKS
        no_partition = await produce(conn, topic, 7, batch([b"x"]))
        assert no_partition.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        corrupt = bytearray(batch([b"x", b"y"]))
        corrupt[-1] ^= 0xFF                     # flip a record byte: the CRC no longer matches
        bad_crc = await produce(conn, topic, 0, bytes(corrupt))
        assert bad_crc.error_code == ErrorCode.CORRUPT_MESSAGE
        # Nothing of the rejected batches was written.
        ok = await produce(conn, topic, 0, batch([b"z"]))
        assert (ok.error_code, ok.base_offset) == (0, 0)


async def test_fetch_long_poll_wakes_on_append(broker):
    topic = unique("longpoll")
    async with connect(broker) as producer_conn, connect(broker) as fetch_conn:
        await create_topic(producer_conn, topic, partitions=1)
        await wait_for_leaders(producer_conn, topic, 1)
        result = {}

        async def parked_fetch():
            started = trio.current_time()
            result["data"] = await fetch(fetch_conn, topic, 0, 0, max_wait_ms=20000)
            result["waited"] = trio.current_time() - started

        async with trio.open_nursery() as nursery:
            nursery.start_soon(parked_fetch)
            await trio.sleep(0.3)
            await produce(producer_conn, topic, 0, batch([b"wake"]))
        assert [r.value for r in records_of(result["data"].records)] == [b"wake"]
        # It returned because of the append, long before its 20 s max wait.
        assert result["waited"] < 10


async def test_list_offsets_earliest_latest_and_by_time(broker):
    topic = unique("listoffsets")
    base = 1_700_000_000_000
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        await produce(conn, topic, 0, batch([b"a", b"b", b"c"], timestamp=base))
        await produce(conn, topic, 0, batch([b"d", b"e"], timestamp=base + 1000))

        async def lookup(ts: int):
            req = ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=[
                ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[
                    ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=ts)])])
            resp = await conn.send(ApiKey.LIST_OFFSETS, 7, req)
            p = resp.topics[0].partitions[0]
            assert p.error_code == 0
            return p.offset, p.timestamp

        assert (await lookup(-2))[0] == 0
        assert (await lookup(-1))[0] == 5
        assert await lookup(base + 1) == (1, base + 1)
        assert await lookup(base + 1000) == (3, base + 1000)
        assert (await lookup(base + 5000))[0] == -1
        assert await lookup(-3) == (4, base + 1001)


async def test_delete_records_moves_log_start(broker):
    topic = unique("deleterecords")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        await produce(conn, topic, 0, batch([b"%d" % i for i in range(10)]))
        req = DeleteRecordsRequest(timeout_ms=5000, topics=[
            DeleteRecordsRequest.DeleteRecordsTopic(name=topic, partitions=[
                DeleteRecordsRequest.DeleteRecordsPartition(partition_index=0, offset=6)])])
        resp = await conn.send(ApiKey.DELETE_RECORDS, 2, req)
        part = resp.topics[0].partitions[0]
        assert (part.error_code, part.low_watermark) == (0, 6)
        below = await fetch(conn, topic, 0, 2)
        assert below.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        assert below.log_start_offset == 6
        beyond = DeleteRecordsRequest(timeout_ms=5000, topics=[
            DeleteRecordsRequest.DeleteRecordsTopic(name=topic, partitions=[
                DeleteRecordsRequest.DeleteRecordsPartition(partition_index=0, offset=99)])])
        resp = await conn.send(ApiKey.DELETE_RECORDS, 2, beyond)
        assert resp.topics[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE


async def test_idempotent_producer_duplicates_and_gaps(broker):
    topic = unique("idempotent")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        init = await conn.send(ApiKey.INIT_PRODUCER_ID, 4, InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=60000))
        assert init.error_code == 0 and init.producer_id >= 0
        pid = init.producer_id

        def seq_batch(values, seq):
            return batch(values, producer_id=pid, producer_epoch=0, base_sequence=seq)

        first = await produce(conn, topic, 0, seq_batch([b"a", b"b"], 0))
        again = await produce(conn, topic, 0, seq_batch([b"a", b"b"], 0))
        assert first.error_code == 0 and again.error_code == 0
        assert again.base_offset == first.base_offset          # a retry is not written twice
        gap = await produce(conn, topic, 0, seq_batch([b"c"], 5))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        data = await fetch(conn, topic, 0, 0)
        assert [r.value for r in records_of(data.records)] == [b"a", b"b"]
        # Two InitProducerId calls never share an id.
        other = await conn.send(ApiKey.INIT_PRODUCER_ID, 4, InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=60000))
        assert other.producer_id != pid


async def test_topic_configs_describe_and_alter(broker):
    topic = unique("configs")
    async with connect(broker) as conn:
        created = await create_topic(conn, topic, partitions=1,
                                     configs={"retention.ms": "3600000"})
        assert created.error_code == 0
        bad = await create_topic(conn, unique("badconfig"), configs={"retention.ms": "soon"})
        assert bad.error_code == ErrorCode.INVALID_CONFIG
        alter = IncrementalAlterConfigsRequest(validate_only=False, resources=[
            IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=2, resource_name=topic, configs=[
                    IncrementalAlterConfigsRequest.AlterableConfig(
                        name="segment.bytes", config_operation=0, value="1048576")])])
        resp = await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, alter)
        assert resp.responses[0].error_code == 0
        desc = await conn.send(ApiKey.DESCRIBE_CONFIGS, 4, DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=topic,
                configuration_keys=["retention.ms", "segment.bytes", "cleanup.policy"])],
            include_synonyms=True))
        result = desc.results[0]
        assert result.error_code == 0
        configs = {c.name: (c.value, c.config_source) for c in result.configs}
        assert configs["retention.ms"] == ("3600000", 1)      # DYNAMIC_TOPIC_CONFIG
        assert configs["segment.bytes"] == ("1048576", 1)
        assert configs["cleanup.policy"] == ("delete", 5)      # DEFAULT_CONFIG
        unknown = await conn.send(ApiKey.DESCRIBE_CONFIGS, 4, DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name=unique("nosuchtopic"), configuration_keys=None)]))
        assert unknown.results[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_create_partitions_and_delete_topic(broker):
    topic = unique("grow")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=2)
        await wait_for_leaders(conn, topic, 2)
        again = await create_topic(conn, topic, partitions=2)
        assert again.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
        grow = await conn.send(ApiKey.CREATE_PARTITIONS, 3, CreatePartitionsRequest(
            topics=[CreatePartitionsRequest.CreatePartitionsTopic(name=topic, count=4,
                                                                  assignments=None)],
            timeout_ms=30000, validate_only=False))
        assert grow.results[0].error_code == 0
        await wait_for_leaders(conn, topic, 4)
        shrink = await conn.send(ApiKey.CREATE_PARTITIONS, 3, CreatePartitionsRequest(
            topics=[CreatePartitionsRequest.CreatePartitionsTopic(name=topic, count=3,
                                                                  assignments=None)],
            timeout_ms=30000, validate_only=False))
        assert shrink.results[0].error_code == ErrorCode.INVALID_PARTITIONS
        deleted = await conn.send(ApiKey.DELETE_TOPICS, 4, DeleteTopicsRequest(
            topic_names=[topic], timeout_ms=30000))
        assert deleted.responses[0].error_code == 0
        md = await metadata(conn, [topic])
        assert md.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_metadata_auto_creates_and_describe_cluster(broker):
    topic = unique("auto")
    async with connect(broker) as conn:
        from kafkapy.protocol.messages.metadata import MetadataRequest

        req = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                              allow_auto_topic_creation=True)
        first = await conn.send(ApiKey.METADATA, 9, req)
        assert first.topics[0].error_code in (0, ErrorCode.LEADER_NOT_AVAILABLE)
        await wait_for_leaders(conn, topic, 3)                 # num.partitions=3
        invalid = await conn.send(ApiKey.METADATA, 9, MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name="bad/name")],
            allow_auto_topic_creation=True))
        assert invalid.topics[0].error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
        cluster = await conn.send(ApiKey.DESCRIBE_CLUSTER, 1, DescribeClusterRequest(
            include_cluster_authorized_operations=False))
        assert cluster.error_code == 0
        assert [b.broker_id for b in cluster.brokers] == [0]
        assert cluster.controller_id == 0
        assert len(cluster.cluster_id) == 22


async def test_offset_for_leader_epoch(broker):
    topic = unique("epochs")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        await produce(conn, topic, 0, batch([b"a", b"b"]))
        req = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
            OffsetForLeaderEpochRequest.OffsetForLeaderTopic(topic=topic, partitions=[
                OffsetForLeaderEpochRequest.OffsetForLeaderPartition(
                    partition=0, current_leader_epoch=0, leader_epoch=0)])])
        resp = await conn.send(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, req)
        p = resp.topics[0].partitions[0]
        assert (p.error_code, p.leader_epoch, p.end_offset) == (0, 0, 2)
        stale = OffsetForLeaderEpochRequest(replica_id=-1, topics=[
            OffsetForLeaderEpochRequest.OffsetForLeaderTopic(topic=topic, partitions=[
                OffsetForLeaderEpochRequest.OffsetForLeaderPartition(
                    partition=0, current_leader_epoch=5, leader_epoch=0)])])
        resp = await conn.send(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, stale)
        assert resp.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_LEADER_EPOCH


async def test_acks_zero_is_written_without_answer(broker):
    topic = unique("acks0")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        assert await produce(conn, topic, 0, batch([b"fire"]), acks=0) is None
        with trio.fail_after(10):
            while True:
                data = await fetch(conn, topic, 0, 0)
                if data.high_watermark == 1:
                    break
                await trio.sleep(0.05)
        assert [r.value for r in records_of(data.records)] == [b"fire"]


async def test_topic_config_change_reaches_the_log(broker):
    """IncrementalAlterConfigs -> /config/topics + config_change_ notification -> the log."""
    topic = unique("segroll")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        alter = IncrementalAlterConfigsRequest(validate_only=False, resources=[
            IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=2, resource_name=topic, configs=[
                    IncrementalAlterConfigsRequest.AlterableConfig(
                        name="segment.bytes", config_operation=0, value="2048")])])
        assert (await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, alter)
                ).responses[0].error_code == 0
        part_dir = broker.log_dir / f"{topic}-0"
        with trio.fail_after(20):
            while len(list(part_dir.glob("*.log"))) < 2:
                resp = await produce(conn, topic, 0, batch([b"x" * 700]))
                assert resp.error_code == 0
        # Rolled segments keep every offset readable, densely.
        data = await fetch(conn, topic, 0, 0)
        offsets = [r.offset for r in records_of(data.records)]
        assert offsets == list(range(len(offsets))) and offsets


async def test_create_topics_validate_only_assignments_and_errors(broker):
    from kafkapy.protocol.messages.create_topics import CreateTopicsRequest as Req

    def topic(name, partitions=-1, rf=-1, assignment=None):
        return Req.CreatableTopic(
            name=name, num_partitions=partitions, replication_factor=rf, configs=[],
            assignments=[Req.CreatableReplicaAssignment(partition_index=p, broker_ids=b)
                         for p, b in (assignment or {}).items()])

    dry, explicit, bad_broker, bad_rf = (unique(n) for n in ("dry", "explicit", "badb", "badrf"))
    async with connect(broker) as conn:
        resp = await conn.send(ApiKey.CREATE_TOPICS, 7, Req(validate_only=True, timeout_ms=30000,
                                                            topics=[topic(dry, 4, 1)]))
        assert (resp.topics[0].error_code, resp.topics[0].num_partitions) == (0, 4)
        md = await metadata(conn, [dry])
        assert md.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION   # not created
        resp = await conn.send(ApiKey.CREATE_TOPICS, 7, Req(timeout_ms=30000, topics=[
            topic(explicit, assignment={0: [0], 1: [0]}),
            topic(bad_broker, assignment={0: [0], 1: [5]}),
            topic(bad_rf, 1, 3)]))
        codes = {t.name: t.error_code for t in resp.topics}
        assert codes == {explicit: 0, bad_broker: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         bad_rf: ErrorCode.INVALID_REPLICATION_FACTOR}
        await wait_for_leaders(conn, explicit, 2)


async def test_dynamic_broker_config_applies_to_topics_without_overrides(broker_cluster):
    b = broker_cluster.start()
    topic = unique("dyn")
    async with connect(b) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        alter = IncrementalAlterConfigsRequest(validate_only=False, resources=[
            IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=4, resource_name="", configs=[
                    IncrementalAlterConfigsRequest.AlterableConfig(
                        name="log.segment.bytes", config_operation=0, value="4096")])])
        assert (await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, alter)
                ).responses[0].error_code == 0
        read_only = IncrementalAlterConfigsRequest(validate_only=False, resources=[
            IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=4, resource_name="0", configs=[
                    IncrementalAlterConfigsRequest.AlterableConfig(
                        name="broker.id", config_operation=0, value="7")])])
        resp = await conn.send(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, read_only)
        assert resp.responses[0].error_code == ErrorCode.INVALID_REQUEST
        part_dir = b.log_dir / f"{topic}-0"
        with trio.fail_after(20):
            while len(list(part_dir.glob("*.log"))) < 2:
                assert (await produce(conn, topic, 0, batch([b"y" * 1500]))).error_code == 0
        desc = await conn.send(ApiKey.DESCRIBE_CONFIGS, 4, DescribeConfigsRequest(
            resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=4, resource_name="0", configuration_keys=["log.segment.bytes"])],
            include_synonyms=False))
        entry = desc.results[0].configs[0]
        assert (entry.name, entry.value) == ("log.segment.bytes", "4096")
        assert entry.config_source == 3                 # DYNAMIC_DEFAULT_BROKER_CONFIG


async def test_fetch_sessions_are_declined(broker):
    """KIP-227: asking for a session gets session id 0 (full fetches); an unknown id is refused."""
    topic = unique("sessions")
    async with connect(broker) as conn:
        await create_topic(conn, topic, partitions=1)
        await wait_for_leaders(conn, topic, 1)
        await produce(conn, topic, 0, batch([b"s"]))
        from kafkapy.protocol.messages.fetch import FetchRequest

        def req(session_id, epoch):
            return FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                                isolation_level=0, session_id=session_id, session_epoch=epoch,
                                topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                                    FetchRequest.FetchPartition(partition=0, fetch_offset=0,
                                                                partition_max_bytes=1 << 20)])],
                                forgotten_topics_data=[], rack_id="")

        new = await conn.send(ApiKey.FETCH, 12, req(0, 0))
        assert (new.error_code, new.session_id) == (0, 0)
        assert [r.value for r in records_of(new.responses[0].partitions[0].records)] == [b"s"]
        unknown = await conn.send(ApiKey.FETCH, 12, req(12345, 1))
        assert unknown.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
