"""GroupRuntime + group handlers against an in-memory offsets log (no sockets, no ZooKeeper).

Covers what the state-machine tests cannot: records really go through v2 batches into a
log, a new coordinator rebuilds the same state from that log, and a commit is answered
only after its append returns.
"""
from __future__ import annotations

from typing import Any

import pytest
import trio

from kafkapy import native
from kafkapy.cluster.metadata_cache import BrokerInfo, PartitionInfo
from kafkapy.coordinator.group.coordinator import partition_for
from kafkapy.coordinator.group.runtime import GroupRuntime
from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode as E
from kafkapy.protocol.messages.describe_groups import DescribeGroupsRequest
from kafkapy.protocol.messages.find_coordinator import FindCoordinatorRequest
from kafkapy.protocol.messages.join_group import JoinGroupRequest
from kafkapy.protocol.messages.offset_commit import OffsetCommitRequest
from kafkapy.protocol.messages.offset_fetch import OffsetFetchRequest
from kafkapy.protocol.messages.sync_group import SyncGroupRequest
from kafkapy.server.context import RequestContext
from kafkapy.server.handlers.group import HANDLERS

pytestmark = pytest.mark.unit
NPART = 3
OFFSETS = "__consumer_offsets"


class FakeConfig:
    def __init__(self, **over: Any) -> None:
        self.values = {"group.min.session.timeout.ms": 6000,
                       "group.max.session.timeout.ms": 1800000, "group.max.size": 1000,
                       "group.initial.rebalance.delay.ms": 0,
                       "offset.metadata.max.bytes": 4096,
                       "offsets.topic.num.partitions": NPART, "offsets.retention.minutes": 10080,
                       "offsets.commit.timeout.ms": 5000,
                       "offsets.retention.check.interval.ms": 600000,
                       "offsets.topic.compression.codec": 0,
                       "transaction.state.log.num.partitions": NPART, **over}

    def get(self, name: str) -> Any:
        return self.values[name]


class FakeLog:
    def __init__(self) -> None:
        self.batches: list[tuple[int, bytes]] = []
        self.log_start_offset = 0
        self.log_end_offset = 0

    def append(self, batch: bytes) -> int:
        buf = bytearray(batch)
        base = self.log_end_offset
        self.log_end_offset = native.assign_offsets(buf, base, 0)
        self.batches.append((base, bytes(buf)))
        return base

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_message: bool = True) -> Any:
        class Info:
            records = b"".join(b for base, b in self.batches if base >= offset)
        return Info()


class FakeReplicaManager:
    def __init__(self) -> None:
        self.logs: dict[TopicPartition, FakeLog] = {}
        self.gate: trio.Event | None = None
        self.error = E.NONE

    def local_log(self, tp: TopicPartition) -> FakeLog:
        return self.logs.setdefault(tp, FakeLog())

    async def append_records(self, tp_records: dict, acks: int, timeout_ms: int,
                             internal: bool = False) -> dict:
        assert acks == -1 and internal and timeout_ms == 5000
        if self.gate is not None:
            await self.gate.wait()

        class Resp:
            pass
        out = {}
        for tp, records in tp_records.items():
            r = Resp()
            r.error, r.base_offset = self.error, -1
            if self.error is E.NONE:
                r.base_offset = self.local_log(tp).append(bytes(records))
            out[tp] = r
        return out


class FakeMetadata:
    def __init__(self) -> None:
        self.broker = BrokerInfo(7, "broker7.example", 9092)
        self.parts = {p: PartitionInfo(7, 0, [7], [7], []) for p in range(NPART)}

    def partition_count(self, topic: str) -> int | None:
        return NPART if topic == OFFSETS else None

    def contains_topic(self, topic: str) -> bool:
        return topic == OFFSETS

    def get_partition(self, tp: TopicPartition) -> PartitionInfo | None:
        return PartitionInfo(7, 0, [7], [7], []) if tp.topic == "t" else None

    def leader_of(self, tp: TopicPartition) -> BrokerInfo | None:
        return self.broker if tp.topic == OFFSETS else None


class FakeServer:
    def __init__(self, rm: FakeReplicaManager | None = None, **config: Any) -> None:
        self.config = FakeConfig(**config)
        self.replica_manager = rm or FakeReplicaManager()
        self.metadata_cache = FakeMetadata()
        self.group_coordinator: GroupRuntime | None = None
        self.created: list[str] = []

    async def ensure_internal_topic(self, name: str) -> None:
        self.created.append(name)


async def call(server: FakeServer, key: ApiKey, version: int, req: Any) -> Any:
    ctx = RequestContext(int(key), version, 1, "cli", "127.0.0.1", server)
    return await HANDLERS[key](ctx, req)


