"""Pipelined acks=all Produce against a real 3-broker cluster (RF=3, real ZooKeeper).

A connection may have several acks=all Produce requests in flight: the broker appends each in
arrival order and answers in request order once the ISR holds the batch. Checked on the wire
(raw frames, so the test decides exactly what is pipelined) and with a real idempotent
confluent-kafka producer (max.in.flight 5): responses keep request order, errors in the middle
stay with their own request, idempotent sequences are accepted in order, a retried batch is
recognised as a duplicate, and every acknowledged record is on every replica.
"""
from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from confluent_kafka import Consumer, Producer

from kafkapy import native
from kafkapy.network.client import (
    BrokerConnection,
    encode_request_header,
    parse_response_header,
    request_header_version,
)
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.headers import response_header_flexible
from kafkapy.protocol.messages import REQUESTS, RESPONSES
from kafkapy.protocol.messages.create_topics import CreateTopicsRequest
from kafkapy.protocol.messages.init_producer_id import InitProducerIdRequest
from kafkapy.protocol.messages.metadata import MetadataRequest
from kafkapy.protocol.messages.produce import ProduceRequest
from kafkapy.protocol.records import decode_batch
from tests.integration.kafka_wire import batch, fetch, metadata, records_of

pytestmark = pytest.mark.integration

FAST = {
    "replica.lag.time.max.ms": "10000",
    "zookeeper.session.timeout.ms": "6000",
    "replica.fetch.backoff.ms": "200",
    "controlled.shutdown.enable": "false",
    "offsets.topic.replication.factor": "1",
}
PRODUCE_V, METADATA_V = 9, 12


@pytest.fixture
def broker_cluster(ensemble_cluster):
    """Multi-broker tests run against a real 3-node ZooKeeper ensemble."""
    return ensemble_cluster


async def _connect(broker) -> BrokerConnection:
    host, port = broker.bootstrap.split(":")
    return await BrokerConnection.connect(host, int(port), "pipeline-test")


async def _create_rf3_topic(conn: BrokerConnection, topic: str, partitions: int) -> None:
    req = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=topic, num_partitions=partitions, replication_factor=3, assignments=[],
        configs=[])], timeout_ms=30000)
    resp = await conn.send(ApiKey.CREATE_TOPICS, 7, req)
    assert resp.topics[0].error_code == 0, resp.topics[0]


async def _leaders_with_full_isr(conn: BrokerConnection, topic: str, partitions: int
                                 ) -> dict[int, int]:
    """{partition: leader id} once every partition has a leader and an ISR of 3."""
    with trio.fail_after(60):
        while True:
            t = (await metadata(conn, [topic])).topics[0]
            if t.error_code == 0 and len(t.partitions) == partitions and all(
                    p.leader_id >= 0 and len(p.isr_nodes) == 3 for p in t.partitions):
                return {p.partition_index: p.leader_id for p in t.partitions}
            await trio.sleep(0.05)


def _frame(api_key: int, version: int, correlation_id: int, request: Any) -> bytes:
    flexible = 0 <= REQUESTS[api_key].FLEXIBLE_FROM <= version
    chunks: list[Any] = [encode_request_header(
        api_key, version, correlation_id, "pipeline-test",
        request_header_version(api_key, version, flexible))]
    request.encode(version, chunks)
    body = b"".join(bytes(c) for c in chunks)
    return struct.pack(">i", len(body)) + body


def _produce(topic: str, parts: dict[int, bytes]) -> ProduceRequest:
    return ProduceRequest(transactional_id=None, acks=-1, timeout_ms=30000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=p, records=r)
            for p, r in parts.items()])])


async def _read_frame(stream: trio.SocketStream, buf: bytearray) -> bytes:
    while True:
        if len(buf) >= 4:
            (size,) = struct.unpack_from(">i", buf, 0)
            if len(buf) >= 4 + size:
                out = bytes(buf[4:4 + size])
                del buf[:4 + size]
                return out
        data = await stream.receive_some(1 << 20)
        assert data, "broker closed the connection"
        buf += data


def _disk_records(broker, topic: str, partition: int) -> dict[int, bytes]:
    """{offset: value} from a broker's segment files (what is really on its disk)."""
    out: dict[int, bytes] = {}
    for seg in sorted((Path(broker.log_dir) / f"{topic}-{partition}").glob("*.log")):
        raw = seg.read_bytes()
        for info in native.scan_batches(raw, allow_gaps=True).batches:
            for rec in decode_batch(raw, info):
                out[rec.offset] = rec.value
    return out


