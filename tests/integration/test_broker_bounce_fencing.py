"""A broker killed (-9) and started again within its predecessor's ZooKeeper session.

The new process listens before it can register (the old registration lives until the session
expires), while the controller still believes in the predecessor: requests queued for it (here
the UpdateMetadata announcing a new partition) reach the new process. It must refuse them as addressed to
an earlier broker epoch (KIP-380) instead of building its metadata cache from a partial
update: kafkapy once answered Metadata for a topic with some of its partitions missing and no
error, and kafkajs 2.2.4 then silently never produced to the missing partition (found by the
client compatibility suite, tests/clients/compat, failover cell).
"""
from __future__ import annotations

import time

import pytest
import trio

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.messages.create_partitions import CreatePartitionsRequest
from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    THREE_WAY,
    broker_cluster,
    broker_epoch,
    create_topic,
    partition_view,
    start_brokers,
    wait_for,
    zk_session,
)
from tests.integration.kafka_wire import connect, metadata

pytestmark = pytest.mark.integration

FULL = [0, 1, 2, 3]  # the topic's partitions once grown by one


async def test_bounced_broker_never_lists_a_topic_partially(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))  # zookeeper.session.timeout.ms=6000
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        await create_topic(brokers[controller], "bounce", THREE_WAY)
        victim = next(i for i in (1, 2, 3) if i != controller)
        observer = brokers[controller]

        async def all_led() -> bool:
            _, parts = await partition_view(observer, "bounce")
            return len(parts) == 3 and all(parts[p][0] == r[0] for p, r in THREE_WAY.items())
        await wait_for(all_led, 30, "preferred leaders of the new topic")
        old_epoch = await broker_epoch(zk, victim)

        brokers[victim].kill9()
        killed = time.monotonic()
        # While the victim's session lives, the controller counts it alive: growing the topic
        # sends every live broker an UpdateMetadata naming only the new partition, and the
        # controller keeps retrying it towards the dead victim.
        async with connect(observer) as conn:
            grow = await conn.send(ApiKey.CREATE_PARTITIONS, 3, CreatePartitionsRequest(
                topics=[CreatePartitionsRequest.CreatePartitionsTopic(
                    name="bounce", count=len(FULL), assignments=None)],
                timeout_ms=30000, validate_only=False))
        assert grow.results[0].error_code == 0, grow.results[0].error_message
        brokers[victim].start(wait=False)
        assert time.monotonic() - killed < 5, "the victim's session may have expired already"

        answers: list[str] = []
        partial = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                async with connect(brokers[victim]) as conn:
                    md = await metadata(conn, ["bounce"])
            except (OSError, ConnectionError):
                await trio.sleep(0.02)
                continue
            t = md.topics[0]
            parts = sorted(p.partition_index for p in t.partitions)
            note = f"error {t.error_code} partitions {parts}"
            if not answers or answers[-1] != note:
                answers.append(note)
            if t.error_code == 0 and parts != FULL:
                partial += 1
            registered = await broker_epoch(zk, victim)
            if registered is not None and registered != old_epoch and t.error_code == 0 \
                    and parts == FULL and all(p.leader_id >= 0 for p in t.partitions):
                break
            await trio.sleep(0.02)
        else:
            pytest.fail(f"the restarted broker never served full metadata; answers: {answers}")
        print(f"\nrestarted broker {victim}'s Metadata answers for 'bounce': {answers}")
        assert not partial, (f"{partial} times the restarted broker listed the topic without "
                             f"some partitions (a stale controller request applied): {answers}")
