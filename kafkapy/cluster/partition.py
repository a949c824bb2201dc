"""One partition as this broker sees it: its role, its ISR and its high watermark.

The leader's high watermark is the smallest log end offset in the ISR; it only moves forward.
Waiters (long-polling fetches, acks=all produces) park on `changed()` and are woken whenever the
log end offset, the high watermark or the leadership changes, so a parked fetch wakes as soon
as data is appended.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import attrs
import trio

from kafkapy.log import TopicPartition
from kafkapy.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from kafkapy.log import LogAppendInfo, UnifiedLog


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.define(slots=True)
class ReplicaState:
    """What a leader knows about one follower, from that follower's fetches."""

    broker_id: int
    log_end_offset: int = -1
    last_fetch_ms: int = 0
    last_caught_up_ms: int = 0


@attrs.define(slots=True, eq=False)
class Partition:
    tp: TopicPartition
    local_broker_id: int
    log: "UnifiedLog"
    topic_id: bytes = b"\0" * 16
    leader_id: int = -1
    leader_epoch: int = -1
    partition_epoch: int = -1
    controller_epoch: int = -1
    replicas: list[int] = attrs.field(factory=list)
    isr: list[int] = attrs.field(factory=list)
    remote: dict[int, ReplicaState] = attrs.field(factory=dict)
    # Offset at which the current leader epoch started on this broker (KAFKA-7128).
    leader_epoch_start_offset: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event)
    # Events of multi-partition waiters (a fetch parked on several partitions at once).
    listeners: set[trio.Event] = attrs.field(factory=set)

    # --- role changes (from LeaderAndIsr) ----------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.local_broker_id

    def make_leader(self, *, leader_epoch: int, partition_epoch: int, controller_epoch: int,
                    isr: list[int], replicas: list[int]) -> None:
        """Become leader: stamp the new epoch into the epoch cache at the current end."""
        new_epoch = leader_epoch > self.leader_epoch or not self.is_leader
        self.leader_id = self.local_broker_id
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.controller_epoch = controller_epoch
        self.replicas = list(replicas)
        self.isr = list(isr)
        if new_epoch:
            leo = self.log.log_end_offset
            self.log.leader_epoch_cache.assign(leader_epoch, leo)
            self.leader_epoch_start_offset = leo
            now = now_ms()
            self.remote = {
                r: ReplicaState(r, last_caught_up_ms=now if r in isr else 0)
                for r in replicas if r != self.local_broker_id
            }
        self.maybe_increment_high_watermark()
        self._signal()

    def make_follower(self, *, leader_id: int, leader_epoch: int, partition_epoch: int,
                      controller_epoch: int, isr: list[int], replicas: list[int]) -> None:
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.controller_epoch = controller_epoch
        self.replicas = list(replicas)
        self.isr = list(isr)
        self.remote = {}
        self._signal()

    # --- waiting ----------------------------------------------------------------------------

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        for event in self.listeners:
            event.set()

    def changed(self) -> trio.Event:
        """An event set at the next append, high-watermark move or role change."""
        return self._changed

    # --- the leader's write path ---------------------------------------------------------------

    def effective_min_isr(self) -> int:
        return min(self.log.config.min_insync_replicas, max(len(self.replicas), 1))

    def append_records_to_leader(self, records: memoryview, acks: int) -> "LogAppendInfo":
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"broker {self.local_broker_id} is not the leader of {self.tp}")
        if acks == -1 and len(self.isr) < self.effective_min_isr():
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"ISR {self.isr} of {self.tp} is smaller than min.insync.replicas "
                f"{self.effective_min_isr()}")
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms())
        if not info.duplicate:
            self.maybe_increment_high_watermark()
            self._signal()
        return info

    def maybe_increment_high_watermark(self) -> bool:
        """HW = min LEO over the ISR (the leader's own LEO included); never moves back."""
        if not self.is_leader:
            return False
        hw = self.log.log_end_offset
        for r in self.isr:
            if r == self.local_broker_id:
                continue
            state = self.remote.get(r)
            hw = min(hw, state.log_end_offset if state is not None else -1)
        # KAFKA-15583: while the ISR is below min.insync.replicas the HW stays frozen.
        if len(self.isr) < self.effective_min_isr():
            return False
        if hw > self.log.high_watermark:
            self.log.update_high_watermark(hw)
            return True
        return False

    def high_watermark(self) -> int:
        return self.log.high_watermark

    def last_stable_offset(self) -> int:
        return min(self.log.last_stable_offset, self.log.high_watermark)

    def check_leader_epoch(self, current_leader_epoch: int, *, require_leader: bool) -> None:
        """KIP-320 fencing of a client's view of the leader epoch."""
        if require_leader and not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER,
                             f"broker {self.local_broker_id} is not the leader of {self.tp}")
        if current_leader_epoch < 0:
            return
        if current_leader_epoch < self.leader_epoch:
            raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH,
                             f"{self.tp}: epoch {current_leader_epoch} < {self.leader_epoch}")
        if current_leader_epoch > self.leader_epoch:
            raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH,
                             f"{self.tp}: epoch {current_leader_epoch} > {self.leader_epoch}")

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int) -> None:
        """A follower fetched from `fetch_offset`: it holds everything below it."""
        state = self.remote.get(replica_id)
        if state is None:
            return
        now = now_ms()
        leo = self.log.log_end_offset
        if fetch_offset >= leo:
            state.last_caught_up_ms = now
        state.log_end_offset = fetch_offset
        state.last_fetch_ms = now
        if self.maybe_increment_high_watermark():
            self._signal()
