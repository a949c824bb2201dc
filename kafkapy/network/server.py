"""The PLAINTEXT listener: framing, requests handled in arrival order, in-order writes.

Kafka mutes a channel while one of its requests is in flight, so per connection we read a
frame, await the handler, write its response, and only then look at the next frame. The one
exception is pipelining (kafkapy.network.pipeline): a handler of a pipelined API (Produce)
that has done its ordered work may return a `DeferredResponse`; the connection then reads and
handles the next Produce frames (at most `max_pipelined_requests` deferred at once) while a
writer task writes the deferred responses oldest first. Any other request waits until every
earlier response is written, so it still runs alone, as in Kafka.

Frames are received with `recv_into` into one reusable bytearray per connection and handed
over as a memoryview (no per-frame copy); responses go out as a size prefix plus chunks,
with small chunks coalesced and `FileRecords` chunks sent with `os.sendfile`.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import socket as _stdsocket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from kafkapy.network.errors import CloseConnection
from kafkapy.network.pipeline import DeferredResponse, ResponseQueue

log = logging.getLogger(__name__)

Handler = Callable[[memoryview, "ConnectionInfo"],
                   Awaitable["list[Any] | DeferredResponse | None"]]
PRODUCE_API_KEY = 0

_INITIAL_BUFFER = 32 * 1024  # per-connection receive buffer; grows for bigger frames
_SHRINK_ABOVE = 1024 * 1024  # an emptied buffer bigger than this is swapped for a small one
_COALESCE = 64 * 1024  # chunks smaller than this are joined into one send
_PREAD_CHUNK = 256 * 1024
_SENDFILE_FALLBACK = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_PEER_ERRNOS = {errno.ENOTCONN, errno.ESHUTDOWN, errno.ETIMEDOUT, errno.EHOSTUNREACH}
_ACCEPT_TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_conn_index = itertools.count()


@attrs.define(slots=True, frozen=True)
class ConnectionInfo:
    """Who is on the other end; `connection_id` is Kafka's `local:port-peer:port-index`."""

    peer_host: str
    peer_port: int
    connection_id: str
    local_host: str = ""
    local_port: int = 0


class _PeerGone(Exception):
    """EOF, socket error or idle timeout: the connection ends without a traceback (errors
    raised by the handler or while reading a segment file keep theirs)."""


