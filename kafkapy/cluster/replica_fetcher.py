"""Followers pull from leaders: one fetcher task per leader broker (num.replica.fetchers=1).

Each fetcher sends Fetch v12 (replica id = this broker, CurrentLeaderEpoch, LastFetchedEpoch)
for all partitions it follows from that leader, appends what comes back with the leader's
offsets and epochs, and takes min(leader HW, own LEO) as its high watermark. Divergence is
resolved on the fetch response itself (KIP-595 style): truncate to where the two logs' epochs
agree, then keep fetching. Responses are applied without awaiting, so a LeaderAndIsr that
removes or re-adds a partition mid-fetch is seen before the next await: results for a
partition state that was replaced are dropped.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio

from kafkapy.cluster import isr as isr_rules
from kafkapy.log import TopicPartition
from kafkapy.network.client import BrokerConnection
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.fetch import FetchRequest
from kafkapy.protocol.messages.list_offsets import ListOffsetsRequest

if TYPE_CHECKING:
    from kafkapy.cluster.metadata_cache import MetadataCache
    from kafkapy.cluster.partition import Partition

log = logging.getLogger(__name__)

FETCH_VERSION = 12
LIST_OFFSETS_VERSION = 4
LATEST, EARLIEST = -1, -2


@attrs.define(slots=True)
class FetcherConfig:
    wait_max_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 1048576
    response_max_bytes: int = 10485760
    backoff_ms: int = 1000
    socket_timeout_ms: int = 30000

    @classmethod
    def from_broker_config(cls, cfg) -> "FetcherConfig":
        return cls(cfg.get("replica.fetch.wait.max.ms"), cfg.get("replica.fetch.min.bytes"),
                   cfg.get("replica.fetch.max.bytes"),
                   cfg.get("replica.fetch.response.max.bytes"),
                   cfg.get("replica.fetch.backoff.ms"), cfg.get("replica.socket.timeout.ms"))


@attrs.define(slots=True, eq=False)
class FetchState:
    """One followed partition; replaced (never mutated into another epoch) on LeaderAndIsr."""

    partition: "Partition"
    leader_epoch: int
    delayed_until: float = 0.0


@attrs.define(slots=True, eq=False)
class ReplicaFetcher:
    """Fetches every followed partition led by `leader_id` in one loop."""

    broker_id: int
    leader_id: int
    metadata_cache: "MetadataCache"
    config: FetcherConfig
    states: dict[TopicPartition, FetchState] = attrs.field(factory=dict)
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _conn: BrokerConnection | None = None

    def add(self, partition: "Partition") -> None:
        self.states[partition.tp] = FetchState(partition, partition.leader_epoch)
        self._wake.set()

    def remove(self, tp: TopicPartition) -> None:
        self.states.pop(tp, None)

    async def run(self) -> None:
        with self.cancel_scope:
            try:
                while True:
                    await self._fetch_once()
            finally:
                await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with trio.CancelScope(shield=True):
                await conn.aclose()

    async def _connection(self) -> BrokerConnection:
        if self._conn is not None and self._conn.closed:
            await self._close()
        if self._conn is None:
            broker = self.metadata_cache.get_broker(self.leader_id)
            if broker is None:
                raise ConnectionError(f"leader {self.leader_id} is not a live broker")
            self._conn = await BrokerConnection.connect(
                broker.host, broker.port, f"replica-fetcher-{self.broker_id}",
                timeout=self.config.socket_timeout_ms / 1000)
        return self._conn

    async def _fetch_once(self) -> None:
        now = trio.current_time()
        ready = {tp: s for tp, s in self.states.items() if s.delayed_until <= now}
        if not ready:
            self._wake = trio.Event()
            wake_at = min((s.delayed_until for s in self.states.values()), default=now + 3600)
            with trio.move_on_at(wake_at):
                await self._wake.wait()
            return
        request = self._build(ready)
        timeout = (self.config.socket_timeout_ms + self.config.wait_max_ms) / 1000
        try:
            conn = await self._connection()
            resp = await conn.send(ApiKey.FETCH, FETCH_VERSION, request, timeout=timeout)
        except ConnectionError as e:
            log.info("fetch from broker %d failed: %s; backing off", self.leader_id, e)
            await self._close()
            await trio.sleep(self.config.backoff_ms / 1000)
            return
        out_of_range: list[FetchState] = []
        for topic in resp.responses:
            for pd in topic.partitions:
                tp = TopicPartition(topic.topic, pd.partition_index)
                state = ready.get(tp)
                if state is None or self.states.get(tp) is not state:
                    continue  # removed or replaced by a LeaderAndIsr while we fetched
                try:
                    if self._process(state, pd):
                        out_of_range.append(state)
                except Exception:  # noqa: BLE001 - one bad partition must not stop the rest
                    # Kafka marks such a partition failed; we log it and retry after a backoff.
                    log.exception("replicating %s from %d failed", tp, self.leader_id)
                    self._delay(state)
        for state in out_of_range:
            await self._handle_out_of_range(state)

    def _build(self, ready: dict[TopicPartition, FetchState]) -> FetchRequest:
        topics: dict[str, FetchRequest.FetchTopic] = {}
        for tp, s in ready.items():
            plog = s.partition.log
            t = topics.get(tp.topic)
            if t is None:
                t = topics[tp.topic] = FetchRequest.FetchTopic(topic=tp.topic)
            t.partitions.append(FetchRequest.FetchPartition(
                partition=tp.partition, current_leader_epoch=s.leader_epoch,
                fetch_offset=plog.log_end_offset,
                last_fetched_epoch=plog.leader_epoch_cache.latest_epoch,
                log_start_offset=plog.log_start_offset,
                partition_max_bytes=self.config.max_bytes))
        return FetchRequest(replica_id=self.broker_id, max_wait_ms=self.config.wait_max_ms,
                            min_bytes=self.config.min_bytes,
                            max_bytes=self.config.response_max_bytes, isolation_level=0,
                            session_id=0, session_epoch=-1, topics=list(topics.values()))

    def _delay(self, state: FetchState) -> None:
        state.delayed_until = trio.current_time() + self.config.backoff_ms / 1000

    def _process(self, state: FetchState, pd) -> bool:
        """Apply one partition's fetch result; True when it needs out-of-range handling."""
        partition, plog = state.partition, state.partition.log
        code = ErrorCode(pd.error_code)
        if code == ErrorCode.OFFSET_OUT_OF_RANGE:
            return True
        if code != ErrorCode.NONE:
            # Fenced/unknown epoch, not leader, unknown partition: the controller's next
            # LeaderAndIsr will tell us more; try again after the backoff meanwhile.
            log.info("fetch of %s from %d: %s; backing off", partition.tp, self.leader_id,
                     code.name)
            self._delay(state)
            return False
        div = pd.diverging_epoch
        if div is not None and div.epoch >= 0 and div.end_offset >= 0:
            target = isr_rules.divergence_truncation_offset(
                div.epoch, div.end_offset, plog.leader_epoch_cache, plog.log_end_offset,
                plog.high_watermark)
            log.info("%s diverges from leader %d at epoch %d end %d: truncating %d -> %d",
                     partition.tp, self.leader_id, div.epoch, div.end_offset,
                     plog.log_end_offset, target)
            self._truncate(partition, target)
            return False
        records = pd.records
        try:
            if records is not None and len(records) > 0:
                plog.append_as_follower(memoryview(records))
        except KafkaError as e:
            log.warning("follower append to %s failed: %s", partition.tp, e)
            self._delay(state)
            return False
        # Truncation (if any) happened above, before adopting the leader's HW (KAFKA-14704).
        plog.update_high_watermark(min(pd.high_watermark, plog.log_end_offset))
        if 0 <= pd.log_start_offset <= plog.high_watermark:
            plog.maybe_increment_log_start_offset(pd.log_start_offset)
        partition.notify_changed()
        return False

    @staticmethod
    def _truncate(partition: "Partition", target: int) -> None:
        plog = partition.log
        plog.truncate_to(target)
        # Epoch entries starting at or after the new end describe no data (e.g. an epoch this
        # broker led without writing); keeping them would make us report that epoch again.
        plog.leader_epoch_cache.truncate_from_end(plog.log_end_offset)
        partition.notify_changed()

    async def _handle_out_of_range(self, state: FetchState) -> None:
        partition, plog = state.partition, state.partition.log
        try:
            conn = await self._connection()
            latest = await self._list_offset(conn, state, LATEST)
            earliest = await self._list_offset(conn, state, EARLIEST)
        except (ConnectionError, KafkaError) as e:
            log.info("out-of-range recovery for %s failed: %s", partition.tp, e)
            self._delay(state)
            return
        if self.states.get(partition.tp) is not state:
            return
        action = isr_rules.out_of_range_action(plog.log_end_offset, latest, earliest)
        log.warning("%s out of range (our end %d, leader [%d, %d]): %s at %d", partition.tp,
                    plog.log_end_offset, earliest, latest,
                    "restart" if action.truncate_fully else "truncate", action.offset)
        if action.truncate_fully:
            plog.truncate_fully_and_start_at(action.offset)
            partition.notify_changed()
        else:
            self._truncate(partition, action.offset)

    async def _list_offset(self, conn: BrokerConnection, state: FetchState,
                           timestamp: int) -> int:
        tp = state.partition.tp
        req = ListOffsetsRequest(replica_id=self.broker_id, isolation_level=0, topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=tp.topic, partitions=[
                ListOffsetsRequest.ListOffsetsPartition(
                    partition_index=tp.partition, current_leader_epoch=state.leader_epoch,
                    timestamp=timestamp)])])
        resp = await conn.send(ApiKey.LIST_OFFSETS, LIST_OFFSETS_VERSION, req,
                               timeout=self.config.socket_timeout_ms / 1000)
        p = resp.topics[0].partitions[0]
        if p.error_code != ErrorCode.NONE:
            raise KafkaError(ErrorCode(p.error_code), f"ListOffsets for {tp}")
        return p.offset


