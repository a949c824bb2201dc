"""The broker's view of the cluster, filled only by the controller's UpdateMetadata.

As in Kafka, every broker answers Metadata, FindCoordinator and routing questions from this
cache, so all brokers agree with the controller (and with each other) about who leads what.
"""
from __future__ import annotations

from typing import Any, Iterable

import attrs

from kafkapy.log import TopicPartition

ZERO_UUID = b"\0" * 16
# UpdateMetadata marks a partition being deleted with this leader (Kafka's LeaderDuringDelete).
LEADER_DURING_DELETE = -2


@attrs.define(slots=True, frozen=True)
class BrokerInfo:
    id: int
    host: str
    port: int
    rack: str | None = None


@attrs.define(slots=True)
class PartitionInfo:
    leader: int
    leader_epoch: int
    isr: list[int]
    replicas: list[int]
    offline_replicas: list[int]
    zk_version: int = 0
    controller_epoch: int = 0


@attrs.define(slots=True)
class MetadataCache:
    """Topics, partitions and live brokers as last told by the controller."""

    broker_id: int
    listener_name: str = "PLAINTEXT"
    controller_id: int = -1
    controller_epoch: int = -1
    _brokers: dict[int, BrokerInfo] = attrs.field(factory=dict)
    _partitions: dict[str, dict[int, PartitionInfo]] = attrs.field(factory=dict)
    _topic_ids: dict[str, bytes] = attrs.field(factory=dict)
    _topic_names: dict[bytes, str] = attrs.field(factory=dict)
    # Bumped on every change so encoded Metadata answers can be cached per version.
    generation: int = 0

    # --- updates -------------------------------------------------------------------------

    def update(self, request: Any) -> list[TopicPartition]:
        """Apply an UpdateMetadataRequest (v5+ shape); returns the partitions deleted."""
        self.controller_id = request.controller_id
        self.controller_epoch = request.controller_epoch
        brokers: dict[int, BrokerInfo] = {}
        for b in request.live_brokers:
            endpoint = None
            for ep in b.endpoints:
                if ep.listener == self.listener_name or endpoint is None:
                    endpoint = ep
            if endpoint is not None:
                brokers[b.id] = BrokerInfo(b.id, endpoint.host, endpoint.port, b.rack)
        self._brokers = brokers
        deleted: list[TopicPartition] = []
        for topic_state in request.topic_states:
            name = topic_state.topic_name
            topic_id = bytes(topic_state.topic_id) if topic_state.topic_id else ZERO_UUID
            for ps in topic_state.partition_states:
                if ps.leader == LEADER_DURING_DELETE:
                    self._remove_partition(name, ps.partition_index)
                    deleted.append(TopicPartition(name, ps.partition_index))
                    continue
                self._partitions.setdefault(name, {})[ps.partition_index] = PartitionInfo(
                    leader=ps.leader,
                    leader_epoch=ps.leader_epoch,
                    isr=list(ps.isr),
                    replicas=list(ps.replicas),
                    offline_replicas=list(ps.offline_replicas),
                    zk_version=ps.zk_version,
                    controller_epoch=ps.controller_epoch,
                )
                if topic_id != ZERO_UUID:
                    self._topic_ids[name] = topic_id
                    self._topic_names[topic_id] = name
        self.generation += 1
        return deleted

    def _remove_partition(self, topic: str, partition: int) -> None:
        parts = self._partitions.get(topic)
        if parts is None:
            return
        parts.pop(partition, None)
        if not parts:
            del self._partitions[topic]
            topic_id = self._topic_ids.pop(topic, None)
            if topic_id is not None:
                self._topic_names.pop(topic_id, None)

    # --- queries -------------------------------------------------------------------------

    def alive_brokers(self) -> list[BrokerInfo]:
        return sorted(self._brokers.values(), key=lambda b: b.id)

    def get_broker(self, broker_id: int) -> BrokerInfo | None:
        return self._brokers.get(broker_id)

    def get_partition(self, tp: TopicPartition) -> PartitionInfo | None:
        parts = self._partitions.get(tp.topic)
        return None if parts is None else parts.get(tp.partition)

    def partitions(self, topic: str) -> dict[int, PartitionInfo]:
        return self._partitions.get(topic, {})

    def partition_count(self, topic: str) -> int | None:
        parts = self._partitions.get(topic)
        return None if parts is None else len(parts)

    def topics(self) -> list[str]:
        return sorted(self._partitions)

    def contains_topic(self, topic: str) -> bool:
        return topic in self._partitions

    def topic_id(self, topic: str) -> bytes:
        return self._topic_ids.get(topic, ZERO_UUID)

    def topic_name(self, topic_id: bytes) -> str | None:
        return self._topic_names.get(bytes(topic_id))

    def leader_of(self, tp: TopicPartition) -> BrokerInfo | None:
        info = self.get_partition(tp)
        if info is None or info.leader < 0:
            return None
        return self._brokers.get(info.leader)

    def has_leaders(self, topic: str, partitions: Iterable[int] | None = None) -> bool:
        """True once every (given) partition of the topic has a live leader."""
        parts = self._partitions.get(topic)
        if not parts:
            return False
        wanted = parts.keys() if partitions is None else partitions
        return all(p in parts and parts[p].leader in self._brokers for p in wanted)
