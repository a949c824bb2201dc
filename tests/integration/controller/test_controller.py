"""KafkaController against a real ZooKeeper, with fake brokers that record control requests."""
from __future__ import annotations

import pytest
import trio

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk import events as zev
from kafkapy.zk import paths
from kafkapy.zk.data import TopicAssignment
from tests.integration.controller.controller_harness import FakeBroker, wait_until
from tests.zk_fixture import ZooKeeperServer, unique_chroot

pytestmark = pytest.mark.integration


def active(brokers: list[FakeBroker]) -> list[FakeBroker]:
    return [b for b in brokers if b.controller is not None and b.controller.is_active]


async def states(zk, topic: str, n: int) -> dict[int, tuple[int, list[int], int]]:
    found = await zk.get_partition_states([(topic, p) for p in range(n)])
    return {p: (s.leader, s.isr, s.leader_epoch) for (_, p), s in found.items()}


async def test_creation_failover_and_broker_death(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2, 3)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="one active controller")
        first = active(brokers)[0]
        assert first.controller.epoch == 1
        zk = brokers[1].zk
        await zk.create_topic("t", TopicAssignment({0: [1, 2], 1: [2, 3], 2: [3, 1]}))

        async def elected() -> bool:
            return len(await states(zk, "t", 3)) == 3
        await wait_until(elected, what="partition states")
        assert await states(zk, "t", 3) == {0: (1, [1, 2], 0), 1: (2, [2, 3], 0), 2: (3, [3, 1], 0)}

        def got_new_leadership() -> bool:
            reqs = brokers[0].requests(ApiKey.LEADER_AND_ISR)
            return any(p.is_new for r in reqs for ts in r.topic_states if ts.topic_name == "t"
                       for p in ts.partition_states)
        await wait_until(got_new_leadership, what="LeaderAndIsr IsNew at broker 1")
        await wait_until(lambda: any(r.topic_states for r in brokers[2].requests(ApiKey.UPDATE_METADATA)),
                         what="UpdateMetadata with partitions")

        # the controller's broker dies: another takes over with a higher epoch and moves
        # leadership of its partitions within the ISR
        await first.stop()
        rest = [b for b in brokers if b is not first]
        await wait_until(lambda: len(active(rest)) == 1, what="failover")
        second = active(rest)[0]
        assert second.controller.epoch == 2
        dead = first.broker_id

        async def moved() -> bool:
            now = await states(zk, "t", 3)
            return all(leader != dead and dead not in isr for leader, isr, _ in now.values())
        await wait_until(moved, what="leadership moved off the dead broker")
        now = await states(zk, "t", 3)
        replicas = {0: [1, 2], 1: [2, 3], 2: [3, 1]}
        for p, (leader, isr, epoch) in now.items():
            if dead in replicas[p]:
                assert epoch >= 1 and leader in replicas[p] and isr == [leader]
        lai = [r for b in rest for r in b.requests(ApiKey.LEADER_AND_ISR) if r.controller_epoch == 2]
        assert lai, "the new controller sent LeaderAndIsr"
        for b in rest:
            await b.stop()


