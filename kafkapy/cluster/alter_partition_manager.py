"""Sends a leader's ISR proposals to the controller (AlterPartition, KIP-497).

Partitions queue their proposal (at most one each: a Partition refuses a second while one is
pending); one task drains the queue, batching whatever is waiting into a single request to
the active controller. Transport trouble, NOT_CONTROLLER and STALE_BROKER_EPOCH (the
controller has not seen our registration yet) are retried after a backoff. A partition-level
INELIGIBLE_REPLICA / OPERATION_NOT_ATTEMPTED reverts the proposal so a later check can try
again; any other partition error means our view is stale, and the proposal stays pending
until the controller's next LeaderAndIsr resets the partition (as Kafka does).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

import attrs
import trio

from kafkapy.network.client import BrokerConnection
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition import (
    AlterPartitionRequest,
    AlterPartitionRequest_PartitionData,
    AlterPartitionRequest_TopicData,
)

if TYPE_CHECKING:
    from kafkapy.cluster.metadata_cache import MetadataCache
    from kafkapy.cluster.partition import Partition

log = logging.getLogger(__name__)

ZERO_UUID = b"\0" * 16
_RETRY_WHOLE = {ErrorCode.NOT_CONTROLLER, ErrorCode.STALE_BROKER_EPOCH,
                ErrorCode.REQUEST_TIMED_OUT}
_REVERT = {ErrorCode.INELIGIBLE_REPLICA, ErrorCode.OPERATION_NOT_ATTEMPTED}


@attrs.define(slots=True, eq=False)
class _Item:
    partition: "Partition"
    isr: list[int]
    leader_epoch: int
    partition_epoch: int


@attrs.define(slots=True, eq=False)
class AlterPartitionManager:
    broker_id: int
    metadata_cache: "MetadataCache"
    broker_epoch: Callable[[], int]
    backoff_ms: int = 500
    request_timeout_ms: int = 30000
    _queue: list[_Item] = attrs.field(factory=list)
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _conn: BrokerConnection | None = None
    _conn_to: int = -1

    def submit(self, partition: "Partition", isr: list[int]) -> None:
        self._queue.append(_Item(partition, list(isr), partition.leader_epoch,
                                 partition.partition_epoch))
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                if not self._queue:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                batch, self._queue = self._queue, []
                retry = await self._send(batch)
                if retry:
                    self._queue = retry + self._queue
                    await trio.sleep(self.backoff_ms / 1000)
        finally:
            if self._conn is not None:
                with trio.CancelScope(shield=True):
                    await self._conn.aclose()

    def _request(self, batch: list[_Item], version: int) -> AlterPartitionRequest:
        topics: dict[str, AlterPartitionRequest_TopicData] = {}
        for item in batch:
            p = item.partition
            t = topics.get(p.tp.topic)
            if t is None:
                t = topics[p.tp.topic] = AlterPartitionRequest_TopicData(
                    topic_name=p.tp.topic, topic_id=p.topic_id)
            t.partitions.append(AlterPartitionRequest_PartitionData(
                partition_index=p.tp.partition, leader_epoch=item.leader_epoch,
                new_isr=list(item.isr), leader_recovery_state=0,
                partition_epoch=item.partition_epoch))
        return AlterPartitionRequest(broker_id=self.broker_id, broker_epoch=self.broker_epoch(),
                                     topics=list(topics.values()))

    async def _connection(self) -> BrokerConnection | None:
        cid = self.metadata_cache.controller_id
        broker = self.metadata_cache.get_broker(cid)
        if broker is None:
            return None
        if self._conn is not None and (self._conn.closed or self._conn_to != cid):
            await self._conn.aclose()
            self._conn = None
        if self._conn is None:
            self._conn = await BrokerConnection.connect(
                broker.host, broker.port, f"broker-{self.broker_id}-alter-partition",
                timeout=self.request_timeout_ms / 1000)
            self._conn_to = cid
        return self._conn

    async def _send(self, batch: list[_Item]) -> list[_Item]:
        """Send one batch; returns the items to retry."""
        # Drop proposals a LeaderAndIsr (or an earlier answer) made obsolete; what is left
        # is at most one item per partition: the one matching its pending state.
        latest = {id(i.partition): i for i in batch}
        batch = [i for i in latest.values() if i.partition.pending_isr == i.isr
                 and i.partition.leader_epoch == i.leader_epoch
                 and i.partition.partition_epoch == i.partition_epoch]
        if not batch:
            return []
        # v2 names topics by id; fall back to v1 (names) when a topic id is unknown.
        version = 2 if all(i.partition.topic_id != ZERO_UUID for i in batch) else 1
        try:
            conn = await self._connection()
            if conn is None:
                return batch
            resp = await conn.send(ApiKey.ALTER_PARTITION, version, self._request(batch, version),
                                   timeout=self.request_timeout_ms / 1000)
        except ConnectionError as e:
            log.info("AlterPartition to controller failed (%s); retrying", e)
            if self._conn is not None:
                await self._conn.aclose()
                self._conn = None
            return batch
        if resp.error_code != ErrorCode.NONE:
            log.info("AlterPartition refused: %s; retrying", ErrorCode(resp.error_code).name)
            return batch if ErrorCode(resp.error_code) in _RETRY_WHOLE else self._fail(batch)
        answers = {}
        for t in resp.topics:
            for pd in t.partitions:
                key = (bytes(t.topic_id) if version >= 2 else t.topic_name, pd.partition_index)
                answers[key] = pd
        for item in batch:
            p = item.partition
            key = (p.topic_id if version >= 2 else p.tp.topic, p.tp.partition)
            pd = answers.get(key)
            code = ErrorCode(pd.error_code) if pd is not None else ErrorCode.UNKNOWN_SERVER_ERROR
            if code == ErrorCode.NONE:
                log.info("ISR of %s is now %s (partition epoch %d)", p.tp, list(pd.isr),
                         pd.partition_epoch)
                p.apply_isr_result(item.leader_epoch, list(pd.isr), pd.partition_epoch)
            elif code in _REVERT:
                log.info("ISR proposal %s for %s refused: %s", item.isr, p.tp, code.name)
                p.apply_isr_result(item.leader_epoch, None, -1)
            else:
                log.info("ISR proposal %s for %s failed: %s; waiting for LeaderAndIsr",
                         item.isr, p.tp, code.name)
        return []

    def _fail(self, batch: list[_Item]) -> list[_Item]:
        for item in batch:
            item.partition.apply_isr_result(item.leader_epoch, None, -1)
        return []