@attrs.define(slots=True, eq=False)
class SocketServer:
    """A trio TCP listener that frames Kafka requests and writes responses in order."""

    host: str
    port: int
    handler: Handler
    max_request_size: int = 104857600
    idle_timeout_ms: int = 600000
    backlog: int = 128
    # API keys whose requests may be handled while earlier ones still wait (see pipeline.py).
    pipelined_api_keys: frozenset[int] = frozenset({PRODUCE_API_KEY})
    max_pipelined_requests: int = 16
    bound_port: int | None = attrs.field(default=None, init=False)
    _connections: set[trio.socket.SocketType] = attrs.field(factory=set, init=False)
    _cancel: trio.CancelScope | None = attrs.field(default=None, init=False)
    _stopped: trio.Event = attrs.field(factory=trio.Event, init=False)
    _closing: bool = attrs.field(default=False, init=False)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def run(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the bound port, accept until `aclose()` (or cancellation)."""
        listener = await self._bind()
        try:
            with trio.CancelScope() as scope:
                self._cancel = scope
                if self._closing:
                    scope.cancel()
                async with trio.open_nursery() as nursery:
                    task_status.started(self.bound_port)
                    await self._accept_loop(listener, nursery)
        finally:
            listener.close()
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop accepting, close every connection, and wait until `run()` has returned."""
        self._closing = True
        if self._cancel is None:
            return
        self._cancel.cancel()
        await self._stopped.wait()

    async def _bind(self) -> trio.socket.SocketType:
        """Bind one address like Kafka; an empty host is the dual-stack wildcard (or IPv4)."""
        if self.host:
            infos = await trio.socket.getaddrinfo(
                self.host, self.port, type=_stdsocket.SOCK_STREAM, flags=_stdsocket.AI_PASSIVE
            )
            candidates = [(infos[0][0], infos[0][4])]
        else:
            candidates = [(_stdsocket.AF_INET6, ("::", self.port)),
                          (_stdsocket.AF_INET, ("0.0.0.0", self.port))]
        for i, (family, addr) in enumerate(candidates):
            sock = trio.socket.socket(family, _stdsocket.SOCK_STREAM)
            try:
                if family == _stdsocket.AF_INET6 and not self.host:
                    sock.setsockopt(_stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_V6ONLY, 0)
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
                await sock.bind(addr)
                sock.listen(self.backlog)
            except OSError:
                sock.close()
                if i == len(candidates) - 1:
                    raise
                continue
            except BaseException:
                sock.close()
                raise
            self.bound_port = sock.getsockname()[1]
            return sock
        raise AssertionError("unreachable")

    async def _accept_loop(self, listener: trio.socket.SocketType, nursery: trio.Nursery) -> None:
        while True:
            try:
                sock, peer = await listener.accept()
            except OSError as e:
                if e.errno in _ACCEPT_TRANSIENT:
                    log.warning("accept failed (%s); backing off", e)
                    await trio.sleep(0.1)
                continue
            nursery.start_soon(self._connection_task, sock, peer)

    async def _connection_task(self, sock: trio.socket.SocketType, peer: Any) -> None:
        self._connections.add(sock)
        info = None
        try:
            try:
                sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
                local = sock.getsockname()
            except OSError as e:
                raise _PeerGone(f"socket setup failed: {e}") from e
            info = ConnectionInfo(
                peer_host=peer[0],
                peer_port=peer[1],
                connection_id=f"{local[0]}:{local[1]}-{peer[0]}:{peer[1]}-{next(_conn_index)}",
                local_host=local[0],
                local_port=local[1],
            )
            await self._serve(sock, info)
        except _PeerGone as e:
            log.debug("connection %s closed: %s", info.connection_id if info else peer, e)
        except CloseConnection as e:
            log.info("closing connection %s at the handler's request: %s",
                     info.connection_id if info else peer, e)
        except Exception:
            log.exception("unexpected error on connection from %s:%s; closing it", peer[0], peer[1])
        finally:
            self._connections.discard(sock)
            sock.close()

    async def _recv_into(self, sock: trio.socket.SocketType, view: memoryview) -> int:
        with trio.move_on_after(self.idle_timeout_ms / 1000):
            try:
                n = await sock.recv_into(view)
            except OSError as e:
                raise _PeerGone(f"receive failed: {e}") from e
            if n == 0:
                raise _PeerGone("end of stream")
            return n
        raise _PeerGone(f"idle for more than {self.idle_timeout_ms} ms")

    async def _serve(self, sock: trio.socket.SocketType, info: ConnectionInfo) -> None:
        """Read and handle requests in one task, write deferred responses in another.

        Either task ending (an error, EOF, an invalid frame) ends the connection; its error
        is re-raised here, outside the nursery, so the caller sees a plain exception.
        """
        queue = ResponseQueue(self.max_pipelined_requests)
        errors: list[Exception] = []

        async def guarded(fn: Callable[..., Awaitable[None]], *args: Any) -> None:
            try:
                await fn(*args)
            except Exception as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(guarded, self._write_deferred, sock, queue)
            await guarded(self._read_requests, sock, info, queue)
        if errors:
            raise errors[0]

    async def _write_deferred(self, sock: trio.socket.SocketType, queue: ResponseQueue) -> None:
        """Write deferred responses strictly in request order, each once it is complete."""
        while True:
            deferred = await queue.wait_nonempty()
            response = await deferred.wait()
            if response is not None:
                await self._write_response(sock, response)
            queue.pop_oldest()

    async def _read_requests(self, sock: trio.socket.SocketType, info: ConnectionInfo,
                             queue: ResponseQueue) -> None:
        """Read frames and hand them to the handler one at a time, in arrival order.

        `buf[start:end]` holds received, not yet handled bytes. A frame handed to the handler
        is a view into `buf`, valid until the handler's response has been written, or until
        the handler returns when it returns a `DeferredResponse`.
        """
        buf = bytearray(_INITIAL_BUFFER)
        start = end = 0
        while True:
            need = 4
            size = -1
            while True:
                if end - start >= need:
                    if size >= 0:
                        break
                    size = int.from_bytes(buf[start:start + 4], "big", signed=True)
                    if size < 0 or size > self.max_request_size:
                        log.warning(
                            "closing connection from %s:%s: invalid request size %d "
                            "(socket.request.max.bytes=%d)",
                            info.peer_host, info.peer_port, size, self.max_request_size,
                        )
                        return
                    need = 4 + size
                    continue
                if start + need > len(buf):
                    # Not enough room after `start`: move the partial frame to the front,
                    # into a bigger buffer when it cannot fit (each byte moves at most once).
                    pending = bytes(memoryview(buf)[start:end])
                    if need > len(buf):
                        buf = bytearray(max(need, 2 * len(buf)) if need < _SHRINK_ABOVE else need)
                    buf[: len(pending)] = pending
                    start, end = 0, len(pending)
                try:
                    end += await self._recv_into(sock, memoryview(buf)[end:])
                except _PeerGone:
                    if end > start:
                        log.debug("connection %s: EOF with %d bytes of a partial frame",
                                  info.connection_id, end - start)
                    # A client that half-closed after its last request still gets the
                    # answers already owed to it.
                    await queue.wait_empty()
                    raise
            frame = memoryview(buf)[start + 4:start + need]
            start += need
            try:
                if size >= 2 and int.from_bytes(frame[:2], "big") in self.pipelined_api_keys:
                    await queue.wait_for_room()
                else:
                    await queue.wait_empty()  # every other API runs alone, as in Kafka
                response = await self.handler(frame, info)
                if isinstance(response, DeferredResponse):
                    queue.push(response)
                elif response is not None:
                    await queue.wait_empty()
                    # Written before the next receive, so chunks may be views of `frame`.
                    await self._write_response(sock, response)
            finally:
                with contextlib.suppress(BufferError):  # a handler kept an export; harmless
                    frame.release()
            if start == end:
                start = end = 0
                if len(buf) > _SHRINK_ABOVE:
                    buf = bytearray(_INITIAL_BUFFER)

    async def _write_response(self, sock: trio.socket.SocketType, chunks: Sequence[Any]) -> None:
        total = sum(len(c) for c in chunks)
        pending: list[Any] = [total.to_bytes(4, "big", signed=True)]
        pending_size = 4
        for chunk in chunks:
            is_file = getattr(chunk, "is_file_records", False)
            if not is_file and len(chunk) < _COALESCE:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size < _COALESCE:
                    continue
            if pending:
                await self._send_all(sock, b"".join(pending))
                pending, pending_size = [], 0
            if is_file:
                await self._send_file(sock, chunk.file, chunk.position, chunk.size)
            elif len(chunk) >= _COALESCE:
                await self._send_all(sock, chunk)
        if pending:
            await self._send_all(sock, b"".join(pending))

    async def _send_all(self, sock: trio.socket.SocketType, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            with trio.move_on_after(self.idle_timeout_ms / 1000):
                try:
                    sent = await sock.send(view)
                except OSError as e:
                    raise _PeerGone(f"send failed: {e}") from e
                view = view[sent:]
                continue
            raise _PeerGone(f"peer not reading for more than {self.idle_timeout_ms} ms")

    async def _wait_writable(self, sock: trio.socket.SocketType) -> None:
        with trio.move_on_after(self.idle_timeout_ms / 1000):
            await trio.lowlevel.wait_writable(sock)
            return
        raise _PeerGone(f"peer not reading for more than {self.idle_timeout_ms} ms")

    async def _send_file(self, sock: trio.socket.SocketType, file: Any, position: int, size: int) -> None:
        """Zero-copy from the segment file; pread+send where sendfile is not possible."""
        try:
            in_fd = file.fileno()
        except (AttributeError, OSError, ValueError):
            in_fd = None
        end = position + size
        out_fd = sock.fileno()
        while in_fd is not None and position < end:
            try:
                sent = os.sendfile(out_fd, in_fd, position, end - position)
            except BlockingIOError:
                await self._wait_writable(sock)
                continue
            except OSError as e:
                if e.errno in _SENDFILE_FALLBACK:
                    break
                if isinstance(e, ConnectionError) or e.errno in _PEER_ERRNOS:
                    raise _PeerGone(f"sendfile failed: {e}") from e
                raise  # e.g. EIO reading the segment: logged with its traceback
            if sent == 0:
                raise CloseConnection(f"file ended {end - position} bytes short of the response")
            position += sent
            await trio.lowlevel.checkpoint()
        while position < end:
            n = min(_PREAD_CHUNK, end - position)
            if in_fd is not None:
                data = os.pread(in_fd, n, position)
            else:
                file.seek(position)
                data = file.read(n)
            if not data:
                raise CloseConnection(f"file ended {end - position} bytes short of the response")
            await self._send_all(sock, data)
            position += len(data)