async def test_pipelined_acks_all_produce_keeps_request_order(broker_cluster) -> None:
    brokers = [broker_cluster.start(overrides=FAST) for _ in range(3)]
    by_id = {b.broker_id: b for b in brokers}
    topic = f"pipe-{uuid.uuid4().hex[:8]}"
    conn = await _connect(brokers[0])
    try:
        await _create_rf3_topic(conn, topic, 3)
        leaders = await _leaders_with_full_isr(conn, topic, 3)
    finally:
        await conn.aclose()
    leader_id = leaders[0]
    others = [p for p, lid in leaders.items() if lid != leader_id]
    assert others, f"every partition led by {leader_id}: {leaders}"
    foreign = others[0]
    leader = by_id[leader_id]

    lconn = await _connect(leader)
    try:
        pid_resp = await lconn.send(ApiKey.INIT_PRODUCER_ID, 1, InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=60000))
        assert pid_resp.error_code == 0
        pid, epoch = pid_resp.producer_id, pid_resp.producer_epoch
    finally:
        await lconn.aclose()

    # 30 requests: idempotent batches of 5 records with consecutive sequences, plus
    # request 7 also writing to a partition this broker does not lead, request 12 a
    # corrupt batch (non-idempotent, so it takes no sequence), request 15 a Metadata
    # request (not pipelined: must be answered in its place), request 29 a retry of 28.
    frames: list[bytes] = []
    expect: list[tuple[str, Any]] = []
    seq = 0
    batches: list[bytes] = []
    for i in range(30):
        if i == 15:
            frames.append(_frame(ApiKey.METADATA, METADATA_V, i, MetadataRequest(
                topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                allow_auto_topic_creation=False)))
            expect.append(("metadata", None))
            continue
        if i == 12:
            bad = bytearray(batch([b"corrupt"]))
            bad[-1] ^= 0xFF   # the CRC covers the records: CORRUPT_MESSAGE
            frames.append(_frame(ApiKey.PRODUCE, PRODUCE_V, i, _produce(topic, {0: bytes(bad)})))
            expect.append(("corrupt", None))
            continue
        if i == 29:
            frames.append(_frame(ApiKey.PRODUCE, PRODUCE_V, i,
                                 _produce(topic, {0: batches[-1]})))
            expect.append(("duplicate", len(batches) - 1))
            continue
        values = [b"v%02d-%d" % (i, j) for j in range(5)]
        b = batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
        seq += 5
        batches.append(b)
        parts = {0: b}
        if i == 7:
            parts[foreign] = batch([b"elsewhere"])
        frames.append(_frame(ApiKey.PRODUCE, PRODUCE_V, i, _produce(topic, parts)))
        expect.append(("ok", values))

    host, port = leader.bootstrap.split(":")
    acked: list[bytes] = []
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(b"".join(frames))   # everything in flight at once
        buf = bytearray()
        next_offset = None
        first_offsets: list[int] = []
        with trio.fail_after(60):
            for i, (kind, payload) in enumerate(expect):
                raw = memoryview(await _read_frame(stream, buf))
                api = ApiKey.METADATA if kind == "metadata" else ApiKey.PRODUCE
                version = METADATA_V if kind == "metadata" else PRODUCE_V
                cid, pos = parse_response_header(raw, response_header_flexible(api, version))
                assert cid == i, f"response {i} carries correlation id {cid}"
                resp, _ = RESPONSES[api].decode(raw, pos, version)
                if kind == "metadata":
                    assert resp.topics[0].name == topic
                    continue
                parts = {p.index: p for p in resp.responses[0].partition_responses}
                if kind == "corrupt":
                    assert parts[0].error_code == ErrorCode.CORRUPT_MESSAGE
                    continue
                if kind == "duplicate":
                    assert parts[0].error_code == ErrorCode.NONE
                    assert parts[0].base_offset == first_offsets[payload]
                    continue
                assert parts[0].error_code == ErrorCode.NONE, parts[0]
                if next_offset is not None:
                    assert parts[0].base_offset == next_offset   # appended in request order
                first_offsets.append(parts[0].base_offset)
                next_offset = parts[0].base_offset + len(payload)
                acked.extend(payload)
                if i == 7:
                    assert parts[foreign].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER

    # acks=all: everything acknowledged is below the high watermark, so a consumer reads it
    # at once from the leader, and it is on every replica's disk.
    lconn = await _connect(leader)
    try:
        data = await fetch(lconn, topic, 0, 0)
    finally:
        await lconn.aclose()
    assert data.high_watermark == len(acked)
    assert [r.value for r in records_of(data.records)] == acked
    for b in brokers:
        on_disk = _disk_records(b, topic, 0)
        assert [on_disk[o] for o in sorted(on_disk)][:len(acked)] == acked, b.broker_id


def test_idempotent_client_with_five_in_flight_writes_each_message_once_in_order(
        broker_cluster) -> None:
    brokers = [broker_cluster.start(overrides=FAST) for _ in range(3)]
    bootstrap = broker_cluster.bootstrap
    topic = f"pipe-idem-{uuid.uuid4().hex[:8]}"

    async def setup() -> None:
        conn = await _connect(brokers[0])
        try:
            await _create_rf3_topic(conn, topic, 3)
            await _leaders_with_full_isr(conn, topic, 3)
        finally:
            await conn.aclose()

    trio.run(setup)
    n = 20000
    delivered: dict[int, list[tuple[int, bytes]]] = {}
    errors: list[str] = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            delivered.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))

    # Small batches and a short linger: many acks=all requests in flight per connection.
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 2,
                  "batch.size": 16384, "message.timeout.ms": 120000})
    for i in range(n):
        while True:
            try:
                p.produce(topic, key=b"k%d" % (i % 97), value=b"m%06d" % i,
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    assert p.flush(120) == 0
    assert not errors, errors[:3]
    assert sum(len(v) for v in delivered.values()) == n

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    seen: dict[int, list[tuple[int, bytes]]] = {}
    try:
        import time
        deadline = time.monotonic() + 90
        while sum(len(v) for v in seen.values()) < n and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            seen.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))
    finally:
        c.close()
    for part, got in delivered.items():
        got.sort()
        assert seen.get(part) == got, f"partition {part}: read back differs from acked"
        values = [int(v[1:]) for _, v in got]
        assert values == sorted(values), f"partition {part}: out of produce order"
    assert len({v for vs in seen.values() for _, v in vs}) == n   # no duplicates
