"""trio edge of the group coordinator: parks callers, runs timers, persists and loads.

The state machine (`GroupCoordinator`) is only touched from the trio thread and never
awaits, so each call is atomic. Appends to one `__consumer_offsets` partition go through a
single writer task that preserves call order (a later commit must land later in the log,
or a reload would resurrect an older offset) and groups queued appends into one batch.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any

import attrs
import trio

from kafkapy.coordinator.group.coordinator import GroupConfig, GroupCoordinator
from kafkapy.coordinator.group.records import (
    LoadedPartition, OffsetValue, apply_record, build_batch, iter_key_values)
from kafkapy.coordinator.group.results import (
    Append, CommitResult, FetchedOffset, GroupOverview, GroupSummary, JoinResult, Outcome,
    SyncResult)
from kafkapy.log import TopicPartition
from kafkapy.protocol.errors import ErrorCode

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
LOAD_CHUNK_BYTES = 5 * 1024 * 1024
MAX_COMBINED_BYTES = 512 * 1024
LOAD_RETRY_S = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


class _Waiter:
    """One parked request; the coordinator only ever sees it as an opaque token."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: Any = None

    def set(self, result: Any) -> None:
        if not self.event.is_set():
            self.result = result
            self.event.set()

    async def wait(self) -> Any:
        await self.event.wait()
        return self.result


@attrs.define(slots=True, eq=False)
class _Writer:
    queue: deque[Append] = attrs.Factory(deque)
    wakeup: trio.Event = attrs.Factory(trio.Event)
    running: bool = False


