"""The pure controller's decisions, driven with plain data (no ZooKeeper, no sockets)."""
from __future__ import annotations

import pytest

from kafkapy.controller import context as C
from kafkapy.controller import events as E
from kafkapy.controller import requests as R
from kafkapy.controller.actions import (AddBrokerChannel, ControlRequest, CreatePartitionStates,
                                        DeleteTopicZNodes, DeleteZNode, RemoveBrokerChannel,
                                        UpdatePartitionStates)
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.decisions import (controlled_shutdown_error, on_event,
                                          remaining_partitions)
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import (LEADER_RECOVERY_RECOVERING, BrokerRegistration, EndPoint,
                             PartitionState, TopicAssignment)

pytestmark = pytest.mark.unit

TID = bytes(range(16))


def reg(broker: int, epoch: int = 100) -> BrokerRegistration:
    return BrokerRegistration(broker, [EndPoint("PLAINTEXT", "127.0.0.1", 9090 + broker, "PLAINTEXT")],
                              timestamp_ms=1, epoch=epoch + broker)


def tp(p: int, topic: str = "t") -> TopicPartition:
    return TopicPartition(topic, p)


def make_ctx(brokers=(1, 2, 3), assignment=None, states=None, epoch: int = 5) -> ControllerContext:
    ctx = ControllerContext(controller_id=1, epoch=epoch, epoch_zk_version=4)
    for b in brokers:
        ctx.live_brokers[b] = reg(b)
    if assignment is not None:
        ctx.add_topic("t", TopicAssignment(assignment, TID))
    for p, (leader, isr, leader_epoch, zk_version) in (states or {}).items():
        ctx.states[tp(p)] = PartitionState(leader, leader_epoch, isr, 3, zk_version=zk_version)
        ctx.partition_states[tp(p)] = C.ONLINE
        for b in ctx.replicas(tp(p)):
            ctx.replica_states[(tp(p), b)] = C.R_ONLINE
    return ctx


def requests(actions, kind, broker=None):
    return [a.request for a in actions if isinstance(a, ControlRequest)
            and isinstance(a.request, kind) and (broker is None or a.broker_id == broker)]


def lai_states(actions, broker):
    return {(t.topic_name, p.partition_index): p
            for r in requests(actions, R.LeaderAndIsrData, broker)
            for t in r.topic_states for p in t.partition_states}


def test_topic_creation_new_to_online() -> None:
    ctx = make_ctx(brokers=(1, 2))
    actions = on_event(ctx, E.TopicChange({"t": TopicAssignment({0: [2, 1], 1: [1, 3]}, TID)}))
    creates = [a for a in actions if isinstance(a, CreatePartitionStates)]
    assert creates == [CreatePartitionStates({
        tp(0): PartitionState(2, 0, [2, 1], 5, zk_version=0),
        tp(1): PartitionState(1, 0, [1], 5, zk_version=0)})]  # broker 3 is not live
    assert actions.index(creates[0]) == 0  # ZK writes come before requests
    for broker in (1, 2):
        lai = requests(actions, R.LeaderAndIsrData, broker)[0]
        assert lai.controller_epoch == 5 and lai.broker_epoch == 100 + broker
        assert lai.topic_states[0].topic_id == TID
        assert all(p.is_new for t in lai.topic_states for p in t.partition_states)
    assert set(lai_states(actions, 2)) == {("t", 0)}
    assert {(l.broker_id, l.port) for l in requests(actions, R.LeaderAndIsrData, 1)[0].live_leaders} == \
        {(1, 9091), (2, 9092)}
    um = requests(actions, R.UpdateMetadataData, 1)[0]
    assert um.broker_epoch == 101 and um.controller_id == 1 and um.controller_epoch == 5
    assert [p.leader for p in um.topic_states[0].partition_states] == [2, 1]
    assert um.topic_states[0].partition_states[1].offline_replicas == [3]
    assert [b.id for b in um.live_brokers] == [1, 2]
    kinds = [type(a.request) for a in actions if isinstance(a, ControlRequest)]
    assert kinds.index(R.UpdateMetadataData) > max(i for i, k in enumerate(kinds) if k is R.LeaderAndIsrData)
    assert ctx.partition_state(tp(0)) == C.ONLINE


