"""ElectLeaders prechecks/outcomes and the admin unclean election, with plain data."""
from __future__ import annotations

import pytest

from kafkapy.controller import context as C
from kafkapy.controller import elect_leaders as EL
from kafkapy.controller import events as E
from kafkapy.controller.actions import UpdatePartitionStates
from kafkapy.controller.decisions import on_event
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import LEADER_RECOVERY_RECOVERING, PartitionState
from tests.unit.controller.test_decisions import make_ctx

pytestmark = pytest.mark.unit


def tp(p: int) -> TopicPartition:
    return TopicPartition("t", p)


def test_preferred_precheck_and_outcome() -> None:
    ctx = make_ctx(assignment={0: [1, 2], 1: [2, 1], 2: [3, 1]},
                   states={0: (2, [2, 1], 0, 0), 1: (2, [2, 1], 0, 0), 2: (1, [1], 0, 0)})
    done, todo = EL.precheck(ctx, EL.PREFERRED, [tp(0), tp(1), tp(2), TopicPartition("x", 0)])
    assert done == {tp(1): ErrorCode.ELECTION_NOT_NEEDED,
                    TopicPartition("x", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert todo == [tp(0), tp(2)]
    on_event(ctx, E.PreferredReplicaElection(tuple(todo)))
    assert EL.outcome(ctx, EL.PREFERRED, todo) == {
        tp(0): ErrorCode.NONE, tp(2): ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE}  # 3 not in ISR


def test_unclean_election_on_request() -> None:
    ctx = make_ctx(brokers=(1, 3), assignment={0: [2, 3], 1: [1, 3]},
                   states={0: (-1, [2], 4, 9), 1: (1, [1], 0, 0)})
    ctx.partition_states[tp(0)] = C.OFFLINE
    done, todo = EL.precheck(ctx, EL.UNCLEAN, [tp(0), tp(1)])
    assert done == {tp(1): ErrorCode.ELECTION_NOT_NEEDED} and todo == [tp(0)]
    actions = on_event(ctx, E.UncleanElection(tuple(todo)))
    assert [a.states for a in actions if isinstance(a, UpdatePartitionStates)] == [
        {tp(0): PartitionState(3, 5, [3], 5, LEADER_RECOVERY_RECOVERING, 9)}]
    assert EL.outcome(ctx, EL.UNCLEAN, todo) == {tp(0): ErrorCode.NONE}


def test_unclean_election_without_live_replica() -> None:
    ctx = make_ctx(brokers=(1,), assignment={0: [2, 3]}, states={0: (-1, [2], 4, 9)})
    ctx.partition_states[tp(0)] = C.OFFLINE
    on_event(ctx, E.UncleanElection((tp(0),)))
    assert EL.outcome(ctx, EL.UNCLEAN, [tp(0)]) == {tp(0): ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE}


def test_auto_rebalance_picks_partitions_of_imbalanced_brokers() -> None:
    from kafkapy.controller.rebalance import imbalanced_partitions

    # broker 1 prefers 4 partitions but leads only 2 (50% imbalance); broker 2 leads its own
    ctx = make_ctx(assignment={0: [1, 2], 1: [1, 2], 2: [1, 2], 3: [1, 3], 4: [2, 1]},
                   states={0: (1, [1, 2], 0, 0), 1: (1, [1, 2], 0, 0), 2: (2, [2, 1], 0, 0),
                           3: (3, [3], 0, 0), 4: (2, [2, 1], 0, 0)})
    assert imbalanced_partitions(ctx, 10) == [tp(2)]  # t-3: preferred 1 is not in the ISR
    assert imbalanced_partitions(ctx, 50) == []