async def start(nursery: trio.Nursery, server: FakeServer) -> GroupRuntime:
    rt = GroupRuntime(server)
    server.group_coordinator = rt
    await nursery.start(rt.run)
    for p in range(NPART):
        rt.on_elected(p, 1)
    while any(st.loading for st in rt.coordinator.partitions.values()):
        await trio.sleep(0.001)
    return rt


def join_req(member_id: str = "") -> JoinGroupRequest:
    return JoinGroupRequest(group_id="g", session_timeout_ms=10000, rebalance_timeout_ms=20000,
                            member_id=member_id, protocol_type="consumer",
                            protocols=[JoinGroupRequest.JoinGroupRequestProtocol(
                                name="range", metadata=b"\x00\x00\x00\x00\x00\x01\x00\x01t")])


def commit_req(member: str, gen: int, offset: int) -> OffsetCommitRequest:
    P = OffsetCommitRequest.OffsetCommitRequestPartition
    return OffsetCommitRequest(group_id="g", generation_id_or_member_epoch=gen, member_id=member,
                               topics=[OffsetCommitRequest.OffsetCommitRequestTopic(
                                   name="t", partitions=[P(partition_index=0,
                                                           committed_offset=offset,
                                                           committed_metadata="meta")])])


async def test_round_trip_and_reload_from_log() -> None:
    server = FakeServer()
    async with trio.open_nursery() as nursery:
        await start(nursery, server)
        fc = await call(server, ApiKey.FIND_COORDINATOR, 1, FindCoordinatorRequest(key="g"))
        assert (fc.error_code, fc.node_id, fc.host, fc.port) == (E.NONE, 7, "broker7.example",
                                                                 9092)
        r = await call(server, ApiKey.JOIN_GROUP, 5, join_req())
        assert r.error_code == E.MEMBER_ID_REQUIRED and r.member_id.startswith("cli-")
        r = await call(server, ApiKey.JOIN_GROUP, 5, join_req(r.member_id))
        assert r.error_code == E.NONE and r.generation_id == 1 and r.leader == r.member_id
        mid = r.member_id
        s = await call(server, ApiKey.SYNC_GROUP, 3, SyncGroupRequest(
            group_id="g", generation_id=1, member_id=mid, assignments=[
                SyncGroupRequest.SyncGroupRequestAssignment(member_id=mid, assignment=b"A")]))
        assert s.error_code == E.NONE and s.assignment == b"A"
        c = await call(server, ApiKey.OFFSET_COMMIT, 2, commit_req(mid, 1, 42))
        assert c.topics[0].partitions[0].error_code == E.NONE
        nursery.cancel_scope.cancel()

    # a new coordinator (failover) rebuilds the group and its offsets from the log alone,
    # also when that log mixes uncompressed and gzip batches
    server2 = FakeServer(server.replica_manager, **{"offsets.topic.compression.codec": 1})
    async with trio.open_nursery() as nursery:
        await start(nursery, server2)
        f = await call(server2, ApiKey.OFFSET_FETCH, 1, OffsetFetchRequest(
            group_id="g", topics=[OffsetFetchRequest.OffsetFetchRequestTopic(
                name="t", partition_indexes=[0, 1])]))
        parts = {p.partition_index: p for p in f.topics[0].partitions}
        assert parts[0].committed_offset == 42 and parts[0].metadata == "meta"
        assert parts[1].committed_offset == -1
        d = await call(server2, ApiKey.DESCRIBE_GROUPS, 1, DescribeGroupsRequest(groups=["g"]))
        g = d.groups[0]
        assert g.group_state == "Stable" and g.protocol_data == "range"
        assert [(m.member_id, m.member_assignment, m.client_host) for m in g.members] == \
            [(mid, b"A", "/127.0.0.1")]
        c = await call(server2, ApiKey.OFFSET_COMMIT, 2, commit_req(mid, 1, 43))
        assert c.topics[0].partitions[0].error_code == E.NONE
        nursery.cancel_scope.cancel()
    tp = TopicPartition(OFFSETS, partition_for("g", NPART))
    written = [t for t, lg in server.replica_manager.logs.items() if lg.batches]
    assert written == [tp]
    last_batch = server.replica_manager.logs[tp].batches[-1][1]
    assert native.scan_batches(last_batch).batches[0].compression == 1   # gzip

    server3 = FakeServer(server.replica_manager)
    async with trio.open_nursery() as nursery:
        rt3 = await start(nursery, server3)
        assert rt3.fetch_offsets("g", [("t", 0)])[1][("t", 0)].offset == 43
        nursery.cancel_scope.cancel()