def test_broker_death_moves_leadership_within_isr() -> None:
    ctx = make_ctx(assignment={0: [2, 3, 1], 1: [1, 2, 3]},
                   states={0: (2, [2, 3, 1], 7, 10), 1: (1, [1, 2, 3], 4, 2)})
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 3: reg(3)}))
    assert actions[0] == RemoveBrokerChannel(2)
    updates = [a for a in actions if isinstance(a, UpdatePartitionStates)]
    # t-0: new leader 3 from the ISR, ISR without the dead broker, epoch bump, expected version
    assert updates[0].states == {tp(0): PartitionState(3, 8, [3, 1], 5, zk_version=10)}
    # t-1: follower 2 leaves the ISR (replica -> offline), leader kept, epoch bumped
    assert updates[1].states == {tp(1): PartitionState(1, 5, [1, 3], 5, zk_version=2)}
    assert ctx.states[tp(0)] == PartitionState(3, 8, [3, 1], 5, zk_version=11)
    assert lai_states(actions, 3)[("t", 0)].leader == 3
    assert lai_states(actions, 1)[("t", 1)].isr == [1, 3]
    assert not [a for a in actions if isinstance(a, ControlRequest) and a.broker_id == 2]
    assert {b.id for b in requests(actions, R.UpdateMetadataData, 1)[-1].live_brokers} == {1, 3}


def test_no_live_isr_member_means_no_leader_unless_unclean() -> None:
    ctx = make_ctx(assignment={0: [2, 3]}, states={0: (2, [2], 1, 0)})
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 3: reg(3)}))
    updates = [a.states for a in actions if isinstance(a, UpdatePartitionStates)]
    assert updates == [{tp(0): PartitionState(-1, 2, [2], 5, zk_version=0)}]
    assert ctx.partition_state(tp(0)) == C.OFFLINE

    ctx = make_ctx(assignment={0: [2, 3]}, states={0: (2, [2], 1, 0)})
    ctx.topic_configs["t"] = {"unclean.leader.election.enable": "true"}
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 3: reg(3)}))
    updates = [a.states for a in actions if isinstance(a, UpdatePartitionStates)]
    assert updates[0] == {tp(0): PartitionState(3, 2, [3], 5, LEADER_RECOVERY_RECOVERING, 0)}


def test_leaderless_partition_recovers_when_isr_member_returns() -> None:
    ctx = make_ctx(brokers=(1, 3), assignment={0: [2, 3]}, states={0: (-1, [2], 2, 1)})
    ctx.partition_states[tp(0)] = C.OFFLINE
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 2: reg(2), 3: reg(3)}))
    assert AddBrokerChannel(reg(2)) in actions
    updates = [a.states for a in actions if isinstance(a, UpdatePartitionStates)]
    assert updates == [{tp(0): PartitionState(2, 3, [2], 5, zk_version=1)}]
    # the newcomer first gets UpdateMetadata with every partition, before LeaderAndIsr
    first_for_2 = next(a.request for a in actions if isinstance(a, ControlRequest) and a.broker_id == 2)
    assert isinstance(first_for_2, R.UpdateMetadataData) and first_for_2.topic_states


def test_bounced_broker_is_failure_then_join() -> None:
    ctx = make_ctx(assignment={0: [2, 1]}, states={0: (2, [2, 1], 0, 0)})
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 2: reg(2, epoch=500), 3: reg(3)}))
    channel = [a for a in actions if isinstance(a, (AddBrokerChannel, RemoveBrokerChannel))]
    assert channel == [RemoveBrokerChannel(2), AddBrokerChannel(reg(2, epoch=500))]
    updates = [a.states[tp(0)] for a in actions if isinstance(a, UpdatePartitionStates)]
    assert (updates[0].leader, updates[0].leader_epoch, updates[0].isr) == (1, 1, [1])
    assert ctx.broker_epoch(2) == 502
    # the new incarnation is told the current leadership with its new broker epoch
    lai = requests(actions, R.LeaderAndIsrData, 2)[-1]
    assert lai.broker_epoch == 502 and lai.topic_states[0].partition_states[0].leader == 1