class GroupRuntime:
    """`server.group_coordinator`: the object handlers and the ReplicaManager talk to."""

    def __init__(self, server: Any) -> None:
        self.server = server
        cfg = server.config
        self.coordinator = GroupCoordinator(GroupConfig(
            min_session_timeout_ms=cfg.get("group.min.session.timeout.ms"),
            max_session_timeout_ms=cfg.get("group.max.session.timeout.ms"),
            max_size=cfg.get("group.max.size"),
            initial_rebalance_delay_ms=cfg.get("group.initial.rebalance.delay.ms"),
            offset_metadata_max_bytes=cfg.get("offset.metadata.max.bytes"),
            num_partitions=cfg.get("offsets.topic.num.partitions"),
            offsets_retention_ms=cfg.get("offsets.retention.minutes") * 60 * 1000))
        self.coordinator.active = False  # COORDINATOR_NOT_AVAILABLE until run() starts
        self.commit_timeout_ms: int = cfg.get("offsets.commit.timeout.ms")
        self.retention_check_ms: int = cfg.get("offsets.retention.check.interval.ms")
        self.compression: int = cfg.get("offsets.topic.compression.codec")
        self._nursery: trio.Nursery | None = None
        self._timers_changed = trio.Event()
        self._writers: dict[int, _Writer] = {}
        self._load_send, self._load_recv = trio.open_memory_channel(math.inf)

    # ------------------------------------------------------------ life cycle

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._refresh_partition_count()
                self.coordinator.active = True
                nursery.start_soon(self._timer_loop)
                nursery.start_soon(self._load_loop)
                nursery.start_soon(self._retention_loop)
                for partition, writer in self._writers.items():
                    if writer.queue and not writer.running:
                        self._start_writer(partition, writer)
                task_status.started()
        finally:
            self.coordinator.active = False
            self._nursery = None

    def _refresh_partition_count(self) -> None:
        """Placement follows the real partition count of `__consumer_offsets` once it
        exists (it may differ from today's config), as Kafka reads it from ZooKeeper."""
        count = self.server.metadata_cache.partition_count(OFFSETS_TOPIC)
        if count:
            self.coordinator.config.num_partitions = count

    def partition_for(self, group_id: str) -> int:
        self._refresh_partition_count()
        return self.coordinator.partition_for(group_id)

    def is_coordinator_for(self, group_id: str) -> bool:
        self._refresh_partition_count()
        return self.coordinator.is_coordinator_for(group_id)

    # ------------------------------------------------------------ outcome plumbing

    def _apply(self, out: Outcome) -> None:
        for waiter, result in out.completions:
            waiter.set(result)  # type: ignore[attr-defined]
        for app in out.appends:
            writer = self._writers.get(app.partition)
            if writer is None:
                writer = self._writers[app.partition] = _Writer()
            writer.queue.append(app)
            if not writer.running and self._nursery is not None:
                self._start_writer(app.partition, writer)
            writer.wakeup.set()
        self._timers_changed.set()

    def _start_writer(self, partition: int, writer: _Writer) -> None:
        assert self._nursery is not None
        writer.running = True
        self._nursery.start_soon(self._writer_loop, partition, writer)

    async def _writer_loop(self, partition: int, writer: _Writer) -> None:
        tp = TopicPartition(OFFSETS_TOPIC, partition)
        while True:
            if not writer.queue:
                writer.wakeup = trio.Event()
                await writer.wakeup.wait()
                continue
            batch_apps: list[Append] = []
            size = 0
            while writer.queue and (not batch_apps or size < MAX_COMBINED_BYTES):
                app = writer.queue.popleft()
                batch_apps.append(app)
                size += sum(len(k) + len(v or b"") for k, v in app.records)
            records = [r for app in batch_apps for r in app.records]
            error, base = ErrorCode.NONE, -1
            try:
                batch = build_batch(records, now_ms(), self.compression)
                resp = (await self.server.replica_manager.append_records(
                    {tp: memoryview(batch)}, acks=-1, timeout_ms=self.commit_timeout_ms,
                    internal=True))[tp]
                error, base = resp.error, resp.base_offset
            except Exception:  # noqa: BLE001 - a failed write must still answer callers
                log.exception("append to %s failed", tp)
                error = ErrorCode.UNKNOWN_SERVER_ERROR
            now = now_ms()
            for app in batch_apps:
                self._apply(self.coordinator.on_append_done(app.write_id, error, base, now))
                if base >= 0:
                    base += len(app.records)

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.coordinator.next_deadline()
            now = now_ms()
            if deadline is not None and deadline <= now:
                self._apply(self.coordinator.expire(now))
                continue
            self._timers_changed = trio.Event()
            if deadline is None:
                await self._timers_changed.wait()
            else:
                with trio.move_on_after((deadline - now) / 1000):
                    await self._timers_changed.wait()

    async def _retention_loop(self) -> None:
        while True:
            await trio.sleep(self.retention_check_ms / 1000)
            self._apply(self.coordinator.cleanup_expired_offsets(now_ms()))

    # ------------------------------------------------------------ partition ownership

    def on_elected(self, partition: int, leader_epoch: int) -> None:
        self._refresh_partition_count()
        if self.coordinator.on_elected(partition, leader_epoch):
            self._load_send.send_nowait((partition, leader_epoch))

    def on_resigned(self, partition: int, leader_epoch: int | None) -> None:
        self._apply(self.coordinator.on_resigned(partition, leader_epoch))

    def on_partitions_deleted(self, partitions: list[TopicPartition]) -> None:
        """Hook for topic deletion (Kafka's handleDeletedPartitions)."""
        self._apply(self.coordinator.remove_partitions(
            [(tp.topic, tp.partition) for tp in partitions], now_ms()))

    async def _load_loop(self) -> None:
        async for partition, epoch in self._load_recv:
            while self._still_loading(partition, epoch):
                try:
                    loaded = await self._read_partition(partition)
                except Exception:  # noqa: BLE001 - keep answering LOAD_IN_PROGRESS, retry
                    log.exception("loading %s-%d failed; retrying", OFFSETS_TOPIC, partition)
                    await trio.sleep(LOAD_RETRY_S)
                    continue
                self._apply(self.coordinator.complete_load(partition, epoch, loaded, now_ms()))
                log.info("loaded %d groups from %s-%d (epoch %d)", len(
                    set(loaded.groups) | set(loaded.offsets)), OFFSETS_TOPIC, partition, epoch)
                break

    def _still_loading(self, partition: int, epoch: int) -> bool:
        st = self.coordinator.partitions.get(partition)
        return st is not None and st.epoch == epoch and st.loading

    async def _read_partition(self, partition: int) -> LoadedPartition:
        """Replay the partition's log from its start to its end, chunk by chunk."""
        out = LoadedPartition()
        plog = self.server.replica_manager.local_log(TopicPartition(OFFSETS_TOPIC, partition))
        if plog is None:
            return out
        from kafkapy.native import scan_batches

        offset, end = plog.log_start_offset, plog.log_end_offset
        while offset < end:
            info = plog.read(offset, LOAD_CHUNK_BYTES, end)
            records = info.records
            raw = records.tobytes() if hasattr(records, "tobytes") else bytes(records)
            if not raw:
                break
            scan = scan_batches(raw, allow_gaps=True)
            if not scan.batches:
                raise RuntimeError(f"unreadable batch at offset {offset}: {scan.error_message}")
            for key, value in iter_key_values(raw[:scan.valid_bytes]):
                apply_record(out, key, value)
            offset = scan.batches[-1].last_offset + 1
            await trio.sleep(0)
        return out

    # ------------------------------------------------------------ request API

    async def join(self, group_id: str, member_id: str, group_instance_id: str | None,
                   require_known_member_id: bool, supports_skip_assignment: bool,
                   client_id: str, client_host: str, rebalance_timeout_ms: int,
                   session_timeout_ms: int, protocol_type: str,
                   protocols: list[tuple[str, bytes]]) -> JoinResult:
        self._refresh_partition_count()
        w = _Waiter()
        self._apply(self.coordinator.join(
            group_id, member_id, group_instance_id, require_known_member_id,
            supports_skip_assignment, client_id, client_host, rebalance_timeout_ms,
            session_timeout_ms, protocol_type, protocols, w, now_ms()))
        return await w.wait()

    async def sync(self, group_id: str, generation_id: int, member_id: str,
                   protocol_type: str | None, protocol_name: str | None,
                   group_instance_id: str | None, assignments: dict[str, bytes]) -> SyncResult:
        self._refresh_partition_count()
        w = _Waiter()
        self._apply(self.coordinator.sync(group_id, generation_id, member_id, protocol_type,
                                          protocol_name, group_instance_id, assignments, w,
                                          now_ms()))
        return await w.wait()

    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None,
                  generation_id: int) -> ErrorCode:
        self._refresh_partition_count()
        err = self.coordinator.heartbeat(group_id, member_id, group_instance_id,
                                         generation_id, now_ms())
        self._timers_changed.set()
        return err

    def leave(self, group_id: str, members: list[tuple[str, str | None]]
              ) -> tuple[ErrorCode, list[ErrorCode]]:
        self._refresh_partition_count()
        err, per_member, out = self.coordinator.leave(group_id, members, now_ms())
        self._apply(out)
        return err, per_member

    async def commit_offsets(self, group_id: str, member_id: str,
                             group_instance_id: str | None, generation_id: int,
                             offsets: dict[tuple[str, int], OffsetValue]) -> CommitResult:
        """Answered only after the records are durably appended (acks=-1)."""
        self._refresh_partition_count()
        w = _Waiter()
        self._apply(self.coordinator.commit_offsets(group_id, member_id, group_instance_id,
                                                    generation_id, offsets, w, now_ms()))
        return await w.wait()

    def fetch_offsets(self, group_id: str, partitions: list[tuple[str, int]] | None,
                      require_stable: bool = False
                      ) -> tuple[ErrorCode, dict[tuple[str, int], FetchedOffset]]:
        self._refresh_partition_count()
        return self.coordinator.fetch_offsets(group_id, partitions, require_stable)

    def describe(self, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        self._refresh_partition_count()
        return self.coordinator.describe(group_id)

    def list_groups(self, states: list[str] | None = None
                    ) -> tuple[ErrorCode, list[GroupOverview]]:
        self._refresh_partition_count()
        return self.coordinator.list_groups(states)

    def delete_groups(self, group_ids: list[str]) -> dict[str, ErrorCode]:
        self._refresh_partition_count()
        errors, out = self.coordinator.delete_groups(group_ids, now_ms())
        self._apply(out)
        return errors

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]
                       ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        self._refresh_partition_count()
        err, per_tp, out = self.coordinator.delete_offsets(group_id, partitions, now_ms())
        self._apply(out)
        return err, per_tp
