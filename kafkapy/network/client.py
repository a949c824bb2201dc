"""`BrokerConnection`: a small async Kafka client connection (controller, fetchers, CLIs).

Requests are written in call order and, since a Kafka broker answers a connection's
requests in order, responses are matched to the oldest request in flight (the correlation
id is checked). There is no background task: whichever waiter holds the receive lock reads
the next frame and hands it to its owner, so the class needs no nursery. Partially read
frames live on the object, so cancelling a waiter never desynchronises the stream; its
response is read and dropped later. A failed or cancelled *write* does leave the stream
unusable, so the connection is closed then.
"""
from __future__ import annotations

import contextlib
import struct
from collections import deque
from typing import Any

import attrs
import trio

from kafkapy.network.errors import (
    BrokerConnectFailed,
    BrokerConnectionError,
    ConnectionClosedError,
    CorrelationIdMismatch,
    RequestTimedOut,
    ResponseDecodeError,
)
from kafkapy.protocol.headers import response_header_flexible
from kafkapy.protocol.messages import REQUESTS, RESPONSES

_HEADER = struct.Struct(">hhi")
_PRODUCE = 0
_READ_AHEAD = 65536  # bytes asked for when reading a size prefix or a small frame
_CONTROLLED_SHUTDOWN = 7


def request_header_version(api_key: int, version: int, flexible: bool) -> int:
    """v2 for flexible versions, v0 for ControlledShutdown v0, v1 otherwise (Kafka's rule)."""
    if flexible:
        return 2
    if api_key == _CONTROLLED_SHUTDOWN and version == 0:
        return 0
    return 1


def encode_request_header(
    api_key: int, version: int, correlation_id: int, client_id: str | None, header_version: int
) -> bytes:
    """RequestHeader v0/v1/v2: client_id is a classic nullable string even in v2."""
    out = bytearray(_HEADER.pack(api_key, version, correlation_id))
    if header_version >= 1:
        if client_id is None:
            out += b"\xff\xff"
        else:
            raw = client_id.encode()
            out += struct.pack(">h", len(raw)) + raw
    if header_version >= 2:
        out += b"\x00"  # no tagged fields
    return bytes(out)


def _read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise ValueError("varint too long")


def parse_response_header(frame: memoryview, flexible: bool) -> tuple[int, int]:
    """Return (correlation_id, body offset); header v1 carries tagged fields to skip."""
    if len(frame) < 4:
        raise ValueError(f"response frame of {len(frame)} bytes has no header")
    (correlation_id,) = struct.unpack_from(">i", frame, 0)
    pos = 4
    if flexible:
        count, pos = _read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = _read_uvarint(frame, pos)
            size, pos = _read_uvarint(frame, pos)
            pos += size
        if pos > len(frame):
            raise ValueError("response header tagged fields overrun the frame")
    return correlation_id, pos


@attrs.define(slots=True, eq=False)
class _InFlight:
    correlation_id: int
    api_key: int
    version: int
    done: trio.Event = attrs.field(factory=trio.Event)
    response: Any = None
    error: BaseException | None = None


