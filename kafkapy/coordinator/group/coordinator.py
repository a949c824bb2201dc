"""Sans-I/O classic group coordinator: JoinGroup/SyncGroup/Heartbeat/LeaveGroup, timers,
offsets-partition ownership. SyncGroup/Heartbeat/LeaveGroup live in
`membership.py`, offset APIs in `offsets.py` (both mixed in).

Every entry point takes `now_ms` and returns plain data (`Outcome`, results); timers are
absolute deadlines kept on the groups, exposed through `next_deadline()` and fired by
`expire(now_ms)`. The rules follow Kafka's GroupCoordinator so clients see the same
error codes in the same situations.
"""
from __future__ import annotations

import heapq
import itertools

from kafkapy.coordinator.group.base import (  # noqa: F401 - re-exported names
    NEW_MEMBER_JOIN_TIMEOUT_MS, GroupConfig, PartitionStatus, PendingWrite, java_string_hash,
    partition_for)
from kafkapy.coordinator.group.group import GroupMetadata, GroupState, MemberMetadata
from kafkapy.coordinator.group.membership import MembershipMixin
from kafkapy.coordinator.group.offsets import OffsetsMixin
from kafkapy.coordinator.group.records import encode_group_key, encode_group_value
from kafkapy.coordinator.group.results import Append, JoinResult, Outcome, SyncResult
from kafkapy.protocol.errors import ErrorCode

E = ErrorCode
S = GroupState