def test_stale_controller_epoch_in_state_blocks_election() -> None:
    ctx = make_ctx(assignment={0: [2, 3]}, states={0: (2, [2, 3], 1, 0)}, epoch=2)
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 3: reg(3)}))
    assert not [a for a in actions if isinstance(a, UpdatePartitionStates)]


def test_controlled_shutdown_moves_leadership_and_shrinks_isr() -> None:
    ctx = make_ctx(assignment={0: [1, 2], 1: [2, 1], 2: [1]},
                   states={0: (1, [1, 2], 0, 0), 1: (2, [2, 1], 0, 0), 2: (1, [1], 0, 0)})
    assert controlled_shutdown_error(ctx, 9, -1) == ErrorCode.BROKER_NOT_AVAILABLE
    assert controlled_shutdown_error(ctx, 1, 5) == ErrorCode.STALE_BROKER_EPOCH
    assert controlled_shutdown_error(ctx, 1, 101) == ErrorCode.NONE
    actions = on_event(ctx, E.ControlledShutdown(1, 101))
    updates = [a.states for a in actions if isinstance(a, UpdatePartitionStates)]
    assert updates[0] == {tp(0): PartitionState(2, 1, [2], 5, zk_version=0)}
    assert updates[1] == {tp(1): PartitionState(2, 1, [2], 5, zk_version=0)}
    stop = requests(actions, R.StopReplicaData, 1)[0]
    assert [(t.topic_name, p.partition_index, p.delete_partition) for t in stop.topic_states
            for p in t.partition_states] == [("t", 1, False)]
    assert ctx.shutting_down == {1}
    assert remaining_partitions(ctx, 1) == []  # t-2 has RF 1 and is not counted
    assert lai_states(actions, 1)[("t", 0)].leader == 2  # it becomes a follower


def test_controlled_shutdown_without_other_isr_member_keeps_leader() -> None:
    ctx = make_ctx(assignment={0: [1, 2]}, states={0: (1, [1], 0, 0)})
    actions = on_event(ctx, E.ControlledShutdown(1, -1))
    assert not [a for a in actions if isinstance(a, UpdatePartitionStates)]
    assert remaining_partitions(ctx, 1) == [tp(0)]


def test_topic_deletion_flow() -> None:
    ctx = make_ctx(brokers=(1, 2), assignment={0: [1, 2]}, states={0: (1, [1, 2], 0, 0)})
    actions = on_event(ctx, E.TopicDeletion(frozenset({"t", "gone"})))
    assert DeleteZNode("/admin/delete_topics/gone") in actions
    um = requests(actions, R.UpdateMetadataData, 1)[0]
    assert um.topic_states[0].partition_states[0].leader == R.LEADER_DURING_DELETE
    for broker in (1, 2):
        req = [a for a in actions if isinstance(a, ControlRequest) and a.broker_id == broker
               and isinstance(a.request, R.StopReplicaData)]
        assert req[0].report
        part = req[0].request.topic_states[0].partition_states[0]
        assert (part.delete_partition, part.leader_epoch) == (True, R.EPOCH_DURING_DELETE)
    assert not [a for a in actions if isinstance(a, DeleteTopicZNodes)]
    assert on_event(ctx, E.ReplicaDeletionResult(1, (tp(0),))) == []
    done = on_event(ctx, E.ReplicaDeletionResult(2, (tp(0),)))
    assert done == [DeleteTopicZNodes("t")]
    assert "t" not in ctx.topics and tp(0) not in ctx.states


def test_deletion_waits_for_dead_replica_broker() -> None:
    ctx = make_ctx(brokers=(1,), assignment={0: [1, 2]}, states={0: (1, [1], 0, 0)})
    actions = on_event(ctx, E.TopicDeletion(frozenset({"t"})))
    assert not requests(actions, R.StopReplicaData)
    assert "t" in ctx.topics_ineligible
    actions = on_event(ctx, E.BrokerChange({1: reg(1), 2: reg(2)}))
    assert [r.topic_states[0].partition_states[0].delete_partition
            for r in requests(actions, R.StopReplicaData)] == [True, True]


