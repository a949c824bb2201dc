"""Replica placement (AdminUtils) and election strategies, with plain data."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from kafkapy.controller import election
from kafkapy.controller.placement import assign_replicas, rack_alternated_brokers
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.zk.data import LEADER_RECOVERY_RECOVERING

pytestmark = pytest.mark.unit


def test_plain_assignment_matches_kafka_table() -> None:
    brokers = {b: None for b in range(5)}
    got = assign_replicas(brokers, 10, 3, fixed_start_index=0)
    assert got == {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 4], 3: [3, 4, 0], 4: [4, 0, 1],
                   5: [0, 2, 3], 6: [1, 3, 4], 7: [2, 4, 0], 8: [3, 0, 1], 9: [4, 1, 2]}


def test_added_partitions_continue_the_leader_rotation() -> None:
    brokers = {b: None for b in range(5)}
    full = assign_replicas(brokers, 10, 3, fixed_start_index=0)
    tail = assign_replicas(brokers, 4, 3, start_partition_id=6, fixed_start_index=0)
    assert sorted(tail) == [6, 7, 8, 9]
    assert [tail[p][0] for p in tail] == [full[p][0] for p in range(6, 10)]
    # the follower shift restarts from the fixed index, as AdminUtils does for new partitions
    assert tail[6] == [1, 2, 3]


def test_random_assignment_is_balanced_and_distinct() -> None:
    brokers = {b: None for b in (1, 2, 3)}
    got = assign_replicas(brokers, 6, 2, rng=random.Random(7))
    assert all(len(set(r)) == 2 and set(r) <= {1, 2, 3} for r in got.values())
    assert Counter(r[0] for r in got.values()) == {1: 2, 2: 2, 3: 2}


def test_replication_factor_larger_than_brokers() -> None:
    with pytest.raises(KafkaError) as info:
        assign_replicas({1: None}, 1, 3)
    assert info.value.code == ErrorCode.INVALID_REPLICATION_FACTOR
    with pytest.raises(KafkaError) as info:
        assign_replicas({1: None}, 0, 1)
    assert info.value.code == ErrorCode.INVALID_PARTITIONS


def test_rack_alternation_and_rack_aware_spread() -> None:
    racks = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c"}
    assert rack_alternated_brokers(racks) == [0, 2, 4, 1, 3, 5]
    got = assign_replicas(racks, 12, 3, rng=random.Random(1))
    for replicas in got.values():
        assert len(set(replicas)) == 3
        assert {racks[b] for b in replicas} == {"a", "b", "c"}  # one replica per rack
    assert Counter(r[0] for r in got.values()) == {b: 2 for b in range(6)}
    with pytest.raises(KafkaError):
        assign_replicas({0: "a", 1: None}, 1, 1)


def test_offline_election() -> None:
    assert election.offline_election([1, 2, 3], [2, 3], {2, 3}, False) == \
        election.ElectionChoice(2, [2, 3])
    # assignment order decides, ISR = live ISR members
    assert election.offline_election([3, 2, 1], [1, 2, 3], {1, 2}, False) == \
        election.ElectionChoice(2, [1, 2])
    assert election.offline_election([1, 2], [1], {2}, False) is None
    unclean = election.offline_election([1, 2], [1], {2}, True)
    assert unclean == election.ElectionChoice(2, [2], LEADER_RECOVERY_RECOVERING) and unclean.unclean
    assert election.offline_election([1, 2], [1], set(), True) is None


def test_preferred_reassign_and_controlled_shutdown_elections() -> None:
    assert election.preferred_election([1, 2], [2, 1], {1, 2}) == election.ElectionChoice(1, [2, 1])
    assert election.preferred_election([1, 2], [2], {1, 2}) is None
    assert election.preferred_election([1, 2], [1, 2], {2}) is None
    assert election.reassign_election([4, 5], [5, 1], {4, 5}) == election.ElectionChoice(5, [5, 1])
    assert election.controlled_shutdown_election([1, 2, 3], [1, 2, 3], {1, 2, 3}, {1}) == \
        election.ElectionChoice(2, [2, 3])
    assert election.controlled_shutdown_election([1, 2], [1], {1, 2}, {1}) is None
