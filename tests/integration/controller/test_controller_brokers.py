"""The controller inside real kafkapy broker processes: failover after kill -9 moves
leadership to surviving ISR members, with a higher controller epoch."""
from __future__ import annotations

import pytest
import trio

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.messages.create_topics import CreateTopicsRequest
from kafkapy.zk.client import KafkaZkClient
from tests.integration.kafka_wire import connect, metadata

pytestmark = pytest.mark.integration


async def test_controller_failover_with_real_brokers(broker_cluster) -> None:
    brokers = [broker_cluster.start(broker_id=i, overrides={"zookeeper.session.timeout.ms": "6000"})
               for i in (1, 2, 3)]
    zk = KafkaZkClient(broker_cluster.zk_connect, 6000, 20000)
    await zk.start()
    try:
        controller_id = await zk.get_controller_id()
        first_epoch = (await zk.get_controller_epoch())[0]
        ctl = next(b for b in brokers if b.broker_id == controller_id)
        survivor = next(b for b in brokers if b is not ctl)
        async with connect(ctl) as conn:
            req = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
                name="failover", num_partitions=3, replication_factor=3)], timeout_ms=30000)
            resp = await conn.send(ApiKey.CREATE_TOPICS, 7, req)
            assert resp.topics[0].error_code == 0
        with trio.fail_after(30):
            while len(await zk.get_partition_states([("failover", p) for p in range(3)])) < 3:
                await trio.sleep(0.05)
        ctl.kill9()

        async def settled() -> bool:
            new_id = await zk.get_controller_id()
            states = await zk.get_partition_states([("failover", p) for p in range(3)])
            return (new_id not in (-1, controller_id) and all(
                s.leader not in (-1, controller_id) and controller_id not in s.isr
                for s in states.values()))
        with trio.fail_after(60):  # the killed broker's session must expire first
            while not await settled():
                await trio.sleep(0.1)
        assert (await zk.get_controller_epoch())[0] > first_epoch
        async with connect(survivor) as conn:
            with trio.fail_after(30):
                while True:
                    md = await metadata(conn, ["failover"])
                    leaders = {p.leader_id for p in md.topics[0].partitions}
                    if md.controller_id not in (-1, controller_id) and controller_id not in leaders \
                            and -1 not in leaders:
                        break
                    await trio.sleep(0.1)
    finally:
        await zk.close()


async def test_controlled_shutdown_moves_leadership_before_exit(broker_cluster) -> None:
    overrides = {"zookeeper.session.timeout.ms": "30000"}  # expiry cannot be what moves it
    brokers = [broker_cluster.start(broker_id=i, overrides=overrides) for i in (1, 2)]
    zk = KafkaZkClient(broker_cluster.zk_connect, 6000, 20000)
    await zk.start()
    try:
        controller_id = await zk.get_controller_id()
        other = next(b for b in brokers if b.broker_id != controller_id)
        async with connect(brokers[0]) as conn:
            req = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
                name="cs", num_partitions=4, replication_factor=2)], timeout_ms=30000)
            assert (await conn.send(ApiKey.CREATE_TOPICS, 7, req)).topics[0].error_code == 0
        tps = [("cs", p) for p in range(4)]
        with trio.fail_after(30):
            while True:
                states = await zk.get_partition_states(tps)
                if len(states) == 4 and all(len(s.isr) == 2 for s in states.values()):
                    break
                await trio.sleep(0.05)
        assert any(s.leader == other.broker_id for s in states.values())
        await trio.to_thread.run_sync(other.stop)  # SIGTERM: controlled shutdown first
        states = await zk.get_partition_states(tps)
        assert all(s.leader == controller_id and s.isr == [controller_id] for s in states.values())
    finally:
        await zk.close()
