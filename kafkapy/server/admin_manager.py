"""Topic administration in ZooKeeper mode (Kafka's ZkAdminManager).

Creating a topic writes its config overrides and replica assignment to ZooKeeper; the
controller notices the new `/brokers/topics/<t>` child, elects leaders and tells the brokers.
The request is answered once the metadata cache shows a leader for every partition, so a
client that creates a topic can produce to it right away.
"""
from __future__ import annotations

import logging
from typing import Any

import attrs

from kafkapy.controller.placement import assign_replicas
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.server.topic_names import validate_topic_name
from kafkapy.zk import paths
from kafkapy.zk.data import TopicAssignment, random_uuid

log = logging.getLogger(__name__)


@attrs.define(slots=True)
class CreatedTopic:
    name: str
    topic_id: bytes
    assignment: dict[int, list[int]]
    configs: dict[str, str]


def validate_assignment(assignment: dict[int, list[int]], live: set[int],
                        first_partition: int = 0) -> int:
    """Kafka's checks of an explicit replica assignment; returns its replication factor."""
    if not assignment:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "empty replica assignment")
    expected = list(range(first_partition, first_partition + len(assignment)))
    if sorted(assignment) != expected:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"partitions must be consecutive from {first_partition}")
    rfs = {len(replicas) for replicas in assignment.values()}
    if len(rfs) != 1 or 0 in rfs:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         "every partition must have the same, non-zero number of replicas")
    for p, replicas in assignment.items():
        if len(set(replicas)) != len(replicas):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"partition {p} lists a broker twice: {replicas}")
        unknown = [b for b in replicas if b not in live]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"partition {p} names brokers that are not alive: {unknown}")
    return rfs.pop()


class AdminManager:
    def __init__(self, server: Any) -> None:
        self.server = server

    def _live_brokers(self) -> dict[int, str | None]:
        return {b.id: b.rack for b in self.server.metadata_cache.alive_brokers()}

    async def topic_exists(self, name: str) -> bool:
        return await self.server.zk.exists(paths.topic_path(name)) is not None

    def _validate_configs(self, configs: dict[str, str]) -> None:
        from kafkapy.config.topic import validate_topic_configs

        validate_topic_configs(configs)

    async def create_topic(self, name: str, num_partitions: int, replication_factor: int,
                           assignment: dict[int, list[int]] | None, configs: dict[str, str],
                           validate_only: bool = False) -> CreatedTopic:
        validate_topic_name(name)
        cfg = self.server.config
        if self.server.metadata_cache.contains_topic(name) or await self.topic_exists(name):
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        self._validate_configs(configs)
        live = self._live_brokers()
        if assignment:
            if num_partitions != -1 or replication_factor != -1:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "both numPartitions and "
                                 "replicationFactor must be -1 with a replica assignment")
            validate_assignment(assignment, set(live))
        else:
            if num_partitions == -1:
                num_partitions = cfg.get("num.partitions")
            if replication_factor == -1:
                replication_factor = cfg.get("default.replication.factor")
            if num_partitions <= 0:
                raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                                 "Number of partitions must be larger than 0.")
            if replication_factor <= 0:
                raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                                 "Replication factor must be larger than 0.")
            assignment = assign_replicas(live, num_partitions, replication_factor)
        topic_id = random_uuid()
        created = CreatedTopic(name, topic_id, assignment, dict(configs))
        if validate_only:
            return created
        await self.server.zk.create_topic(name, TopicAssignment(partitions=assignment,
                                                                topic_id=topic_id),
                                          configs)
        log.info("created topic %s with %d partitions: %s", name, len(assignment), assignment)
        return created

    async def create_partitions(self, name: str, count: int,
                                assignments: list[list[int]] | None,
                                validate_only: bool = False) -> dict[int, list[int]]:
        zk = self.server.zk
        current = await zk.get_topic_assignment(name)
        if current is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"The topic '{name}' does not exist.")
        existing = len(current.partitions)
        if count <= existing:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                             f"Topic currently has {existing} partitions, which is higher than "
                             f"or equal to the requested {count}.")
        live = self._live_brokers()
        added = count - existing
        if assignments is not None:
            if len(assignments) != added:
                raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                 f"Increasing the number of partitions by {added} but "
                                 f"{len(assignments)} assignments provided.")
            new = {existing + i: list(r) for i, r in enumerate(assignments)}
            rf = validate_assignment(new, set(live), existing)
            if rf != len(current.partitions[0]):
                raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                 "the replication factor of new partitions must match the topic")
        else:
            rf = len(current.partitions[0])
            new = assign_replicas(live, added, rf, start_partition_id=existing)
        if not validate_only:
            await zk.add_partitions(name, new)
            log.info("added partitions to %s: %s", name, new)
        return new

    async def delete_topic(self, name: str) -> None:
        if not self.server.config.get("delete.topic.enable"):
            raise KafkaError(ErrorCode.TOPIC_DELETION_DISABLED,
                             "Topic deletion is disabled (delete.topic.enable=false).")
        if not await self.topic_exists(name):
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"The topic '{name}' does not exist.")
        await self.server.zk.mark_topic_for_deletion(name)
        log.info("topic %s is marked for deletion", name)

    # --- waiting for the controller ---------------------------------------------------------

    async def wait_for_leaders(self, name: str, partitions: list[int] | None,
                               timeout_ms: int) -> bool:
        return await self.server.wait_for_metadata(
            lambda cache: cache.has_leaders(name, partitions), timeout_ms)

    async def wait_for_deletion(self, name: str, timeout_ms: int) -> bool:
        return await self.server.wait_for_metadata(
            lambda cache: not cache.contains_topic(name), timeout_ms)
