"""ReplicaManager: the broker's partitions, the produce path with acks, and long-poll fetch.

It applies the controller's LeaderAndIsr/StopReplica decisions, appends to leader logs, parks
acks=all produces until the high watermark covers them, and parks fetches until enough bytes
arrive or `max_wait_ms` passes — woken by appends, never by polling.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable

import attrs
import trio

from kafkapy.cluster.alter_partition_manager import AlterPartitionManager
from kafkapy.cluster.metadata_cache import MetadataCache
from kafkapy.cluster.partition import Partition, now_ms
from kafkapy.cluster.replica_fetcher import FetcherConfig, ReplicaFetcherManager
from kafkapy.log import LogConfig, LogManager, TopicPartition
from kafkapy.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


@attrs.define(slots=True)
class PartitionResponse:
    error: ErrorCode = ErrorCode.NONE
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    error_message: str | None = None


@attrs.define(slots=True)
class FetchSpec:
    """One partition of a Fetch request, in kafkapy's words."""

    tp: TopicPartition
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1


@attrs.define(slots=True)
class FetchResult:
    error: ErrorCode = ErrorCode.NONE
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: Any = None
    diverging_epoch: tuple[int, int] | None = None
    next_offset: int = -1    # offset after the last record in `records`, -1 when unknown


@attrs.define(slots=True)
class FetchParams:
    replica_id: int = -1
    max_wait_ms: int = 0
    min_bytes: int = 1
    max_bytes: int = 0x7FFFFFFF
    isolation_level: int = 0

    @property
    def is_follower(self) -> bool:
        return self.replica_id >= 0


LogConfigProvider = Callable[[str], Awaitable[LogConfig]]


@attrs.define(slots=True, eq=False)
class PendingAppend:
    """Batches already in the leader logs; `wait()` completes acks=-1 once the high
    watermark covers each of them (or the leadership moves, or the deadline passes)."""

    results: dict[TopicPartition, PartitionResponse]
    # (partition, its last appended offset, the leader term it was appended in)
    waiting: list[tuple[TopicPartition, Partition, int, int]]
    deadline: float

    @property
    def needs_wait(self) -> bool:
        return bool(self.waiting)

    async def wait(self) -> dict[TopicPartition, PartitionResponse]:
        for tp, partition, last_offset, term in self.waiting:
            self.results[tp].error = await await_replication(partition, last_offset, term,
                                                             self.deadline)
        self.waiting = []
        return self.results


async def await_replication(partition: Partition, last_offset: int, term: int,
                            deadline: float) -> ErrorCode:
    """Park until the high watermark passes `last_offset`; woken by the partition's
    change event (a follower fetch moving the HW), never by polling.

    Like Kafka's DelayedProduce it fails only when this broker stopped leading since the
    append (`term`, taken at append time: a pipelined wait may start later). A new epoch of
    the same leader (a new controller, the controller dropping a dead follower from the ISR)
    keeps the log, so the wait goes on; answering NOT_LEADER there made non-idempotent
    clients retry records that were already written (duplicates)."""
    while True:
        if not partition.is_leader or partition.leader_term != term:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if partition.high_watermark() > last_offset:
            if len(partition.maximal_isr()) < partition.effective_min_isr():
                return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
            return ErrorCode.NONE
        event = partition.changed()
        with trio.move_on_at(deadline):
            await event.wait()
        if trio.current_time() >= deadline and partition.high_watermark() <= last_offset:
            return ErrorCode.REQUEST_TIMED_OUT