async def test_controlled_shutdown_and_deletion(zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        ctl = active(brokers)[0].controller
        zk = brokers[0].zk
        await zk.create_topic("t", TopicAssignment({0: [2, 1], 1: [1, 2]}))

        async def elected() -> bool:
            return len(await states(zk, "t", 2)) == 2
        await wait_until(elected, what="partition states")

        assert await ctl.controlled_shutdown(2, brokers[1].epoch - 1) == (ErrorCode.STALE_BROKER_EPOCH, [])
        assert (await ctl.controlled_shutdown(9, -1))[0] == ErrorCode.BROKER_NOT_AVAILABLE
        code, remaining = await ctl.controlled_shutdown(2, brokers[1].epoch)
        assert (code, remaining) == (ErrorCode.NONE, [])
        now = await states(zk, "t", 2)
        assert now[0][:2] == (1, [1]) and now[1][:2] == (1, [1])

        await zk.mark_topic_for_deletion("t")

        async def deleted() -> bool:
            return (await zk.exists(paths.topic_path("t")) is None
                    and await zk.exists(paths.delete_topic_path("t")) is None)
        await wait_until(deleted, what="topic znodes removed")
        for b in brokers:
            stops = [p for r in b.requests(ApiKey.STOP_REPLICA) for t in r.topic_states
                     for p in t.partition_states if p.delete_partition]
            assert stops and all(p.leader_epoch == -2 for p in stops)
        for b in brokers:
            await b.stop()


async def test_alter_partition_writes_isr_conditionally(zookeeper_server: ZooKeeperServer) -> None:
    from kafkapy.protocol.messages.alter_partition import AlterPartitionRequest

    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        ctl = active(brokers)[0].controller
        zk = brokers[0].zk
        await zk.create_topic("t", TopicAssignment({0: [1, 2]}))

        async def elected() -> bool:
            return len(await states(zk, "t", 1)) == 1
        await wait_until(elected, what="partition state")
        topic_id = (await zk.get_topic_assignment("t")).topic_id

        def shrink(partition_epoch: int, broker_epoch: int) -> AlterPartitionRequest:
            return AlterPartitionRequest(broker_id=1, broker_epoch=broker_epoch, topics=[
                AlterPartitionRequest.TopicData(topic_id=topic_id, partitions=[
                    AlterPartitionRequest.PartitionData(
                        partition_index=0, leader_epoch=0, partition_epoch=partition_epoch,
                        new_isr_with_epochs=[AlterPartitionRequest.BrokerState(
                            broker_id=1, broker_epoch=brokers[0].epoch)])])])

        stale = await ctl.alter_partition(shrink(0, brokers[0].epoch - 1), 3)
        assert stale.error_code == ErrorCode.STALE_BROKER_EPOCH
        ok = await ctl.alter_partition(shrink(0, brokers[0].epoch), 3)
        part = ok.topics[0].partitions[0]
        assert (ok.error_code, part.error_code, part.isr, part.leader_id, part.partition_epoch) == \
            (0, 0, [1], 1, 1)
        assert await states(zk, "t", 1) == {0: (1, [1], 0)}
        again = await ctl.alter_partition(shrink(0, brokers[0].epoch), 3)  # same state: success
        assert again.topics[0].partitions[0].error_code == 0
        for b in brokers:
            await b.stop()


async def test_controller_resigns_when_its_fenced_write_is_rejected(
        zookeeper_server: ZooKeeperServer) -> None:
    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        broker = FakeBroker(1, connect)
        await broker.start(nursery)
        await wait_until(lambda: broker.controller.is_active, what="controller")
        zk = broker.zk
        # another controller's election bumped /controller_epoch behind our back (zombie case)
        epoch, version = await zk.get_controller_epoch()
        await zk.multi([zev.SetDataOp(paths.CONTROLLER_EPOCH, b"%d" % (epoch + 1), version)])
        await zk.create_topic("t", TopicAssignment({0: [1]}))
        await wait_until(lambda: not broker.controller.is_active, what="resignation")
        assert await zk.get_partition_states([("t", 0)]) == {}
        await broker.stop()


async def test_session_expiry_resigns_and_another_broker_takes_over(
        zookeeper_server: ZooKeeperServer) -> None:
    from kazoo.client import KazooClient

    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        first = active(brokers)[0]
        other = next(b for b in brokers if b is not first)
        # expire the controller's session the classic way: a second client attaches to the
        # same session id and closes it
        sid, password = first.zk.kazoo.client_id

        def hijack() -> None:
            thief = KazooClient(hosts=zookeeper_server.connect, client_id=(sid, password))
            thief.start(timeout=10)
            thief.stop()
            thief.close()
        await trio.to_thread.run_sync(hijack)
        # the expired controller resigns; whoever wins next (either broker may, once the
        # first one has a new session) is the only active controller, at epoch 2
        await wait_until(lambda: [b.controller.epoch for b in active(brokers)] == [2],
                         what="a single controller at epoch 2")
        assert first.zk.session_id != sid
        for b in brokers:
            await b.stop()


async def test_elect_leaders_preferred(zookeeper_server: ZooKeeperServer) -> None:
    from kafkapy.log.topic_partition import TopicPartition

    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        ctl = active(brokers)[0].controller
        zk = brokers[0].zk
        await zk.create_topic("t", TopicAssignment({0: [2, 1]}))

        async def led_by(broker: int) -> bool:
            return (await states(zk, "t", 1)).get(0, (None,))[0] == broker
        await wait_until(lambda: led_by(2), what="initial leader")
        tp = TopicPartition("t", 0)
        assert await ctl.elect_leaders(0, [tp]) == {tp: ErrorCode.ELECTION_NOT_NEEDED}
        # move leadership away with a controlled shutdown, then bring broker 2 back in the ISR
        await ctl.controlled_shutdown(2, brokers[1].epoch)
        assert await led_by(1)
        ctl.ctx.shutting_down.discard(2)  # as if broker 2 had restarted (a bounce clears it)
        assert (await ctl.elect_leaders(0, [tp]))[tp] == ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
        state = (await zk.get_partition_states([("t", 0)]))[("t", 0)]
        from kafkapy.protocol.messages.alter_partition import AlterPartitionRequest
        grow = AlterPartitionRequest(broker_id=1, broker_epoch=brokers[0].epoch, topics=[
            AlterPartitionRequest.TopicData(topic_name="t", partitions=[
                AlterPartitionRequest.PartitionData(partition_index=0, leader_epoch=state.leader_epoch,
                                                    partition_epoch=state.zk_version, new_isr=[1, 2])])])
        assert (await ctl.alter_partition(grow, 1)).topics[0].partitions[0].error_code == 0
        assert await ctl.elect_leaders(0, None) == {tp: ErrorCode.NONE}
        assert await led_by(2)
        for b in brokers:
            await b.stop()


async def test_reassignment_completes_when_target_joins_isr(zookeeper_server: ZooKeeperServer) -> None:
    from kafkapy.log.topic_partition import TopicPartition
    from kafkapy.protocol.messages.alter_partition import AlterPartitionRequest

    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2, 3)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        ctl = active(brokers)[0].controller
        zk = brokers[0].zk
        await zk.create_topic("t", TopicAssignment({0: [1, 2]}))

        async def elected() -> bool:
            return len(await states(zk, "t", 1)) == 1
        await wait_until(elected, what="partition state")
        tp = TopicPartition("t", 0)
        assert await ctl.alter_partition_reassignments({tp: [2, 3]}) == {tp: ErrorCode.NONE}
        moving = await zk.get_topic_assignment("t")
        assert (moving.partitions, moving.adding_replicas, moving.removing_replicas) == \
            ({0: [2, 3, 1]}, {0: [3]}, {0: [1]})
        assert await ctl.list_partition_reassignments() == {tp: ([2, 3, 1], [3], [1])}
        state = (await zk.get_partition_states([("t", 0)]))[("t", 0)]
        grow = AlterPartitionRequest(broker_id=1, broker_epoch=brokers[0].epoch, topics=[
            AlterPartitionRequest.TopicData(topic_name="t", partitions=[
                AlterPartitionRequest.PartitionData(
                    partition_index=0, leader_epoch=state.leader_epoch,
                    partition_epoch=state.zk_version, new_isr=[1, 2, 3])])])
        assert (await ctl.alter_partition(grow, 1)).topics[0].partitions[0].error_code == 0
        done = await zk.get_topic_assignment("t")
        assert (done.partitions, done.adding_replicas, done.removing_replicas) == ({0: [2, 3]}, {}, {})
        leader, isr, _ = (await states(zk, "t", 1))[0]
        assert leader == 2 and isr == [2, 3]
        assert await ctl.list_partition_reassignments() == {}

        def deleted_on_1() -> bool:
            return any(p.delete_partition for r in brokers[0].requests(ApiKey.STOP_REPLICA)
                       for t in r.topic_states for p in t.partition_states)
        await wait_until(deleted_on_1, what="StopReplica(delete) to the removed replica")
        for b in brokers:
            await b.stop()


