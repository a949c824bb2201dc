"""Partition and replica state machines (Kafka's Partition/ReplicaStateMachine and
ControllerBrokerRequestBatch), as a pure `Planner` that turns transitions into actions.

The planner updates the ControllerContext as if every planned ZooKeeper write succeeds (a
state's zk_version becomes expected+1); the edge reloads entries whose write was rejected.
Requests are batched per broker and emitted in Kafka's order: LeaderAndIsr, UpdateMetadata,
StopReplica; a later entry for the same broker and partition replaces an earlier one.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

import attrs

from kafkapy.controller import context as C
from kafkapy.controller import election
from kafkapy.controller import requests as R
from kafkapy.controller.actions import (Action, ControlRequest, CreatePartitionStates,
                                        UpdatePartitionStates)
from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk.data import PartitionState

log = logging.getLogger(__name__)

NO_LEADER = -1
Strategy = Callable[[ControllerContext, TopicPartition, PartitionState], election.ElectionChoice | None]


def _sorted(tps: Iterable[TopicPartition]) -> list[TopicPartition]:
    return sorted(set(tps), key=lambda t: (t.topic, t.partition))


def describe(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(str(tp) for tp in _sorted(tps)) or "(none)"


# --- election strategies bound to the context ------------------------------------------

def offline_strategy(ctx: ControllerContext, tp: TopicPartition,
                     state: PartitionState) -> election.ElectionChoice | None:
    return election.offline_election(ctx.replicas(tp), state.isr, ctx.live_broker_ids,
                                     ctx.unclean_allowed(tp.topic))


def unclean_strategy(ctx: ControllerContext, tp: TopicPartition,
                     state: PartitionState) -> election.ElectionChoice | None:
    return election.offline_election(ctx.replicas(tp), state.isr, ctx.live_broker_ids, True)


def preferred_strategy(ctx: ControllerContext, tp: TopicPartition,
                       state: PartitionState) -> election.ElectionChoice | None:
    return election.preferred_election(ctx.replicas(tp), state.isr, ctx.live_broker_ids)


def controlled_shutdown_strategy(ctx: ControllerContext, tp: TopicPartition,
                                 state: PartitionState) -> election.ElectionChoice | None:
    return election.controlled_shutdown_election(ctx.replicas(tp), state.isr,
                                                 ctx.live_or_shutting_down_ids, ctx.shutting_down)


# --- request batch -----------------------------------------------------------------------

@attrs.define(slots=True)
class RequestBatch:
    ctx: ControllerContext
    inter_broker_listener: str = "PLAINTEXT"
    leader_and_isr: dict[int, dict[TopicPartition, R.LeaderAndIsrPartitionState]] = attrs.field(factory=dict)
    update_metadata: dict[int, set[TopicPartition]] = attrs.field(factory=dict)
    stop_replica: dict[int, dict[TopicPartition, tuple[bool, int]]] = attrs.field(factory=dict)
    report_stop_replica: set[int] = attrs.field(factory=set)

    def empty(self) -> bool:
        return not (self.leader_and_isr or self.update_metadata or self.stop_replica)

    def add_leader_and_isr(self, brokers: Iterable[int], tp: TopicPartition,
                           state: PartitionState, is_new: bool = False) -> None:
        replicas = self.ctx.replicas(tp)
        for broker in brokers:
            if broker < 0:
                continue
            self.leader_and_isr.setdefault(broker, {})[tp] = R.LeaderAndIsrPartitionState(
                topic_name=tp.topic, partition_index=tp.partition,
                controller_epoch=state.controller_epoch, leader=state.leader,
                leader_epoch=state.leader_epoch, isr=list(state.isr),
                partition_epoch=state.zk_version, replicas=list(replicas),
                adding_replicas=list(self.ctx.adding_replicas.get(tp, [])),
                removing_replicas=list(self.ctx.removing_replicas.get(tp, [])),
                is_new=is_new, leader_recovery_state=state.leader_recovery_state)
        self.add_update_metadata(self.ctx.live_or_shutting_down_ids, [tp])

    def add_update_metadata(self, brokers: Iterable[int], tps: Iterable[TopicPartition]) -> None:
        wanted = set(tps)
        for broker in brokers:
            self.update_metadata.setdefault(broker, set()).update(wanted)

    def add_stop_replica(self, brokers: Iterable[int], tp: TopicPartition, delete: bool) -> None:
        if delete:
            epoch = R.EPOCH_DURING_DELETE
        else:
            state = self.ctx.states.get(tp)
            epoch = state.leader_epoch if state is not None else R.NO_EPOCH
        for broker in brokers:
            self.stop_replica.setdefault(broker, {})[tp] = (delete, epoch)
            if delete:
                self.report_stop_replica.add(broker)

    def build(self) -> list[ControlRequest]:
        out: list[ControlRequest] = []
        live = self.ctx.live_brokers
        for broker in sorted(self.leader_and_isr):
            if broker in live:
                out.append(ControlRequest(broker, self._leader_and_isr(broker)))
        for broker in sorted(self.update_metadata):
            if broker in live:
                out.append(ControlRequest(broker, self._update_metadata(
                    broker, self.update_metadata[broker])))
        for broker in sorted(self.stop_replica):
            if broker in live:
                out.append(ControlRequest(broker, self._stop_replica(broker),
                                          report=broker in self.report_stop_replica))
        self.leader_and_isr, self.update_metadata, self.stop_replica = {}, {}, {}
        self.report_stop_replica = set()
        return out

    def _endpoint(self, broker: int) -> tuple[str, int] | None:
        reg = self.ctx.live_brokers.get(broker)
        if reg is None or not reg.endpoints:
            return None
        ep = reg.endpoint(self.inter_broker_listener) or reg.endpoints[0]
        return ep.host, ep.port

    def _topic_id(self, topic: str) -> bytes:
        return self.ctx.topic_ids.get(topic, b"\0" * 16)

    def _leader_and_isr(self, broker: int) -> R.LeaderAndIsrData:
        parts = self.leader_and_isr[broker]
        topics: dict[str, R.LeaderAndIsrTopicState] = {}
        leaders: set[int] = set()
        for tp in _sorted(parts):
            topics.setdefault(tp.topic, R.LeaderAndIsrTopicState(tp.topic, self._topic_id(tp.topic))
                              ).partition_states.append(parts[tp])
            leaders.add(parts[tp].leader)
        live_leaders = []
        for leader in sorted(leaders):
            endpoint = self._endpoint(leader)
            if endpoint is not None:
                live_leaders.append(R.LeaderAndIsrLiveLeader(leader, endpoint[0], endpoint[1]))
        return R.LeaderAndIsrData(self.ctx.controller_id, self.ctx.epoch,
                                  self.ctx.broker_epoch(broker), list(topics.values()), live_leaders)

    def _update_metadata(self, broker: int, tps: set[TopicPartition]) -> R.UpdateMetadataData:
        topics: dict[str, R.UpdateMetadataTopicState] = {}
        for tp in _sorted(tps):
            state = self.ctx.states.get(tp)
            if state is None:
                continue
            replicas = self.ctx.replicas(tp)
            leader = R.LEADER_DURING_DELETE if self.ctx.is_deleting(tp.topic) else state.leader
            topics.setdefault(tp.topic, R.UpdateMetadataTopicState(tp.topic, self._topic_id(tp.topic))
                              ).partition_states.append(R.UpdateMetadataPartitionState(
                                  topic_name=tp.topic, partition_index=tp.partition,
                                  controller_epoch=state.controller_epoch, leader=leader,
                                  leader_epoch=state.leader_epoch, isr=list(state.isr),
                                  zk_version=state.zk_version, replicas=list(replicas),
                                  offline_replicas=[r for r in replicas
                                                    if not self.ctx.is_replica_online(r)]))
        brokers = []
        for broker_id in sorted(self.ctx.live_brokers):
            reg = self.ctx.live_brokers[broker_id]
            brokers.append(R.UpdateMetadataBroker(broker_id, [
                R.UpdateMetadataEndpoint(ep.port, ep.host, ep.listener,
                                         R.SECURITY_PROTOCOL_IDS.get(ep.security_protocol, 0))
                for ep in reg.endpoints], reg.rack))
        return R.UpdateMetadataData(self.ctx.controller_id, self.ctx.epoch,
                                    self.ctx.broker_epoch(broker), list(topics.values()), brokers)

    def _stop_replica(self, broker: int) -> R.StopReplicaData:
        parts = self.stop_replica[broker]
        topics: dict[str, R.StopReplicaTopicState] = {}
        for tp in _sorted(parts):
            delete, epoch = parts[tp]
            topics.setdefault(tp.topic, R.StopReplicaTopicState(tp.topic)).partition_states.append(
                R.StopReplicaPartitionState(tp.partition, epoch, delete))
        return R.StopReplicaData(self.ctx.controller_id, self.ctx.epoch,
                                 self.ctx.broker_epoch(broker), list(topics.values()))


# --- planner -----------------------------------------------------------------------------

@attrs.define(slots=True)
class Planner:
    """Collects actions for one event. Call transitions, then `finish()`."""

    ctx: ControllerContext
    actions: list[Action] = attrs.field(factory=list)
    batch: RequestBatch = attrs.field(default=attrs.Factory(lambda s: RequestBatch(s.ctx), takes_self=True))
    notes: list[str] = attrs.field(factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        log.info("%s", text)

    def flush(self) -> None:
        """Emit the requests batched so far (e.g. UpdateMetadata before state changes)."""
        self.actions.extend(self.batch.build())

    def finish(self) -> list[Action]:
        self.flush()
        return self.actions

    # --- partition state machine ---------------------------------------------------

    def online_partitions(self, tps: Iterable[TopicPartition],
                          strategy: Strategy = offline_strategy) -> list[TopicPartition]:
        """New -> Online (initial leader) and Offline/Online -> Online (election). Returns
        the partitions that are still without a leader."""
        new = [tp for tp in _sorted(tps) if self.ctx.partition_state(tp) == C.NEW]
        elect = [tp for tp in _sorted(tps) if self.ctx.partition_state(tp) in (C.OFFLINE, C.ONLINE)]
        failed = self._initialize(new)
        failed += self._elect(elect, strategy)
        return failed

    def offline_partitions(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            if self.ctx.partition_state(tp) != C.NON_EXISTENT:
                self.ctx.partition_states[tp] = C.OFFLINE

    def nonexistent_partitions(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.ctx.partition_states[tp] = C.NON_EXISTENT

    def trigger_online(self) -> list[TopicPartition]:
        """Kafka's triggerOnlinePartitionStateChange: every New/Offline partition of a topic
        not queued for deletion -> Online."""
        todo = [tp for tp, s in self.ctx.partition_states.items()
                if s in (C.NEW, C.OFFLINE) and not self.ctx.is_deleting(tp.topic)]
        return self.online_partitions(todo)

    def _initialize(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        creates: dict[TopicPartition, PartitionState] = {}
        failed = []
        for tp in tps:
            live = [r for r in self.ctx.replicas(tp) if self.ctx.is_replica_online(r)]
            if not live:
                self.note(f"{tp}: no live replica among {self.ctx.replicas(tp)}, stays new")
                failed.append(tp)
                continue
            state = PartitionState(live[0], 0, live, self.ctx.epoch, zk_version=0)
            creates[tp] = state
            self.ctx.states[tp] = state
            self.ctx.partition_states[tp] = C.ONLINE
            self.batch.add_leader_and_isr(live, tp, state, is_new=True)
        if creates:
            self.actions.append(CreatePartitionStates(creates))
            self.note("new partitions " + "; ".join(
                f"{tp} led by {s.leader}, ISR {s.isr}" for tp, s in creates.items()))
        return failed

    def _elect(self, tps: list[TopicPartition], strategy: Strategy) -> list[TopicPartition]:
        updates: dict[TopicPartition, PartitionState] = {}
        failed = []
        for tp in tps:
            current = self.ctx.states.get(tp)
            if current is None:
                failed.append(tp)
                continue
            if current.controller_epoch > self.ctx.epoch:
                self.note(f"{tp}: state written by newer controller epoch "
                          f"{current.controller_epoch} > {self.ctx.epoch}, not electing")
                failed.append(tp)
                continue
            choice = strategy(self.ctx, tp, current)
            if choice is None:
                failed.append(tp)
                continue
            new = PartitionState(choice.leader, current.leader_epoch + 1, choice.isr,
                                 self.ctx.epoch, choice.leader_recovery_state, current.zk_version)
            updates[tp] = new
            self.ctx.states[tp] = attrs.evolve(new, zk_version=current.zk_version + 1)
            self.ctx.partition_states[tp] = C.ONLINE
            if choice.unclean:
                self.note(f"UNCLEAN election for {tp}: {choice.leader} was not in ISR "
                          f"{current.isr}; records may be lost")
            recipients = [r for r in self.ctx.replicas(tp)
                          if self.ctx.is_replica_online(r, include_shutting_down=True)]
            self.batch.add_leader_and_isr(recipients, tp, self.ctx.states[tp])
        if updates:
            self.actions.append(UpdatePartitionStates(updates))
        if failed:
            self.note(f"no eligible leader for {describe(failed)}; they stay offline")
        return failed

    # --- replica state machine -----------------------------------------------------

    def online_replicas(self, pairs: Iterable[tuple[TopicPartition, int]]) -> None:
        """-> OnlineReplica: tell the broker the partition's current leadership (a NewReplica
        already got LeaderAndIsr with IsNew from the partition transition)."""
        for tp, broker in pairs:
            state = self.ctx.states.get(tp)
            was_new = self.ctx.replica_state(tp, broker) == C.R_NEW
            if state is not None and not was_new and not self.ctx.is_deleting(tp.topic):
                self.batch.add_leader_and_isr([broker], tp, state)
            self.ctx.replica_states[(tp, broker)] = C.R_ONLINE

    def offline_replicas(self, pairs: Iterable[tuple[TopicPartition, int]]) -> None:
        """-> OfflineReplica: StopReplica(delete=false), then remove from ISR (never below
        one member; leader -1 if it led) with a leader-epoch bump, LeaderAndIsr to the rest."""
        pairs = sorted(set(pairs), key=lambda p: (p[0].topic, p[0].partition, p[1]))
        for tp, broker in pairs:
            self.batch.add_stop_replica([broker], tp, delete=False)
        by_tp: dict[TopicPartition, set[int]] = {}
        for tp, broker in pairs:
            self.ctx.replica_states[(tp, broker)] = C.R_OFFLINE
            by_tp.setdefault(tp, set()).add(broker)
        updates: dict[TopicPartition, PartitionState] = {}
        for tp, brokers in by_tp.items():
            current = self.ctx.states.get(tp)
            if current is None or self.ctx.is_deleting(tp.topic):
                continue
            leaving = brokers & set(current.isr)
            if not leaving:
                continue
            if current.controller_epoch > self.ctx.epoch:
                self.note(f"{tp}: newer controller epoch in state, not shrinking ISR")
                continue
            leader = NO_LEADER if current.leader in brokers else current.leader
            # removed one at a time in id order, the ISR never drops below one member
            isr = [r for r in current.isr if r not in brokers] or [max(leaving)]
            new = PartitionState(leader, current.leader_epoch + 1, isr, self.ctx.epoch,
                                 current.leader_recovery_state, current.zk_version)
            updates[tp] = new
            self.ctx.states[tp] = attrs.evolve(new, zk_version=current.zk_version + 1)
        for tp in _sorted(updates):
            state = self.ctx.states[tp]
            offline = {b for t, b in pairs if t == tp}
            self.batch.add_leader_and_isr([r for r in self.ctx.replicas(tp) if r not in offline],
                                          tp, state)
        if updates:
            self.actions.append(UpdatePartitionStates(updates))

    def start_replica_deletion(self, pairs: Iterable[tuple[TopicPartition, int]]) -> None:
        """-> ReplicaDeletionStarted: StopReplica(delete=true, leader epoch -2)."""
        for tp, broker in pairs:
            self.batch.add_stop_replica([broker], tp, delete=True)
            self.ctx.replica_states[(tp, broker)] = C.R_DELETION_STARTED
