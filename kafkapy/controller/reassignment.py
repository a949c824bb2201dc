"""Partition reassignment (Kafka's onPartitionReassignment, §3.6 of the reference). Pure.

With ORS the original replicas, TRS the target, AR = TRS - ORS and RR = ORS - TRS:
phase 1 writes RS = TRS + ORS (target first) with AR/RR, bumps the leader epoch and sends
LeaderAndIsr to RS so the new replicas start fetching. When every target replica is in the
ISR, phase 2 makes TRS the assignment, re-elects if the leader is not a live target (else bumps
the epoch), takes RR offline and deletes them, and writes RS = TRS with empty AR/RR.
Cancelling a reassignment is a reassignment back to ORS.
"""
from __future__ import annotations

from typing import Iterable

import attrs

from kafkapy.controller import context as C
from kafkapy.controller.actions import SetTopicAssignment, UpdatePartitionStates
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.state_machines import Planner
from kafkapy.controller import election
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import PartitionState, TopicAssignment


def is_reassigning(ctx: ControllerContext, tp: TopicPartition) -> bool:
    return bool(ctx.adding_replicas.get(tp) or ctx.removing_replicas.get(tp))


def original_replicas(ctx: ControllerContext, tp: TopicPartition) -> list[int]:
    adding = set(ctx.adding_replicas.get(tp, []))
    return [r for r in ctx.replicas(tp) if r not in adding]


def target_replicas(ctx: ControllerContext, tp: TopicPartition) -> list[int]:
    removing = set(ctx.removing_replicas.get(tp, []))
    return [r for r in ctx.replicas(tp) if r not in removing]


def validate(ctx: ControllerContext, targets: dict[TopicPartition, list[int] | None]
             ) -> tuple[dict[TopicPartition, ErrorCode], dict[TopicPartition, list[int]]]:
    """Per-partition errors, and the accepted targets (a cancel becomes a move back to ORS)."""
    errors: dict[TopicPartition, ErrorCode] = {}
    accepted: dict[TopicPartition, list[int]] = {}
    for tp, target in targets.items():
        if tp not in ctx.assignments or ctx.is_deleting(tp.topic):
            errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        elif target is None:
            if is_reassigning(ctx, tp):
                accepted[tp] = original_replicas(ctx, tp)
            else:
                errors[tp] = ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
        elif not target or len(set(target)) != len(target) or any(r < 0 for r in target):
            errors[tp] = ErrorCode.INVALID_REPLICA_ASSIGNMENT
        elif any(r not in ctx.live_or_shutting_down_ids for r in target):
            errors[tp] = ErrorCode.INVALID_REPLICA_ASSIGNMENT
        else:
            accepted[tp] = list(target)
    return errors, accepted


def _topic_assignment(ctx: ControllerContext, topic: str) -> TopicAssignment:
    tps = ctx.partitions_of(topic)
    return TopicAssignment(
        {tp.partition: list(ctx.replicas(tp)) for tp in tps},
        ctx.topic_ids.get(topic),
        {tp.partition: list(ctx.adding_replicas[tp]) for tp in tps if ctx.adding_replicas.get(tp)},
        {tp.partition: list(ctx.removing_replicas[tp]) for tp in tps if ctx.removing_replicas.get(tp)})


def _bump_epoch(p: Planner, tp: TopicPartition, recipients: Iterable[int]) -> None:
    current = p.ctx.states[tp]
    new = PartitionState(current.leader, current.leader_epoch + 1, current.isr, p.ctx.epoch,
                         current.leader_recovery_state, current.zk_version)
    p.actions.append(UpdatePartitionStates({tp: new}))
    p.ctx.states[tp] = attrs.evolve(new, zk_version=current.zk_version + 1)
    p.batch.add_leader_and_isr([r for r in recipients if p.ctx.is_replica_online(r, True)],
                               tp, p.ctx.states[tp])


