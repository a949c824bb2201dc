"""ElectLeaders (key 43) outcomes: which partitions need an election, and how each ended.
Pure; the controller runs the election itself through `decisions.on_event`."""
from __future__ import annotations

from typing import Iterable

from kafkapy.controller import context as C
from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode

PREFERRED = 0
UNCLEAN = 1


def precheck(ctx: ControllerContext, election_type: int, tps: Iterable[TopicPartition]
             ) -> tuple[dict[TopicPartition, ErrorCode], list[TopicPartition]]:
    """Errors decided before electing, and the partitions to elect."""
    done: dict[TopicPartition, ErrorCode] = {}
    todo: list[TopicPartition] = []
    for tp in tps:
        state = ctx.states.get(tp)
        if tp not in ctx.assignments or state is None or ctx.is_deleting(tp.topic):
            done[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        elif election_type == PREFERRED and state.leader == ctx.replicas(tp)[0]:
            done[tp] = ErrorCode.ELECTION_NOT_NEEDED
        elif election_type == UNCLEAN and ctx.is_replica_online(state.leader):
            done[tp] = ErrorCode.ELECTION_NOT_NEEDED
        elif election_type not in (PREFERRED, UNCLEAN):
            done[tp] = ErrorCode.INVALID_REQUEST
        else:
            todo.append(tp)
    return done, todo


def outcome(ctx: ControllerContext, election_type: int,
            tps: Iterable[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
    """After the election ran (and its writes were applied): success or why not."""
    out: dict[TopicPartition, ErrorCode] = {}
    for tp in tps:
        state = ctx.states.get(tp)
        if election_type == PREFERRED:
            ok = state is not None and state.leader == ctx.replicas(tp)[0]
            out[tp] = ErrorCode.NONE if ok else ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
        else:
            ok = (state is not None and ctx.is_replica_online(state.leader)
                  and ctx.partition_state(tp) == C.ONLINE)
            out[tp] = ErrorCode.NONE if ok else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
    return out