@attrs.define(slots=True, eq=False)
class ReplicaFetcherManager:
    """Which leader each followed partition is fetched from; starts/stops fetcher tasks."""

    broker_id: int
    metadata_cache: "MetadataCache"
    config: FetcherConfig = attrs.field(factory=FetcherConfig)
    fetchers: dict[int, ReplicaFetcher] = attrs.field(factory=dict)
    _nursery: trio.Nursery | None = None
    _leader_of: dict[TopicPartition, int] = attrs.field(factory=dict)

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for fetcher in self.fetchers.values():   # added before we were running
                nursery.start_soon(fetcher.run)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def add_partition(self, partition: "Partition") -> None:
        """Follow `partition` from its leader, from our log end with our latest epoch."""
        self.remove_partition(partition.tp)
        leader = partition.leader_id
        if leader < 0 or leader == self.broker_id:
            return
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            fetcher = ReplicaFetcher(self.broker_id, leader, self.metadata_cache, self.config)
            self.fetchers[leader] = fetcher
            if self._nursery is not None:
                self._nursery.start_soon(fetcher.run)
        fetcher.add(partition)
        self._leader_of[partition.tp] = leader

    def remove_partition(self, tp: TopicPartition) -> None:
        leader = self._leader_of.pop(tp, None)
        if leader is None:
            return
        fetcher = self.fetchers.get(leader)
        if fetcher is None:
            return
        fetcher.remove(tp)
        if not fetcher.states:
            fetcher.cancel_scope.cancel()
            del self.fetchers[leader]
