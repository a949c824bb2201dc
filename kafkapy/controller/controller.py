"""KafkaController: the controller module every broker runs (the edge around the pure core).

`KafkaController(zk, broker_id, config=None)` — `zk` a started KafkaZkClient, `config` a
KafkaConfig (reads delete.topic.enable, unclean.leader.election.enable,
controller.socket.timeout.ms, auto.leader.rebalance.enable,
leader.imbalance.check.interval.seconds, leader.imbalance.per.broker.percentage and the
inter-broker listener name); None means Kafka's defaults. Run it with
`await nursery.start(controller.run)`; `await controller.shutdown()` stops it.

API for request handlers (each answers "not the controller" when inactive): `is_active`,
`epoch`, `active_controller_id`, `controlled_shutdown(broker_id, broker_epoch)`,
`alter_partition(request, version)`, `elect_leaders(election_type, partitions)`,
`alter_partition_reassignments(targets)`, `list_partition_reassignments()`.

One trio task reads one event queue fed by ZooKeeper watches (via `zk.add_event_channel`) and
by API calls; only it touches the context. It elects at startup and whenever `/controller`
vanishes; on winning it loads the context (§3.4), then feeds events to `decisions.on_event`
and applies the resulting actions: fenced ZooKeeper writes, then control requests through the
ControllerChannelManager. A rejected fence (ControllerMovedError) or a lost session resigns.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Awaitable, Callable

import attrs
import trio

from kafkapy.controller import decisions
from kafkapy.controller import elect_leaders as EL
from kafkapy.controller import events as E
from kafkapy.controller import legacy_reassign, reassignment
from kafkapy.controller import zk_reads
from kafkapy.controller import requests as R
from kafkapy.controller.alter_partition_edge import process_alter_partition
from kafkapy.controller.actions import (Action, AddBrokerChannel, ControlRequest,
                                        CreatePartitionStates, DeleteIsrChangeNotifications,
                                        DeleteTopicZNodes, DeleteZNode, RemoveBrokerChannel,
                                        SetTopicAssignment, UpdatePartitionStates)
from kafkapy.controller.channel import ControllerChannelManager
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.rebalance import imbalanced_partitions
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition import AlterPartitionRequest, AlterPartitionResponse
from kafkapy.zk import paths
from kafkapy.zk import events as zev
from kafkapy.zk.client import KafkaZkClient

log = logging.getLogger(__name__)

MAX_WRITE_RETRIES = 3


@attrs.define(slots=True, eq=False)
class _ApiCall:
    """An API request served by the event task: `handler(ctx)` runs only while active;
    otherwise (or if the controller resigns meanwhile) the caller gets `result = default`."""

    handler: Callable[[ControllerContext], Awaitable[Any]]
    result: Any
    done: trio.Event = attrs.field(factory=trio.Event)


@attrs.frozen(slots=True)
class _RebalanceTick:
    pass


def _conf(config: Any, name: str, default: Any) -> Any:
    if config is None:
        return default
    try:
        return config.get(name)
    except KeyError:
        return default


class KafkaController:
    def __init__(self, zk: KafkaZkClient, broker_id: int, config: Any = None) -> None:
        self.zk = zk
        self.broker_id = broker_id
        self.delete_topic_enable = bool(_conf(config, "delete.topic.enable", True))
        self.unclean_election = bool(_conf(config, "unclean.leader.election.enable", False))
        self.request_timeout_s = _conf(config, "controller.socket.timeout.ms", 30000) / 1000
        self.auto_rebalance = bool(_conf(config, "auto.leader.rebalance.enable", True))
        self.rebalance_interval_s = float(_conf(config, "leader.imbalance.check.interval.seconds", 300))
        self.imbalance_percentage = int(_conf(config, "leader.imbalance.per.broker.percentage", 10))
        self.listener = getattr(config, "inter_broker_listener_name", None) or "PLAINTEXT"
        self.ctx: ControllerContext | None = None
        self.active_controller_id = -1
        self._send, self._recv = trio.open_memory_channel[Any](math.inf)
        self._nursery: trio.Nursery | None = None
        self._channels: ControllerChannelManager | None = None
        self._active_scope: trio.CancelScope | None = None
        self._running = False

    # --- public API ------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.ctx is not None

    @property
    def epoch(self) -> int:
        return self.ctx.epoch if self.ctx is not None else -1

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.zk.add_event_channel(self._send)
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._send.send_nowait(E.Startup())
                task_status.started()
                async for event in self._recv:
                    await self._process(event)
        finally:
            self._running = False
            self.zk.remove_event_channel(self._send)
            self._resign("controller module stopped")

    async def shutdown(self) -> None:
        """Stop acting as controller and end the event loop (broker shutdown)."""
        self._resign("broker shutting down")
        self._send.close()

    async def _call(self, handler: Callable[[ControllerContext], Awaitable[Any]],
                    default: Any) -> Any:
        if not self._running:
            return default
        call = _ApiCall(handler, default)
        try:
            self._send.send_nowait(call)
        except trio.ClosedResourceError:
            return default
        await call.done.wait()
        return call.result

    async def controlled_shutdown(self, broker_id: int, broker_epoch: int) -> tuple[int, list[TopicPartition]]:
        """ControlledShutdown API: (error_code, partitions the broker still leads)."""
        async def handle(ctx: ControllerContext) -> tuple[int, list[TopicPartition]]:
            code = decisions.controlled_shutdown_error(ctx, broker_id, broker_epoch)
            if code == ErrorCode.NONE:
                await self._apply(decisions.on_event(ctx, E.ControlledShutdown(broker_id, broker_epoch)))
                if self.ctx is not ctx:
                    return int(ErrorCode.NOT_CONTROLLER), []
            remaining = decisions.remaining_partitions(ctx, broker_id) if code == ErrorCode.NONE else []
            log.info("controlled shutdown of broker %d: %s, still leading %s", broker_id,
                     code.name, [str(tp) for tp in remaining])
            return int(code), remaining
        return await self._call(handle, (int(ErrorCode.NOT_CONTROLLER), []))

    async def alter_partition(self, request: AlterPartitionRequest, version: int) -> AlterPartitionResponse:
        """AlterPartition API (key 56): validate, write the ISR conditionally, answer with
        the stored state and new partition epoch; UpdateMetadata to all brokers; a grown
        ISR may complete a reassignment."""
        async def handle(ctx: ControllerContext) -> AlterPartitionResponse:
            response, actions = await process_alter_partition(ctx, self.zk, request, version)
            await self._apply(actions)
            if self.ctx is ctx:
                await self._apply(decisions.on_event(ctx, E.ReassignmentCheck(tuple(
                    tp for tp in ctx.all_partitions() if reassignment.is_reassigning(ctx, tp)))))
            return response
        return await self._call(handle, AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER))

    async def elect_leaders(self, election_type: int, partitions: list[TopicPartition] | None
                            ) -> dict[TopicPartition, ErrorCode] | None:
        """ElectLeaders API (key 43): 0 = preferred, 1 = unclean; `partitions` None = all.
        Per-partition error codes (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
        ELIGIBLE_LEADERS_NOT_AVAILABLE, ...), or None if this broker is not the controller."""
        async def handle(ctx: ControllerContext) -> dict[TopicPartition, ErrorCode] | None:
            tps = partitions if partitions is not None else ctx.all_partitions()
            results, todo = EL.precheck(ctx, election_type, tps)
            if todo:
                event: object = (E.PreferredReplicaElection(tuple(todo))
                                 if election_type == EL.PREFERRED else E.UncleanElection(tuple(todo)))
                await self._apply(decisions.on_event(ctx, event))
                if self.ctx is not ctx:
                    return None
                results.update(EL.outcome(ctx, election_type, todo))
            return results
        return await self._call(handle, None)

    async def alter_partition_reassignments(
            self, targets: dict[TopicPartition, list[int] | None]) -> dict[TopicPartition, ErrorCode] | None:
        """AlterPartitionReassignments API (key 45): target replicas per partition, None to
        cancel. Per-partition error codes, or None if this broker is not the controller."""
        async def handle(ctx: ControllerContext) -> dict[TopicPartition, ErrorCode]:
            errors, accepted = reassignment.validate(ctx, targets)
            if accepted:
                await self._apply(decisions.on_event(ctx, E.Reassign(accepted)))
            return {**{tp: ErrorCode.NONE for tp in accepted}, **errors}
        return await self._call(handle, None)

    async def list_partition_reassignments(
            self) -> dict[TopicPartition, tuple[list[int], list[int], list[int]]] | None:
        """ListPartitionReassignments API (key 46): tp -> (replicas, adding, removing)."""
        async def handle(ctx: ControllerContext) -> dict[TopicPartition, tuple[list[int], list[int], list[int]]]:
            return reassignment.in_progress(ctx)
        return await self._call(handle, None)

    def enqueue(self, event: object) -> None:
        """Queue an event (e.g. PreferredReplicaElection from ElectLeaders)."""
        self._send.send_nowait(event)

    # --- event loop ------------------------------------------------------------------

    async def _process(self, event: object) -> None:
        try:
            if isinstance(event, (E.Startup, E.Reelect)):
                if isinstance(event, E.Reelect):
                    self._maybe_resign(-1)
                await self._elect()
            elif isinstance(event, E.ControllerChange):
                await self._refresh_controller_id()
            elif isinstance(event, E.Expire):
                self._resign("ZooKeeper session expired")
            elif isinstance(event, zev.ZkWatchEvent):
                await self._on_watch(event)
            elif isinstance(event, zev.ZkSessionEvent):
                await self._on_session(event)
            elif isinstance(event, _ApiCall):
                if self.ctx is not None:
                    event.result = await event.handler(self.ctx)
            elif isinstance(event, _RebalanceTick):
                await self._rebalance()
            elif self.ctx is not None:
                await self._apply(decisions.on_event(self.ctx, event))
        except zev.ControllerMovedError as exc:
            self._resign(f"controller moved ({exc})")
            await self._refresh_controller_id()
        except zev.ZkClientClosedError:
            self._resign("ZooKeeper client closed")
        except Exception:
            # the context may now disagree with ZooKeeper: give up and let a fresh election
            # (possibly of this broker again) reload everything, as Kafka does on failures
            log.exception("controller failed while handling %s", type(event).__name__)
            ctx = self.ctx
            self._resign("unexpected error")
            if ctx is not None:
                try:
                    await self.zk.delete_controller_node(ctx.epoch_zk_version)
                except Exception:
                    log.exception("could not delete /controller after the error")
        finally:
            if isinstance(event, _ApiCall) and not event.done.is_set():
                event.done.set()

    async def _on_session(self, event: zev.ZkSessionEvent) -> None:
        if event.state == zev.LOST:
            await self._process(E.Expire())
        elif event.state == zev.CONNECTED:
            # kazoo dropped every watch on disconnect: re-read to re-arm them
            if self.ctx is None:
                await self._elect()
            else:
                await self._refresh_all()

    async def _on_watch(self, event: zev.ZkWatchEvent) -> None:
        path = event.path
        if path == paths.CONTROLLER:
            await self._process(E.Reelect() if event.kind == zev.DELETED else E.ControllerChange())
            return
        if self.ctx is None:
            return
        if path == paths.BROKER_IDS:
            await self._broker_change()
        elif path.startswith(paths.BROKER_IDS + "/"):
            broker_id = int(path.rsplit("/", 1)[1])
            reg = await self.zk.get_broker(broker_id, watch=True)
            if reg is not None and broker_id in self.ctx.live_brokers:
                if reg.epoch != self.ctx.broker_epoch(broker_id):
                    await self._broker_change()
                else:
                    await self._apply(decisions.on_event(self.ctx, E.BrokerModification(broker_id, reg)))
        elif path == paths.BROKER_TOPICS:
            await self._topic_change()
        elif path.startswith(paths.BROKER_TOPICS + "/") and path.count("/") == 3:
            topic = path.rsplit("/", 1)[1]
            assignment = await self.zk.get_topic_assignment(topic, watch=True)
            if assignment is not None and topic in self.ctx.topics:
                await self._apply(decisions.on_event(
                    self.ctx, E.PartitionModifications(topic, assignment)))
        elif path == paths.DELETE_TOPICS:
            await self._topic_deletion()
        elif path == paths.ISR_CHANGE_NOTIFICATION:
            await self._isr_changes()
        elif path == paths.PREFERRED_REPLICA_ELECTION:
            await self._preferred_from_zk()
        elif path == paths.REASSIGN_PARTITIONS:
            await self._legacy_reassignment()

    # --- election and failover --------------------------------------------------------

    async def _refresh_controller_id(self) -> None:
        current = await self.zk.get_controller_id(watch=True)
        self._maybe_resign(current)
        self.active_controller_id = current
        if current == -1 and self.ctx is None:
            await self._elect()

    def _maybe_resign(self, current: int) -> None:
        if self.ctx is not None and current != self.broker_id:
            self._resign(f"/controller now names broker {current}")

    async def _elect(self) -> None:
        if self.ctx is not None:
            return
        result = await self.zk.elect_controller(self.broker_id)
        self.active_controller_id = result.controller_id
        if not result.won:
            log.info("broker %d: controller is broker %d", self.broker_id, result.controller_id)
            return
        log.info("broker %d elected controller, epoch %d (epoch zkVersion %d)", self.broker_id,
                 result.epoch, result.epoch_zk_version)
        try:
            await self._failover(result.epoch, result.epoch_zk_version)
        except zev.ControllerMovedError:
            raise
        except Exception:
            log.exception("controller failover failed; giving up controllership")
            self._resign("failover error")
            try:
                await self.zk.delete_controller_node(result.epoch_zk_version)
            except Exception:
                log.exception("could not delete /controller after the failed failover")

    async def _failover(self, epoch: int, epoch_zk_version: int) -> None:
        assert self._nursery is not None
        ctx = ControllerContext(self.broker_id, epoch, epoch_zk_version,
                                default_unclean_election=self.unclean_election,
                                delete_topic_enable=self.delete_topic_enable)
        self._channels = ControllerChannelManager(self.broker_id, self._nursery,
                                                  self._on_control_response, self.listener,
                                                  self.request_timeout_s)
        ctx.live_brokers = await zk_reads.read_brokers(self.zk)
        for reg in ctx.live_brokers.values():
            self._channels.add_broker(reg)
        await zk_reads.load_topics(self.zk, ctx)
        self.ctx = ctx
        self._active_scope = trio.CancelScope()
        await self._apply(decisions.on_event(ctx, E.Failover()))
        await self._topic_deletion()
        await self._isr_changes()
        await self._preferred_from_zk()
        await self._legacy_reassignment()
        if self.auto_rebalance:
            self._nursery.start_soon(self._rebalance_timer, self._active_scope)

    def _resign(self, why: str) -> None:
        """Stop acting at once: drop the context, the send queues and timers (also cleans up
        after a failover that failed before the context was installed)."""
        if self.ctx is not None:
            log.warning("broker %d resigns as controller (epoch %d): %s", self.broker_id,
                        self.ctx.epoch, why)
        self.ctx = None
        if self._channels is not None:
            self._channels.shutdown()
            self._channels = None
        if self._active_scope is not None:
            self._active_scope.cancel()
            self._active_scope = None

    async def _refresh_all(self) -> None:
        await self._refresh_controller_id()
        if self.ctx is None:
            return
        await self._broker_change()
        await self._topic_change()
        await self._topic_deletion()
        await self._isr_changes()
        await self._preferred_from_zk()
        await self._legacy_reassignment()

    # --- ZooKeeper reads that feed the pure core ---------------------------------------

    async def _broker_change(self) -> None:
        assert self.ctx is not None
        await self._apply(decisions.on_event(self.ctx, await zk_reads.broker_change(self.zk, self.ctx)))

    async def _topic_change(self) -> None:
        assert self.ctx is not None
        await self._apply(decisions.on_event(self.ctx, await zk_reads.topic_change(self.zk, self.ctx)))

    async def _topic_deletion(self) -> None:
        assert self.ctx is not None
        event = await zk_reads.topic_deletion(self.zk)
        if event.topics or self.ctx.topics_to_delete:
            await self._apply(decisions.on_event(self.ctx, event))

    async def _isr_changes(self) -> None:
        assert self.ctx is not None
        event = await zk_reads.isr_changes(self.zk)
        if event is not None:
            await self._apply(decisions.on_event(self.ctx, event))

    async def _legacy_reassignment(self) -> None:
        assert self.ctx is not None
        event = await legacy_reassign.read_request(self.zk, self.ctx)
        if event is not None:
            await self._apply(decisions.on_event(self.ctx, event))

    async def _preferred_from_zk(self) -> None:
        assert self.ctx is not None
        event = await zk_reads.preferred_election(self.zk)
        if event is not None:
            await self._apply(decisions.on_event(self.ctx, event))

    # --- API events ----------------------------------------------------------------

    async def _rebalance_timer(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(5)
            while True:
                try:
                    self._send.send_nowait(_RebalanceTick())
                except trio.ClosedResourceError:
                    return
                await trio.sleep(self.rebalance_interval_s)

    async def _rebalance(self) -> None:
        if self.ctx is None:
            return
        todo = imbalanced_partitions(self.ctx, self.imbalance_percentage)
        if todo:
            await self._apply(decisions.on_event(self.ctx, E.PreferredReplicaElection(tuple(todo))))

    def _on_control_response(self, broker_id: int, request: R.ControlRequestData, response: Any) -> None:
        """StopReplica(delete=true) answers drive topic deletion (runs in a pipe task)."""
        if not isinstance(request, R.StopReplicaData):
            return
        sent = [TopicPartition(t, p) for t, p in R.request_partitions(request)]
        top = getattr(response, "error_code", 0)
        errors = {TopicPartition(e.topic_name, e.partition_index): e.error_code
                  for e in getattr(response, "partition_errors", [])}
        ok = tuple(tp for tp in sent if not top and not errors.get(tp, 0))
        failed = tuple(tp for tp in sent if tp not in ok)
        try:
            self._send.send_nowait(E.ReplicaDeletionResult(broker_id, ok, failed))
        except trio.ClosedResourceError:
            pass

    # --- applying actions --------------------------------------------------------------

    async def _apply(self, actions: list[Action], attempt: int = 0) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        v = ctx.epoch_zk_version
        rejected: set[tuple[str, int]] = set()
        for action in actions:
            if self.ctx is not ctx:
                return  # resigned meanwhile
            if isinstance(action, (CreatePartitionStates, UpdatePartitionStates)):
                states = {(tp.topic, tp.partition): s for tp, s in action.states.items()}
                if isinstance(action, CreatePartitionStates):
                    results = await self.zk.create_partition_states(v, states)
                else:
                    results = await self.zk.update_partition_states(v, states)
                for key, result in results.items():
                    if not result.ok:
                        log.warning("state write for %s-%d rejected (%s)", key[0], key[1], result.error)
                        rejected.add(key)
            elif isinstance(action, SetTopicAssignment):
                await self.zk.set_topic_assignment(action.topic, action.assignment, v)
            elif isinstance(action, DeleteTopicZNodes):
                await self.zk.delete_topic_znodes(action.topic, v)
            elif isinstance(action, DeleteZNode):
                await self.zk.fenced_multi(v, [zev.DeleteOp(action.path)])
            elif isinstance(action, DeleteIsrChangeNotifications):
                await self.zk.delete_isr_change_notifications(action.names, v)
            elif isinstance(action, AddBrokerChannel):
                assert self._channels is not None
                self._channels.add_broker(action.registration)
            elif isinstance(action, RemoveBrokerChannel):
                assert self._channels is not None
                self._channels.remove_broker(action.broker_id)
            elif isinstance(action, ControlRequest):
                assert self._channels is not None
                request = R.without_partitions(action.request, rejected) if rejected else action.request
                if request is not None:
                    self._channels.send(action.broker_id, request, action.report)
        if rejected:
            await self._retry_rejected(ctx, rejected, attempt)
        if ctx.zk_reassignments and self.ctx is ctx:
            await legacy_reassign.prune(self.zk, ctx)

    async def _retry_rejected(self, ctx: ControllerContext, rejected: set[tuple[str, int]],
                              attempt: int) -> None:
        """BADVERSION/NODEEXISTS: reload those states from ZooKeeper and elect again."""
        fresh = await self.zk.get_partition_states(sorted(rejected))
        for t, p in rejected:
            tp = TopicPartition(t, p)
            if (t, p) in fresh:
                ctx.states[tp] = fresh[(t, p)]
            else:
                ctx.states.pop(tp, None)
        if attempt >= MAX_WRITE_RETRIES:
            log.error("giving up on state writes for %s after %d retries", sorted(rejected), attempt)
            return
        tps = tuple(TopicPartition(t, p) for t, p in sorted(rejected))
        await self._apply(decisions.on_event(ctx, E.RetryElection(tps)), attempt + 1)
