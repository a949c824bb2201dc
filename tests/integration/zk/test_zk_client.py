"""KafkaZkClient against a real ZooKeeper (Debian's package, started by tests/zk_fixture.py)."""
from __future__ import annotations

import pytest
import trio

from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.zk import data, paths
from kafkapy.zk import events as ev
from kafkapy.zk.client import KafkaZkClient
from kafkapy.zk.session import unbounded_event_channel
from tests.zk_fixture import ZooKeeperServer, unique_chroot

pytestmark = pytest.mark.integration


def registration(broker_id: int, port: int = 9092) -> data.BrokerRegistration:
    return data.BrokerRegistration(
        broker_id, [data.EndPoint("PLAINTEXT", "127.0.0.1", port, "PLAINTEXT")])


async def started(connect: str) -> KafkaZkClient:
    zk = KafkaZkClient(connect, session_timeout_ms=4000, connection_timeout_ms=10000)
    await zk.start()
    return zk


async def next_event(recv: trio.MemoryReceiveChannel, predicate, timeout: float = 10.0):
    with trio.fail_after(timeout):
        while True:
            event = await recv.receive()
            if predicate(event):
                return event


async def test_chroot_and_top_level_paths_created(zookeeper_server: ZooKeeperServer) -> None:
    chroot = unique_chroot() + "/kafka"
    zk = await started(zookeeper_server.connect + chroot)
    try:
        for path in paths.PERSISTENT_ZK_PATHS:
            assert await zk.exists(path) is not None, path
    finally:
        await zk.close()
    root = await started(zookeeper_server.connect)
    try:
        assert await root.exists(chroot + "/brokers/ids") is not None
    finally:
        await root.close()


