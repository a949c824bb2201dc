"""Small helpers for tests that talk to a broker with kafkapy's own codec."""
from __future__ import annotations

import contextlib
import time
from typing import AsyncIterator

import trio

from kafkapy.network.client import BrokerConnection
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.messages.create_topics import CreateTopicsRequest
from kafkapy.protocol.messages.fetch import FetchRequest
from kafkapy.protocol.messages.metadata import MetadataRequest
from kafkapy.protocol.messages.produce import ProduceRequest
from kafkapy.protocol.records import Record, build_batch, iter_records


@contextlib.asynccontextmanager
async def connect(broker) -> AsyncIterator[BrokerConnection]:
    host, port = broker.bootstrap.split(":")
    conn = await BrokerConnection.connect(host, int(port), "kafkapy-tests")
    try:
        yield conn
    finally:
        await conn.aclose()


async def create_topic(conn: BrokerConnection, name: str, partitions: int = 3,
                       configs: dict[str, str] | None = None):
    req = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1, assignments=[],
        configs=[CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
                 for k, v in (configs or {}).items()])], timeout_ms=30000)
    resp = await conn.send(ApiKey.CREATE_TOPICS, 7, req)
    return resp.topics[0]


async def metadata(conn: BrokerConnection, topics: list[str] | None, version: int = 12):
    req = MetadataRequest(topics=None if topics is None else [
        MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
        allow_auto_topic_creation=False)
    return await conn.send(ApiKey.METADATA, version, req)


def batch(values: list[bytes], *, key: bytes | None = b"k", timestamp: int | None = None,
          **kw) -> bytes:
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    return build_batch([Record(key=key, value=v, headers=[("h", b"1")], timestamp=ts + i)
                        for i, v in enumerate(values)], **kw)


async def produce(conn: BrokerConnection, topic: str, partition: int, records: bytes,
                  acks: int = -1, version: int = 9):
    req = ProduceRequest(transactional_id=None, acks=acks, timeout_ms=10000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic, partition_data=[
            ProduceRequest.PartitionProduceData(index=partition, records=records)])])
    resp = await conn.send(ApiKey.PRODUCE, version, req)
    return None if resp is None else resp.responses[0].partition_responses[0]


async def fetch(conn: BrokerConnection, topic: str, partition: int, offset: int,
                max_wait_ms: int = 0, min_bytes: int = 1, version: int = 12,
                isolation_level: int = 0):
    req = FetchRequest(replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=min_bytes,
                       max_bytes=50 * 1024 * 1024, isolation_level=isolation_level,
                       session_id=0, session_epoch=-1, topics=[FetchRequest.FetchTopic(
                           topic=topic, partitions=[FetchRequest.FetchPartition(
                               partition=partition, fetch_offset=offset,
                               partition_max_bytes=10 * 1024 * 1024)])],
                       forgotten_topics_data=[], rack_id="")
    resp = await conn.send(ApiKey.FETCH, version, req)
    return resp.responses[0].partitions[0]


def records_of(data) -> list:
    raw = bytes(data) if data is not None else b""
    out = []
    pos = 0
    while pos + 12 <= len(raw):
        size = int.from_bytes(raw[pos + 8:pos + 12], "big") + 12
        out.extend(iter_records(raw[pos:pos + size]))
        pos += size
    return out


async def wait_for_leaders(conn: BrokerConnection, topic: str, partitions: int,
                           timeout: float = 30) -> None:
    with trio.fail_after(timeout):
        while True:
            md = await metadata(conn, [topic])
            t = md.topics[0]
            if t.error_code == 0 and len(t.partitions) == partitions and all(
                    p.leader_id >= 0 for p in t.partitions):
                return
            await trio.sleep(0.05)