async def test_commit_is_answered_only_after_the_append() -> None:
    rm = FakeReplicaManager()
    server = FakeServer(rm)
    async with trio.open_nursery() as nursery:
        rt = await start(nursery, server)
        rm.gate = trio.Event()
        answered: list[Any] = []

        async def commit() -> None:
            answered.append(await call(server, ApiKey.OFFSET_COMMIT, 2, commit_req("", -1, 5)))
        nursery.start_soon(commit)
        await trio.sleep(0.01)
        assert answered == []
        assert rt.fetch_offsets("g", [("t", 0)])[1][("t", 0)].offset == -1
        rm.error = E.NOT_LEADER_OR_FOLLOWER   # e.g. the leader moved during replication
        rm.gate.set()
        await trio.sleep(0.01)
        assert answered[0].topics[0].partitions[0].error_code == E.NOT_COORDINATOR
        assert rt.fetch_offsets("g", [("t", 0)])[1][("t", 0)].offset == -1
        nursery.cancel_scope.cancel()


async def test_not_coordinator_and_unknown_topic() -> None:
    server = FakeServer()
    async with trio.open_nursery() as nursery:
        rt = await start(nursery, server)
        rt.on_resigned(partition_for("g", NPART), 2)
        r = await call(server, ApiKey.JOIN_GROUP, 5, join_req())
        assert r.error_code == E.NOT_COORDINATOR
        req = commit_req("", -1, 1)
        req.topics[0].name = "nope"
        c = await call(server, ApiKey.OFFSET_COMMIT, 2, req)
        assert c.topics[0].partitions[0].error_code == E.UNKNOWN_TOPIC_OR_PARTITION
        fc = await call(server, ApiKey.FIND_COORDINATOR, 1,
                        FindCoordinatorRequest(key="tx", key_type=1))
        assert fc.error_code == E.COORDINATOR_NOT_AVAILABLE
        assert server.created == ["__transaction_state"]
        nursery.cancel_scope.cancel()


async def test_every_advertised_version_encodes() -> None:
    """Each group API answers at each version with a response its codec can write."""
    from kafkapy.protocol.api import ADVERTISED
    from kafkapy.protocol.messages.delete_groups import DeleteGroupsRequest
    from kafkapy.protocol.messages.heartbeat import HeartbeatRequest
    from kafkapy.protocol.messages.leave_group import LeaveGroupRequest
    from kafkapy.protocol.messages.list_groups import ListGroupsRequest
    from kafkapy.protocol.messages.offset_delete import OffsetDeleteRequest

    server = FakeServer()
    OD = OffsetDeleteRequest
    requests = {
        ApiKey.FIND_COORDINATOR: lambda: FindCoordinatorRequest(key="g", coordinator_keys=["g"]),
        ApiKey.JOIN_GROUP: lambda: join_req(),  # group id made unique per version below
        ApiKey.SYNC_GROUP: lambda: SyncGroupRequest(group_id="g", generation_id=1,
                                                    member_id="x"),
        ApiKey.HEARTBEAT: lambda: HeartbeatRequest(group_id="g", generation_id=1, member_id="x"),
        ApiKey.LEAVE_GROUP: lambda: LeaveGroupRequest(group_id="g", member_id="x", members=[
            LeaveGroupRequest.MemberIdentity(member_id="x")]),
        ApiKey.OFFSET_COMMIT: lambda: commit_req("", -1, 3),
        ApiKey.OFFSET_FETCH: lambda: OffsetFetchRequest(group_id="g", topics=None, groups=[
            OffsetFetchRequest.OffsetFetchRequestGroup(group_id="g", topics=None)]),
        ApiKey.DESCRIBE_GROUPS: lambda: DescribeGroupsRequest(groups=["g", "other"]),
        ApiKey.LIST_GROUPS: lambda: ListGroupsRequest(),
        ApiKey.DELETE_GROUPS: lambda: DeleteGroupsRequest(groups_names=["zzz"]),
        ApiKey.OFFSET_DELETE: lambda: OD(group_id="g", topics=[OD.OffsetDeleteRequestTopic(
            name="t", partitions=[OD.OffsetDeleteRequestPartition(partition_index=0)])]),
    }

    class Zk:
        async def set_consumer_offset(self, *a: Any) -> None:
            pass

        async def get_consumer_offset(self, *a: Any) -> int:
            return 11
    server.zk = Zk()  # type: ignore[attr-defined]
    async with trio.open_nursery() as nursery:
        await start(nursery, server)
        for key, make in requests.items():
            lo, hi = ADVERTISED[key]
            for v in range(lo, hi + 1):
                if key is ApiKey.OFFSET_FETCH and v == 0:
                    continue  # v0 needs explicit partitions (ZooKeeper path), below
                req = make()
                if key is ApiKey.JOIN_GROUP:
                    req.group_id = f"join-v{v}"  # one fresh group each: nobody must rejoin
                resp = await call(server, key, v, req)
                out: list = []
                resp.encode(v, out)
                decoded, _ = type(resp).decode(memoryview(b"".join(out)), 0, v)
                assert type(decoded) is type(resp)
        f = await call(server, ApiKey.OFFSET_FETCH, 0, OffsetFetchRequest(
            group_id="g", topics=[OffsetFetchRequest.OffsetFetchRequestTopic(
                name="t", partition_indexes=[0])]))
        assert f.topics[0].partitions[0].committed_offset == 11
        nursery.cancel_scope.cancel()


