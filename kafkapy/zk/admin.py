"""Topic, config, producer-id and legacy-offset operations of KafkaZkClient (a mixin).

Split from `client.py` only to keep modules small; everything here is reached as a method of
`KafkaZkClient` and uses its generic helpers (`get_data`, `create`, `multi`, ...).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterable

from kazoo.exceptions import NodeExistsError

from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.zk import data, paths
from kafkapy.zk import events as ev

if TYPE_CHECKING:
    from kafkapy.zk.client import KafkaZkClient

log = logging.getLogger(__name__)


class AdminOpsMixin:
    # --- topics ------------------------------------------------------------------------

    async def get_all_topics(self: "KafkaZkClient", watch: bool = False) -> list[str]:
        return await self.get_children(paths.BROKER_TOPICS, watch=watch)

    async def get_topic_assignment(self: "KafkaZkClient", topic: str,
                                   watch: bool = False) -> data.TopicAssignment | None:
        found = await self.get_data(paths.topic_path(topic), watch=watch)
        return data.TopicAssignment.decode(found[0]) if found else None

    async def get_topic_assignments(self: "KafkaZkClient", topics: Iterable[str],
                                    watch: bool = False) -> dict[str, data.TopicAssignment]:
        """Assignments of existing topics; `watch` arms a data watch per topic node (partition
        additions arrive as CHANGED on `/brokers/topics/<t>`)."""
        out: dict[str, data.TopicAssignment] = {}
        for topic in topics:
            assignment = await self.get_topic_assignment(topic, watch=watch)
            if assignment is not None:
                out[topic] = assignment
        return out

    async def create_topic(self: "KafkaZkClient", topic: str, assignment: data.TopicAssignment,
                           config: dict[str, str] | None = None) -> None:
        """AdminZkClient.createTopicWithAssignment: refuse existing or deletion-pending topics,
        setOrCreate the config, then create the assignment node (NODEEXISTS -> 36)."""
        if await self.exists(paths.delete_topic_path(topic)) is not None:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS,
                             f"Topic '{topic}' is marked for deletion.")
        if await self.exists(paths.topic_path(topic)) is not None:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{topic}' already exists.")
        await self.set_or_create(paths.topic_config_path(topic),
                                 data.encode_entity_config(dict(config or {})))
        if assignment.topic_id is None:
            assignment = data.TopicAssignment(assignment.partitions, data.random_uuid(),
                                              assignment.adding_replicas,
                                              assignment.removing_replicas)
        try:
            await self.create(paths.topic_path(topic), assignment.encode())
        except NodeExistsError:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS,
                             f"Topic '{topic}' already exists.") from None

    async def set_topic_assignment(self: "KafkaZkClient", topic: str,
                                   assignment: data.TopicAssignment,
                                   epoch_zk_version: int | None = None) -> None:
        """Rewrite `/brokers/topics/<t>` (add partitions, reassignment, topic-id backfill).
        The controller passes its epoch zkVersion to fence the write; admin paths do not."""
        op = ev.SetDataOp(paths.topic_path(topic), assignment.encode())
        results = (await self.fenced_multi(epoch_zk_version, [op]) if epoch_zk_version is not None
                   else await self.multi([op]))
        if not results[0].ok:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"Topic '{topic}' does not exist ({results[0].error}).")

    async def add_partitions(self: "KafkaZkClient", topic: str,
                             new_partitions: dict[int, list[int]]) -> data.TopicAssignment:
        """Append partitions to an existing topic (CreatePartitions); existing ones unchanged."""
        found = await self.get_data(paths.topic_path(topic))
        if found is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{topic}' does not exist.")
        current = data.TopicAssignment.decode(found[0])
        clash = set(new_partitions) & set(current.partitions)
        if clash:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS,
                             f"Partitions {sorted(clash)} of '{topic}' already exist.")
        merged = data.TopicAssignment({**current.partitions, **new_partitions}, current.topic_id,
                                      current.adding_replicas, current.removing_replicas)
        results = await self.multi([ev.SetDataOp(paths.topic_path(topic), merged.encode(),
                                                 found[1].version)])
        if not results[0].ok:
            raise KafkaError(ErrorCode.REASSIGNMENT_IN_PROGRESS
                             if results[0].error == ev.BADVERSION else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"Topic '{topic}' changed concurrently ({results[0].error}).")
        return merged

    async def mark_topic_for_deletion(self: "KafkaZkClient", topic: str) -> None:
        """DeleteTopics in ZK mode: create `/admin/delete_topics/<t>`; the controller does
        the rest. Unknown topic -> UNKNOWN_TOPIC_OR_PARTITION; already marked is fine."""
        if await self.exists(paths.topic_path(topic)) is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{topic}' does not exist.")
        try:
            await self.create(paths.delete_topic_path(topic))
        except NodeExistsError:
            pass

    async def get_topics_marked_for_deletion(self: "KafkaZkClient", watch: bool = False) -> list[str]:
        return await self.get_children(paths.DELETE_TOPICS, watch=watch)

    async def delete_topic_znodes(self: "KafkaZkClient", topic: str, epoch_zk_version: int) -> None:
        """Controller's last deletion step: remove assignment (recursively), config and the
        deletion request, every delete fenced (children first, in one multi)."""
        def collect() -> list[str]:
            order: list[str] = []

            def walk(path: str) -> None:
                try:
                    children = self.kazoo.get_children(path)
                except Exception:  # noqa: BLE001 - vanished meanwhile
                    return
                for child in children:
                    walk(f"{path}/{child}")
                order.append(path)
            walk(paths.topic_path(topic))
            return order

        nodes = await self.session.call(collect)
        nodes += [p for p in (paths.topic_config_path(topic), paths.delete_topic_path(topic))
                  if await self.exists(p) is not None]
        if nodes:
            results = await self.fenced_multi(epoch_zk_version, [ev.DeleteOp(p) for p in nodes])
            if not all(r.ok for r in results):
                # raced with a concurrent change; fall back to one fenced delete per node
                for path in nodes:
                    await self.fenced_each(epoch_zk_version, [ev.DeleteOp(path)])

    # --- entity configs ----------------------------------------------------------------

    async def get_entity_config(self: "KafkaZkClient", entity_type: str, name: str,
                                watch: bool = False) -> dict[str, str]:
        found = await self.get_data(paths.config_entity_path(entity_type, name), watch=watch)
        return data.decode_entity_config(found[0]) if found else {}

    async def set_entity_config(self: "KafkaZkClient", entity_type: str, name: str,
                                config: dict[str, str]) -> None:
        """Write overrides and announce them with a `config_change_` sequential node, which
        every broker's config manager watches."""
        await self.set_or_create(paths.config_entity_path(entity_type, name),
                                 data.encode_entity_config(config))
        await self.create(paths.config_change_prefix_path(),
                          data.encode_config_change(entity_type, name), sequential=True)

    async def get_topic_config(self: "KafkaZkClient", topic: str) -> dict[str, str]:
        return await self.get_entity_config("topics", topic)

    async def set_topic_config(self: "KafkaZkClient", topic: str, config: dict[str, str]) -> None:
        await self.set_entity_config("topics", topic, config)

    async def get_broker_config(self: "KafkaZkClient", broker: int | str) -> dict[str, str]:
        """Dynamic broker config; `broker` is an id or "<default>"."""
        return await self.get_entity_config("brokers", str(broker))

    async def set_broker_config(self: "KafkaZkClient", broker: int | str,
                                config: dict[str, str]) -> None:
        await self.set_entity_config("brokers", str(broker), config)

    async def get_config_change_notifications(self: "KafkaZkClient",
                                              watch: bool = False) -> list[str]:
        return await self.get_children(paths.CONFIG_CHANGES, watch=watch)

    async def get_config_change(self: "KafkaZkClient", name: str) -> tuple[str, str] | None:
        """(entity_type, entity_name) of a `config_change_<seq>` node, None if purged."""
        found = await self.get_data(f"{paths.CONFIG_CHANGES}/{name}")
        return data.decode_config_change(found[0]) if found else None

    # --- notifications consumed by the controller --------------------------------------

    async def get_isr_change_notifications(self: "KafkaZkClient", watch: bool = False) -> list[str]:
        return await self.get_children(paths.ISR_CHANGE_NOTIFICATION, watch=watch)

    async def get_isr_changes(self: "KafkaZkClient", names: Iterable[str]) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for name in names:
            found = await self.get_data(paths.isr_change_path(name))
            if found is not None:
                out.extend(data.decode_isr_change(found[0]))
        return out

    async def propagate_isr_changes(self: "KafkaZkClient", partitions: list[tuple[str, int]]) -> None:
        """Leader side of the pre-AlterPartition ISR path: one sequential notification."""
        await self.create(paths.isr_change_prefix_path(), data.encode_isr_change(partitions),
                          sequential=True)

    async def get_reassignment(self: "KafkaZkClient",
                               watch: bool = False) -> dict[tuple[str, int], list[int]]:
        found = await self.get_data(paths.REASSIGN_PARTITIONS, watch=watch)
        return data.decode_reassignment(found[0]) if found else {}

    async def get_preferred_replica_election(self: "KafkaZkClient",
                                             watch: bool = False) -> list[tuple[str, int]] | None:
        found = await self.get_data(paths.PREFERRED_REPLICA_ELECTION, watch=watch)
        return data.decode_preferred_replica_election(found[0]) if found else None

    # --- producer ids and legacy offsets ------------------------------------------------

    async def allocate_producer_id_block(self: "KafkaZkClient", broker_id: int) -> data.ProducerIdBlock:
        """Claim the next 1000 producer ids: conditional setData on the last-read version,
        retried on BADVERSION, so concurrent brokers never get overlapping blocks."""
        while True:
            found = await self.get_data(paths.LATEST_PRODUCER_ID_BLOCK)
            if found is None or not found[0]:
                block = data.first_producer_id_block(broker_id)
                if found is None:
                    try:
                        await self.create(paths.LATEST_PRODUCER_ID_BLOCK, block.encode())
                        return block
                    except NodeExistsError:
                        continue
                expected = found[1].version
            else:
                block = data.ProducerIdBlock.decode(found[0]).next_block(broker_id)
                expected = found[1].version
            results = await self.multi([ev.SetDataOp(paths.LATEST_PRODUCER_ID_BLOCK,
                                                     block.encode(), expected)])
            if results[0].ok:
                log.info("broker %d got producer id block %d-%d", broker_id,
                         block.block_start, block.block_end)
                return block
            if results[0].error not in (ev.BADVERSION, ev.NONODE):
                raise ev.ZkClientError(f"producer id block allocation failed: {results[0].error}")

    async def get_consumer_offset(self: "KafkaZkClient", group: str, topic: str,
                                  partition: int) -> int | None:
        found = await self.get_data(paths.consumer_offset_path(group, topic, partition))
        return data.decode_consumer_offset(found[0]) if found and found[0] else None

    async def set_consumer_offset(self: "KafkaZkClient", group: str, topic: str, partition: int,
                                  offset: int) -> None:
        await self.set_or_create(paths.consumer_offset_path(group, topic, partition),
                                 data.encode_consumer_offset(offset))

    async def delete_isr_change_notifications(self: "KafkaZkClient", names: Iterable[str],
                                              epoch_zk_version: int) -> None:
        """Controller: drop processed `isr_change_<seq>` nodes (fenced)."""
        results = await self.fenced_each(epoch_zk_version,
                                         [ev.DeleteOp(paths.isr_change_path(n)) for n in names])
        for name, result in zip(names, results):
            if not result.ok and result.error != ev.NONODE:
                log.warning("could not delete ISR notification %s: %s", name, result.error)
