"""Moving leadership and replicas back where they belong, with follower replication at work:
a preferred leader election (ElectLeaders through kafka-python) gives a returning broker its
partitions back once it has rejoined the ISR, and a reassignment [1,2,3] -> [2,3,4] completes
with every acknowledged record on the new replica set.
"""
from __future__ import annotations

import time

import pytest
import trio
from kafka import TopicPartition as KTP

from kafkapy.protocol.errors import ErrorCode
from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    REPLICATION_OVERRIDES,
    THREE_WAY,
    broker_cluster,
    create_topic,
    partition_view,
    start_brokers,
    wait_for,
    zk_session,
)
from tests.integration.test_cluster_admin import PREFERRED, admin_for, elect
from tests.integration.kafka_wire import batch, connect, fetch, produce, records_of

pytestmark = pytest.mark.integration


async def produce_acked(broker, topic: str, partition: int, values: list[bytes]) -> int:
    """acks=all produce of one batch; returns its base offset."""
    async with connect(broker) as conn:
        resp = await produce(conn, topic, partition, batch(values), acks=-1)
    assert resp.error_code == 0, resp
    return resp.base_offset


async def wait_until_leading(broker, topic: str, partition: int) -> None:
    """Wait until `broker` itself says it leads the partition. CreateTopics answers once the
    controller's own metadata shows the leaders; another broker may not have applied its
    LeaderAndIsr yet and then refuses a produce with UNKNOWN_TOPIC_OR_PARTITION (a client
    would retry). The controller sends each broker LeaderAndIsr before UpdateMetadata, so the
    broker's Metadata naming itself means it has taken the role."""
    async def leads() -> bool:
        _, parts = await partition_view(broker, topic)
        return parts.get(partition, (-1,))[0] == broker.broker_id
    await wait_for(leads, 30, f"broker {broker.broker_id} to lead {topic}-{partition}")


async def read_all(broker, topic: str, partition: int) -> list[bytes]:
    async with connect(broker) as conn:
        out: list[bytes] = []
        while True:
            part = await fetch(conn, topic, partition, len(out))
            assert part.error_code == 0, part.error_code
            recs = records_of(part.records)
            if not recs:
                return out
            out.extend(r.value for r in recs)


async def test_preferred_election_restores_leaders_after_return(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3), REPLICATION_OVERRIDES)
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        ctl = brokers[controller]
        await create_topic(ctl, "pref", THREE_WAY)
        victim = next(i for i in (1, 2, 3) if i != controller)
        mine = next(p for p, r in THREE_WAY.items() if r[0] == victim)
        await wait_until_leading(brokers[victim], "pref", mine)
        await produce_acked(brokers[victim], "pref", mine, [b"before-%d" % i for i in range(50)])

        brokers[victim].kill9()

        async def moved() -> bool:
            _, parts = await partition_view(ctl, "pref")
            return parts[mine][0] not in (-1, victim) and victim not in parts[mine][2]
        await wait_for(moved, 40, f"pref-{mine} to fail over")
        _, parts = await partition_view(ctl, "pref")
        interim = brokers[parts[mine][0]]
        await wait_until_leading(interim, "pref", mine)
        await produce_acked(interim, "pref", mine, [b"during-%d" % i for i in range(50)])

        brokers[victim].start(timeout=90)
        started = time.monotonic()

        async def back_in_isr() -> bool:
            _, parts = await partition_view(ctl, "pref")
            return all(victim in isr for _, _, isr in parts.values())
        rejoin = await wait_for(back_in_isr, 60, f"broker {victim} to rejoin every ISR")
        _, parts = await partition_view(ctl, "pref")
        assert parts[mine][0] != victim  # auto rebalance is off: nothing moved it back yet

        admin = admin_for(broker_cluster, controller)
        try:
            started = time.monotonic()
            results = await elect(admin, PREFERRED, {"pref": [0, 1, 2]})
            took = time.monotonic() - started
        finally:
            await trio.to_thread.run_sync(admin.close)
        print(f"\nbroker {victim} back in every ISR {rejoin:.2f}s after restart; preferred "
              f"ElectLeaders answered in {took:.2f}s")
        assert results == {("pref", p): (ErrorCode.NONE if p == mine
                                         else ErrorCode.ELECTION_NOT_NEEDED) for p in THREE_WAY}
        _, parts = await partition_view(ctl, "pref")
        assert {p: leader for p, (leader, _, _) in parts.items()} == {
            p: r[0] for p, r in THREE_WAY.items()}

        async def victim_leads() -> bool:
            _, parts = await partition_view(brokers[victim], "pref")
            return parts[mine][0] == victim
        await wait_for(victim_leads, 20, f"broker {victim} to know it leads pref-{mine}")
        await produce_acked(brokers[victim], "pref", mine, [b"after"])
        values = await read_all(brokers[victim], "pref", mine)
        assert values == ([b"before-%d" % i for i in range(50)]
                          + [b"during-%d" % i for i in range(50)] + [b"after"])


async def test_reassignment_to_a_new_broker_completes(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3), REPLICATION_OVERRIDES)
    brokers[4] = start_brokers(broker_cluster, (4,), REPLICATION_OVERRIDES)[4]
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        ctl = brokers[controller]
        await create_topic(ctl, "move", {0: [1, 2, 3]})
        await wait_until_leading(brokers[1], "move", 0)
        sent: list[bytes] = []
        for n in range(20):
            values = [b"m-%d-%d" % (n, i) + b"x" * 200 for i in range(100)]
            await produce_acked(brokers[1], "move", 0, values)
            sent.extend(values)

        admin = admin_for(broker_cluster, controller)
        try:
            result = await trio.to_thread.run_sync(
                lambda: admin.alter_partition_reassignments({KTP("move", 0): [2, 3, 4]}))
            assert result == {KTP("move", 0): None}
            started = time.monotonic()

            async def done() -> bool:
                ongoing = await trio.to_thread.run_sync(admin.list_partition_reassignments)
                _, parts = await partition_view(ctl, "move")
                leader, replicas, isr = parts[0]
                return not ongoing and replicas == [2, 3, 4] and sorted(isr) == [2, 3, 4]
            took = await wait_for(done, 60, "the reassignment to complete")
        finally:
            await trio.to_thread.run_sync(admin.close)
        print(f"\nreassignment [1,2,3] -> [2,3,4] of {len(sent)} records completed in "
              f"{took:.2f}s")
        _, parts = await partition_view(ctl, "move")
        assert parts[0][0] == 2  # the old leader left: first live target replica in the ISR
        assignment = (await zk.get_data("/brokers/topics/move"))[0].replace(b" ", b"")
        assert b'"partitions":{"0":[2,3,4]}' in assignment
        assert b'"adding_replicas":{}' in assignment and b'"removing_replicas":{}' in assignment

        async def removed_from_1() -> bool:
            return not (brokers[1].log_dir / "move-0").exists()
        await wait_for(removed_from_1, 30, "broker 1 to delete its replica")

        # The new replica holds everything: make it the leader by stopping the other two
        # (controlled shutdown moves leadership within the ISR) and read it all back from it.
        await trio.to_thread.run_sync(brokers[2].stop)
        await trio.to_thread.run_sync(brokers[3].stop)

        async def four_leads() -> bool:
            _, parts = await partition_view(brokers[4], "move")
            return parts[0][0] == 4
        await wait_for(four_leads, 40, "broker 4 to lead move-0")

        async def all_readable() -> bool:  # once its high watermark covers its whole log
            return await read_all(brokers[4], "move", 0) == sent
        await wait_for(all_readable, 20, "every acked record to be readable from broker 4")