@attrs.define(slots=True, eq=False)
class ReplicaManager:
    broker_id: int
    log_manager: LogManager
    metadata_cache: MetadataCache
    log_config_for: LogConfigProvider
    partitions: dict[TopicPartition, Partition] = attrs.field(factory=dict)
    controller_epoch: int = -1
    # Called with (tp, is_leader, leader_epoch) after role changes (group coordinator hooks).
    role_listeners: list[Callable[[TopicPartition, bool, int], None]] = attrs.field(factory=list)
    # Replication (set by configure_replication; absent in single-process unit setups).
    fetcher_manager: ReplicaFetcherManager | None = None
    alter_partition_manager: AlterPartitionManager | None = None
    replica_lag_time_max_ms: int = 30000
    _cancel: trio.CancelScope = attrs.field(factory=trio.CancelScope)

    def configure_replication(self, config: Any, broker_epoch: Callable[[], int]) -> None:
        """Create the fetcher and AlterPartition managers from broker config (replica.*)."""
        self.replica_lag_time_max_ms = config.get("replica.lag.time.max.ms")
        self.fetcher_manager = ReplicaFetcherManager(
            self.broker_id, self.metadata_cache, FetcherConfig.from_broker_config(config))
        self.alter_partition_manager = AlterPartitionManager(
            self.broker_id, self.metadata_cache, broker_epoch,
            backoff_ms=min(config.get("replica.fetch.backoff.ms"), 500),
            request_timeout_ms=config.get("controller.socket.timeout.ms"))

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Background replication work: fetchers, AlterPartition sender, ISR shrink checks."""
        with self._cancel:
            async with trio.open_nursery() as nursery:
                if self.fetcher_manager is not None:
                    await nursery.start(self.fetcher_manager.run)
                if self.alter_partition_manager is not None:
                    nursery.start_soon(self.alter_partition_manager.run)
                    nursery.start_soon(self._isr_expiration)
                task_status.started()

    def shutdown(self) -> None:
        """Stop fetching and proposing before the logs close."""
        self._cancel.cancel()

    async def _isr_expiration(self) -> None:
        """Every replica.lag.time.max.ms/2, drop followers that stopped keeping up."""
        interval = max(self.replica_lag_time_max_ms / 2, 10) / 1000
        while True:
            await trio.sleep(interval)   # a periodic schedule, as Kafka's isr-expiration task
            now = now_ms()
            for partition in list(self.partitions.values()):
                lagging = partition.maybe_shrink_isr(now, self.replica_lag_time_max_ms)
                if lagging:
                    log.info("shrinking ISR of %s: %s fell behind", partition.tp, lagging)

    def _propose_isr(self, partition: Partition, isr: list[int]) -> None:
        if self.alter_partition_manager is not None:
            self.alter_partition_manager.submit(partition, isr)

    # --- lookup ---------------------------------------------------------------------------

    def get_partition(self, tp: TopicPartition) -> Partition | None:
        return self.partitions.get(tp)

    def local_log(self, tp: TopicPartition):
        p = self.partitions.get(tp)
        return None if p is None else p.log

    def _partition_or_error(self, tp: TopicPartition) -> Partition:
        p = self.partitions.get(tp)
        if p is not None:
            return p
        if self.metadata_cache.get_partition(tp) is not None:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"broker {self.broker_id} does not host {tp}")
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"{tp} does not exist")

    def leader_partition(self, tp: TopicPartition, current_leader_epoch: int = -1) -> Partition:
        p = self._partition_or_error(tp)
        p.check_leader_epoch(current_leader_epoch, require_leader=True)
        return p

    # --- produce ------------------------------------------------------------------------------

    async def append_records(self, tp_records: dict[TopicPartition, memoryview], acks: int,
                             timeout_ms: int, internal: bool = False
                             ) -> dict[TopicPartition, PartitionResponse]:
        """Append to local leader logs; with acks=-1 wait until the ISR has every batch."""
        pending = self.append_to_leader_logs(tp_records, acks, timeout_ms, internal)
        return await pending.wait()

    def append_to_leader_logs(self, tp_records: dict[TopicPartition, memoryview], acks: int,
                              timeout_ms: int, internal: bool = False) -> "PendingAppend":
        """Append now (no await, so appends keep the callers' order); the acks=-1 wait for
        the ISR is left to `PendingAppend.wait()`, which may run while later requests of
        the same connection are appended (pipelined Produce)."""
        results: dict[TopicPartition, PartitionResponse] = {}
        waiting: list[tuple[TopicPartition, Partition, int, int]] = []
        for tp, records in tp_records.items():
            resp = PartitionResponse()
            results[tp] = resp
            try:
                if tp.topic in INTERNAL_TOPICS and not internal:
                    raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION,
                                     f"cannot append to internal topic {tp.topic}")
                partition = self._partition_or_error(tp)
                info = partition.append_records_to_leader(records, acks)
            except KafkaError as e:
                resp.error, resp.error_message = e.code, e.message or None
                continue
            resp.base_offset = info.first_offset
            resp.log_append_time = info.log_append_time
            resp.log_start_offset = info.log_start_offset
            if acks == -1:
                waiting.append((tp, partition, info.last_offset, partition.leader_term))
        # The produce timeout runs from the append, however late the wait is awaited.
        deadline = trio.current_time() + max(timeout_ms, 0) / 1000
        return PendingAppend(results, waiting, deadline)

    # --- fetch ----------------------------------------------------------------------------------

    def _read_one(self, params: FetchParams, spec: FetchSpec, max_bytes: int,
                  min_one_message: bool) -> FetchResult:
        result = FetchResult()
        try:
            partition = self._partition_or_error(spec.tp)
            partition.check_leader_epoch(spec.current_leader_epoch, require_leader=True)
            plog = partition.log
            if params.is_follower:
                diverging = self._diverging_epoch(partition, spec)
                if diverging is not None:
                    # The fetch offset is not a valid LEO of the follower: record nothing.
                    result.diverging_epoch = diverging
                    result.records = b""
                    self._fill_offsets(result, partition)
                    return result
                max_offset = plog.log_end_offset
            elif params.isolation_level == 1:
                max_offset = partition.last_stable_offset()
            else:
                max_offset = partition.high_watermark()
            data = plog.read(spec.fetch_offset, max_bytes, max_offset, min_one_message)
            result.records = data.records
            result.next_offset = data.next_offset
            if params.is_follower:
                # Only a fetch that is in range tells us the follower's LEO (Kafka records
                # follower state after a successful read).
                partition.update_follower_fetch_state(params.replica_id, spec.fetch_offset)
        except KafkaError as e:
            result.error = e.code
            result.records = b""
            partition = self.partitions.get(spec.tp)
        if partition is not None:
            self._fill_offsets(result, partition)
        return result

    @staticmethod
    def _fill_offsets(result: FetchResult, partition: Partition) -> None:
        result.high_watermark = partition.high_watermark()
        result.last_stable_offset = partition.last_stable_offset()
        result.log_start_offset = partition.log.log_start_offset

    @staticmethod
    def _diverging_epoch(partition: Partition, spec: FetchSpec) -> tuple[int, int] | None:
        """KIP-595-style divergence check: does the follower's last epoch end where ours does?"""
        if spec.last_fetched_epoch < 0:
            return None
        epoch, end = partition.log.leader_epoch_cache.end_offset_for(spec.last_fetched_epoch)
        if epoch < 0 or end < 0:
            # We know no such epoch (no entries): answering "diverging at -1" would read
            # as "no divergence" and the follower would spin; fall back to offset checks.
            return None
        if epoch != spec.last_fetched_epoch or end < spec.fetch_offset:
            return (epoch, end)
        return None

    def _read_all(self, params: FetchParams, specs: list[FetchSpec]
                  ) -> tuple[list[FetchResult], int, bool]:
        remaining = params.max_bytes
        results: list[FetchResult] = []
        total = 0
        any_error = False
        for spec in specs:
            limit = max(0, min(spec.max_bytes, remaining))
            res = self._read_one(params, spec, limit, min_one_message=(total == 0))
            size = len(res.records) if res.records is not None else 0
            total += size
            remaining -= size
            any_error = any_error or res.error != ErrorCode.NONE or res.diverging_epoch is not None
            results.append(res)
        return results, total, any_error

    async def fetch_messages(self, params: FetchParams, specs: list[FetchSpec]
                             ) -> list[FetchResult]:
        """Read now; if fewer than min_bytes are ready, park until an append or max_wait."""
        results, total, any_error = self._read_all(params, specs)
        if params.max_wait_ms <= 0 or total >= params.min_bytes or any_error or not specs:
            return results
        deadline = trio.current_time() + params.max_wait_ms / 1000
        parts = [p for p in (self.partitions.get(s.tp) for s in specs) if p is not None]
        while trio.current_time() < deadline:
            wake = trio.Event()
            for p in parts:
                p.listeners.add(wake)
            try:
                results, total, any_error = self._read_all(params, specs)
                if total >= params.min_bytes or any_error:
                    return results
                with trio.move_on_at(deadline):
                    await wake.wait()
            finally:
                for p in parts:
                    p.listeners.discard(wake)
        results, _, _ = self._read_all(params, specs)
        return results

    # --- controller requests ------------------------------------------------------------------

    def check_controller_epoch(self, controller_epoch: int) -> None:
        if controller_epoch < self.controller_epoch:
            raise KafkaError(ErrorCode.STALE_CONTROLLER_EPOCH,
                             f"controller epoch {controller_epoch} < {self.controller_epoch}")
        self.controller_epoch = controller_epoch

    async def become_leader_or_follower(self, controller_epoch: int,
                                        topic_states: Iterable[Any]
                                        ) -> dict[TopicPartition, ErrorCode]:
        """Apply LeaderAndIsr partition states (v2+ shape: topic states with partitions)."""
        self.check_controller_epoch(controller_epoch)
        errors: dict[TopicPartition, ErrorCode] = {}
        for ts in topic_states:
            topic_id = bytes(ts.topic_id) if getattr(ts, "topic_id", None) else b"\0" * 16
            for ps in ts.partition_states:
                tp = TopicPartition(ts.topic_name, ps.partition_index)
                errors[tp] = await self._apply_partition_state(tp, topic_id, ps)
        return errors

    async def _apply_partition_state(self, tp: TopicPartition, topic_id: bytes,
                                     ps: Any) -> ErrorCode:
        if self.broker_id not in ps.replicas:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        partition = self.partitions.get(tp)
        if partition is not None:
            if ps.leader_epoch < partition.leader_epoch or (
                    ps.leader_epoch == partition.leader_epoch
                    and ps.partition_epoch <= partition.partition_epoch):
                log.info("ignoring LeaderAndIsr for %s: epoch %d <= %d", tp, ps.leader_epoch,
                         partition.leader_epoch)
                return ErrorCode.STALE_CONTROLLER_EPOCH
            if topic_id != b"\0" * 16 and partition.topic_id not in (b"\0" * 16, topic_id):
                return ErrorCode.INCONSISTENT_TOPIC_ID
        else:
            config = await self.log_config_for(tp.topic)
            plog = self.log_manager.get_or_create_log(tp, topic_id, config)
            if plog.config != config:   # a log recovered at startup had the defaults
                self.log_manager.update_topic_config(tp.topic, config)
            partition = Partition(tp, self.broker_id, plog, topic_id=topic_id)
            partition.isr_proposer = self._propose_isr
            self.partitions[tp] = partition
        kwargs = dict(leader_epoch=ps.leader_epoch, partition_epoch=ps.partition_epoch,
                      controller_epoch=ps.controller_epoch, isr=list(ps.isr),
                      replicas=list(ps.replicas))
        if ps.leader == self.broker_id:
            if self.fetcher_manager is not None:
                self.fetcher_manager.remove_partition(tp)
            partition.make_leader(**kwargs)
            log.info("became leader of %s at epoch %d, ISR %s, log end %d", tp,
                     ps.leader_epoch, list(ps.isr), partition.log.log_end_offset)
        else:
            partition.make_follower(leader_id=ps.leader, **kwargs)
            if self.fetcher_manager is not None:
                self.fetcher_manager.add_partition(partition)
            log.info("became follower of %s (leader %d, epoch %d)", tp, ps.leader,
                     ps.leader_epoch)
        for listener in self.role_listeners:
            listener(tp, partition.is_leader, ps.leader_epoch)
        return ErrorCode.NONE

    def stop_replica(self, tp: TopicPartition, leader_epoch: int, delete: bool) -> ErrorCode:
        """StopReplica for one partition (KIP-570 epoch fencing)."""
        partition = self.partitions.get(tp)
        if partition is not None:
            if leader_epoch not in (-1, -2) and leader_epoch < partition.leader_epoch:
                return ErrorCode.FENCED_LEADER_EPOCH
            del self.partitions[tp]
            if self.fetcher_manager is not None:
                self.fetcher_manager.remove_partition(tp)
            partition.make_follower(leader_id=-1, leader_epoch=partition.leader_epoch,
                                    partition_epoch=partition.partition_epoch,
                                    controller_epoch=partition.controller_epoch,
                                    isr=[], replicas=partition.replicas)
            for listener in self.role_listeners:
                listener(tp, False, partition.leader_epoch)
        if delete:
            self.log_manager.delete_log(tp)
        return ErrorCode.NONE

    def update_log_configs(self, topic: str, config: LogConfig) -> None:
        self.log_manager.update_topic_config(topic, config)
