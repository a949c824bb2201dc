"""KafkaServer: the broker's life cycle (Kafka's KafkaServer.startup/shutdown, ZooKeeper mode).

Startup follows Kafka's order: ZooKeeper session and cluster id, log recovery, metadata
cache, socket server, broker registration (the registration's czxid is the broker epoch),
controller election, coordinators, then serving. Shutdown asks the controller to move
leadership away first (controlled shutdown), then stops serving, flushes and checkpoints the
logs (clean-shutdown marker) and only then closes the ZooKeeper session.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
from typing import Any, Callable

import trio

from kafkapy.cluster.metadata_cache import MetadataCache
from kafkapy.cluster.replica_manager import ReplicaManager
from kafkapy.config.broker import KafkaConfig
from kafkapy.coordinator.transaction.producer_id_manager import ProducerIdManager
from kafkapy.log import LogConfig, LogManager
from kafkapy.log.cleaner import CleanerConfig
from kafkapy.log.manager import LogDirError
from kafkapy.network.server import SocketServer
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.server.admin_manager import AdminManager
from kafkapy.server.apis import KafkaApis
from kafkapy.server.dynamic_config import DynamicConfigManager
from kafkapy.server.lifecycle import (
    controlled_shutdown,
    generate_broker_id,
    log_manager_from_config,
    resolve_broker_id,
)
from kafkapy.zk.client import KafkaZkClient
from kafkapy.zk.data import BrokerRegistration, EndPoint
from kafkapy.zk.events import BrokerAlreadyRegisteredError, ZkSessionEvent
from kafkapy.zk.session import unbounded_event_channel

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_TOPIC = "__transaction_state"


class KafkaServer:
    """One kafkapy broker. `run()` serves until cancelled, then shuts down cleanly."""

    def __init__(self, config: KafkaConfig) -> None:
        self.static_config = config
        self.config = config
        self.broker_id: int = config.broker_id
        self.cluster_id: str = ""
        self.broker_epoch: int = -1
        # Set once registered in ZooKeeper (broker_epoch known); control requests wait for it.
        self.registered = trio.Event()
        self.zk: KafkaZkClient | None = None
        self.controller: Any = None
        self.log_manager: LogManager | None = None
        self.metadata_cache = MetadataCache(broker_id=self.broker_id)
        self.replica_manager: ReplicaManager | None = None
        self.group_coordinator: Any = None
        self.audit: Any = None  # commit audit (kafkapy/server/fetch_tracker.py)
        self.audit_nursery: Any = None
        self.producer_id_manager: ProducerIdManager | None = None
        self.admin = AdminManager(self)
        self.dynamic_config: DynamicConfigManager | None = None
        self.socket_server: SocketServer | None = None
        self.bound_port: int = -1
        self._metadata_changed = trio.Event()
        self._stopping = False
        self._shutdown_requested = trio.Event()

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        async with trio.open_nursery() as nursery:
            self.zk = KafkaZkClient(cfg.zookeeper_connect,
                                    session_timeout_ms=cfg.zookeeper_session_timeout_ms,
                                    connection_timeout_ms=cfg.zookeeper_connection_timeout_ms)
            await self.zk.start()
            try:
                await self._startup(nursery)
                task_status.started(self.bound_port)
                log.info("[KafkaServer id=%d] started (cluster %s, epoch %d) on port %d",
                         self.broker_id, self.cluster_id, self.broker_epoch, self.bound_port)
                # Shut down while the listener and the controller still run: controlled
                # shutdown talks to the controller over the wire, possibly this very broker.
                await self._shutdown_requested.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await self._shutdown()
                nursery.cancel_scope.cancel()

    async def _startup(self, nursery: trio.Nursery) -> None:
        cfg = self.config
        zk = self.zk
        self.cluster_id = await zk.get_or_create_cluster_id()
        broker_id = resolve_broker_id(cfg)
        if broker_id is None:
            broker_id = await generate_broker_id(zk, cfg.get("reserved.broker.max.id"))
        self.broker_id = broker_id
        if cfg.broker_id != broker_id:
            self.static_config = self.static_config.with_broker_id(broker_id)
        self.log_manager = log_manager_from_config(cfg, broker_id, self.cluster_id)
        self.log_manager.enable_cleaner(CleanerConfig.from_broker(cfg))
        self.config = cfg = self.static_config.with_dynamic(
            await zk.get_entity_config("brokers", "<default>"),
            await zk.get_entity_config("brokers", str(broker_id)))
        self.metadata_cache.broker_id = self.broker_id
        self.replica_manager = ReplicaManager(self.broker_id, self.log_manager,
                                              self.metadata_cache, self.log_config_for)
        self.replica_manager.configure_replication(cfg, lambda: self.broker_epoch)
        await nursery.start(self.replica_manager.run)
        self.producer_id_manager = ProducerIdManager(self.broker_id,
                                                     zk.allocate_producer_id_block)
        from kafkapy.coordinator.group.runtime import GroupRuntime

        self.group_coordinator = GroupRuntime(self)
        from kafkapy.server.fetch_tracker import AuditService

        self.audit = AuditService(self)
        self.replica_manager.role_listeners.append(self._on_role_change)
        apis = KafkaApis(self)
        listener = cfg.listeners[0]
        self.socket_server = SocketServer(listener.host or "0.0.0.0", listener.port, apis.handle,
                                          max_request_size=cfg.get("socket.request.max.bytes"),
                                          idle_timeout_ms=cfg.get("connections.max.idle.ms"))
        self.bound_port = await nursery.start(self.socket_server.run)
        registration = self._registration()
        self.broker_epoch = await zk.register_broker(registration)
        self.registered.set()
        self.log_manager.broker_epoch = self.broker_epoch
        log.info("registered broker %d at %s (broker epoch %d)", self.broker_id,
                 registration.endpoints, self.broker_epoch)
        from kafkapy.controller.controller import KafkaController

        self.controller = KafkaController(zk, self.broker_id, cfg)
        await nursery.start(self.controller.run)
        nursery.start_soon(self._reregister_on_new_session)
        self.dynamic_config = DynamicConfigManager(self)
        await nursery.start(self.dynamic_config.run)
        await nursery.start(self.group_coordinator.run)
        await nursery.start(self.audit.run)
        nursery.start_soon(self.log_manager.run)

    async def _reregister_on_new_session(self) -> None:
        """After a session expiry our ephemeral registration is gone: register again.

        The new registration's czxid is a new broker epoch, so the controller sees a bounced
        broker and control requests meant for the old incarnation are refused.
        """
        send, receive = unbounded_event_channel()
        self.zk.add_event_channel(send)
        try:
            async for event in receive:
                if isinstance(event, ZkSessionEvent) and event.state == "CONNECTED" \
                        and event.new_session:
                    self.broker_epoch = await self.zk.register_broker(self._registration())
                    log.warning("ZooKeeper session expired; re-registered broker %d with "
                                "broker epoch %d", self.broker_id, self.broker_epoch)
        finally:
            self.zk.remove_event_channel(send)

    def _registration(self) -> BrokerRegistration:
        endpoints = []
        for ep in self.config.advertised_listeners:
            host = ep.host or socket.getfqdn()
            port = ep.port or self.bound_port
            endpoints.append(EndPoint(ep.listener_name, host, port, ep.security_protocol))
        return BrokerRegistration(broker_id=self.broker_id, endpoints=endpoints,
                                  rack=self.config.get("broker.rack"))

    async def _shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("[KafkaServer id=%d] shutting down", self.broker_id)
        if self.zk is not None and self.broker_epoch >= 0 and self.config.get(
                "controlled.shutdown.enable"):
            await controlled_shutdown(self)
        if self.socket_server is not None:
            await self.socket_server.aclose()
        if self.controller is not None:
            await self.controller.shutdown()
        if self.replica_manager is not None:
            self.replica_manager.shutdown()
        if self.log_manager is not None:
            self.log_manager.shutdown()
        if self.zk is not None:
            await self.zk.close()
        log.info("[KafkaServer id=%d] shut down completed", self.broker_id)

    def request_shutdown(self) -> None:
        """Begin an orderly shutdown (what SIGTERM does); `run()` returns when it is done."""
        self._shutdown_requested.set()

    # --- services used by handlers --------------------------------------------------------------

    async def log_config_for(self, topic: str) -> LogConfig:
        from kafkapy.config.topic import effective_topic_props

        overrides = await self.zk.get_entity_config("topics", topic)
        return LogConfig.from_props(effective_topic_props(self.config, overrides))

    def on_metadata_updated(self, deleted: list) -> None:
        if deleted and self.group_coordinator is not None:
            self.group_coordinator.on_partitions_deleted(deleted)
        self._metadata_changed.set()
        self._metadata_changed = trio.Event()

    async def wait_for_metadata(self, predicate: Callable[[MetadataCache], bool],
                                timeout_ms: int) -> bool:
        """Wait until the metadata cache satisfies `predicate` or the timeout passes."""
        with trio.move_on_after(max(timeout_ms, 0) / 1000):
            while not predicate(self.metadata_cache):
                await self._metadata_changed.wait()
            return True
        return predicate(self.metadata_cache)

    async def auto_create_topic(self, name: str) -> None:
        await self.admin.create_topic(name, -1, -1, None, {})

    async def ensure_internal_topic(self, name: str) -> None:
        """Create `__consumer_offsets` / `__transaction_state` with Kafka's settings."""
        if self.metadata_cache.contains_topic(name):
            return
        cfg = self.config
        if name == OFFSETS_TOPIC:
            partitions = cfg.get("offsets.topic.num.partitions")
            rf = cfg.get("offsets.topic.replication.factor")
            configs = {"cleanup.policy": "compact", "compression.type": "producer",
                       "segment.bytes": str(cfg.get("offsets.topic.segment.bytes"))}
        elif name == TRANSACTION_TOPIC:
            partitions = cfg.get("transaction.state.log.num.partitions")
            rf = cfg.get("transaction.state.log.replication.factor")
            configs = {"cleanup.policy": "compact", "compression.type": "producer",
                       "min.insync.replicas": str(cfg.get("transaction.state.log.min.isr")),
                       "segment.bytes": str(cfg.get("transaction.state.log.segment.bytes"))}
        else:
            raise ValueError(f"{name} is not an internal topic")
        live = len(self.metadata_cache.alive_brokers())
        if live < rf:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE,
                             f"{name} needs replication factor {rf} but only {live} brokers "
                             "are alive")
        try:
            await self.admin.create_topic(name, partitions, rf, None, configs)
        except KafkaError as e:
            if e.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                raise

    def _on_role_change(self, tp: Any, is_leader: bool, leader_epoch: int) -> None:
        if tp.topic != OFFSETS_TOPIC or self.group_coordinator is None:
            return
        if is_leader:
            self.group_coordinator.on_elected(tp.partition, leader_epoch)
        else:
            self.group_coordinator.on_resigned(tp.partition, leader_epoch)


def run_server(config: KafkaConfig) -> int:
    """Run a broker until SIGTERM/SIGINT; returns the process exit code."""

    async def main() -> None:
        server = KafkaServer(config)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for sig in signals:
                        name = signal.Signals(sig).name
                        if server._shutdown_requested.is_set():
                            # A second signal: stop now, as after kill -9 (recovery copes).
                            log.warning("received %s again: exiting without cleanup", name)
                            os._exit(1)
                        log.info("received %s, shutting down", name)
                        server.request_shutdown()

                nursery.start_soon(on_signal)
                await server.run()          # returns once the orderly shutdown is done
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as e:  # noqa: BLE001 - report why the broker stopped, then exit 1
        for leaf in _leaves(e):
            if isinstance(leaf, (KeyboardInterrupt, SystemExit)):
                continue
            if isinstance(leaf, (KafkaError, LogDirError, BrokerAlreadyRegisteredError)):
                log.error("broker failed to start: %s", leaf)
            else:
                log.error("broker failed", exc_info=leaf)
        return 1
    return 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]