async def test_cluster_id_stable(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    a, b = await started(connect), await started(connect)
    try:
        first = await a.get_or_create_cluster_id()
        assert len(first) == 22
        assert await b.get_or_create_cluster_id() == first
        assert await a.get_or_create_cluster_id("ignored-because-present") == first
    finally:
        await a.close()
        await b.close()


async def test_registration_epoch_and_duplicate_id(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    a, b = await started(connect), await started(connect)
    try:
        epoch = await a.register_broker(registration(1))
        stat = await a.exists(paths.broker_path(1))
        assert stat is not None and epoch == stat.czxid and stat.ephemeralOwner == a.session_id
        reg = await b.get_broker(1)
        assert reg is not None and reg.epoch == epoch and reg.endpoint().port == 9092
        with pytest.raises(ev.BrokerAlreadyRegisteredError, match="broker id 1 already registered"):
            await b.register_broker(registration(1, 9093), wait_for_stale_ms=0)
        with pytest.raises(ev.BrokerAlreadyRegisteredError):
            await b.register_broker(registration(1, 9093), wait_for_stale_ms=500)
        # re-registering from the owning session is idempotent and keeps the epoch
        assert await a.register_broker(registration(1)) == epoch
        # b keeps trying while the holder lives; once a's session ends (whether or not b's
        # first attempt came before that) b owns id 1 with a newer epoch
        epochs: list[int] = []

        async def register_b() -> None:
            epochs.append(await b.register_broker(registration(1, 9093), wait_for_stale_ms=10000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(register_b)
            await a.close()
        assert epochs[0] > epoch
        assert await b.get_all_broker_ids() == [1]
    finally:
        await a.close()
        await b.close()


async def test_node_of_our_previous_session_is_replaced(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    old, zk = await started(connect), await started(connect)
    try:
        old_epoch = await old.register_broker(registration(5))
        # pretend `old` was this client's earlier session (ZOOKEEPER-2985: node outlived it)
        zk.session._session_ids.insert(0, old.session_id)
        new_epoch = await zk.register_broker(registration(5))
        stat = await zk.exists(paths.broker_path(5))
        assert stat is not None and stat.ephemeralOwner == zk.session_id
        assert new_epoch == stat.czxid > old_epoch
    finally:
        await old.close()
        await zk.close()


async def test_election_and_failover(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    a, b = await started(connect), await started(connect)
    send, recv = unbounded_event_channel()
    b.add_event_channel(send)
    try:
        won = await a.elect_controller(1)
        assert won.won and won.epoch == 1 and won.controller_id == 1
        lost = await b.elect_controller(2)
        assert not lost.won and lost.controller_id == 1
        await a.close()
        await next_event(recv, lambda e: isinstance(e, ev.ZkWatchEvent)
                         and e.path == paths.CONTROLLER and e.kind == ev.DELETED)
        second = await b.elect_controller(2)
        assert second.won and second.epoch == 2
        assert await b.get_controller_epoch() == (2, second.epoch_zk_version)
        assert await b.get_controller_id() == 2
    finally:
        await a.close()
        await b.close()


async def test_fenced_write_rejected_after_epoch_bump(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    a, b = await started(connect), await started(connect)
    try:
        won = await a.elect_controller(1)
        state = data.PartitionState(1, 0, [1], won.epoch)
        missing = await a.create_partition_states(won.epoch_zk_version, {("t", 0): state})
        assert missing[("t", 0)].error == ev.NONODE
        await a.create_topic("t", data.TopicAssignment({0: [1]}))
        created = await a.create_partition_states(won.epoch_zk_version, {("t", 0): state})
        assert created[("t", 0)].ok and created[("t", 0)].version == 0
        # another controller takes over: its election bumps /controller_epoch
        await a.delete(paths.CONTROLLER)
        assert (await b.elect_controller(2)).won
        newer = data.PartitionState(1, 1, [1], won.epoch, zk_version=0)
        with pytest.raises(ev.ControllerMovedError):
            await a.update_partition_states(won.epoch_zk_version, {("t", 0): newer})
        with pytest.raises(ev.ControllerMovedError):
            await a.fenced_multi(won.epoch_zk_version, [ev.DeleteOp(paths.partition_state_path("t", 0))])
        stored = await b.get_partition_states([("t", 0), ("t", 1)])
        assert stored == {("t", 0): data.PartitionState(1, 0, [1], 1, zk_version=0)}
    finally:
        await a.close()
        await b.close()


async def test_conditional_partition_state_writes(zookeeper_server: ZooKeeperServer) -> None:
    zk = await started(zookeeper_server.connect + unique_chroot())
    try:
        won = await zk.elect_controller(1)
        v = won.epoch_zk_version
        await zk.create_topic("t", data.TopicAssignment({0: [1, 2]}))
        await zk.create_partition_states(v, {("t", 0): data.PartitionState(1, 0, [1, 2], 1)})
        ok = await zk.update_partition_states(v, {("t", 0): data.PartitionState(2, 1, [2], 1, zk_version=0)})
        assert ok[("t", 0)].ok and ok[("t", 0)].version == 1
        stale = await zk.update_partition_states(v, {("t", 0): data.PartitionState(1, 2, [1], 1, zk_version=0)})
        assert stale[("t", 0)].error == ev.BADVERSION
        # leader-side ISR write: identical data under a moved version counts as success
        same = data.PartitionState(2, 1, [2], 1)
        assert await zk.conditional_update_partition_state("t", 0, same, 0) == (True, 1)
        assert await zk.conditional_update_partition_state(
            "t", 0, data.PartitionState(2, 1, [2, 1], 1), 0) == (False, 1)
    finally:
        await zk.close()


async def test_producer_id_blocks_never_overlap(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    a, b = await started(connect), await started(connect)
    blocks: list[data.ProducerIdBlock] = []
    try:
        async def grab(zk: KafkaZkClient, broker: int) -> None:
            for _ in range(5):
                blocks.append(await zk.allocate_producer_id_block(broker))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(grab, a, 1)
            nursery.start_soon(grab, b, 2)
        starts = sorted(bl.block_start for bl in blocks)
        assert starts == [i * 1000 for i in range(10)]
        assert all(bl.block_end == bl.block_start + 999 for bl in blocks)
    finally:
        await a.close()
        await b.close()


async def test_watches_arrive_on_channel(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    watcher, other = await started(connect), await started(connect)
    send, recv = unbounded_event_channel()
    watcher.add_event_channel(send)
    try:
        assert await watcher.get_all_broker_ids(watch=True) == []
        await other.register_broker(registration(3))
        await next_event(recv, lambda e: e == ev.ZkWatchEvent(ev.CHILD, paths.BROKER_IDS))
        assert await watcher.get_all_broker_ids(watch=True) == [3]  # re-armed by the read
        await other.close()
        await next_event(recv, lambda e: e == ev.ZkWatchEvent(ev.CHILD, paths.BROKER_IDS))
        assert await watcher.get_all_broker_ids() == []
    finally:
        await watcher.close()
        await other.close()


async def test_topics_configs_and_offsets(zookeeper_server: ZooKeeperServer) -> None:
    zk = await started(zookeeper_server.connect + unique_chroot())
    try:
        await zk.create_topic("t", data.TopicAssignment({0: [1, 2], 1: [2, 1]}), {"retention.ms": "1000"})
        assignment = await zk.get_topic_assignment("t")
        assert assignment is not None and assignment.partitions == {0: [1, 2], 1: [2, 1]}
        assert assignment.topic_id is not None and len(assignment.topic_id) == 16
        assert await zk.get_topic_config("t") == {"retention.ms": "1000"}
        with pytest.raises(KafkaError) as info:
            await zk.create_topic("t", data.TopicAssignment({0: [1]}))
        assert info.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
        merged = await zk.add_partitions("t", {2: [1, 2]})
        assert sorted(merged.partitions) == [0, 1, 2] and merged.topic_id == assignment.topic_id
        await zk.set_topic_config("t", {"cleanup.policy": "compact"})
        changes = await zk.get_config_change_notifications()
        assert len(changes) == 1 and changes[0].startswith("config_change_")
        assert await zk.get_config_change(changes[0]) == ("topics", "t")
        await zk.mark_topic_for_deletion("t")
        assert await zk.get_topics_marked_for_deletion() == ["t"]
        with pytest.raises(KafkaError) as info:
            await zk.mark_topic_for_deletion("nope")
        assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        won = await zk.elect_controller(1)
        await zk.create_partition_states(won.epoch_zk_version, {("t", 0): data.PartitionState(1, 0, [1], 1)})
        await zk.delete_topic_znodes("t", won.epoch_zk_version)
        assert await zk.get_all_topics() == [] and await zk.get_topics_marked_for_deletion() == []
        assert await zk.exists(paths.topic_config_path("t")) is None
        assert await zk.get_consumer_offset("g", "t", 0) is None
        await zk.set_consumer_offset("g", "t", 0, 42)
        await zk.set_consumer_offset("g", "t", 0, 43)
        assert await zk.get_consumer_offset("g", "t", 0) == 43
    finally:
        await zk.close()
