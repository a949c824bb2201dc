"""SyncGroup, Heartbeat, LeaveGroup and append completion for `GroupCoordinator`
(a mixin to keep modules small); the rules are Kafka's GroupCoordinator's."""
from __future__ import annotations

from typing import TYPE_CHECKING

from kafkapy.coordinator.group.base import PendingWrite, store_group_error
from kafkapy.coordinator.group.group import GroupState
from kafkapy.coordinator.group.results import JoinResult, Outcome, SyncResult
from kafkapy.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafkapy.coordinator.group.coordinator import GroupCoordinator

E = ErrorCode
S = GroupState


class MembershipMixin:
    # ------------------------------------------------------------ SyncGroup

    def sync(self: GroupCoordinator, group_id: str, generation_id: int, member_id: str,
             protocol_type: str | None, protocol_name: str | None,
             group_instance_id: str | None, assignments: dict[str, bytes],
             waiter: object, now: int) -> Outcome:
        out = Outcome()
        err = self._status_error(group_id)
        if err is E.COORDINATOR_LOAD_IN_PROGRESS:
            err = E.REBALANCE_IN_PROGRESS  # the rebalance state was lost: rejoin
        group = self.groups.get(group_id) if err is None else None
        if err is None and group is None:
            err = E.UNKNOWN_MEMBER_ID
        if err is None:
            assert group is not None
            if group.state is S.DEAD:
                err = E.COORDINATOR_NOT_AVAILABLE
            else:
                err = self._validate_member(group, member_id, group_instance_id)
            if err is None and generation_id != group.generation_id:
                err = E.ILLEGAL_GENERATION
            if err is None and ((protocol_type is not None
                                 and protocol_type != group.protocol_type)
                                or (protocol_name is not None
                                    and protocol_name != group.protocol_name)):
                err = E.INCONSISTENT_GROUP_PROTOCOL
            if err is None and group.state is S.EMPTY:
                err = E.UNKNOWN_MEMBER_ID
            if err is None and group.state is S.PREPARING_REBALANCE:
                err = E.REBALANCE_IN_PROGRESS
        if err is not None:
            out.complete(waiter, SyncResult(err))
            return out
        assert group is not None
        member = group.members[member_id]
        group.pending_sync.discard(member_id)
        if group.state is S.STABLE:
            out.complete(waiter, SyncResult(E.NONE, group.protocol_type, group.protocol_name,
                                            member.assignment))
            self._heartbeat(group, member, now)
            return out
        # CompletingRebalance: park until the leader's assignment is stored
        out.complete(group.take_sync_waiter(member), SyncResult(E.REBALANCE_IN_PROGRESS))
        member.awaiting_sync = waiter
        if group.is_leader(member_id):
            full = {mid: bytes(assignments.get(mid, b"")) for mid in group.members}
            out.appends.append(self._store_group(
                group, full, now, PendingWrite("sync", group, generation_id, member_id)))
        return out

    # ------------------------------------------------------------ append completion

    def on_append_done(self: GroupCoordinator, write_id: int, error: ErrorCode, log_offset: int,
                       now: int) -> Outcome:
        """The edge reports the fate of an `Append` (log_offset = its first offset)."""
        pending = self._writes.pop(write_id, None)
        out = Outcome()
        if pending is None:
            return out
        group = pending.group
        if pending.kind == "sync":
            if group.state is S.COMPLETING_REBALANCE and \
                    group.generation_id == pending.generation:
                if error is not E.NONE:
                    out.extend(self._propagate_assignment_error(
                        group, store_group_error(error), now))
                    out.extend(self._maybe_prepare_rebalance(group, now))
                else:
                    for m in group.members.values():
                        m.assignment = pending.assignment.get(m.member_id, b"")
                    for m in group.members.values():
                        waiter = group.take_sync_waiter(m)
                        if waiter is not None:
                            out.complete(waiter, SyncResult(E.NONE, group.protocol_type,
                                                            group.protocol_name, m.assignment))
                            self._heartbeat(group, m, now)
                    group.transition(S.STABLE, now)
        elif pending.kind == "static_join":
            out.extend(self._finish_static_join(pending, error, now))
        elif pending.kind == "commit":
            out.extend(self._finish_commit(pending, error, log_offset))
        return out

    def _finish_static_join(self: GroupCoordinator, pending: PendingWrite, error: ErrorCode, now: int) -> Outcome:
        out = Outcome()
        group, new_id = pending.group, pending.member_id
        member = group.members.get(new_id)
        if member is None or member.awaiting_join is not pending.waiter:
            return out  # superseded (fenced again, removed, or group unloaded)
        if error is not E.NONE:
            assert pending.revert is not None
            group.take_join_waiter(member)
            pending.revert()
            out.complete(pending.waiter, JoinResult(
                store_group_error(error), "", group.generation_id, group.protocol_type,
                group.protocol_name, pending.old_leader or ""))
            return out
        waiter = group.take_join_waiter(member)
        if pending.skip_assignment:
            leader = group.is_leader(new_id)
            out.complete(waiter, self._result_for(group, new_id, with_members=leader,
                                                  skip=leader))
        else:
            # old clients: return the old leader id so the rejoined leader does not run a
            # pointless assignment that a Stable group would never distribute
            out.complete(waiter, self._result_for(group, new_id,
                                                  leader_id=pending.old_leader or "",
                                                  with_members=False))
        return out

    # ------------------------------------------------------------ Heartbeat / LeaveGroup

    def heartbeat(self: GroupCoordinator, group_id: str, member_id: str, group_instance_id: str | None,
                  generation_id: int, now: int) -> ErrorCode:
        err = self._status_error(group_id)
        if err is E.COORDINATOR_LOAD_IN_PROGRESS:
            return E.NONE
        if err is not None:
            return err
        group = self.groups.get(group_id)
        if group is None:
            return E.UNKNOWN_MEMBER_ID
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        err = self._validate_member(group, member_id, group_instance_id)
        if err is not None:
            return err
        if generation_id != group.generation_id:
            return E.ILLEGAL_GENERATION
        if group.state is S.EMPTY:
            return E.UNKNOWN_MEMBER_ID
        self._heartbeat(group, group.members[member_id], now)
        return E.REBALANCE_IN_PROGRESS if group.state is S.PREPARING_REBALANCE else E.NONE

    def leave(self: GroupCoordinator, group_id: str, members: list[tuple[str, str | None]], now: int
              ) -> tuple[ErrorCode, list[ErrorCode], Outcome]:
        """LeaveGroup (v0-2 pass one member with no instance id)."""
        out = Outcome()
        err = self._status_error(group_id)
        if err is not None:
            return err, [], out
        group = self.groups.get(group_id)
        if group is None:
            return E.NONE, [E.UNKNOWN_MEMBER_ID for _ in members], out
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE, [], out
        errors = []
        for member_id, instance_id in members:
            if member_id == "":
                current = group.static_member_id(instance_id)
                if current is None:
                    errors.append(E.UNKNOWN_MEMBER_ID)
                    continue
                member_id = current
            elif group.is_pending(member_id):
                group.remove(member_id)
                if group.state is S.PREPARING_REBALANCE:
                    out.extend(self._try_complete_join(group, now))
                errors.append(E.NONE)
                continue
            else:
                e = self._validate_member(group, member_id, instance_id)
                if e is not None:
                    errors.append(e)
                    continue
            out.extend(self._remove_member_and_update(group, group.members[member_id], now))
            errors.append(E.NONE)
        return E.NONE, errors, out
