"""Offset commit/fetch/delete, group listing/description/deletion, retention and
offsets-partition load/unload for `GroupCoordinator` (a mixin to keep modules small).

A commit reaches the cache only once its append succeeded (`_finish_commit`), so a fetch
never returns an offset that a leader change could still lose.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kafkapy.coordinator.group.base import PartitionStatus, PendingWrite
from kafkapy.coordinator.group.group import CONSUMER_PROTOCOL_TYPE, GroupMetadata, GroupState
from kafkapy.coordinator.group.records import (
    LoadedPartition, OffsetValue, encode_group_key, encode_offset_key, encode_offset_value)
from kafkapy.coordinator.group.results import (
    Append, CommitResult, FetchedOffset, GroupOverview, GroupSummary, JoinResult, MemberSummary,
    Outcome, SyncResult)
from kafkapy.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafkapy.coordinator.group.coordinator import GroupCoordinator

E = ErrorCode
S = GroupState
TP = tuple[str, int]


def _commit_error(error: ErrorCode) -> ErrorCode:
    """How a failed offsets append is reported to the committer (Kafka's mapping)."""
    if error in (E.UNKNOWN_TOPIC_OR_PARTITION, E.NOT_ENOUGH_REPLICAS,
                 E.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return E.COORDINATOR_NOT_AVAILABLE
    if error in (E.NOT_LEADER_OR_FOLLOWER, E.KAFKA_STORAGE_ERROR):
        return E.NOT_COORDINATOR
    if error in (E.MESSAGE_TOO_LARGE, E.RECORD_LIST_TOO_LARGE, E.INVALID_FETCH_SIZE):
        return E.INVALID_COMMIT_OFFSET_SIZE
    return error


def _java_length(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


class OffsetsMixin:
    # ------------------------------------------------------------ OffsetCommit

    def commit_offsets(self: GroupCoordinator, group_id: str, member_id: str,
                       group_instance_id: str | None, generation_id: int,
                       offsets: dict[TP, OffsetValue], waiter: object, now: int) -> Outcome:
        out = Outcome()

        def fail(error: ErrorCode) -> Outcome:
            out.complete(waiter, CommitResult({tp: error for tp in offsets}))
            return out

        err = self._status_error(group_id, allow_empty_id=True)
        if err is not None:
            return fail(err)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return fail(E.ILLEGAL_GENERATION)
            # a simple consumer (assign() + commit) creates the group implicitly
            group = self.groups[group_id] = GroupMetadata(group_id, state_timestamp=now)
        err = self._validate_commit(group, generation_id, member_id, group_instance_id)
        if err is not None:
            return fail(err)
        if group.state is S.COMPLETING_REBALANCE:
            return fail(E.REBALANCE_IN_PROGRESS)
        if group.state in (S.STABLE, S.PREPARING_REBALANCE):
            self._heartbeat(group, group.members[member_id], now)
        return out.extend(self._store_offsets(group, offsets, waiter))

    def _validate_commit(self: GroupCoordinator, group: GroupMetadata, generation_id: int,
                         member_id: str, instance_id: str | None) -> ErrorCode | None:
        if group.state is S.DEAD:
            return E.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.state is S.EMPTY:
            return None  # admin client or a consumer without group management
        if generation_id >= 0 or member_id != "" or instance_id is not None:
            err = self._validate_member(group, member_id, instance_id)
            if err is None and generation_id != group.generation_id:
                err = E.ILLEGAL_GENERATION
            return err
        return E.UNKNOWN_MEMBER_ID  # non-empty group: only members may commit

    def _store_offsets(self: GroupCoordinator, group: GroupMetadata,
                       offsets: dict[TP, OffsetValue], waiter: object) -> Outcome:
        out = Outcome()
        limit = self.config.offset_metadata_max_bytes
        too_large = {tp: E.OFFSET_METADATA_TOO_LARGE for tp, v in offsets.items()
                     if _java_length(v.metadata) > limit}
        valid = {tp: v for tp, v in offsets.items() if tp not in too_large}
        if not valid:
            out.complete(waiter, CommitResult(too_large))
            return out
        for tp in valid:
            group.pending_offset_commits[tp] += 1
        write_id = next(self._write_ids)
        self._writes[write_id] = PendingWrite("commit", group, waiter=waiter, offsets=valid,
                                               errors=too_large)
        records = [(encode_offset_key(group.group_id, t, p), encode_offset_value(v))
                   for (t, p), v in valid.items()]
        out.appends.append(Append(write_id, self.partition_for(group.group_id), records))
        return out

    def _finish_commit(self: GroupCoordinator, pending: PendingWrite, error: ErrorCode,
                       log_offset: int) -> Outcome:
        group = pending.group
        for i, (tp, value) in enumerate(pending.offsets.items()):
            group.pending_offset_commits[tp] -= 1
            if group.pending_offset_commits[tp] <= 0:
                del group.pending_offset_commits[tp]
            if error is E.NONE and group.state is not S.DEAD:
                position = log_offset + i
                if position > group.offset_positions.get(tp, -1):
                    group.offsets[tp] = value
                    group.offset_positions[tp] = position
        mapped = _commit_error(error)
        result = {tp: mapped for tp in pending.offsets}
        result.update(pending.errors)
        out = Outcome()
        out.complete(pending.waiter, CommitResult(result))
        return out

    # ------------------------------------------------------------ OffsetFetch

    def fetch_offsets(self: GroupCoordinator, group_id: str, partitions: list[TP] | None,
                      require_stable: bool = False
                      ) -> tuple[ErrorCode, dict[TP, FetchedOffset]]:
        """Committed offsets; -1 for partitions without one; all of them when
        `partitions` is None. `require_stable` matters only for transactional commits,
        which this coordinator does not keep pending, so it never blocks."""
        err = self._status_error(group_id, allow_empty_id=True)
        if err is not None:
            return err, {}
        group = self.groups.get(group_id)
        if group is None or group.state is S.DEAD:
            return E.NONE, {tp: FetchedOffset() for tp in partitions or []}
        if partitions is None:
            partitions = list(group.offsets)
        result = {}
        for tp in partitions:
            v = group.offsets.get(tp)
            result[tp] = FetchedOffset() if v is None else \
                FetchedOffset(v.offset, v.leader_epoch, v.metadata)
        return E.NONE, result

    # ------------------------------------------------------------ Describe/List

    def describe(self: GroupCoordinator, group_id: str) -> tuple[ErrorCode, GroupSummary]:
        err = self._status_error(group_id, allow_empty_id=True)
        if err is not None:
            return err, GroupSummary("", "", "")
        group = self.groups.get(group_id)
        if group is None:
            return E.NONE, GroupSummary(S.DEAD.value, "", "")
        stable = group.state is S.STABLE and group.protocol_name is not None
        members = [MemberSummary(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                 m.metadata(group.protocol_name) if stable else b"",
                                 m.assignment if stable else b"")
                   for m in group.members.values()]
        return E.NONE, GroupSummary(group.state.value, group.protocol_type or "",
                                    group.protocol_name if stable else "", members)

    def list_groups(self: GroupCoordinator, states: list[str] | None = None
                    ) -> tuple[ErrorCode, list[GroupOverview]]:
        if not self.active:
            return E.COORDINATOR_NOT_AVAILABLE, []
        err = E.COORDINATOR_LOAD_IN_PROGRESS if any(
            st.loading for st in self.partitions.values()) else E.NONE
        wanted = {s.lower() for s in states or []}
        return err, [GroupOverview(g.group_id, g.protocol_type or "", g.state.value)
                     for g in self.groups.values()
                     if not wanted or g.state.value.lower() in wanted]

    # ------------------------------------------------------------ deletion

    def delete_groups(self: GroupCoordinator, group_ids: list[str], now: int
                      ) -> tuple[dict[str, ErrorCode], Outcome]:
        out = Outcome()
        errors: dict[str, ErrorCode] = {}
        for gid in group_ids:
            err = self._status_error(gid, allow_empty_id=True)
            group = self.groups.get(gid) if err is None else None
            if err is None and (group is None or group.state is S.DEAD):
                err = E.GROUP_ID_NOT_FOUND
            if err is None and group is not None and group.state is not S.EMPTY:
                err = E.NON_EMPTY_GROUP
            if err is not None:
                errors[gid] = err
                continue
            assert group is not None
            group.transition(S.DEAD, now)
            removed = list(group.offsets)
            group.offsets.clear()
            group.offset_positions.clear()
            out.extend(self._cleanup(group, removed, now))
            errors[gid] = E.NONE
        return errors, out

    def delete_offsets(self: GroupCoordinator, group_id: str, partitions: list[TP], now: int
                       ) -> tuple[ErrorCode, dict[TP, ErrorCode], Outcome]:
        out = Outcome()
        err = self._status_error(group_id)
        if err is not None:
            return err, {}, out
        group = self.groups.get(group_id)
        if group is None or group.state is S.DEAD:
            return E.GROUP_ID_NOT_FOUND, {}, out
        errors: dict[TP, ErrorCode] = {}
        if group.state is S.EMPTY:
            eligible = list(partitions)
        elif group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            eligible = [tp for tp in partitions if not group.is_subscribed_to(tp[0])]
            errors.update({tp: E.GROUP_SUBSCRIBED_TO_TOPIC for tp in partitions
                           if group.is_subscribed_to(tp[0])})
        else:
            return E.NON_EMPTY_GROUP, {}, out
        removed = [tp for tp in eligible if tp in group.offsets]
        for tp in removed:
            del group.offsets[tp]
            group.offset_positions.pop(tp, None)
        errors.update({tp: E.NONE for tp in eligible})
        out.extend(self._cleanup(group, removed, now))
        return E.NONE, errors, out

    def _cleanup(self: GroupCoordinator, group: GroupMetadata, removed: list[TP], now: int
                 ) -> Outcome:
        """Tombstone removed offsets; an Empty group left without offsets dies."""
        out = Outcome()
        records: list[tuple[bytes, bytes | None]] = [
            (encode_offset_key(group.group_id, t, p), None) for t, p in removed]
        if group.state is S.EMPTY and not group.offsets and not group.pending_offset_commits:
            group.transition(S.DEAD, now)
        if group.state is S.DEAD and self.groups.get(group.group_id) is group:
            del self.groups[group.group_id]  # a later join or commit starts a fresh group
            if group.generation_id > 0:
                records.append((encode_group_key(group.group_id), None))
        if records:
            write_id = next(self._write_ids)
            self._writes[write_id] = PendingWrite("plain", group)
            out.appends.append(Append(write_id, self.partition_for(group.group_id), records))
        return out

    def remove_partitions(self: GroupCoordinator, partitions: list[TP], now: int) -> Outcome:
        """Forget (and tombstone) offsets of deleted topic partitions in every group, so a
        topic re-created under the same name starts without stale positions."""
        out = Outcome()
        gone = set(partitions)
        for group in list(self.groups.values()):
            removed = [tp for tp in group.offsets if tp in gone]
            for tp in removed:
                del group.offsets[tp]
                group.offset_positions.pop(tp, None)
            if removed:
                out.extend(self._cleanup(group, removed, now))
        return out

    def cleanup_expired_offsets(self: GroupCoordinator, now: int) -> Outcome:
        """KIP-211 retention: an Empty group's offsets expire `retention` after it became
        Empty; a Stable consumer group's only for topics it no longer subscribes to."""
        out = Outcome()
        retention = self.config.offsets_retention_ms
        for group in list(self.groups.values()):
            if group.protocol_type is not None and group.state is S.EMPTY:
                def base(v: OffsetValue, g: GroupMetadata = group) -> int:
                    return g.state_timestamp if g.state_timestamp >= 0 else v.commit_timestamp
                subscribed: frozenset[str] = frozenset()
            elif group.protocol_type == CONSUMER_PROTOCOL_TYPE and \
                    group.subscribed_topics is not None and group.state is S.STABLE:
                def base(v: OffsetValue, g: GroupMetadata = group) -> int:
                    return v.commit_timestamp
                subscribed = group.subscribed_topics
            elif group.protocol_type is None:
                def base(v: OffsetValue, g: GroupMetadata = group) -> int:
                    return v.commit_timestamp
                subscribed = frozenset()
            else:
                continue
            expired = [tp for tp, v in group.offsets.items()
                       if tp[0] not in subscribed and tp not in group.pending_offset_commits
                       and (now >= v.expire_timestamp if v.expire_timestamp is not None
                            else now - base(v) >= retention)]
            for tp in expired:
                del group.offsets[tp]
                group.offset_positions.pop(tp, None)
            out.extend(self._cleanup(group, expired, now))
        return out

    # ------------------------------------------------------------ partition ownership

    def on_elected(self: GroupCoordinator, partition: int, epoch: int) -> bool:
        """Start loading `partition` (True: the edge must read its log). False when `epoch`
        is older than one already seen, or when we already own or are loading the
        partition (a repeated LeaderAndIsr): its cache is current, only the epoch moves."""
        if epoch < self._epochs.get(partition, -1):
            return False
        self._epochs[partition] = epoch
        st = self.partitions.get(partition)
        if st is not None:
            if not st.loading:
                st.epoch = epoch
            return False
        self.partitions[partition] = PartitionStatus(epoch, loading=True)
        return True

    def complete_load(self: GroupCoordinator, partition: int, epoch: int,
                      loaded: LoadedPartition, now: int) -> Outcome:
        out = Outcome()
        st = self.partitions.get(partition)
        if st is None or st.epoch != epoch or not st.loading:
            return out  # resigned or re-elected while we were reading the log
        for gid in set(loaded.groups) | set(loaded.offsets):
            if self.partition_for(gid) != partition or gid in self.groups:
                continue
            value = loaded.groups.get(gid)
            group = GroupMetadata.from_value(gid, value, now) if value is not None \
                else GroupMetadata(gid, state_timestamp=now)
            group.offsets = dict(loaded.offsets.get(gid, {}))
            self.groups[gid] = group
            for m in group.members.values():
                self._heartbeat(group, m, now)
            if len(group.members) > self.config.max_size:
                out.extend(self._prepare_rebalance(group, now))
        st.loading = False
        return out

    def on_resigned(self: GroupCoordinator, partition: int, epoch: int | None) -> Outcome:
        """Stop coordinating `partition`: its groups die and parked callers learn
        NOT_COORDINATOR so they look the coordinator up again."""
        out = Outcome()
        if epoch is not None and epoch < self._epochs.get(partition, -1):
            return out
        if epoch is not None:
            self._epochs[partition] = epoch
        self.partitions.pop(partition, None)
        for gid in [g for g in self.groups if self.partition_for(g) == partition]:
            group = self.groups.pop(gid)
            for m in group.members.values():
                out.complete(group.take_join_waiter(m), JoinResult(E.NOT_COORDINATOR, m.member_id))
                out.complete(group.take_sync_waiter(m), SyncResult(E.NOT_COORDINATOR))
            group.state = S.DEAD
        return out
