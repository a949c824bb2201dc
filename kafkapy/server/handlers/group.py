"""Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.

Thin translation between wire messages and `server.group_coordinator` (GroupRuntime);
version quirks live here, decisions in the coordinator. OffsetCommit/OffsetFetch v0 keep
offsets in ZooKeeper, as a ZooKeeper-mode Kafka broker does for those versions.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from kafkapy.coordinator.group.coordinator import partition_for
from kafkapy.coordinator.group.records import OffsetValue
from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.delete_groups import DeleteGroupsRequest, DeleteGroupsResponse
from kafkapy.protocol.messages.describe_groups import (
    DescribeGroupsRequest, DescribeGroupsResponse)
from kafkapy.protocol.messages.find_coordinator import (
    FindCoordinatorRequest, FindCoordinatorResponse)
from kafkapy.protocol.messages.heartbeat import HeartbeatRequest, HeartbeatResponse
from kafkapy.protocol.messages.join_group import JoinGroupRequest, JoinGroupResponse
from kafkapy.protocol.messages.leave_group import LeaveGroupRequest, LeaveGroupResponse
from kafkapy.protocol.messages.list_groups import ListGroupsRequest, ListGroupsResponse
from kafkapy.protocol.messages.offset_commit import OffsetCommitRequest, OffsetCommitResponse
from kafkapy.protocol.messages.offset_delete import OffsetDeleteRequest, OffsetDeleteResponse
from kafkapy.protocol.messages.offset_fetch import OffsetFetchRequest, OffsetFetchResponse
from kafkapy.protocol.messages.sync_group import SyncGroupRequest, SyncGroupResponse
from kafkapy.server.context import RequestContext

E = ErrorCode
log = logging.getLogger(__name__)
OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_TOPIC = "__transaction_state"
# READ | DELETE | DESCRIBE: what anyone may do to a group without an authorizer
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)


def _client_host(ctx: RequestContext) -> str:
    """Kafka shows InetAddress.toString(), i.e. "/1.2.3.4"."""
    host = ctx.client_host or ""
    return host if host.startswith("/") else "/" + host


# ---------------------------------------------------------------- FindCoordinator


async def _find_one(ctx: RequestContext, key: str, key_type: int
                    ) -> tuple[ErrorCode, int, str, int]:
    server = ctx.server
    if key_type == 0:
        topic = OFFSETS_TOPIC
        count = server.metadata_cache.partition_count(topic) or \
            server.config.get("offsets.topic.num.partitions")
    elif key_type == 1:
        topic = TRANSACTION_TOPIC
        count = server.metadata_cache.partition_count(topic) or \
            server.config.get("transaction.state.log.num.partitions")
    else:
        return E.INVALID_REQUEST, -1, "", -1
    if not server.metadata_cache.contains_topic(topic):
        try:
            await server.ensure_internal_topic(topic)
        except KafkaError:
            pass
        return E.COORDINATOR_NOT_AVAILABLE, -1, "", -1
    leader = server.metadata_cache.leader_of(TopicPartition(topic, partition_for(key, count)))
    if leader is None:
        return E.COORDINATOR_NOT_AVAILABLE, -1, "", -1
    return E.NONE, leader.id, leader.host, leader.port


async def handle_find_coordinator(ctx: RequestContext, req: FindCoordinatorRequest
                                  ) -> FindCoordinatorResponse:
    if ctx.api_version >= 4:
        coordinators = []
        for key in req.coordinator_keys:
            err, node, host, port = await _find_one(ctx, key, req.key_type)
            coordinators.append(FindCoordinatorResponse.Coordinator(
                key=key, node_id=node, host=host, port=port, error_code=err,
                error_message=None if err is E.NONE else err.name))
        return FindCoordinatorResponse(throttle_time_ms=0, coordinators=coordinators)
    err, node, host, port = await _find_one(ctx, req.key, req.key_type)
    return FindCoordinatorResponse(throttle_time_ms=0, error_code=err,
                                   error_message=None if err is E.NONE else err.name,
                                   node_id=node, host=host, port=port)


# ---------------------------------------------------------------- membership


async def handle_join_group(ctx: RequestContext, req: JoinGroupRequest) -> JoinGroupResponse:
    v = ctx.api_version
    res = await ctx.server.group_coordinator.join(
        req.group_id, req.member_id, req.group_instance_id if v >= 5 else None,
        v >= 4, v >= 9, ctx.client_id or "", _client_host(ctx),
        req.rebalance_timeout_ms if v >= 1 else -1, req.session_timeout_ms,
        req.protocol_type, [(p.name, bytes(p.metadata)) for p in req.protocols])
    protocol_name = res.protocol_name if v >= 7 else (res.protocol_name or "")
    return JoinGroupResponse(
        throttle_time_ms=0, error_code=res.error, generation_id=res.generation_id,
        protocol_type=res.protocol_type, protocol_name=protocol_name, leader=res.leader_id,
        skip_assignment=res.skip_assignment, member_id=res.member_id,
        members=[JoinGroupResponse.JoinGroupResponseMember(
            member_id=mid, group_instance_id=iid, metadata=meta)
            for mid, iid, meta in res.members])


async def handle_sync_group(ctx: RequestContext, req: SyncGroupRequest) -> SyncGroupResponse:
    v = ctx.api_version
    res = await ctx.server.group_coordinator.sync(
        req.group_id, req.generation_id, req.member_id,
        req.protocol_type if v >= 5 else None, req.protocol_name if v >= 5 else None,
        req.group_instance_id if v >= 3 else None,
        {a.member_id: bytes(a.assignment) for a in req.assignments})
    return SyncGroupResponse(throttle_time_ms=0, error_code=res.error,
                             protocol_type=res.protocol_type, protocol_name=res.protocol_name,
                             assignment=res.assignment)


async def handle_heartbeat(ctx: RequestContext, req: HeartbeatRequest) -> HeartbeatResponse:
    err = ctx.server.group_coordinator.heartbeat(
        req.group_id, req.member_id,
        req.group_instance_id if ctx.api_version >= 3 else None, req.generation_id)
    return HeartbeatResponse(throttle_time_ms=0, error_code=err)


async def handle_leave_group(ctx: RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse:
    if ctx.api_version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in req.members]
    else:
        members = [(req.member_id, None)]
    err, per_member = ctx.server.group_coordinator.leave(req.group_id, members)
    if ctx.api_version < 3:
        if err is E.NONE:
            err = next((e for e in per_member if e is not E.NONE), E.NONE)
        return LeaveGroupResponse(throttle_time_ms=0, error_code=err)
    return LeaveGroupResponse(throttle_time_ms=0, error_code=err, members=[
        LeaveGroupResponse.MemberResponse(member_id=mid, group_instance_id=iid, error_code=e)
        for (mid, iid), e in zip(members, per_member)])


# ---------------------------------------------------------------- offsets


def _partition_exists(ctx: RequestContext, topic: str, partition: int) -> bool:
    return ctx.server.metadata_cache.get_partition(TopicPartition(topic, partition)) is not None


async def handle_offset_commit(ctx: RequestContext, req: OffsetCommitRequest
                               ) -> OffsetCommitResponse:
    v = ctx.api_version
    now = int(time.time() * 1000)
    errors: dict[tuple[str, int], ErrorCode] = {}
    offsets: dict[tuple[str, int], OffsetValue] = {}
    retention = req.retention_time_ms if 2 <= v <= 4 else -1
    max_metadata = ctx.server.config.get("offset.metadata.max.bytes")
    for topic in req.topics:
        for p in topic.partitions:
            tp = (topic.name, p.partition_index)
            metadata = p.committed_metadata or ""
            if not _partition_exists(ctx, topic.name, p.partition_index):
                errors[tp] = E.UNKNOWN_TOPIC_OR_PARTITION
            elif v == 0:
                errors[tp] = await _zk_commit(ctx, req.group_id, tp, p.committed_offset,
                                              metadata, max_metadata)
            else:
                commit_ts = p.commit_timestamp if v == 1 and p.commit_timestamp != -1 else now
                offsets[tp] = OffsetValue(
                    p.committed_offset, p.committed_leader_epoch if v >= 6 else -1, metadata,
                    commit_ts, now + retention if retention != -1 else None)
    if offsets:
        previous = _committed_now(ctx, req.group_id, offsets)
        res = await ctx.server.group_coordinator.commit_offsets(
            req.group_id, req.member_id if v >= 1 else "",
            req.group_instance_id if v >= 7 else None,
            req.generation_id_or_member_epoch if v >= 1 else -1, offsets)
        errors.update(res.errors)
        _audit_commit(ctx, req.group_id, req.member_id if v >= 1 else "", offsets, errors,
                      previous)
    topics: dict[str, list] = {}
    for topic in req.topics:
        parts = topics.setdefault(topic.name, [])
        for p in topic.partitions:
            parts.append(OffsetCommitResponse.OffsetCommitResponsePartition(
                partition_index=p.partition_index,
                error_code=errors.get((topic.name, p.partition_index), E.NONE)))
    return OffsetCommitResponse(throttle_time_ms=0, topics=[
        OffsetCommitResponse.OffsetCommitResponseTopic(name=name, partitions=parts)
        for name, parts in topics.items()])


def _committed_now(ctx: RequestContext, group_id: str, offsets: dict[tuple[str, int], Any]
                   ) -> dict[tuple[str, int], int | None]:
    """Offsets committed before this request (for the commit audit's backwards check)."""
    group = ctx.server.group_coordinator.coordinator.groups.get(group_id)
    if group is None:
        return {}
    return {tp: (group.offsets[tp].offset if tp in group.offsets else None) for tp in offsets}


def _audit_commit(ctx: RequestContext, group_id: str, member_id: str,
                  offsets: dict[tuple[str, int], Any], errors: dict[tuple[str, int], ErrorCode],
                  previous: dict[tuple[str, int], int | None]) -> None:
    audit = getattr(ctx.server, "audit", None)
    if audit is None:
        return
    done = {tp: v.offset for tp, v in offsets.items() if errors.get(tp, E.NONE) == E.NONE}
    if not done:
        return
    group = ctx.server.group_coordinator.coordinator.groups.get(group_id)
    members = [(m.client_id, m.client_host) for m in group.members.values()] if group else []
    audit.on_commit(group_id, member_id, ctx.client_id or "", _client_host(ctx), done,
                    previous, members)


async def _zk_commit(ctx: RequestContext, group: str, tp: tuple[str, int], offset: int,
                     metadata: str, max_metadata: int) -> ErrorCode:
    if len(metadata.encode("utf-16-le")) // 2 > max_metadata:
        return E.OFFSET_METADATA_TOO_LARGE
    try:
        await ctx.server.zk.set_consumer_offset(group, tp[0], tp[1], offset)
    except KafkaError as e:
        return e.code
    except Exception:  # Kafka answers any failure of the write with its error code
        log.exception("OffsetCommit v0: writing the offset of %s for group %s failed", tp, group)
        return E.UNKNOWN_SERVER_ERROR
    return E.NONE


def _fetch_partitions(topics: list | None) -> list[tuple[str, int]] | None:
    if topics is None:
        return None
    return [(t.name, p) for t in topics for p in t.partition_indexes]


def _fetch_topics(result: dict[tuple[str, int], Any], topic_cls: Any, part_cls: Any,
                  error: ErrorCode | None = None) -> list:
    by_topic: dict[str, list] = {}
    for (topic, partition), off in result.items():
        by_topic.setdefault(topic, []).append(part_cls(
            partition_index=partition, committed_offset=off.offset,
            committed_leader_epoch=off.leader_epoch, metadata=off.metadata,
            error_code=off.error if error is None else error))
    return [topic_cls(name=name, partitions=parts) for name, parts in by_topic.items()]


async def handle_offset_fetch(ctx: RequestContext, req: OffsetFetchRequest
                              ) -> OffsetFetchResponse:
    v = ctx.api_version
    gc = ctx.server.group_coordinator
    R = OffsetFetchResponse
    if v >= 8:
        groups = []
        for g in req.groups:
            err, result = gc.fetch_offsets(g.group_id, _fetch_partitions(g.topics),
                                           req.require_stable)
            groups.append(R.OffsetFetchResponseGroup(
                group_id=g.group_id, error_code=err,
                topics=_fetch_topics(result, R.OffsetFetchResponseTopics,
                                     R.OffsetFetchResponsePartitions)))
        return R(throttle_time_ms=0, groups=groups)
    wanted = _fetch_partitions(req.topics)
    if v == 0:
        result = await _zk_fetch(ctx, req.group_id, wanted or [])
        return R(throttle_time_ms=0, topics=_fetch_topics(
            result, R.OffsetFetchResponseTopic, R.OffsetFetchResponsePartition))
    err, result = gc.fetch_offsets(req.group_id, wanted, v >= 7 and req.require_stable)
    if err is not E.NONE:
        from kafkapy.coordinator.group.results import FetchedOffset
        if v < 2:  # no top-level error field: every partition carries it
            result = {tp: FetchedOffset(error=err) for tp in wanted or []}
        else:
            result = {}
    return R(throttle_time_ms=0, error_code=err, topics=_fetch_topics(
        result, R.OffsetFetchResponseTopic, R.OffsetFetchResponsePartition))


async def _zk_fetch(ctx: RequestContext, group: str, wanted: list[tuple[str, int]]
                    ) -> dict[tuple[str, int], Any]:
    """OffsetFetch v0 reads /consumers/<group>/offsets/<topic>/<partition>. As in Kafka, a
    partition without that znode (nothing committed) answers offset -1 with
    UNKNOWN_TOPIC_OR_PARTITION, exactly like a partition that does not exist."""
    from kafkapy.coordinator.group.results import FetchedOffset

    out: dict[tuple[str, int], Any] = {}
    for topic, partition in wanted:
        if not _partition_exists(ctx, topic, partition):
            out[(topic, partition)] = FetchedOffset(error=E.UNKNOWN_TOPIC_OR_PARTITION)
            continue
        try:
            found = await ctx.server.zk.get_consumer_offset(group, topic, partition)
        except KafkaError as e:
            out[(topic, partition)] = FetchedOffset(error=e.code)
            continue
        except Exception:  # unreadable znode (not a number) or a ZooKeeper failure
            log.exception("OffsetFetch v0: reading the offset of %s-%d for group %s failed",
                          topic, partition, group)
            out[(topic, partition)] = FetchedOffset(error=E.UNKNOWN_SERVER_ERROR)
            continue
        out[(topic, partition)] = FetchedOffset(error=E.UNKNOWN_TOPIC_OR_PARTITION) \
            if found is None else FetchedOffset(found)
    return out


async def handle_offset_delete(ctx: RequestContext, req: OffsetDeleteRequest
                               ) -> OffsetDeleteResponse:
    R = OffsetDeleteResponse
    unknown: dict[tuple[str, int], ErrorCode] = {}
    wanted: list[tuple[str, int]] = []
    for t in req.topics:
        for p in t.partitions:
            tp = (t.name, p.partition_index)
            if _partition_exists(ctx, *tp):
                wanted.append(tp)
            else:
                unknown[tp] = E.UNKNOWN_TOPIC_OR_PARTITION
    err, per_tp = ctx.server.group_coordinator.delete_offsets(req.group_id, wanted)
    if err is not E.NONE:
        return R(error_code=err, throttle_time_ms=0, topics=[])
    per_tp.update(unknown)
    topics: dict[str, list] = {}
    for t in req.topics:
        for p in t.partitions:
            topics.setdefault(t.name, []).append(R.OffsetDeleteResponsePartition(
                partition_index=p.partition_index,
                error_code=per_tp.get((t.name, p.partition_index), E.NONE)))
    return R(error_code=E.NONE, throttle_time_ms=0, topics=[
        R.OffsetDeleteResponseTopic(name=name, partitions=parts)
        for name, parts in topics.items()])


# ---------------------------------------------------------------- admin


async def handle_describe_groups(ctx: RequestContext, req: DescribeGroupsRequest
                                 ) -> DescribeGroupsResponse:
    R = DescribeGroupsResponse
    groups = []
    for gid in req.groups:
        err, s = ctx.server.group_coordinator.describe(gid)
        groups.append(R.DescribedGroup(
            error_code=err, group_id=gid, group_state=s.state, protocol_type=s.protocol_type,
            protocol_data=s.protocol,
            members=[R.DescribedGroupMember(
                member_id=m.member_id, group_instance_id=m.group_instance_id,
                client_id=m.client_id, client_host=m.client_host,
                member_metadata=m.metadata, member_assignment=m.assignment)
                for m in s.members],
            authorized_operations=GROUP_AUTHORIZED_OPERATIONS
            if req.include_authorized_operations else -2147483648))
    return R(throttle_time_ms=0, groups=groups)


async def handle_list_groups(ctx: RequestContext, req: ListGroupsRequest) -> ListGroupsResponse:
    v = ctx.api_version
    types = {t.lower() for t in req.types_filter} if v >= 5 else set()
    err, overviews = ctx.server.group_coordinator.list_groups(
        list(req.states_filter) if v >= 4 else None)
    if types and "classic" not in types:
        overviews = []
    return ListGroupsResponse(throttle_time_ms=0, error_code=err, groups=[
        ListGroupsResponse.ListedGroup(group_id=o.group_id, protocol_type=o.protocol_type,
                                       group_state=o.state, group_type="classic")
        for o in overviews])


async def handle_delete_groups(ctx: RequestContext, req: DeleteGroupsRequest
                               ) -> DeleteGroupsResponse:
    errors = ctx.server.group_coordinator.delete_groups(list(req.groups_names))
    return DeleteGroupsResponse(throttle_time_ms=0, results=[
        DeleteGroupsResponse.DeletableGroupResult(group_id=g, error_code=e)
        for g, e in errors.items()])


HANDLERS = {
    ApiKey.FIND_COORDINATOR: handle_find_coordinator,
    ApiKey.JOIN_GROUP: handle_join_group,
    ApiKey.SYNC_GROUP: handle_sync_group,
    ApiKey.HEARTBEAT: handle_heartbeat,
    ApiKey.LEAVE_GROUP: handle_leave_group,
    ApiKey.OFFSET_COMMIT: handle_offset_commit,
    ApiKey.OFFSET_FETCH: handle_offset_fetch,
    ApiKey.OFFSET_DELETE: handle_offset_delete,
    ApiKey.DESCRIBE_GROUPS: handle_describe_groups,
    ApiKey.LIST_GROUPS: handle_list_groups,
    ApiKey.DELETE_GROUPS: handle_delete_groups,
}
