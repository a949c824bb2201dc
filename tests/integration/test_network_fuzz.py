"""Hypothesis feeds arbitrary byte streams to one long-lived SocketServer (echo handler).

The oracle: the server answers exactly the well-formed frames at the front of the stream
(in order, byte-exact), then closes; it never logs an error, and a fresh connection is
answered after every example. The server runs in its own thread + trio loop so that
hypothesis can drive plain blocking sockets.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafkapy.network.server import SocketServer

pytestmark = pytest.mark.integration

MAX_REQUEST = 4096


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _ThreadedServer:
    def __init__(self) -> None:
        self.port = 0
        self.token: trio.lowlevel.TrioToken | None = None
        self.server: SocketServer | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def echo(frame: memoryview, conn: Any) -> list[Any]:
            return [frame]

        async def run() -> None:
            self.token = trio.lowlevel.current_trio_token()
            self.server = SocketServer("127.0.0.1", 0, echo, max_request_size=MAX_REQUEST,
                                       idle_timeout_ms=10000)
            async with trio.open_nursery() as nursery:
                self.port = await nursery.start(self.server.run)
                self.ready.set()

        try:
            trio.run(run)
        except BaseException as e:  # reported by the test, not swallowed
            self.error = e
        finally:
            self.ready.set()

    def stop(self) -> None:
        assert self.server is not None and self.token is not None
        trio.from_thread.run(self.server.aclose, trio_token=self.token)
        self.thread.join(10)


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[tuple[_ThreadedServer, _Errors]]:
    errors = _Errors()
    logger = logging.getLogger("kafkapy.network")
    logger.addHandler(errors)
    ts = _ThreadedServer()
    ts.thread.start()
    assert ts.ready.wait(10) and ts.error is None
    try:
        yield ts, errors
    finally:
        ts.stop()
        logger.removeHandler(errors)
    assert ts.error is None, ts.error


def expected_responses(stream: bytes) -> bytes:
    """What an echo server must send back: the valid frames at the front of the stream."""
    out = bytearray()
    pos = 0
    while len(stream) - pos >= 4:
        (size,) = struct.unpack_from(">i", stream, pos)
        if size < 0 or size > MAX_REQUEST or len(stream) - pos - 4 < size:
            break
        out += stream[pos:pos + 4 + size]
        pos += 4 + size
    return bytes(out)


def exchange(port: int, stream: bytes, pieces: list[int]) -> bytes:
    """Send `stream` in pieces, half-close, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        pos = 0
        try:
            for n in [*pieces, len(stream)]:
                if pos >= len(stream):
                    break
                s.sendall(stream[pos:pos + max(n, 1)])
                pos += max(n, 1)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # EPIPE/ECONNRESET/ENOTCONN: the server already closed on a bad size
        received = bytearray()
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
        return bytes(received)


_frame = st.builds(lambda b: struct.pack(">i", len(b)) + b, st.binary(max_size=300))
_bad_size = st.sampled_from([-1, -(2**31), MAX_REQUEST + 1, 2**31 - 1, 70000]).map(
    lambda n: struct.pack(">i", n)
)
_streams = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(_frame, _frame, _bad_size, st.binary(max_size=8)), max_size=12).map(b"".join),
)


@settings(max_examples=80, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=_streams, pieces=st.lists(st.integers(1, 64), max_size=6))
def test_random_byte_streams_never_crash_server(
    threaded_server: tuple[_ThreadedServer, _Errors], stream: bytes, pieces: list[int]
) -> None:
    ts, errors = threaded_server
    got = exchange(ts.port, stream, pieces)
    assert got == expected_responses(stream)
    assert ts.error is None and ts.thread.is_alive()
    assert not errors.records, [r.getMessage() for r in errors.records]
    probe = struct.pack(">i", 5) + b"probe"
    assert exchange(ts.port, probe, []) == probe