@attrs.define(slots=True, eq=False)
class BrokerConnection:
    """One TCP connection to a broker; `send` may be called from many tasks at once."""

    host: str
    port: int
    client_id: str | None
    _stream: trio.SocketStream
    _next_correlation_id: int = 0
    _in_flight: deque[_InFlight] = attrs.field(factory=deque)
    _send_lock: trio.Lock = attrs.field(factory=trio.Lock)
    _recv_lock: trio.Lock = attrs.field(factory=trio.Lock)
    _rbuf: bytearray = attrs.field(factory=bytearray)
    _big: bytearray | None = None   # a large frame being received, `_big_have` bytes so far
    _big_have: int = 0
    _error: BrokerConnectionError | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, client_id: str | None, *, timeout: float = 30.0
    ) -> BrokerConnection:
        try:
            with trio.fail_after(timeout):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as e:
            raise BrokerConnectFailed(f"cannot connect to {host}:{port}: {e}") from e
        return cls(host, port, client_id, stream)

    @property
    def closed(self) -> bool:
        return self._error is not None

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    async def __aenter__(self) -> BrokerConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket; requests still waiting fail with ConnectionClosedError."""
        self._fail(ConnectionClosedError(f"connection to {self.host}:{self.port} closed"))
        await self._stream.aclose()

    async def send(
        self, api_key: int, version: int, request: Any, *, timeout: float | None = None
    ) -> Any:
        """Send one request and return the decoded response (None for Produce acks=0).

        Any version the codec knows may be sent (not only those kafkapy advertises), so the
        same client can talk to a real Kafka broker in tests.

        `timeout` (seconds) bounds the wait for the response: RequestTimedOut is raised
        and the late response is discarded when it arrives; the connection stays usable.
        """
        if api_key not in REQUESTS:
            raise ValueError(f"unknown api key {api_key}")
        flexible_from = REQUESTS[api_key].FLEXIBLE_FROM
        flexible = flexible_from is not None and 0 <= flexible_from <= version
        correlation_id = self._next_correlation_id
        self._next_correlation_id = (correlation_id + 1) & 0x7FFFFFFF
        header_version = request_header_version(api_key, version, flexible)
        chunks: list[Any] = [
            encode_request_header(api_key, version, correlation_id, self.client_id, header_version)
        ]
        request.encode(version, chunks)
        payload = [c.tobytes() if getattr(c, "is_file_records", False) else c for c in chunks]
        size = sum(len(c) for c in payload)
        data = b"".join([struct.pack(">i", size), *payload])
        expects_response = not (api_key == _PRODUCE and getattr(request, "acks", -1) == 0)
        entry = _InFlight(correlation_id, api_key, version)
        async with self._send_lock:
            self._raise_if_closed()
            if expects_response:
                self._in_flight.append(entry)
            try:
                await self._stream.send_all(data)
            except BaseException as e:
                err = ConnectionClosedError(f"write to {self.host}:{self.port} failed: {e!r}")
                self._fail(err)
                if isinstance(e, (OSError, trio.BrokenResourceError, trio.ClosedResourceError)):
                    raise err from e
                raise  # cancellation: the partially written request killed the connection
        if not expects_response:
            return None
        return await self._wait_for(entry, timeout)

    async def _wait_for(self, entry: _InFlight, timeout: float | None) -> Any:
        deadline = trio.current_time() + timeout if timeout is not None else float("inf")
        with trio.move_on_at(deadline):
            while not entry.done.is_set():
                async with self._recv_lock:
                    if self._error is not None and not entry.done.is_set():
                        entry.error = self._error  # never read from a dead connection
                        entry.done.set()
                    if not entry.done.is_set():
                        await self._receive_one()
        if not entry.done.is_set():
            raise RequestTimedOut(
                f"no response from {self.host}:{self.port} to api {entry.api_key} "
                f"(correlation id {entry.correlation_id}) within {timeout}s"
            )
        if entry.error is not None:
            raise entry.error
        return entry.response

    async def _receive_one(self) -> None:
        """Read one response frame and deliver it to the oldest request in flight."""
        try:
            frame = await self._read_frame()
        except BrokerConnectionError as e:
            self._fail(e)
            return
        if not self._in_flight:
            self._fail(ConnectionClosedError(f"unsolicited response from {self.host}:{self.port}"))
            return
        entry = self._in_flight[0]
        view = memoryview(frame)
        try:
            flexible_header = response_header_flexible(entry.api_key, entry.version)
            correlation_id, pos = parse_response_header(view, flexible_header)
        except (ValueError, IndexError, struct.error) as e:
            self._fail(ResponseDecodeError(f"bad response header from {self.host}:{self.port}: {e}"))
            return
        if correlation_id != entry.correlation_id:
            self._fail(CorrelationIdMismatch(
                f"{self.host}:{self.port} answered correlation id {correlation_id}, "
                f"expected {entry.correlation_id}"
            ))
            return
        self._in_flight.popleft()  # from here on the stream is in sync whatever happens
        try:
            entry.response, _ = RESPONSES[entry.api_key].decode(view, pos, entry.version)
        except Exception as e:  # the frame boundary is intact: only this request fails
            entry.error = ResponseDecodeError(
                f"cannot decode api {entry.api_key} v{entry.version} response: {e}"
            )
        entry.done.set()

    async def _read_frame(self) -> bytearray:
        """One response frame. Small reads fill `_rbuf` (which may then hold the start of
        the next frame); the rest of a big frame is received straight into a buffer of its
        own size (`_big`, kept on the object so a cancelled read resumes where it stopped),
        so a follower's 1 MB fetch response is copied once, by the kernel."""
        if self._big is None:
            buf = self._rbuf
            while len(buf) < 4:
                buf += await self._receive_some(_READ_AHEAD)
            (size,) = struct.unpack_from(">i", buf, 0)
            if size < 0:
                raise ResponseDecodeError(f"negative response size {size}")
            if size <= _READ_AHEAD:
                while len(buf) < 4 + size:
                    buf += await self._receive_some(_READ_AHEAD)
            if len(buf) >= 4 + size:
                frame = buf[4:4 + size]
                del buf[:4 + size]
                return frame
            self._big = bytearray(size)
            self._big_have = len(buf) - 4
            self._big[:self._big_have] = memoryview(buf)[4:]
            buf.clear()
        frame = self._big
        with memoryview(frame) as view:
            while self._big_have < len(frame):
                self._big_have += await self._receive_into(view[self._big_have:])
        self._big = None
        return frame

    async def _receive_some(self, max_bytes: int) -> bytes:
        try:
            data = await self._stream.receive_some(max_bytes)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as e:
            raise ConnectionClosedError(f"read from {self.host}:{self.port} failed: {e!r}") from e
        if not data:
            raise ConnectionClosedError(f"{self.host}:{self.port} closed the connection")
        return data

    async def _receive_into(self, view: memoryview) -> int:
        # The raw socket: SocketStream has no receive_into. Only the holder of the receive
        # lock reads, so nothing competes with this call.
        try:
            n = await self._stream.socket.recv_into(view)
        except OSError as e:
            raise ConnectionClosedError(f"read from {self.host}:{self.port} failed: {e!r}") from e
        if n == 0:
            raise ConnectionClosedError(f"{self.host}:{self.port} closed the connection")
        return n

    def _raise_if_closed(self) -> None:
        if self._error is not None:
            raise ConnectionClosedError(f"connection is closed: {self._error}") from self._error

    def _fail(self, error: BrokerConnectionError) -> None:
        """Close the socket and fail every waiting request with `error` (idempotent)."""
        if self._error is None:
            self._error = error
        pending, self._in_flight = self._in_flight, deque()
        for entry in pending:
            entry.error = error
            entry.done.set()
        with contextlib.suppress(OSError):
            self._stream.socket.close()