async def test_runtime_timers_expire_silent_members() -> None:
    """The timer task fires session and rebalance deadlines without any request arriving."""
    server = FakeServer(**{"group.min.session.timeout.ms": 10})
    async with trio.open_nursery() as nursery:
        rt = await start(nursery, server)
        protos = [("range", b"\x00\x00\x00\x00\x00\x01\x00\x01t")]

        async def join(member: str = "") -> Any:
            return await rt.join("g", member, None, False, False, "c", "/h", 150, 100,
                                 "consumer", protos)
        a = await join()
        assert a.generation_id == 1
        with trio.fail_after(5):
            b = await join()          # parks until the rebalance timeout drops silent `a`
        assert b.generation_id == 2 and [m[0] for m in b.members] == [b.member_id]
        assert rt.heartbeat("g", a.member_id, None, 1) is E.UNKNOWN_MEMBER_ID
        assert rt.describe("g")[1].state == "CompletingRebalance"
        with trio.fail_after(5):      # `b` never syncs or heartbeats: removed as well
            while rt.describe("g")[1].state != "Empty":
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()


async def test_offset_commit_and_fetch_v0_use_zookeeper_paths_as_kafka() -> None:
    """v0 stores offsets under /consumers (the znode store is a dict here) and never touches
    the group coordinator; a partition with nothing committed answers -1 with
    UNKNOWN_TOPIC_OR_PARTITION (Kafka's OffsetFetchResponse.UNKNOWN_PARTITION)."""
    class Zk:
        def __init__(self) -> None:
            self.nodes: dict[tuple[str, str, int], int] = {}
            self.broken = False

        async def set_consumer_offset(self, group: str, topic: str, partition: int,
                                      offset: int) -> None:
            if self.broken:
                raise RuntimeError("znode write failed")
            self.nodes[(group, topic, partition)] = offset

        async def get_consumer_offset(self, group: str, topic: str, partition: int
                                      ) -> int | None:
            if self.broken:
                raise ValueError("znode holds no number")
            return self.nodes.get((group, topic, partition))

    server = FakeServer()
    server.zk = zk = Zk()  # type: ignore[attr-defined]
    assert server.group_coordinator is None   # v0 must not need the coordinator
    C, F = OffsetCommitRequest, OffsetFetchRequest

    async def commit(topic: str, offset: int, metadata: str = "m") -> int:
        resp = await call(server, ApiKey.OFFSET_COMMIT, 0, C(group_id="old", topics=[
            C.OffsetCommitRequestTopic(name=topic, partitions=[C.OffsetCommitRequestPartition(
                partition_index=0, committed_offset=offset, committed_metadata=metadata)])]))
        return resp.topics[0].partitions[0].error_code

    async def fetch(topic: str) -> tuple[int, str, int]:
        resp = await call(server, ApiKey.OFFSET_FETCH, 0, F(group_id="old", topics=[
            F.OffsetFetchRequestTopic(name=topic, partition_indexes=[0])]))
        p = resp.topics[0].partitions[0]
        return p.committed_offset, p.metadata, p.error_code

    assert await fetch("t") == (-1, "", E.UNKNOWN_TOPIC_OR_PARTITION)
    assert await commit("t", 42) == E.NONE
    assert zk.nodes == {("old", "t", 0): 42}
    assert await fetch("t") == (42, "", E.NONE)              # v0 keeps no metadata
    assert await commit("nope", 1) == E.UNKNOWN_TOPIC_OR_PARTITION
    assert await fetch("nope") == (-1, "", E.UNKNOWN_TOPIC_OR_PARTITION)
    assert await commit("t", 43, "x" * 4097) == E.OFFSET_METADATA_TOO_LARGE
    assert zk.nodes == {("old", "t", 0): 42}
    zk.broken = True
    assert await commit("t", 44) == E.UNKNOWN_SERVER_ERROR
    assert await fetch("t") == (-1, "", E.UNKNOWN_SERVER_ERROR)