class GroupCoordinator(MembershipMixin, OffsetsMixin):
    """All groups of the `__consumer_offsets` partitions this broker leads."""

    def __init__(self, config: GroupConfig) -> None:
        self.config = config
        self.active = True
        self.groups: dict[str, GroupMetadata] = {}
        self.partitions: dict[int, PartitionStatus] = {}
        self._epochs: dict[int, int] = {}
        self._timers: list[tuple[int, int, str]] = []
        self._seq = itertools.count()
        self._writes: dict[int, PendingWrite] = {}
        self._write_ids = itertools.count(1)

    # ------------------------------------------------------------ placement/status

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.num_partitions)

    def _status_error(self, group_id: str, allow_empty_id: bool = False) -> ErrorCode | None:
        if group_id is None or (not group_id and not allow_empty_id):
            return E.INVALID_GROUP_ID
        if not self.active:
            return E.COORDINATOR_NOT_AVAILABLE
        st = self.partitions.get(self.partition_for(group_id))
        if st is None:
            return E.NOT_COORDINATOR
        if st.loading:
            return E.COORDINATOR_LOAD_IN_PROGRESS
        return None

    def is_coordinator_for(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self.partitions

    def is_loading(self, group_id: str) -> bool:
        st = self.partitions.get(self.partition_for(group_id))
        return st is not None and st.loading

    # ------------------------------------------------------------ timers

    def _schedule(self, group: GroupMetadata, deadline: int | None) -> None:
        if deadline is not None:
            heapq.heappush(self._timers, (deadline, next(self._seq), group.group_id))

    def next_deadline(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def _heartbeat(self, group: GroupMetadata, member: MemberMetadata, now: int,
                   timeout_ms: int | None = None) -> None:
        member.heartbeat_deadline = now + (member.session_timeout_ms if timeout_ms is None
                                           else timeout_ms)
        self._schedule(group, member.heartbeat_deadline)

    def expire(self, now: int) -> Outcome:
        """Fire every timer due at `now` (stale heap entries are re-checked and dropped)."""
        out = Outcome()
        due: list[str] = []
        while self._timers and self._timers[0][0] <= now:
            gid = heapq.heappop(self._timers)[2]
            if gid not in due:
                due.append(gid)
        for gid in due:
            group = self.groups.get(gid)
            if group is not None and group.state is not S.DEAD:
                out.extend(self._fire_group_timers(group, now))
        return out

    def _fire_group_timers(self, group: GroupMetadata, now: int) -> Outcome:
        out = Outcome()
        for mid, deadline in list(group.pending_members.items()):
            if deadline <= now:
                group.remove(mid)
                if group.state is S.PREPARING_REBALANCE:
                    out.extend(self._try_complete_join(group, now))
        for member in list(group.members.values()):
            if member.heartbeat_deadline is None or member.heartbeat_deadline > now:
                continue
            if group.members.get(member.member_id) is not member:
                continue
            member.heartbeat_deadline = None
            awaiting = member.awaiting_join is not None or member.awaiting_sync is not None
            if awaiting and not member.is_new:
                continue  # a member parked in a rebalance needs no heartbeat
            out.extend(self._remove_member_and_update(group, member, now))
        if group.join_deadline is not None and group.join_deadline <= now:
            out.extend(self._on_join_deadline(group, now))
        if group.sync_deadline is not None and group.sync_deadline <= now:
            group.sync_deadline = None
            if group.state in (S.COMPLETING_REBALANCE, S.STABLE) and group.pending_sync:
                for mid in list(group.pending_sync):
                    m = group.members.get(mid)
                    if m is not None:
                        out.complete(group.take_sync_waiter(m), SyncResult(E.UNKNOWN_MEMBER_ID))
                    group.remove(mid)
                out.extend(self._prepare_rebalance(group, now))
        return out

    # ------------------------------------------------------------ JoinGroup

    def join(self, group_id: str, member_id: str, group_instance_id: str | None,
             require_known_member_id: bool, supports_skip_assignment: bool,
             client_id: str, client_host: str, rebalance_timeout_ms: int,
             session_timeout_ms: int, protocol_type: str,
             protocols: list[tuple[str, bytes]], waiter: object, now: int) -> Outcome:
        out = Outcome()
        protocols = [(n, bytes(m)) for n, m in protocols]
        if rebalance_timeout_ms < 0:  # JoinGroup v0 has no rebalance timeout
            rebalance_timeout_ms = session_timeout_ms
        err = self._status_error(group_id)
        if err is None and not (self.config.min_session_timeout_ms <= session_timeout_ms
                                <= self.config.max_session_timeout_ms):
            err = E.INVALID_SESSION_TIMEOUT
        if err is not None:
            out.complete(waiter, JoinResult(err, member_id))
            return out
        unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not unknown:
                out.complete(waiter, JoinResult(E.UNKNOWN_MEMBER_ID, member_id))
                return out
            group = self.groups[group_id] = GroupMetadata(group_id, state_timestamp=now)
        if not self._accept_joining_member(group, member_id):
            removed = group.remove(member_id)
            if removed is not None:
                out.complete(group.take_join_waiter(removed) if removed.awaiting_join else None,
                             JoinResult(E.GROUP_MAX_SIZE_REACHED, ""))
            out.complete(waiter, JoinResult(E.GROUP_MAX_SIZE_REACHED, ""))
        elif group.state is S.DEAD:
            out.complete(waiter, JoinResult(E.COORDINATOR_NOT_AVAILABLE, member_id))
        elif not group.supports_protocols(protocol_type, protocols):
            out.complete(waiter, JoinResult(E.INCONSISTENT_GROUP_PROTOCOL, member_id))
        elif unknown:
            new_id = group.generate_member_id(client_id, group_instance_id)
            old_id = group.static_member_id(group_instance_id)
            if group_instance_id is not None and old_id is not None:
                out.extend(self._update_static_member(
                    group, old_id, new_id, group_instance_id, protocols, rebalance_timeout_ms,
                    session_timeout_ms, supports_skip_assignment, waiter, now))
            elif group_instance_id is None and require_known_member_id:
                group.pending_members[new_id] = now + session_timeout_ms
                self._schedule(group, now + session_timeout_ms)
                out.complete(waiter, JoinResult(E.MEMBER_ID_REQUIRED, new_id))
            else:
                out.extend(self._add_member_and_rebalance(
                    group, new_id, group_instance_id, client_id, client_host,
                    rebalance_timeout_ms, session_timeout_ms, protocol_type, protocols,
                    waiter, now))
        elif group.is_pending(member_id):
            out.extend(self._add_member_and_rebalance(
                group, member_id, None, client_id, client_host, rebalance_timeout_ms,
                session_timeout_ms, protocol_type, protocols, waiter, now))
        else:
            out.extend(self._current_member_join(group, member_id, group_instance_id,
                                                 rebalance_timeout_ms, session_timeout_ms,
                                                 protocols, waiter, now))
        if group.state is S.PREPARING_REBALANCE:
            out.extend(self._try_complete_join(group, now))
        return out

    def _accept_joining_member(self, group: GroupMetadata, member_id: str) -> bool:
        max_size = self.config.max_size
        if group.state in (S.EMPTY, S.DEAD):
            return True
        if group.state is S.PREPARING_REBALANCE:
            m = group.members.get(member_id)
            return (m is not None and m.awaiting_join is not None) or \
                group.num_awaiting_join < max_size
        return group.has(member_id) or len(group.members) < max_size

    def _validate_member(self, group: GroupMetadata, member_id: str,
                         instance_id: str | None) -> ErrorCode | None:
        if instance_id is not None:
            current = group.static_member_id(instance_id)
            if current is None:
                return E.UNKNOWN_MEMBER_ID
            if current != member_id:
                return E.FENCED_INSTANCE_ID
            return None
        return None if group.has(member_id) else E.UNKNOWN_MEMBER_ID

    def _result_for(self, group: GroupMetadata, member_id: str, leader_id: str | None = None,
                    with_members: bool | None = None, skip: bool = False) -> JoinResult:
        with_members = group.is_leader(member_id) if with_members is None else with_members
        return JoinResult(E.NONE, member_id, group.generation_id, group.protocol_type,
                          group.protocol_name,
                          (group.leader_id if leader_id is None else leader_id) or "", skip,
                          group.current_member_metadata() if with_members else [])

    def _current_member_join(self, group: GroupMetadata, member_id: str,
                             instance_id: str | None, rebalance_timeout_ms: int,
                             session_timeout_ms: int, protocols: list[tuple[str, bytes]],
                             waiter: object, now: int) -> Outcome:
        out = Outcome()
        err = self._validate_member(group, member_id, instance_id)
        if err is not None:
            out.complete(waiter, JoinResult(err, member_id))
            return out
        member = group.members[member_id]
        state = group.state
        if state is S.PREPARING_REBALANCE or (
                state is S.COMPLETING_REBALANCE and not member.matches(protocols)) or (
                state is S.STABLE and (group.is_leader(member_id)
                                       or not member.matches(protocols))):
            # a previous parked JoinGroup of this member is superseded by this one; the
            # client keeps its member id and rejoins on REBALANCE_IN_PROGRESS
            out.complete(group.take_join_waiter(member) if member.awaiting_join else None,
                         JoinResult(E.REBALANCE_IN_PROGRESS, member_id))
            group.update_member(member, protocols, rebalance_timeout_ms, session_timeout_ms,
                                waiter)
            out.extend(self._maybe_prepare_rebalance(group, now))
        elif state in (S.COMPLETING_REBALANCE, S.STABLE):
            out.complete(waiter, self._result_for(
                group, member_id, with_members=(state is S.COMPLETING_REBALANCE
                                                and group.is_leader(member_id))))
        else:
            out.complete(waiter, JoinResult(E.UNKNOWN_MEMBER_ID, member_id))
        return out

    def _add_member_and_rebalance(self, group: GroupMetadata, member_id: str,
                                  instance_id: str | None, client_id: str, client_host: str,
                                  rebalance_timeout_ms: int, session_timeout_ms: int,
                                  protocol_type: str, protocols: list[tuple[str, bytes]],
                                  waiter: object, now: int) -> Outcome:
        member = MemberMetadata(member_id, instance_id, client_id, client_host,
                                rebalance_timeout_ms, session_timeout_ms, protocol_type,
                                protocols, is_new=True)
        if group.state is S.PREPARING_REBALANCE and group.generation_id == 0:
            group.new_member_added = True
        group.add(member, waiter)
        # new members cannot heartbeat yet; bound how long a defunct one can linger
        self._heartbeat(group, member, now, NEW_MEMBER_JOIN_TIMEOUT_MS)
        return self._maybe_prepare_rebalance(group, now)

    def _update_static_member(self, group: GroupMetadata, old_id: str, new_id: str,
                              instance_id: str, protocols: list[tuple[str, bytes]],
                              rebalance_timeout_ms: int, session_timeout_ms: int,
                              supports_skip: bool, waiter: object, now: int) -> Outcome:
        out = Outcome()
        current_leader = group.leader_id
        member, old_join, old_sync = group.replace_static_member(instance_id, old_id, new_id)
        out.complete(old_join, JoinResult(E.FENCED_INSTANCE_ID, old_id))
        out.complete(old_sync, SyncResult(E.FENCED_INSTANCE_ID))
        self._heartbeat(group, member, now)
        old = (list(member.protocols), member.rebalance_timeout_ms, member.session_timeout_ms)
        group.update_member(member, protocols, rebalance_timeout_ms, session_timeout_ms, waiter)
        if group.state is S.STABLE:
            if group.protocol_name == group.select_protocol():
                def revert() -> None:
                    group.update_member(member, old[0], old[1], old[2], None)
                    group.replace_static_member(instance_id, new_id, old_id)
                    self._heartbeat(group, member, now)
                assignment = {m.member_id: m.assignment for m in group.members.values()}
                out.appends.append(self._store_group(
                    group, assignment, now,
                    PendingWrite("static_join", group, group.generation_id, new_id, waiter,
                                  revert=revert, old_leader=current_leader,
                                  skip_assignment=supports_skip)))
            else:
                out.extend(self._maybe_prepare_rebalance(group, now))
        elif group.state is S.COMPLETING_REBALANCE:
            out.extend(self._prepare_rebalance(group, now))
        return out

    # ------------------------------------------------------------ rebalance machinery

    def _maybe_prepare_rebalance(self, group: GroupMetadata, now: int) -> Outcome:
        return self._prepare_rebalance(group, now) if group.can_rebalance() else Outcome()

    def _prepare_rebalance(self, group: GroupMetadata, now: int) -> Outcome:
        out = Outcome()
        if group.state is S.COMPLETING_REBALANCE:
            out.extend(self._propagate_assignment_error(group, E.REBALANCE_IN_PROGRESS, now))
        group.pending_sync.clear()
        group.sync_deadline = None
        rebalance_timeout = group.rebalance_timeout_ms()
        if group.state is S.EMPTY:
            delay = self.config.initial_rebalance_delay_ms
            group.initial_delay_remaining_ms = max(rebalance_timeout - delay, 0)
            group.join_deadline = now + delay
        else:
            group.initial_delay_remaining_ms = None
            group.join_deadline = now + rebalance_timeout
        group.transition(S.PREPARING_REBALANCE, now)
        self._schedule(group, group.join_deadline)
        return out

    def _try_complete_join(self, group: GroupMetadata, now: int) -> Outcome:
        if group.state is S.PREPARING_REBALANCE and group.initial_delay_remaining_ms is None \
                and group.has_all_members_joined():
            return self._complete_join(group, now)
        return Outcome()

    def _on_join_deadline(self, group: GroupMetadata, now: int) -> Outcome:
        group.join_deadline = None
        if group.state is not S.PREPARING_REBALANCE:
            return Outcome()
        remaining = group.initial_delay_remaining_ms
        if remaining is not None and group.new_member_added and remaining > 0:
            # members keep arriving at an empty group: wait a little longer, up to the
            # rebalance timeout, so the first generation includes all of them
            group.new_member_added = False
            delay = min(self.config.initial_rebalance_delay_ms, remaining)
            group.initial_delay_remaining_ms = max(remaining - delay, 0)
            group.join_deadline = now + delay
            self._schedule(group, group.join_deadline)
            return Outcome()
        group.initial_delay_remaining_ms = None
        group.new_member_added = False
        return self._complete_join(group, now)

    def _complete_join(self, group: GroupMetadata, now: int) -> Outcome:
        out = Outcome()
        group.join_deadline = None
        for m in group.not_yet_rejoined():
            if m.group_instance_id is None:
                group.remove(m.member_id)
                out.complete(group.take_sync_waiter(m), SyncResult(E.UNKNOWN_MEMBER_ID))
        if group.state is S.DEAD:
            return out
        if not group.maybe_elect_new_joined_leader() and group.members:
            # only static members that have not rejoined remain: wait another round
            group.join_deadline = now + group.rebalance_timeout_ms()
            self._schedule(group, group.join_deadline)
            return out
        group.init_next_generation(now)
        if group.state is S.EMPTY:
            out.appends.append(self._store_group(group, {}, now,
                                                 PendingWrite("plain", group)))
            return out
        for member in group.members.values():
            out.complete(group.take_join_waiter(member), self._result_for(group, member.member_id))
            self._heartbeat(group, member, now)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_deadline = now + group.rebalance_timeout_ms()
        self._schedule(group, group.sync_deadline)
        return out

    def _remove_member_and_update(self, group: GroupMetadata, member: MemberMetadata,
                                  now: int) -> Outcome:
        out = Outcome()
        out.complete(group.take_join_waiter(member), JoinResult(E.UNKNOWN_MEMBER_ID, ""))
        out.complete(group.take_sync_waiter(member), SyncResult(E.UNKNOWN_MEMBER_ID))
        group.remove(member.member_id)
        if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            out.extend(self._maybe_prepare_rebalance(group, now))
        elif group.state is S.PREPARING_REBALANCE:
            out.extend(self._try_complete_join(group, now))
        return out

    def _propagate_assignment_error(self, group: GroupMetadata, error: ErrorCode,
                                    now: int) -> Outcome:
        out = Outcome()
        for m in group.members.values():
            m.assignment = b""
            waiter = group.take_sync_waiter(m)
            if waiter is not None:
                out.complete(waiter, SyncResult(error))
                self._heartbeat(group, m, now)
        return out

    def _store_group(self, group: GroupMetadata, assignment: dict[str, bytes], now: int,
                     pending: PendingWrite) -> Append:
        write_id = next(self._write_ids)
        pending.assignment = assignment
        self._writes[write_id] = pending
        value = encode_group_value(group.to_value(assignment))
        return Append(write_id, self.partition_for(group.group_id),
                      [(encode_group_key(group.group_id), value)])
