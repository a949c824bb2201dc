"""An acks=all produce parked on a dead ISR member survives a new leader epoch of the same
leader: the controller is killed (-9) while it follows the partition, the new controller drops
it from the ISR (a LeaderAndIsr with a new epoch for the unchanged leader), and the waiting
produce must then be acknowledged — not answered NOT_LEADER_OR_FOLLOWER for records that are
in the log, which makes every non-idempotent client write them twice (found by the client
compatibility suite: kafka-node's failover cell read 330 duplicates when the killed leader of
partition 0 was also the controller).
"""
from __future__ import annotations

import time

import pytest

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.messages.produce import ProduceRequest
from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    broker_cluster,
    create_topic,
    partition_view,
    start_brokers,
    wait_for,
    zk_session,
)
from tests.integration.kafka_wire import batch, connect, fetch, records_of

pytestmark = pytest.mark.integration

COUNT = 50


async def test_acks_all_produce_survives_an_epoch_bump_of_its_leader(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))  # zookeeper.session.timeout.ms=6000
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        leader, other = [i for i in (1, 2, 3) if i != controller]
        await create_topic(brokers[controller], "ackwait", {0: [leader, controller, other]})

        async def settled() -> bool:
            _, parts = await partition_view(brokers[leader], "ackwait")
            return 0 in parts and parts[0][0] == leader and len(parts[0][2]) == 3
        await wait_for(settled, 30, "leader and full ISR of the new topic")

        brokers[controller].kill9()
        started = time.monotonic()
        values = [f"v{i}".encode() for i in range(COUNT)]
        req = ProduceRequest(transactional_id=None, acks=-1, timeout_ms=60000, topic_data=[
            ProduceRequest.TopicProduceData(name="ackwait", partition_data=[
                ProduceRequest.PartitionProduceData(index=0, records=batch(values))])])
        async with connect(brokers[leader]) as conn:
            resp = await conn.send(ApiKey.PRODUCE, 9, req, timeout=90)
        part = resp.responses[0].partition_responses[0]
        waited = time.monotonic() - started
        print(f"\nacks=all produce answered error {part.error_code} after {waited:.1f}s "
              f"(the killed controller {controller} followed leader {leader})")
        assert part.error_code == 0, (
            f"the leader kept leading (only its epoch changed), yet answered error "
            f"{part.error_code} for records it had appended")

        async def still_led_without_victim() -> bool:
            _, parts = await partition_view(brokers[leader], "ackwait")
            return parts[0][0] == leader and controller not in parts[0][2]
        await wait_for(still_led_without_victim, 30, "the leader's ISR without the killed broker")
        async with connect(brokers[leader]) as conn:
            got = await fetch(conn, "ackwait", 0, 0)
        read = [bytes(r.value) for r in records_of(got.records)]
        assert read == values, f"log holds {len(read)} records, expected the {COUNT} once"
