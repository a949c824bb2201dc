"""Helpers shared by the network-layer socket tests (loopback only)."""
from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from kafkapy.network.server import SocketServer


@asynccontextmanager
async def running_server(handler: Any, **kwargs: Any) -> AsyncIterator[SocketServer]:
    """A SocketServer on 127.0.0.1 with an OS-chosen port, closed on exit."""
    async with trio.open_nursery() as nursery:
        server = SocketServer("127.0.0.1", 0, handler, **kwargs)
        await nursery.start(server.run)
        try:
            yield server
        finally:
            await server.aclose()


async def connect(server: SocketServer) -> trio.SocketStream:
    assert server.bound_port is not None
    return await trio.open_tcp_stream("127.0.0.1", server.bound_port)


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def read_exactly(stream: trio.SocketStream, n: int) -> bytes:
    """Read n bytes; raise EOFError if the peer closes first."""
    out = bytearray()
    while len(out) < n:
        data = await stream.receive_some(min(n - len(out), 1 << 20))
        if not data:
            raise EOFError(f"EOF after {len(out)} of {n} bytes")
        out += data
    return bytes(out)


async def read_frame(stream: trio.SocketStream) -> bytes:
    (size,) = struct.unpack(">i", await read_exactly(stream, 4))
    return await read_exactly(stream, size)


async def assert_closed_by_peer(stream: trio.SocketStream) -> None:
    """The server closed the connection: EOF (or reset) without any response bytes."""
    try:
        data = await stream.receive_some(65536)
    except trio.BrokenResourceError:
        return
    assert data == b"", f"expected EOF, got {data[:40]!r}"


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition on trio's clock with short checkpoints (no fixed sleeps)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def echo(frame_: memoryview, conn: Any) -> list[Any]:
    return [bytes(frame_)]


@attrs.define(slots=True)
class FileChunk:
    """Stands in for kafkapy.log.FileRecords: the shape the server relies on."""

    file: Any
    position: int
    size: int
    is_file_records: bool = True

    def __len__(self) -> int:
        return self.size
