"""KafkaZkClient: Kafka's ZooKeeper operations (KafkaZkClient/AdminZkClient in Kafka).

Construct with `KafkaZkClient(connect, session_timeout_ms=18000, connection_timeout_ms=None)`
(`connect` is `zookeeper.connect`, optionally with a chroot), then `await start()`: connects,
creates the chroot and Kafka's top-level paths. Register watch consumers with
`add_event_channel(send)`; every read called with `watch=True` re-arms a one-shot watch whose
firing arrives there as a `ZkWatchEvent`, and session changes arrive as `ZkSessionEvent`.

Write disciplines follow Kafka exactly (architecture reference §1, §3.1-3.2): checked
ephemeral registration, election by multi-op, controller writes fenced by the
`/controller_epoch` zkVersion (failure -> ControllerMovedError), conditional partition-state
writes. Topic/config/producer-id/offset helpers live in `kafkapy.zk.admin` as a mixin.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import attrs
import trio
from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError,
                              RolledBackError, RuntimeInconsistency)
from kazoo.protocol.states import ZnodeStat

from kafkapy.zk import data, paths
from kafkapy.zk import events as ev
from kafkapy.zk.admin import AdminOpsMixin
from kafkapy.zk.session import ZkSession

log = logging.getLogger(__name__)


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, NodeExistsError):
        return ev.NODEEXISTS
    if isinstance(exc, NoNodeError):
        return ev.NONODE
    if isinstance(exc, BadVersionError):
        return ev.BADVERSION
    if isinstance(exc, NotEmptyError):
        return ev.NOTEMPTY
    if isinstance(exc, (RolledBackError, RuntimeInconsistency)):
        return ev.ROLLEDBACK
    return ev.OTHER


def _add_op(txn: TransactionRequest, op: ev.ZkOp) -> None:
    if isinstance(op, ev.CreateOp):
        txn.create(op.path, op.data, ephemeral=op.ephemeral, sequence=op.sequential)
    elif isinstance(op, ev.SetDataOp):
        txn.set_data(op.path, op.data, version=op.version)
    elif isinstance(op, ev.DeleteOp):
        txn.delete(op.path, version=op.version)
    else:
        txn.check(op.path, op.version)


def _op_result(op: ev.ZkOp, raw: Any) -> ev.OpResult:
    if isinstance(raw, BaseException):
        return ev.OpResult(error=_error_name(raw))
    if isinstance(op, ev.SetDataOp) and isinstance(raw, ZnodeStat):
        return ev.OpResult(version=raw.version)
    if isinstance(op, ev.CreateOp):
        return ev.OpResult(version=0, path=str(raw))
    return ev.OpResult()


@attrs.frozen(slots=True)
class ElectionResult:
    """`won` with `epoch`/`epoch_zk_version` for the new controller; otherwise
    `controller_id` is the current winner (-1 if `/controller` vanished meanwhile)."""

    won: bool
    controller_id: int
    epoch: int = -1
    epoch_zk_version: int = -1


class KafkaZkClient(AdminOpsMixin):
    def __init__(self, connect: str, session_timeout_ms: int = 18000,
                 connection_timeout_ms: int | None = None) -> None:
        self.session = ZkSession(connect, session_timeout_ms, connection_timeout_ms)

    # --- life cycle and plumbing -------------------------------------------------------

    async def start(self) -> None:
        await self.session.start()
        await self.session.call(self._ensure_paths)

    def _ensure_paths(self) -> None:
        for path in paths.PERSISTENT_ZK_PATHS:
            try:
                self.kazoo.ensure_path(path)
            except NodeExistsError:
                pass

    async def close(self) -> None:
        await self.session.close()

    @property
    def kazoo(self) -> KazooClient:
        if self.session.client is None:
            raise ev.ZkClientClosedError("ZooKeeper client is not started")
        return self.session.client

    @property
    def session_id(self) -> int | None:
        return self.session.session_id

    def add_event_channel(self, send: trio.MemorySendChannel[Any]) -> None:
        self.session.add_event_channel(send)

    def remove_event_channel(self, send: trio.MemorySendChannel[Any]) -> None:
        self.session.remove_event_channel(send)

    def _watch(self, watch: bool) -> Any:
        return self.session.watcher if watch else None

    # --- generic reads/writes -----------------------------------------------------------

    async def get_data(self, path: str, watch: bool = False) -> tuple[bytes, ZnodeStat] | None:
        """Data and stat, or None when absent. With `watch`, a missing node is watched for
        creation (exists watch) and an existing one for change/deletion."""
        def run() -> tuple[bytes, ZnodeStat] | None:
            try:
                value, stat = self.kazoo.get(path, watch=self._watch(watch))
                return (value or b""), stat
            except NoNodeError:
                if watch and self.kazoo.exists(path, watch=self.session.watcher) is not None:
                    value, stat = self.kazoo.get(path, watch=self.session.watcher)
                    return (value or b""), stat
                return None
        return await self.session.call(run)

    async def get_children(self, path: str, watch: bool = False) -> list[str]:
        """Children names (sorted), [] when the node is absent."""
        def run() -> list[str]:
            try:
                return sorted(self.kazoo.get_children(path, watch=self._watch(watch)))
            except NoNodeError:
                if watch:
                    self.kazoo.exists(path, watch=self.session.watcher)
                return []
        return await self.session.call(run)

    async def exists(self, path: str, watch: bool = False) -> ZnodeStat | None:
        return await self.session.call(self.kazoo.exists, path, watch=self._watch(watch))

    async def multi(self, ops: list[ev.ZkOp]) -> list[ev.OpResult]:
        """One atomic multi-op; on failure the failing op carries its error, the rest ROLLEDBACK."""
        def run() -> list[ev.OpResult]:
            txn = self.kazoo.transaction()
            for op in ops:
                _add_op(txn, op)
            raw = txn.commit()
            return [_op_result(op, r) for op, r in zip(ops, raw)]
        return await self.session.call(run)

    async def create(self, path: str, value: bytes = b"", *, ephemeral: bool = False,
                     sequential: bool = False, make_parents: bool = True) -> str:
        return await self.session.call(self.kazoo.create, path, value, ephemeral=ephemeral,
                                       sequence=sequential, makepath=make_parents)

    async def set_or_create(self, path: str, value: bytes) -> None:
        """setData, creating the node (and parents) when missing, as Kafka's setOrCreate."""
        def run() -> None:
            try:
                self.kazoo.set(path, value)
            except NoNodeError:
                try:
                    self.kazoo.create(path, value, makepath=True)
                except NodeExistsError:
                    self.kazoo.set(path, value)
        await self.session.call(run)

    async def delete(self, path: str, version: int = -1, recursive: bool = False) -> bool:
        """True if deleted, False if it was already gone."""
        def run() -> bool:
            try:
                self.kazoo.delete(path, version=version, recursive=recursive)
                return True
            except NoNodeError:
                return False
        return await self.session.call(run)

    # --- cluster id and broker registration --------------------------------------------

    async def get_or_create_cluster_id(self, proposed: str | None = None) -> str:
        """Read `/cluster/id`; create it with a fresh (or `proposed`) id if absent."""
        found = await self.get_data(paths.CLUSTER_ID)
        if found is not None:
            return data.decode_cluster_id(found[0])
        cluster_id = proposed or data.uuid_to_str(data.random_uuid())
        try:
            await self.create(paths.CLUSTER_ID, data.encode_cluster_id(cluster_id))
            return cluster_id
        except NodeExistsError:
            again = await self.get_data(paths.CLUSTER_ID)
            assert again is not None
            return data.decode_cluster_id(again[0])

    async def register_broker(self, registration: data.BrokerRegistration,
                              wait_for_stale_ms: int | None = None) -> int:
        """Checked ephemeral create of `/brokers/ids/<id>`; returns the broker epoch (czxid).

        A node left by one of *our* earlier sessions is deleted and recreated. A node held by
        another session is waited on for up to `wait_for_stale_ms` (default: the session
        timeout, within which a crashed predecessor's session expires; 0 = fail at once, as
        Kafka does) and then BrokerAlreadyRegisteredError."""
        path = paths.broker_path(registration.broker_id)
        payload = registration.encode()
        wait_ms = self.session.session_timeout_ms if wait_for_stale_ms is None else wait_for_stale_ms
        deadline = trio.current_time() + wait_ms / 1000.0
        while True:
            epoch = await self._try_register(path, payload)
            if epoch is not None:
                log.info("registered broker %d at %s, broker epoch %d",
                         registration.broker_id, path, epoch)
                return epoch
            if trio.current_time() >= deadline:
                raise ev.BrokerAlreadyRegisteredError(
                    f"broker id {registration.broker_id} already registered at {path} "
                    "by another live ZooKeeper session")
            await trio.sleep(0.2)

    async def _try_register(self, path: str, payload: bytes) -> int | None:
        results = await self.multi([ev.CreateOp(path, b"", ephemeral=True),
                                    ev.SetDataOp(path, payload, 0)])
        if results[0].ok:
            stat = await self.exists(path)
            if stat is not None:
                return int(stat.czxid)
            return None
        if results[0].error != ev.NODEEXISTS:
            raise ev.ZkClientError(f"registering {path} failed: {results[0].error}")
        stat = await self.exists(path)
        if stat is None:
            return await self._try_register(path, payload)
        if stat.ephemeralOwner == self.session_id:
            # our own node from this session (a retried request already created it)
            await self.session.call(self.kazoo.set, path, payload)
            return int(stat.czxid)
        if stat.ephemeralOwner in self.session.previous_session_ids:
            log.info("deleting %s left by our expired session 0x%x", path, stat.ephemeralOwner)
            await self.delete(path, version=stat.version)
            return await self._try_register(path, payload)
        return None

    async def get_broker(self, broker_id: int, watch: bool = False) -> data.BrokerRegistration | None:
        found = await self.get_data(paths.broker_path(broker_id), watch=watch)
        if found is None:
            return None
        return data.BrokerRegistration.decode(broker_id, found[0], epoch=found[1].czxid)

    async def get_all_broker_ids(self, watch: bool = False) -> list[int]:
        return sorted(int(c) for c in await self.get_children(paths.BROKER_IDS, watch=watch))

    async def get_all_brokers(self) -> dict[int, data.BrokerRegistration]:
        """Live brokers with their epochs (czxid)."""
        result: dict[int, data.BrokerRegistration] = {}
        for broker_id in await self.get_all_broker_ids():
            reg = await self.get_broker(broker_id)
            if reg is not None:
                result[broker_id] = reg
        return result

    # --- controller election and fencing ---------------------------------------------

    async def get_controller_id(self, watch: bool = False) -> int:
        """Current controller's broker id, -1 if none. `watch` arms an exists/data watch."""
        found = await self.get_data(paths.CONTROLLER, watch=watch)
        return data.ControllerInfo.decode(found[0]).broker_id if found else -1

    async def get_controller_epoch(self) -> tuple[int, int] | None:
        """(epoch, zkVersion) of `/controller_epoch`, None if it was never created."""
        found = await self.get_data(paths.CONTROLLER_EPOCH)
        return (data.decode_controller_epoch(found[0]), found[1].version) if found else None

    async def elect_controller(self, broker_id: int) -> ElectionResult:
        """Kafka's elect(): watch `/controller`; if empty, atomically create it and bump
        `/controller_epoch` conditionally. Handles a lost response by re-reading."""
        current = await self.get_controller_id(watch=True)
        if current != -1:
            return ElectionResult(False, current)
        epoch_info = await self.get_controller_epoch()
        if epoch_info is None:
            try:
                await self.create(paths.CONTROLLER_EPOCH, data.encode_controller_epoch(0))
            except NodeExistsError:
                pass
            epoch_info = await self.get_controller_epoch()
            assert epoch_info is not None
        epoch, version = epoch_info
        new_epoch = epoch + 1
        results = await self.multi([
            ev.CreateOp(paths.CONTROLLER, data.ControllerInfo(broker_id).encode(), ephemeral=True),
            ev.SetDataOp(paths.CONTROLLER_EPOCH, data.encode_controller_epoch(new_epoch), version),
        ])
        if all(r.ok for r in results):
            return ElectionResult(True, broker_id, new_epoch, results[1].version)
        found = await self.get_data(paths.CONTROLLER, watch=True)
        epoch_now = await self.get_controller_epoch()
        if found is None:
            return ElectionResult(False, -1)
        winner = data.ControllerInfo.decode(found[0]).broker_id
        if (winner == broker_id and found[1].ephemeralOwner == self.session_id
                and epoch_now is not None and epoch_now[0] == new_epoch):
            return ElectionResult(True, broker_id, new_epoch, epoch_now[1])
        return ElectionResult(False, winner)

    async def fenced_multi(self, epoch_zk_version: int, ops: list[ev.ZkOp]) -> list[ev.OpResult]:
        """`[check(/controller_epoch, v), *ops]` atomically; the check failing raises
        ControllerMovedError. Returns the results of `ops` (all fail together)."""
        results = await self.multi([ev.CheckOp(paths.CONTROLLER_EPOCH, epoch_zk_version), *ops])
        if results[0].error in (ev.BADVERSION, ev.NONODE):
            raise ev.ControllerMovedError(
                f"/controller_epoch zkVersion is no longer {epoch_zk_version}")
        return results[1:]

    async def fenced_each(self, epoch_zk_version: int, ops: Iterable[ev.ZkOp]) -> list[ev.OpResult]:
        """Each op in its own fenced multi (so one BADVERSION does not fail the rest), issued
        together and awaited together as Kafka's pipelined async requests."""
        op_list = list(ops)

        def run() -> list[list[Any]]:
            pending = []
            for op in op_list:
                txn = self.kazoo.transaction()
                txn.check(paths.CONTROLLER_EPOCH, epoch_zk_version)
                _add_op(txn, op)
                pending.append(txn.commit_async())
            return [p.get() for p in pending]

        raw = await self.session.call(run) if op_list else []
        out: list[ev.OpResult] = []
        for op, res in zip(op_list, raw):
            if isinstance(res[0], (BadVersionError, NoNodeError)):
                raise ev.ControllerMovedError(
                    f"/controller_epoch zkVersion is no longer {epoch_zk_version}")
            out.append(_op_result(op, res[1]))
        return out

    async def delete_controller_node(self, epoch_zk_version: int) -> None:
        """Give up controllership after a failed failover (fenced delete of `/controller`)."""
        try:
            await self.fenced_multi(epoch_zk_version, [ev.DeleteOp(paths.CONTROLLER)])
        except ev.ControllerMovedError:
            pass

    # --- partition states --------------------------------------------------------------

    async def get_partition_states(
            self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], data.PartitionState]:
        """States (with zk_version) of those partitions that have a state node."""
        wanted = list(partitions)

        def run() -> list[Any]:
            pending = [self.kazoo.get_async(paths.partition_state_path(t, p)) for t, p in wanted]
            out = []
            for p in pending:
                try:
                    out.append(p.get())
                except NoNodeError:
                    out.append(None)
            return out

        raw = await self.session.call(run) if wanted else []
        return {tp: data.PartitionState.decode(r[0], zk_version=r[1].version)
                for tp, r in zip(wanted, raw) if r is not None}

    async def create_partition_states(
            self, epoch_zk_version: int,
            states: dict[tuple[str, int], data.PartitionState]) -> dict[tuple[str, int], ev.OpResult]:
        """Fenced create of `.../partitions/<p>/state` (parents made unfenced, as Kafka).
        A partition whose topic node is gone gets a NONODE result."""
        def parents() -> set[tuple[str, int]]:
            missing: set[tuple[str, int]] = set()
            for t, p in states:
                for path in (paths.topic_partitions_path(t), paths.topic_partition_path(t, p)):
                    try:
                        self.kazoo.create(path, b"")
                    except NodeExistsError:
                        pass
                    except NoNodeError:
                        missing.add((t, p))
                        break
            return missing
        missing = await self.session.call(parents)
        tps = [tp for tp in states if tp not in missing]
        results = await self.fenced_each(epoch_zk_version, [
            ev.CreateOp(paths.partition_state_path(t, p), states[(t, p)].encode()) for t, p in tps])
        out = dict(zip(tps, results))
        out.update({tp: ev.OpResult(error=ev.NONODE) for tp in missing})
        return out

    async def update_partition_states(
            self, epoch_zk_version: int,
            states: dict[tuple[str, int], data.PartitionState]) -> dict[tuple[str, int], ev.OpResult]:
        """Fenced setData of each state conditional on its `zk_version` (expected version)."""
        tps = list(states)
        results = await self.fenced_each(epoch_zk_version, [
            ev.SetDataOp(paths.partition_state_path(t, p), states[(t, p)].encode(),
                         states[(t, p)].zk_version) for t, p in tps])
        return dict(zip(tps, results))

    async def conditional_update_partition_state(
            self, topic: str, partition: int, state: data.PartitionState,
            expected_version: int) -> tuple[bool, int]:
        """Leader-side ISR write (pre-AlterPartition path): setData with expected version.
        On BADVERSION it succeeds only if the stored data already equals ours (Kafka's
        checker); returns (updated, zk_version)."""
        path = paths.partition_state_path(topic, partition)
        results = await self.multi([ev.SetDataOp(path, state.encode(), expected_version)])
        if results[0].ok:
            return True, results[0].version
        found = await self.get_data(path)
        if found is not None and results[0].error == ev.BADVERSION:
            stored = data.PartitionState.decode(found[0], zk_version=found[1].version)
            ours = attrs.evolve(state, zk_version=stored.zk_version)
            if stored == ours:
                return True, stored.zk_version
            return False, stored.zk_version
        return False, -1