def test_failover_sends_metadata_first_then_elects() -> None:
    ctx = make_ctx(brokers=(1, 3), assignment={0: [2, 3], 1: [1, 3]},
                   states={0: (2, [2, 3], 0, 0)})
    ctx.partition_states.clear()
    ctx.replica_states.clear()
    actions = on_event(ctx, E.Failover())
    first = [a for a in actions if isinstance(a, ControlRequest)][:2]
    assert all(isinstance(a.request, R.UpdateMetadataData) and not a.request.topic_states
               for a in first)
    creates = [a.states for a in actions if isinstance(a, CreatePartitionStates)]
    assert creates == [{tp(1): PartitionState(1, 0, [1, 3], 5, zk_version=0)}]
    updates = [a.states for a in actions if isinstance(a, UpdatePartitionStates)]
    # as Kafka: replicas of dead brokers go offline first (leader -1), then the election
    assert updates == [{tp(0): PartitionState(-1, 1, [3], 5, zk_version=0)},
                       {tp(0): PartitionState(3, 2, [3], 5, zk_version=1)}]
    assert ctx.partition_state(tp(0)) == ctx.partition_state(tp(1)) == C.ONLINE


def test_preferred_election_and_partition_growth() -> None:
    ctx = make_ctx(assignment={0: [1, 2]}, states={0: (2, [2, 1], 3, 6)})
    actions = on_event(ctx, E.PreferredReplicaElection((tp(0),), from_admin_node=True))
    assert [a.states for a in actions if isinstance(a, UpdatePartitionStates)] == \
        [{tp(0): PartitionState(1, 4, [2, 1], 5, zk_version=6)}]
    assert DeleteZNode("/admin/preferred_replica_election") in actions
    grown = on_event(ctx, E.PartitionModifications("t", TopicAssignment({0: [1, 2], 1: [3, 1]}, TID)))
    assert [a.states for a in grown if isinstance(a, CreatePartitionStates)] == \
        [{tp(1): PartitionState(3, 0, [3, 1], 5, zk_version=0)}]


def test_without_partitions_filters_requests() -> None:
    ctx = make_ctx(assignment={0: [1, 2], 1: [2, 1]},
                   states={0: (1, [1, 2], 0, 0), 1: (2, [2, 1], 0, 0)})
    actions = on_event(ctx, E.ControlledShutdown(1, -1))
    lai = requests(actions, R.LeaderAndIsrData, 2)[0]
    assert R.request_partitions(lai) == [("t", 0), ("t", 1)]
    kept = R.without_partitions(lai, {("t", 0)})
    assert kept is not None and R.request_partitions(kept) == [("t", 1)]
    assert R.without_partitions(lai, {("t", 0), ("t", 1)}) is None


def test_decisions_are_logged_with_what_moved_and_why(caplog) -> None:
    """An operator reads from one line per decision which partitions moved where, and which
    ISRs lost the broker as a follower."""
    caplog.set_level("INFO", logger="kafkapy.controller.state_machines")
    ctx = make_ctx(assignment={0: [2, 3, 1], 1: [1, 2, 3]},
                   states={0: (2, [2, 3, 1], 7, 10), 1: (1, [1, 2, 3], 4, 2)})
    on_event(ctx, E.BrokerChange({1: reg(1), 3: reg(3)}))
    assert ("broker(s) [2] failed (registration gone) -> t-0 now led by 3, ISR [3, 1]; "
            "followers dropped from ISR: t-1 ISR [1, 2, 3] -> [1, 3]") in caplog.messages
    caplog.clear()
    ctx = make_ctx(assignment={0: [2, 3, 1], 1: [1, 2, 3]},
                   states={0: (2, [2, 3, 1], 7, 10), 1: (1, [1, 2, 3], 4, 2)})
    on_event(ctx, E.ControlledShutdown(2, -1))
    assert ("broker 2 shutting down -> t-0 now led by 3, ISR [3, 1]; follower dropped from "
            "ISR: t-1 ISR [1, 2, 3] -> [1, 3]") in caplog.messages
