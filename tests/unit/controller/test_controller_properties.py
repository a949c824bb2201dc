"""Property test of the pure controller: random broker deaths, joins, bounces and controlled
shutdowns against a model ZooKeeper that applies every planned write. Invariants (reference
§10): leader epochs strictly increase, writes chain on the last zkVersion, leaders come from
the ISR unless the election was unclean, ISRs never empty, requests only reach live brokers."""
from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafkapy.controller import events as E
from kafkapy.controller import reassignment
from kafkapy.controller import requests as R
from kafkapy.controller.actions import (ControlRequest, CreatePartitionStates, SetTopicAssignment,
                                        UpdatePartitionStates)
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.decisions import on_event
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk.data import LEADER_RECOVERY_RECOVERING, BrokerRegistration, EndPoint, TopicAssignment

pytestmark = pytest.mark.unit

BROKERS = (1, 2, 3, 4)
ASSIGNMENT = {0: [1, 2, 3], 1: [2, 3, 4], 2: [3, 4, 1], 3: [4, 1], 4: [2]}

steps = st.lists(st.tuples(st.sampled_from(["die", "join", "bounce", "shutdown", "catchup",
                                            "reassign"]),
                           st.sampled_from(BROKERS),
                           st.sampled_from(sorted(ASSIGNMENT)),
                           st.permutations(BROKERS), st.integers(1, 3)),
                 min_size=1, max_size=25)


def reg(broker: int, epoch: int) -> BrokerRegistration:
    return BrokerRegistration(broker, [EndPoint("PLAINTEXT", "h", 9000 + broker, "PLAINTEXT")],
                              timestamp_ms=0, epoch=epoch)


@settings(max_examples=150, deadline=None)
@given(steps=steps, unclean=st.booleans())
def test_invariants_hold_under_random_broker_churn(steps, unclean) -> None:
    ctx = ControllerContext(controller_id=1, epoch=3, epoch_zk_version=2,
                            default_unclean_election=unclean)
    registered = {b: reg(b, 10 + b) for b in BROKERS}
    zk: dict = {}  # model of the state znodes: tp -> PartitionState with its zkVersion
    assigned: dict = {TopicPartition("t", p): r for p, r in ASSIGNMENT.items()}  # model znode
    next_epoch = 100

    def apply(actions) -> None:
        live = set(ctx.live_brokers)
        for a in actions:
            if isinstance(a, CreatePartitionStates):
                for tp, s in a.states.items():
                    assert tp not in zk
                    zk[tp] = attrs.evolve(s, zk_version=0)
            elif isinstance(a, UpdatePartitionStates):
                for tp, s in a.states.items():
                    old = zk[tp]
                    assert s.zk_version == old.zk_version, "write must expect the last version"
                    assert s.leader_epoch > old.leader_epoch, "leader epochs strictly increase"
                    assert s.controller_epoch == ctx.epoch
                    assert s.isr
                    if s.leader != -1:  # a leaderless ISR keeps its last member, as in Kafka
                        assert set(s.isr) <= set(assigned[tp]), "ISR within the replicas"
                    if s.leader != -1:
                        assert s.leader in s.isr
                        if s.leader_recovery_state != LEADER_RECOVERY_RECOVERING:
                            assert s.leader in old.isr or s.leader == old.leader, "clean election"
                        else:
                            assert unclean and s.isr == [s.leader]
                    zk[tp] = attrs.evolve(s, zk_version=old.zk_version + 1)
            elif isinstance(a, SetTopicAssignment):
                for p_id, replicas in a.assignment.partitions.items():
                    assert len(set(replicas)) == len(replicas) and replicas
                    assigned[TopicPartition(a.topic, p_id)] = replicas
            elif isinstance(a, ControlRequest):
                assert a.broker_id in live, "requests go only to live brokers"
                if isinstance(a.request, R.LeaderAndIsrData):
                    assert a.request.broker_epoch == ctx.broker_epoch(a.broker_id)
        for tp, s in ctx.states.items():
            assert zk[tp] == s, "context mirrors ZooKeeper after the writes"
            assert s.leader == -1 or set(s.isr) <= set(assigned[tp])
        if ctx.assignments:
            assert {tp: ctx.replicas(tp) for tp in assigned} == assigned

    apply(on_event(ctx, E.BrokerChange(dict(registered))))
    apply(on_event(ctx, E.TopicChange({"t": TopicAssignment(ASSIGNMENT, b"\1" * 16)})))
    for kind, broker, partition, order, size in steps:
        tp = TopicPartition("t", partition)
        if kind == "catchup":
            state = zk.get(tp)
            if state is not None and state.leader != -1:
                grown = state.isr + [r for r in ctx.replicas(tp)
                                     if r not in state.isr and r in ctx.live_broker_ids]
                # the leader writes the grown ISR itself (pre-AlterPartition path); a grown
                # ISR means the recovered leader is RECOVERED again (KIP-704)
                zk[tp] = attrs.evolve(state, isr=grown, zk_version=state.zk_version + 1,
                                      leader_recovery_state=0)
                apply(on_event(ctx, E.IsrChangeNotification((), {tp: zk[tp]})))
            continue
        if kind == "reassign":
            _, accepted = reassignment.validate(ctx, {tp: list(order[:size])})
            if accepted:
                apply(on_event(ctx, E.Reassign(accepted)))
            continue
        if kind == "die":
            registered.pop(broker, None)
        elif kind == "join":
            registered.setdefault(broker, reg(broker, next_epoch))
        elif kind == "bounce" and broker in registered:
            registered[broker] = reg(broker, next_epoch)
        elif kind == "shutdown" and broker in ctx.live_brokers:
            apply(on_event(ctx, E.ControlledShutdown(broker, ctx.broker_epoch(broker))))
            continue
        next_epoch += 1
        apply(on_event(ctx, E.BrokerChange(dict(registered))))
    # once every broker is back, every partition with a live ISR member has a leader
    for b in BROKERS:
        registered.setdefault(b, reg(b, next_epoch + b))
    apply(on_event(ctx, E.BrokerChange(dict(registered))))
    for tp, s in zk.items():
        if any(r in ctx.live_broker_ids for r in s.isr):
            assert s.leader != -1, f"{tp} should have a leader: {s}"
