"""Partition reassignment phases with plain data."""
from __future__ import annotations

import pytest

from kafkapy.controller import events as E
from kafkapy.controller import reassignment
from kafkapy.controller import requests as R
from kafkapy.controller.actions import ControlRequest, SetTopicAssignment, UpdatePartitionStates
from kafkapy.controller.decisions import on_event
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import PartitionState
from tests.unit.controller.test_decisions import make_ctx

pytestmark = pytest.mark.unit
TP = TopicPartition("t", 0)


def writes(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def stop_replicas(actions):
    return [(a.broker_id, p.delete_partition, p.leader_epoch) for a in actions
            if isinstance(a, ControlRequest) and isinstance(a.request, R.StopReplicaData)
            for t in a.request.topic_states for p in t.partition_states]


def test_move_waits_for_isr_then_completes() -> None:
    ctx = make_ctx(assignment={0: [1, 2]}, states={0: (1, [1, 2], 3, 5)})
    actions = on_event(ctx, E.Reassign({TP: [2, 3]}))
    (assign,) = writes(actions, SetTopicAssignment)
    assert assign.assignment.partitions == {0: [2, 3, 1]}
    assert (assign.assignment.adding_replicas, assign.assignment.removing_replicas) == ({0: [3]}, {0: [1]})
    assert [w.states for w in writes(actions, UpdatePartitionStates)] == [
        {TP: PartitionState(1, 4, [1, 2], 5, zk_version=5)}]
    lai_to = {a.broker_id for a in actions if isinstance(a, ControlRequest)
              and isinstance(a.request, R.LeaderAndIsrData)}
    assert lai_to == {1, 2, 3}  # the new replica 3 learns it must fetch
    assert reassignment.in_progress(ctx) == {TP: ([2, 3, 1], [3], [1])}

    # 3 caught up: the leader reports ISR [1, 2, 3]
    done = on_event(ctx, E.IsrChangeNotification((), {TP: PartitionState(1, 4, [1, 2, 3], 5, zk_version=6)}))
    states = [w.states[TP] for w in writes(done, UpdatePartitionStates)]
    assert (states[0].leader, states[0].leader_epoch) == (2, 5)       # leader 1 is leaving
    assert (states[1].leader, states[1].isr, states[1].leader_epoch) == (2, [2, 3], 6)
    assert writes(done, SetTopicAssignment)[-1].assignment.partitions == {0: [2, 3]}
    assert not writes(done, SetTopicAssignment)[-1].assignment.adding_replicas
    assert (1, True, R.EPOCH_DURING_DELETE) in stop_replicas(done)
    assert reassignment.in_progress(ctx) == {} and ctx.replicas(TP) == [2, 3]


def test_shrinking_replicas_completes_at_once() -> None:
    ctx = make_ctx(assignment={0: [1, 2, 3]}, states={0: (1, [1, 2, 3], 0, 0)})
    actions = on_event(ctx, E.Reassign({TP: [1, 2]}))
    assert writes(actions, SetTopicAssignment)[-1].assignment.partitions == {0: [1, 2]}
    assert ctx.states[TP].isr == [1, 2] and ctx.states[TP].leader == 1
    assert (3, True, R.EPOCH_DURING_DELETE) in stop_replicas(actions)


def test_validation_and_cancel() -> None:
    ctx = make_ctx(brokers=(1, 2, 3), assignment={0: [1, 2], 1: [2, 1]},
                   states={0: (1, [1, 2], 0, 0), 1: (2, [2, 1], 0, 0)})
    errors, accepted = reassignment.validate(ctx, {
        TP: None, TopicPartition("t", 1): [2, 9], TopicPartition("x", 0): [1],
        TopicPartition("t", 2): [1]})
    assert errors == {TP: ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
                      TopicPartition("t", 1): ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                      TopicPartition("x", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                      TopicPartition("t", 2): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert accepted == {}
    on_event(ctx, E.Reassign({TP: [3, 2]}))
    assert reassignment.is_reassigning(ctx, TP)
    errors, accepted = reassignment.validate(ctx, {TP: None})
    # cancel = move back to the original replicas, in their order within RS (as Kafka)
    assert errors == {} and accepted == {TP: [2, 1]}
    on_event(ctx, E.Reassign(accepted))
    assert not reassignment.is_reassigning(ctx, TP) and ctx.replicas(TP) == [2, 1]
    assert ctx.states[TP].leader in (1, 2) and 3 not in ctx.states[TP].isr
