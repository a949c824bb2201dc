"""One partition as this broker sees it: its role, its ISR and its high watermark.

The leader's high watermark is the smallest log end offset in the ISR; it only moves forward.
Waiters (long-polling fetches, acks=all produces) park on `changed()` and are woken whenever the
log end offset, the high watermark or the leadership changes, so a parked fetch wakes as soon
as data is appended.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import attrs
import trio

from kafkapy.cluster import isr as isr_rules
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
    # The leader's LEO when this follower last fetched: reaching it by the next fetch
    # means the follower was caught up at that earlier time (steady produce never lets a
    # follower equal the live LEO).
    last_fetch_leader_leo: int = -1


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
    # Leader epoch at which this broker last became leader (epoch bumps of a continuing
    # leader keep it): a write appended at or after it is still in this broker's log.
    leader_since_epoch: int = -1
    _changed: trio.Event = attrs.field(factory=trio.Event)
    # Events of multi-partition waiters (a fetch parked on several partitions at once).
    listeners: set[trio.Event] = attrs.field(factory=set)
    # ISR proposed to the controller and not answered yet (one AlterPartition in flight).
    pending_isr: list[int] | None = None
    # Sends an ISR proposal (AlterPartition); set by the ReplicaManager.
    isr_proposer: Callable[["Partition", list[int]], None] | None = None

    # --- role changes (from LeaderAndIsr) ----------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.local_broker_id

    def make_leader(self, *, leader_epoch: int, partition_epoch: int, controller_epoch: int,
                    isr: list[int], replicas: list[int]) -> None:
        """Become leader: stamp the new epoch into the epoch cache at the current end."""
        was_leader = self.is_leader
        new_epoch = leader_epoch > self.leader_epoch or not was_leader
        self.leader_id = self.local_broker_id
        if not was_leader:
            self.leader_since_epoch = leader_epoch
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.controller_epoch = controller_epoch
        self.replicas = list(replicas)
        self.isr = list(isr)
        self.pending_isr = None
        if new_epoch:
            leo = self.log.log_end_offset
            self.log.leader_epoch_cache.assign(leader_epoch, leo)
            self.leader_epoch_start_offset = leo
        # Follower states survive an epoch bump of a continuing leader (they describe the same
        # logs); a new leader starts from "unknown" so the HW waits for every ISR member.
        now = now_ms()
        old = self.remote if was_leader else {}
        self.remote = {
            r: old.get(r) or ReplicaState(r, last_caught_up_ms=now if r in isr else 0)
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
        self.pending_isr = None
        self.remote = {}
        self._signal()

    # --- waiting ----------------------------------------------------------------------------

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        for event in self.listeners:
            event.set()

    def notify_changed(self) -> None:
        """Wake waiters after a follower-side log change (append, truncation, new HW)."""
        self._signal()

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
        for r in self.maximal_isr():
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

    def maximal_isr(self) -> list[int]:
        return isr_rules.maximal_isr(self.isr, self.pending_isr)

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int) -> None:
        """A follower fetched from `fetch_offset` without divergence: it holds everything
        below it. May advance the HW and propose the follower's return to the ISR."""
        state = self.remote.get(replica_id)
        if state is None:
            return
        now = now_ms()
        leo = self.log.log_end_offset
        if fetch_offset >= leo:
            state.last_caught_up_ms = now
        elif fetch_offset >= state.last_fetch_leader_leo >= 0:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = min(fetch_offset, leo)
        state.last_fetch_ms = now
        state.last_fetch_leader_leo = leo
        self.maybe_expand_isr(state)
        if self.maybe_increment_high_watermark():
            self._signal()

    # --- ISR changes (proposed to the controller with AlterPartition) -------------------------

    def maybe_expand_isr(self, state: ReplicaState) -> None:
        if (not self.is_leader or self.pending_isr is not None
                or state.broker_id in self.isr or state.broker_id not in self.replicas):
            return
        if isr_rules.may_join_isr(state.log_end_offset, self.high_watermark(),
                                  self.leader_epoch_start_offset):
            self._propose([*self.isr, state.broker_id])

    def maybe_shrink_isr(self, now: int, max_lag_ms: int) -> list[int]:
        """Propose dropping ISR members that lag for longer than max_lag_ms; returns them."""
        if not self.is_leader or self.pending_isr is not None:
            return []
        views = {r: isr_rules.FollowerView(r, s.log_end_offset, s.last_caught_up_ms)
                 for r, s in self.remote.items()}
        lagging = isr_rules.out_of_sync(self.isr, self.local_broker_id,
                                        self.log.log_end_offset, views, now, max_lag_ms)
        if lagging:
            self._propose([r for r in self.isr if r not in lagging])
        return lagging

    def _propose(self, new_isr: list[int]) -> None:
        if self.isr_proposer is None:
            return
        self.pending_isr = new_isr
        self.isr_proposer(self, new_isr)
        if self.maybe_increment_high_watermark():
            self._signal()

    def apply_isr_result(self, leader_epoch: int, isr: list[int] | None,
                         partition_epoch: int) -> None:
        """The controller's answer to our proposal. `isr` None = failed: revert to the
        committed ISR so a later check may propose again."""
        if not self.is_leader or leader_epoch != self.leader_epoch or self.pending_isr is None:
            return
        self.pending_isr = None
        if isr is not None and partition_epoch >= self.partition_epoch:
            self.isr = list(isr)
            self.partition_epoch = partition_epoch
        self.maybe_increment_high_watermark()
        self._signal()