def _stop_replicas(p: Planner, tp: TopicPartition, replicas: list[int]) -> None:
    """Take replicas out (offline: ISR shrink, then deletion). If that leaves the partition
    without a leader, elect one among the remaining replicas (offline strategy)."""
    p.offline_replicas([(tp, r) for r in replicas])
    for r in replicas:
        p.batch.add_stop_replica([r], tp, delete=True)
        p.ctx.replica_states.pop((tp, r), None)
    state = p.ctx.states.get(tp)
    if state is not None and state.leader == -1:
        p.offline_partitions([tp])
        p.online_partitions([tp])


def start(p: Planner, targets: dict[TopicPartition, list[int]]) -> None:
    """Phase 1 for each partition (or straight to phase 2 when the targets are in the ISR)."""
    ctx = p.ctx
    ready = []
    for tp, target in sorted(targets.items(), key=lambda i: (i[0].topic, i[0].partition)):
        original = original_replicas(ctx, tp)
        if target == ctx.replicas(tp) and not is_reassigning(ctx, tp):
            continue
        adding = [r for r in target if r not in original]
        removing = [r for r in original if r not in target]
        previous = list(ctx.replicas(tp))
        ctx.assignments[tp] = list(target) + [r for r in original if r not in target]
        ctx.adding_replicas[tp] = adding
        ctx.removing_replicas[tp] = removing
        p.actions.append(SetTopicAssignment(tp.topic, _topic_assignment(ctx, tp.topic)))
        p.note(f"reassigning {tp}: {original} -> {target} (adding {adding}, removing {removing})")
        # replicas still being added by an earlier reassignment but not wanted any more
        unneeded = [r for r in previous if r not in ctx.assignments[tp]]
        if unneeded and tp in ctx.states:
            _stop_replicas(p, tp, unneeded)
        if tp in ctx.states and ctx.states[tp].leader != -1:
            _bump_epoch(p, tp, ctx.replicas(tp))
        for r in adding:
            ctx.replica_states[(tp, r)] = C.R_NEW
        ready.append(tp)
    maybe_complete(p, ready)


def maybe_complete(p: Planner, tps: Iterable[TopicPartition]) -> None:
    """Phase 2 for every reassigning partition whose target replicas are all in the ISR."""
    ctx = p.ctx
    for tp in tps:
        state = ctx.states.get(tp)
        if state is None or not is_reassigning(ctx, tp):
            continue
        target = target_replicas(ctx, tp)
        if not set(target) <= set(state.isr):
            continue
        removing = list(ctx.removing_replicas.get(tp, []))
        for r in ctx.adding_replicas.get(tp, []):
            ctx.replica_states[(tp, r)] = C.R_ONLINE
        ctx.assignments[tp] = target
        ctx.adding_replicas[tp] = []
        ctx.removing_replicas[tp] = []
        if state.leader not in target or not ctx.is_replica_online(state.leader):
            choice = election.reassign_election(target, state.isr, ctx.live_broker_ids)
            if choice is not None:
                new = PartitionState(choice.leader, state.leader_epoch + 1, choice.isr, ctx.epoch,
                                     state.leader_recovery_state, state.zk_version)
                p.actions.append(UpdatePartitionStates({tp: new}))
                ctx.states[tp] = attrs.evolve(new, zk_version=state.zk_version + 1)
                p.batch.add_leader_and_isr([r for r in target if ctx.is_replica_online(r, True)],
                                           tp, ctx.states[tp])
            else:
                p.note(f"{tp}: no live in-sync target replica to lead after reassignment")
        else:
            _bump_epoch(p, tp, target)
        if removing:
            _stop_replicas(p, tp, removing)
        p.actions.append(SetTopicAssignment(tp.topic, _topic_assignment(ctx, tp.topic)))
        p.batch.add_update_metadata(ctx.live_or_shutting_down_ids, [tp])
        p.note(f"reassignment of {tp} completed: replicas {target}, "
               f"leader {ctx.states[tp].leader}, ISR {ctx.states[tp].isr}")


def in_progress(ctx: ControllerContext) -> dict[TopicPartition, tuple[list[int], list[int], list[int]]]:
    """ListPartitionReassignments: tp -> (replicas, adding, removing)."""
    return {tp: (list(ctx.replicas(tp)), list(ctx.adding_replicas.get(tp, [])),
                 list(ctx.removing_replicas.get(tp, [])))
            for tp in ctx.all_partitions() if is_reassigning(ctx, tp)}