async def test_legacy_reassignment_node(zookeeper_server: ZooKeeperServer) -> None:
    from kafkapy.zk.data import encode_reassignment

    connect = zookeeper_server.connect + unique_chroot()
    async with trio.open_nursery() as nursery:
        brokers = [FakeBroker(i, connect) for i in (1, 2)]
        for b in brokers:
            await b.start(nursery)
        await wait_until(lambda: len(active(brokers)) == 1, what="controller")
        zk = brokers[0].zk
        await zk.create_topic("t", TopicAssignment({0: [1, 2], 1: [2, 1]}))

        async def elected() -> bool:
            return len(await states(zk, "t", 2)) == 2
        await wait_until(elected, what="partition states")
        # t-0 shrinks to [2] (completes at once); t-9 does not exist and is dropped
        await zk.create(paths.REASSIGN_PARTITIONS, encode_reassignment({("t", 0): [2], ("t", 9): [1]}))

        async def finished() -> bool:
            return await zk.exists(paths.REASSIGN_PARTITIONS) is None
        await wait_until(finished, what="reassignment node removed")
        assignment = await zk.get_topic_assignment("t")
        assert assignment.partitions == {0: [2], 1: [2, 1]} and not assignment.removing_replicas
        leader, isr, _ = (await states(zk, "t", 1))[0]
        assert (leader, isr) == (2, [2])
        for b in brokers:
            await b.stop()
