"""ZooKeeper reads that turn watch notifications into fully-read controller events.

Every read re-arms its one-shot watch (`watch=True`), as Kafka's handlers re-register on each
read. Used only by the controller's event task; the results feed `decisions.on_event`.
"""
from __future__ import annotations

import attrs

from kafkapy.controller import events as E
from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk import data
from kafkapy.zk.client import KafkaZkClient


async def read_brokers(zk: KafkaZkClient) -> dict[int, data.BrokerRegistration]:
    """Registered brokers with epochs; watches the id list and each broker node."""
    current: dict[int, data.BrokerRegistration] = {}
    for broker_id in await zk.get_all_broker_ids(watch=True):
        reg = await zk.get_broker(broker_id, watch=True)
        if reg is not None:
            current[broker_id] = reg
    return current


async def broker_change(zk: KafkaZkClient, ctx: ControllerContext) -> E.BrokerChange:
    """Also refreshes the configs of topics led by departing brokers: whether an unclean
    election is allowed is read at election time, as Kafka does."""
    current = await read_brokers(zk)
    leaving = {b for b, reg in ctx.live_brokers.items()
               if b not in current or current[b].epoch != reg.epoch}
    for topic in sorted({tp.topic for tp, s in ctx.states.items() if s.leader in leaving}):
        ctx.topic_configs[topic] = await zk.get_topic_config(topic)
    return E.BrokerChange(current)


async def _assignment_with_id(zk: KafkaZkClient, ctx: ControllerContext,
                              topic: str) -> data.TopicAssignment | None:
    """A topic's assignment (watched); adds a topic id if it has none (IBP >= 2.8 rule)."""
    assignment = await zk.get_topic_assignment(topic, watch=True)
    if assignment is not None and assignment.topic_id is None:
        assignment = attrs.evolve(assignment, topic_id=data.random_uuid())
        await zk.set_topic_assignment(topic, assignment, ctx.epoch_zk_version)
    return assignment


async def load_topics(zk: KafkaZkClient, ctx: ControllerContext) -> None:
    """Failover: every topic's assignment, config and partition states into the context."""
    for topic in await zk.get_all_topics(watch=True):
        assignment = await _assignment_with_id(zk, ctx, topic)
        if assignment is None:
            continue
        ctx.topic_configs[topic] = await zk.get_topic_config(topic)
        ctx.add_topic(topic, assignment)
    tps = [(tp.topic, tp.partition) for tp in ctx.all_partitions()]
    for (t, p), state in (await zk.get_partition_states(tps)).items():
        ctx.states[TopicPartition(t, p)] = state


async def topic_change(zk: KafkaZkClient, ctx: ControllerContext) -> E.TopicChange:
    assignments: dict[str, data.TopicAssignment] = {}
    configs: dict[str, dict[str, str]] = {}
    for topic in await zk.get_all_topics(watch=True):
        assignment = await _assignment_with_id(zk, ctx, topic)
        if assignment is None:
            continue
        assignments[topic] = assignment
        if topic not in ctx.topics:
            configs[topic] = await zk.get_topic_config(topic)
    return E.TopicChange(assignments, configs)


async def topic_deletion(zk: KafkaZkClient) -> E.TopicDeletion:
    return E.TopicDeletion(frozenset(await zk.get_topics_marked_for_deletion(watch=True)))


async def isr_changes(zk: KafkaZkClient) -> E.IsrChangeNotification | None:
    names = await zk.get_isr_change_notifications(watch=True)
    if not names:
        return None
    changed = sorted(set(await zk.get_isr_changes(names)))
    states = await zk.get_partition_states(changed)
    return E.IsrChangeNotification(
        tuple(names), {TopicPartition(t, p): s for (t, p), s in states.items()})


async def preferred_election(zk: KafkaZkClient) -> E.PreferredReplicaElection | None:
    wanted = await zk.get_preferred_replica_election(watch=True)
    if wanted is None:
        return None
    return E.PreferredReplicaElection(tuple(TopicPartition(t, p) for t, p in wanted),
                                      from_admin_node=True)
