"""Control requests as plain attrs data (LeaderAndIsr v7, UpdateMetadata v8, StopReplica v4).

Field names follow the JSON schemas in snake_case so `channel.py` maps them one to one onto the
generated codec classes. The pure controller builds these and tests compare them directly.
"""
from __future__ import annotations

import attrs

from kafkapy.protocol.api import ApiKey

LEADER_AND_ISR_VERSION = 7
UPDATE_METADATA_VERSION = 8
STOP_REPLICA_VERSION = 4

LEADER_DURING_DELETE = -2   # UpdateMetadata leader of a partition being deleted
EPOCH_DURING_DELETE = -2    # StopReplica leader epoch when deleting
NO_EPOCH = -1


@attrs.define(slots=True)
class LeaderAndIsrPartitionState:
    topic_name: str
    partition_index: int
    controller_epoch: int
    leader: int
    leader_epoch: int
    isr: list[int]
    partition_epoch: int
    replicas: list[int]
    adding_replicas: list[int] = attrs.field(factory=list)
    removing_replicas: list[int] = attrs.field(factory=list)
    is_new: bool = False
    leader_recovery_state: int = 0


@attrs.define(slots=True)
class LeaderAndIsrTopicState:
    topic_name: str
    topic_id: bytes
    partition_states: list[LeaderAndIsrPartitionState] = attrs.field(factory=list)


@attrs.define(slots=True)
class LeaderAndIsrLiveLeader:
    broker_id: int
    host_name: str
    port: int


@attrs.define(slots=True)
class LeaderAndIsrData:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    topic_states: list[LeaderAndIsrTopicState]
    live_leaders: list[LeaderAndIsrLiveLeader]
    type: int = 0
    is_k_raft_controller: bool = False
    api_key: int = ApiKey.LEADER_AND_ISR
    version: int = LEADER_AND_ISR_VERSION


@attrs.define(slots=True)
class UpdateMetadataPartitionState:
    topic_name: str
    partition_index: int
    controller_epoch: int
    leader: int
    leader_epoch: int
    isr: list[int]
    zk_version: int
    replicas: list[int]
    offline_replicas: list[int] = attrs.field(factory=list)


@attrs.define(slots=True)
class UpdateMetadataTopicState:
    topic_name: str
    topic_id: bytes
    partition_states: list[UpdateMetadataPartitionState] = attrs.field(factory=list)


@attrs.define(slots=True)
class UpdateMetadataEndpoint:
    port: int
    host: str
    listener: str
    security_protocol: int


@attrs.define(slots=True)
class UpdateMetadataBroker:
    id: int
    endpoints: list[UpdateMetadataEndpoint]
    rack: str | None = None


@attrs.define(slots=True)
class UpdateMetadataData:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    topic_states: list[UpdateMetadataTopicState]
    live_brokers: list[UpdateMetadataBroker]
    type: int = 0
    is_k_raft_controller: bool = False
    api_key: int = ApiKey.UPDATE_METADATA
    version: int = UPDATE_METADATA_VERSION


@attrs.define(slots=True)
class StopReplicaPartitionState:
    partition_index: int
    leader_epoch: int
    delete_partition: bool


@attrs.define(slots=True)
class StopReplicaTopicState:
    topic_name: str
    partition_states: list[StopReplicaPartitionState] = attrs.field(factory=list)


@attrs.define(slots=True)
class StopReplicaData:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    topic_states: list[StopReplicaTopicState]
    is_k_raft_controller: bool = False
    api_key: int = ApiKey.STOP_REPLICA
    version: int = STOP_REPLICA_VERSION


ControlRequestData = LeaderAndIsrData | UpdateMetadataData | StopReplicaData

SECURITY_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}


def request_partitions(request: ControlRequestData) -> list[tuple[str, int]]:
    """(topic, partition) pairs a request carries, for filtering after failed ZK writes."""
    out: list[tuple[str, int]] = []
    for topic in request.topic_states:
        for p in topic.partition_states:
            out.append((topic.topic_name, p.partition_index))
    return out


def without_partitions(request: ControlRequestData,
                       drop: set[tuple[str, int]]) -> ControlRequestData | None:
    """The request minus `drop`; None if a LeaderAndIsr/StopReplica would be left empty
    (an UpdateMetadata still carries live brokers, so it is kept)."""
    topics = []
    for topic in request.topic_states:
        kept = [p for p in topic.partition_states
                if (topic.topic_name, p.partition_index) not in drop]
        if kept:
            topics.append(attrs.evolve(topic, partition_states=kept))
    if not topics and not isinstance(request, UpdateMetadataData) and request.topic_states:
        return None
    return attrs.evolve(request, topic_states=topics)
