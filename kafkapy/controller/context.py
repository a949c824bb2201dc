"""ControllerContext: the active controller's in-memory model of the cluster (Kafka's
ControllerContext), plus the partition/replica state-machine states.

Pure data. Loaded from ZooKeeper on failover (§3.4) by the edge and then kept current by the
pure decision functions, which update it as they plan ZooKeeper writes (the edge reloads the
affected entries when a write is rejected).
"""
from __future__ import annotations

from typing import Iterable

import attrs

from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk.data import BrokerRegistration, PartitionState, TopicAssignment

# Partition states (Kafka's PartitionState ids in comments).
NEW = "NewPartition"              # 0
ONLINE = "OnlinePartition"        # 1
OFFLINE = "OfflinePartition"      # 2
NON_EXISTENT = "NonExistentPartition"  # 3

# Replica states.
R_NEW = "NewReplica"
R_ONLINE = "OnlineReplica"
R_OFFLINE = "OfflineReplica"
R_DELETION_STARTED = "ReplicaDeletionStarted"
R_DELETION_SUCCESSFUL = "ReplicaDeletionSuccessful"
R_DELETION_INELIGIBLE = "ReplicaDeletionIneligible"
R_NON_EXISTENT = "NonExistentReplica"


@attrs.define(slots=True)
class ControllerContext:
    controller_id: int
    epoch: int = 0
    epoch_zk_version: int = -1
    # brokers: id -> registration (its `epoch` field is the broker epoch, czxid)
    live_brokers: dict[int, BrokerRegistration] = attrs.field(factory=dict)
    shutting_down: set[int] = attrs.field(factory=set)
    # topics
    topic_ids: dict[str, bytes] = attrs.field(factory=dict)
    assignments: dict[TopicPartition, list[int]] = attrs.field(factory=dict)
    adding_replicas: dict[TopicPartition, list[int]] = attrs.field(factory=dict)
    removing_replicas: dict[TopicPartition, list[int]] = attrs.field(factory=dict)
    topic_configs: dict[str, dict[str, str]] = attrs.field(factory=dict)
    default_unclean_election: bool = False
    delete_topic_enable: bool = True
    # partition leadership as stored in ZooKeeper (zk_version = partition epoch)
    states: dict[TopicPartition, PartitionState] = attrs.field(factory=dict)
    partition_states: dict[TopicPartition, str] = attrs.field(factory=dict)
    replica_states: dict[tuple[TopicPartition, int], str] = attrs.field(factory=dict)
    # reassignments requested through the legacy /admin/reassign_partitions node
    zk_reassignments: dict[TopicPartition, list[int]] = attrs.field(factory=dict)
    # deletion
    topics_to_delete: set[str] = attrs.field(factory=set)
    topics_ineligible: set[str] = attrs.field(factory=set)

    # --- brokers -----------------------------------------------------------------------

    @property
    def live_or_shutting_down_ids(self) -> set[int]:
        return set(self.live_brokers)

    @property
    def live_broker_ids(self) -> set[int]:
        """Brokers eligible for leadership: registered and not shutting down."""
        return set(self.live_brokers) - self.shutting_down

    def broker_epoch(self, broker_id: int) -> int:
        reg = self.live_brokers.get(broker_id)
        return reg.epoch if reg is not None else -1

    def is_replica_online(self, broker_id: int, include_shutting_down: bool = False) -> bool:
        if include_shutting_down:
            return broker_id in self.live_brokers
        return broker_id in self.live_brokers and broker_id not in self.shutting_down

    # --- topics and partitions ---------------------------------------------------------

    def add_topic(self, topic: str, assignment: TopicAssignment) -> list[TopicPartition]:
        """Record a topic's (possibly grown) assignment; returns partitions that are new."""
        if assignment.topic_id is not None:
            self.topic_ids[topic] = assignment.topic_id
        added = []
        for partition, replicas in assignment.partitions.items():
            tp = TopicPartition(topic, partition)
            if tp not in self.assignments:
                added.append(tp)
            self.assignments[tp] = list(replicas)
            self.adding_replicas[tp] = list(assignment.adding_replicas.get(partition, []))
            self.removing_replicas[tp] = list(assignment.removing_replicas.get(partition, []))
        return sorted(added, key=lambda t: (t.topic, t.partition))

    def remove_topic(self, topic: str) -> None:
        for tp in self.partitions_of(topic):
            self.assignments.pop(tp, None)
            self.adding_replicas.pop(tp, None)
            self.removing_replicas.pop(tp, None)
            self.states.pop(tp, None)
            self.partition_states.pop(tp, None)
        for key in [k for k in self.replica_states if k[0].topic == topic]:
            del self.replica_states[key]
        self.topic_ids.pop(topic, None)
        self.topic_configs.pop(topic, None)
        self.topics_to_delete.discard(topic)
        self.topics_ineligible.discard(topic)

    @property
    def topics(self) -> set[str]:
        return {tp.topic for tp in self.assignments} | set(self.topic_ids)

    def partitions_of(self, topic: str) -> list[TopicPartition]:
        return sorted((tp for tp in self.assignments if tp.topic == topic),
                      key=lambda t: t.partition)

    def all_partitions(self) -> list[TopicPartition]:
        return sorted(self.assignments, key=lambda t: (t.topic, t.partition))

    def replicas(self, tp: TopicPartition) -> list[int]:
        return self.assignments.get(tp, [])

    def partitions_on_broker(self, broker_id: int) -> list[TopicPartition]:
        return [tp for tp in self.all_partitions() if broker_id in self.assignments[tp]]

    def partitions_led_by(self, broker_id: int) -> list[TopicPartition]:
        return [tp for tp in self.all_partitions()
                if tp in self.states and self.states[tp].leader == broker_id]

    def unclean_allowed(self, topic: str) -> bool:
        value = self.topic_configs.get(topic, {}).get("unclean.leader.election.enable")
        if value is None:
            return self.default_unclean_election
        return value.strip().lower() == "true"

    def is_deleting(self, topic: str) -> bool:
        return topic in self.topics_to_delete

    def partition_state(self, tp: TopicPartition) -> str:
        return self.partition_states.get(tp, NON_EXISTENT)

    def replica_state(self, tp: TopicPartition, broker_id: int) -> str:
        return self.replica_states.get((tp, broker_id), R_NON_EXISTENT)

    def set_replica_states(self, pairs: Iterable[tuple[TopicPartition, int]], state: str) -> None:
        for pair in pairs:
            self.replica_states[pair] = state
