"""The kazoo edge: one ZooKeeper session, its chroot, and the watch -> trio channel bridge.

`ZkSession(connect, session_timeout_ms, connection_timeout_ms)` wraps a `KazooClient`. Every
blocking kazoo call runs in `trio.to_thread.run_sync` and is retried while the connection is
down, as Kafka's ZooKeeperClient blocks requests until it is connected again. Watch callbacks
and session state changes fire in kazoo's threads; they are handed to the trio loop with
`TrioToken.run_sync_soon` (non-blocking, FIFO) and pushed with `send_nowait` into every
registered event channel, so consumers see one ordered stream.
"""
from __future__ import annotations

import functools
import logging
import math
from typing import Any, Callable, TypeVar

import attrs
import trio
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (ConnectionLoss, KazooException, NodeExistsError,
                              OperationTimeoutError, SessionExpiredError)
from kazoo.protocol.states import EventType, WatchedEvent
from kazoo.retry import KazooRetry

from kafkapy.zk import events as ev

log = logging.getLogger(__name__)
T = TypeVar("T")

_EVENT_KINDS = {
    EventType.CREATED: ev.CREATED,
    EventType.DELETED: ev.DELETED,
    EventType.CHANGED: ev.CHANGED,
    EventType.CHILD: ev.CHILD,
}


def split_connect(connect: str) -> tuple[str, str]:
    """"h1:2181,h2:2181/kafka" -> ("h1:2181,h2:2181", "/kafka"); chroot "" when absent."""
    hosts, slash, chroot = connect.partition("/")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    return hosts, chroot


@attrs.define(slots=True, eq=False)
class ZkSession:
    connect: str
    session_timeout_ms: int = 18000
    connection_timeout_ms: int | None = None
    client: KazooClient | None = None
    _channels: list[trio.MemorySendChannel[Any]] = attrs.field(factory=list)
    _token: trio.lowlevel.TrioToken | None = None
    _session_ids: list[int] = attrs.field(factory=list)
    _closed: bool = False

    @property
    def session_id(self) -> int | None:
        if self.client is None or self.client.client_id is None:
            return None
        return int(self.client.client_id[0])

    @property
    def previous_session_ids(self) -> list[int]:
        current = self.session_id
        return [s for s in self._session_ids if s != current]

    def add_event_channel(self, send: trio.MemorySendChannel[Any]) -> None:
        """Deliver every watch and session event to `send` too. Use an unbounded channel
        (`trio.open_memory_channel(math.inf)`): a full channel loses events."""
        self._channels.append(send)

    def remove_event_channel(self, send: trio.MemorySendChannel[Any]) -> None:
        if send in self._channels:
            self._channels.remove(send)

    async def start(self) -> None:
        """Connect (creating a missing chroot first), as Kafka does at broker startup."""
        self._token = trio.lowlevel.current_trio_token()
        hosts, chroot = split_connect(self.connect)
        timeout_s = (self.connection_timeout_ms or self.session_timeout_ms) / 1000.0
        if chroot:
            await trio.to_thread.run_sync(self._create_chroot, hosts, chroot, timeout_s)
        retry = KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=1.0)
        self.client = KazooClient(hosts=hosts + chroot, timeout=self.session_timeout_ms / 1000.0,
                                  connection_retry=retry)
        self.client.add_listener(self._on_state)
        try:
            await trio.to_thread.run_sync(functools.partial(self.client.start, timeout=timeout_s))
        except Exception as exc:
            client, self.client = self.client, None
            await trio.to_thread.run_sync(lambda: (client.stop(), client.close()))
            raise ev.ZkClientError(
                f"could not connect to ZooKeeper {self.connect} within {timeout_s:g}s: {exc!r}"
            ) from exc
        sid = self.session_id
        if sid is not None and sid not in self._session_ids:
            self._session_ids.append(sid)
        log.info("connected to ZooKeeper %s, session 0x%x", self.connect, sid or 0)

    @staticmethod
    def _create_chroot(hosts: str, chroot: str, timeout_s: float) -> None:
        bootstrap = KazooClient(hosts=hosts, timeout=timeout_s)
        bootstrap.start(timeout=timeout_s)
        try:
            try:
                bootstrap.ensure_path(chroot)
            except NodeExistsError:
                pass
        finally:
            bootstrap.stop()
            bootstrap.close()

    async def close(self) -> None:
        """End the session (its ephemerals vanish at once) and stop the kazoo threads."""
        self._closed = True
        client, self.client = self.client, None
        if client is not None:
            def stop() -> None:
                client.stop()
                client.close()
            await trio.to_thread.run_sync(stop)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking kazoo call in a thread; retry while disconnected or after expiry
        (kazoo opens a new session by itself), until the client is closed."""
        delay = 0.05
        while True:
            if self._closed:
                raise ev.ZkClientClosedError("ZooKeeper client is closed")
            try:
                return await trio.to_thread.run_sync(
                    functools.partial(fn, *args, **kwargs), abandon_on_cancel=True)
            except (ConnectionLoss, SessionExpiredError, OperationTimeoutError) as exc:
                if self._closed:
                    raise ev.ZkClientClosedError("ZooKeeper client is closed") from exc
                log.warning("ZooKeeper call %s failed (%s); retrying", getattr(fn, "__name__", fn),
                            type(exc).__name__)
                await trio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except KazooException as exc:
                if self._closed:  # kazoo fails queued requests when it is stopped
                    raise ev.ZkClientClosedError("ZooKeeper client is closed") from exc
                raise

    # --- thread -> trio bridge --------------------------------------------------------

    def watcher(self, event: WatchedEvent) -> None:
        """kazoo watch callback (one bound method, so kazoo de-duplicates re-registrations)."""
        kind = _EVENT_KINDS.get(event.type)
        if kind is None or event.path is None:
            return  # EventType.NONE: kazoo dropped its watches; the session event covers it
        self._emit(ev.ZkWatchEvent(kind, event.path))

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            sid = self.session_id
            new = sid is not None and sid not in self._session_ids
            if new:
                self._session_ids.append(sid)  # type: ignore[arg-type]
            self._emit(ev.ZkSessionEvent(ev.CONNECTED, sid, new))
        elif state == KazooState.SUSPENDED:
            self._emit(ev.ZkSessionEvent(ev.SUSPENDED, self.session_id))
        else:
            self._emit(ev.ZkSessionEvent(ev.LOST, None))

    def _emit(self, event: object) -> None:
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(self._deliver, event)
        except trio.RunFinishedError:
            pass

    def _deliver(self, event: object) -> None:
        for send in list(self._channels):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                log.error("ZooKeeper event channel full; dropped %r", event)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._channels.remove(send)


def unbounded_event_channel() -> tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]:
    """The channel shape the session expects: ZooKeeper events must never be dropped."""
    return trio.open_memory_channel(math.inf)
