"""Fixture and helpers shared by the multi-broker tests (test_cluster_*, replication,
compaction, fencing): the 3-node-ensemble `broker_cluster`, broker start-up with lean timings,
ZooKeeper and Metadata probes, topic creation with an explicit assignment, and condition waits
(async for the trio tests, sync for the threaded ones).

The producers these tests write with and the check of what they acknowledged live in
cluster_producers.py.
"""
from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import AsyncIterator, Awaitable, Callable, Iterable

import pytest
import trio
from kazoo.client import KazooClient

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.create_topics import CreateTopicsRequest
from kafkapy.protocol.messages.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
)
from kafkapy.zk.client import KafkaZkClient
from tests.broker_fixture import BrokerCluster, BrokerProcess, metadata_v1
from tests.integration.kafka_wire import connect, metadata


@pytest.fixture
def broker_cluster(ensemble_cluster):
    """Multi-broker tests run against a real 3-node ZooKeeper ensemble (import this fixture
    into the test module to override conftest's single-server one)."""
    return ensemble_cluster


#: Lean timings for a 2-core machine; auto rebalance off so leadership moves only when a test
#: makes it move.
CLUSTER_OVERRIDES = {
    "zookeeper.session.timeout.ms": "6000",
    "replica.lag.time.max.ms": "3000",
    "controlled.shutdown.retry.backoff.ms": "500",
    "auto.leader.rebalance.enable": "false",
}
#: Followers that fetch often, for tests where replication has to keep up with a producer.
REPLICATION_OVERRIDES = {"replica.fetch.wait.max.ms": "200", "replica.fetch.backoff.ms": "200"}

THREE_WAY = {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}  # each broker prefers one partition


def start_brokers(cluster: BrokerCluster, ids: Iterable[int],
                  overrides: dict[str, str] | None = None) -> dict[int, BrokerProcess]:
    """Start the brokers together (their JVM-free start-ups overlap), then wait for each."""
    merged = {**CLUSTER_OVERRIDES, **(overrides or {})}
    brokers = {i: cluster.start(broker_id=i, overrides=merged, wait=False) for i in ids}
    for b in brokers.values():
        b.wait_ready(90)
    return brokers


# --- async (trio) helpers -----------------------------------------------------------------------

@contextlib.asynccontextmanager
async def zk_session(cluster: BrokerCluster) -> AsyncIterator[KafkaZkClient]:
    zk = KafkaZkClient(cluster.zk_connect, 10000, 20000)
    await zk.start()
    try:
        yield zk
    finally:
        await zk.close()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll an async condition; returns the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    with trio.move_on_after(timeout):
        while True:
            with contextlib.suppress(OSError, ConnectionError):  # a broker going away mid-probe
                if await predicate():
                    return time.monotonic() - started
            await trio.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


async def create_topic(broker: BrokerProcess, name: str, assignment: dict[int, list[int]],
                       configs: dict[str, str] | None = None) -> None:
    """CreateTopics with an explicit assignment; `broker` must be the controller."""
    req = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=-1, replication_factor=-1,
        assignments=[CreateTopicsRequest.CreatableReplicaAssignment(partition_index=p,
                                                                   broker_ids=r)
                     for p, r in assignment.items()],
        configs=[CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
                 for k, v in (configs or {}).items()])], timeout_ms=30000)
    async with connect(broker) as conn:
        resp = await conn.send(ApiKey.CREATE_TOPICS, 7, req)
    assert resp.topics[0].error_code == 0, resp.topics[0].error_message


async def partition_view(broker: BrokerProcess, topic: str
                         ) -> tuple[int, dict[int, tuple[int, list[int], list[int]]]]:
    """(controller id, partition -> (leader, replicas, isr)) as `broker`'s Metadata says."""
    async with connect(broker) as conn:
        md = await metadata(conn, [topic])
    t = md.topics[0]
    parts = {p.partition_index: (p.leader_id, list(p.replica_nodes), list(p.isr_nodes))
             for p in t.partitions} if t.error_code == 0 else {}
    return md.controller_id, parts


async def controller_id_seen_by(broker: BrokerProcess) -> int:
    async with connect(broker) as conn:
        return (await metadata(conn, [])).controller_id


async def answers_as_controller(broker: BrokerProcess) -> bool:
    """Whether the broker's controller module is active: controller-only requests
    (ListPartitionReassignments) get NOT_CONTROLLER everywhere else."""
    async with connect(broker) as conn:
        resp = await conn.send(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0,
                               ListPartitionReassignmentsRequest(timeout_ms=10000, topics=None))
    return resp.error_code != ErrorCode.NOT_CONTROLLER


async def broker_epoch(zk: KafkaZkClient, broker_id: int) -> int | None:
    """czxid of /brokers/ids/<id>: the broker epoch (KIP-380); None when not registered."""
    stat = await zk.exists(f"/brokers/ids/{broker_id}")
    return None if stat is None else stat.czxid


async def single_agreed_controller(zk: KafkaZkClient, brokers: Iterable[BrokerProcess]) -> int:
    """The /controller id if it is set, every given broker's Metadata names it and exactly that
    broker acts as controller; -1 otherwise."""
    cid = await zk.get_controller_id()
    if cid < 0:
        return -1
    for b in brokers:
        if await controller_id_seen_by(b) != cid:
            return -1
    active = [b.broker_id for b in brokers if await answers_as_controller(b)]
    return cid if active == [cid] else -1


# --- sync helpers, for the tests that run producer threads ---------------------------------------

def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Poll a condition (bounded); returns the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except (OSError, ConnectionError):
            pass  # a broker going away mid-probe
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # poll interval of a condition wait


class ZkProbe:
    """Reads the controller, partition states and broker epochs from the test's chroot."""

    def __init__(self, zk_connect: str) -> None:
        self.zk = KazooClient(hosts=zk_connect, timeout=10)
        self.zk.start(timeout=15)

    def close(self) -> None:
        self.zk.stop()
        self.zk.close()

    def controller(self) -> int:
        try:
            return json.loads(self.zk.get("/controller")[0])["brokerid"]
        except Exception:  # noqa: BLE001 - no controller at this instant
            return -1

    def state(self, topic: str, p: int) -> dict:
        return json.loads(self.zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")[0])

    def states(self, topic: str, partitions: Iterable[int]) -> dict[int, dict]:
        return {p: self.state(topic, p) for p in partitions}

    def fully_replicated(self, topic: str, partitions: Iterable[int], rf: int = 3) -> bool:
        """Every partition has a leader and all `rf` replicas in its ISR."""
        return all(s["leader"] >= 0 and len(s["isr"]) == rf
                   for s in self.states(topic, partitions).values())

    def broker_epoch(self, broker_id: int) -> int | None:
        stat = self.zk.exists(f"/brokers/ids/{broker_id}")
        return None if stat is None else stat.czxid


def leaders_seen_by(b: BrokerProcess, topic: str) -> tuple[int, dict[int, int]]:
    """(controller id, partition -> leader) from `b`'s Metadata."""
    with socket.create_connection((b.host, b.port), timeout=5) as sock:
        sock.settimeout(5)
        md = metadata_v1(sock, [topic])
    return md.controller_id, md.topics.get(topic, {})
