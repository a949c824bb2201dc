"""SocketServer over loopback: framing, ordering, size limits, failures, sendfile."""
from __future__ import annotations

import errno
import io
import logging
import os
import random
import struct
from typing import Any

import pytest
import trio

from kafkapy.network.errors import CloseConnection
from kafkapy.network.server import ConnectionInfo
from network_helpers import (
    FileChunk,
    assert_closed_by_peer,
    connect,
    echo,
    frame,
    read_exactly,
    read_frame,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.integration


def _seeded(name: str) -> random.Random:
    seed = random.randrange(2**32)
    print(f"{name}: seed={seed}")
    return random.Random(seed)


async def test_bound_port_and_connection_info() -> None:
    seen: list[ConnectionInfo] = []

    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        seen.append(conn)
        return [b"ok"]

    async with running_server(handler) as server:
        assert server.bound_port and server.bound_port > 0
        async with await connect(server) as s:
            await s.send_all(frame(b"x"))
            assert await read_frame(s) == b"ok"
            local_port = s.socket.getsockname()[1]
            assert server.connection_count == 1
        await wait_until(lambda: server.connection_count == 0)
    (conn,) = seen
    assert (conn.peer_host, conn.peer_port) == ("127.0.0.1", local_port)
    assert conn.connection_id.startswith(f"127.0.0.1:{server.bound_port}-127.0.0.1:{local_port}-")


async def test_pipelined_requests_answered_in_order_one_at_a_time() -> None:
    rng = _seeded("pipelined")
    in_flight = 0
    max_in_flight = 0

    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any] | None:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        payload = bytes(f)
        await trio.sleep(rng.choice([0, 0, 0.001]))
        in_flight -= 1
        if payload.startswith(b"N"):
            return None  # like Produce acks=0: nothing is written
        return [b"r:", payload[:3], payload[3:]]

    payloads = [
        (b"N" if i % 7 == 3 else b"R") + str(i).encode() * rng.randrange(1, 3000) for i in range(120)
    ]
    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(b"".join(frame(p) for p in payloads))
        for p in payloads:
            if not p.startswith(b"N"):
                assert await read_frame(s) == b"r:" + p
    assert max_in_flight == 1


async def test_frame_is_memoryview_of_exact_size_and_may_be_returned() -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        assert isinstance(f, memoryview)
        return [f[:2], f]  # views of the request stay valid until the response is written

    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(frame(b"abcdef") + frame(b"") + frame(b"xy"))
        assert await read_frame(s) == b"ababcdef"
        assert await read_frame(s) == b""
        assert await read_frame(s) == b"xyxy"


async def test_large_request_grows_buffer() -> None:
    rng = _seeded("large-request")
    big = rng.randbytes(3 * 1024 * 1024 + 17)

    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        return [len(f).to_bytes(4, "big"), bytes(f[-8:])]

    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(frame(b"a" * 10) + frame(big) + frame(b"tail"))
        assert await read_frame(s) == (10).to_bytes(4, "big") + b"a" * 8
        assert await read_frame(s) == len(big).to_bytes(4, "big") + big[-8:]
        assert await read_frame(s) == (4).to_bytes(4, "big") + b"tail"


@pytest.mark.parametrize("size", [0x7FFFFFFF, 2**31 - 2, -1, -(2**31)])
async def test_invalid_size_closes_only_that_connection(
    size: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kafkapy.network")
    async with running_server(echo, max_request_size=1024) as server:
        async with await connect(server) as bad, await connect(server) as good:
            await good.send_all(frame(b"before"))
            assert await read_frame(good) == b"before"
            await bad.send_all(struct.pack(">i", size) + b"junk")
            await assert_closed_by_peer(bad)
            await good.send_all(frame(b"after"))
            assert await read_frame(good) == b"after"
        async with await connect(server) as fresh:
            await fresh.send_all(frame(b"fresh"))
            assert await read_frame(fresh) == b"fresh"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(size) in warnings[0] and "127.0.0.1" in warnings[0]


async def test_size_just_above_limit_rejected_limit_itself_accepted() -> None:
    async with running_server(echo, max_request_size=100) as server:
        async with await connect(server) as s:
            await s.send_all(frame(b"z" * 100))
            assert await read_frame(s) == b"z" * 100
            await s.send_all(frame(b"z" * 101))
            await assert_closed_by_peer(s)


async def test_truncated_frame_then_eof_closes_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kafkapy.network")
    async with running_server(echo) as server:
        async with await connect(server) as s:
            await s.send_all(struct.pack(">i", 100) + b"only ten b")
            await wait_until(lambda: server.connection_count == 1)
            await s.send_eof()
            await assert_closed_by_peer(s)
        await wait_until(lambda: server.connection_count == 0)
        async with await connect(server) as s2:
            await s2.send_all(frame(b"still up"))
            assert await read_frame(s2) == b"still up"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_handler_exception_closes_that_connection_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        if bytes(f) == b"boom":
            raise ValueError("handler bug")
        if bytes(f) == b"close":
            raise CloseConnection("asked to close")
        return [bytes(f)]

    caplog.set_level(logging.INFO, logger="kafkapy.network")
    async with running_server(handler) as server:
        async with await connect(server) as a, await connect(server) as b, await connect(server) as c:
            await a.send_all(frame(b"boom") + frame(b"never answered"))
            await assert_closed_by_peer(a)
            await c.send_all(frame(b"close"))
            await assert_closed_by_peer(c)
            await b.send_all(frame(b"fine"))
            assert await read_frame(b) == b"fine"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "127.0.0.1" in errors[0].getMessage()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("asked to close" in m for m in infos)


async def test_bad_response_chunk_closes_connection_not_server() -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        return [object()] if bytes(f) == b"bad" else [bytes(f)]

    async with running_server(handler) as server:
        async with await connect(server) as s:
            await s.send_all(frame(b"bad"))
            await assert_closed_by_peer(s)
        async with await connect(server) as s:
            await s.send_all(frame(b"good"))
            assert await read_frame(s) == b"good"


@pytest.mark.parametrize("size", [1, 100_000, 50 * 1024 * 1024])
async def test_sendfile_chunk_arrives_byte_exact(
    tmp_path: Any, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = _seeded(f"sendfile-{size}")
    real_sendfile = os.sendfile
    calls = []

    def counting_sendfile(*args: Any) -> int:
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    path = tmp_path / "segment.log"
    content = rng.randbytes(size + 300)
    path.write_bytes(content)
    position = rng.randrange(0, 300)
    with open(path, "rb") as f:

        async def handler(req: memoryview, conn: ConnectionInfo) -> list[Any]:
            return [b"head", FileChunk(f, position, size), b"tail"]

        async with running_server(handler) as server, await connect(server) as s:
            await s.send_all(frame(b"fetch") * 2)
            for _ in range(2):
                got = await read_frame(s)
                assert len(got) == size + 8
                assert got == b"head" + content[position:position + size] + b"tail"
    assert calls, "the file chunk did not go through os.sendfile"


async def test_sendfile_fallbacks(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = _seeded("sendfile-fallback")
    content = rng.randbytes(600_000)
    path = tmp_path / "segment.log"
    path.write_bytes(content)

    def no_sendfile(*args: Any) -> int:
        raise OSError(errno.EINVAL, "sendfile not supported here")

    monkeypatch.setattr(os, "sendfile", no_sendfile)
    with open(path, "rb") as f:
        chunks = [FileChunk(f, 5, 500_000), FileChunk(io.BytesIO(content), 7, 1000)]

        async def handler(req: memoryview, conn: ConnectionInfo) -> list[Any]:
            return [chunks[int(bytes(req))]]

        async with running_server(handler) as server, await connect(server) as s:
            await s.send_all(frame(b"0") + frame(b"1"))
            assert await read_frame(s) == content[5:500_005]
            assert await read_frame(s) == content[7:1007]


async def test_file_shorter_than_promised_closes_connection(tmp_path: Any) -> None:
    path = tmp_path / "short.log"
    path.write_bytes(b"x" * 100)
    with open(path, "rb") as f:

        async def handler(req: memoryview, conn: ConnectionInfo) -> list[Any]:
            return [FileChunk(f, 50, 200)]

        async with running_server(handler) as server, await connect(server) as s:
            await s.send_all(frame(b"fetch"))
            assert await read_exactly(s, 4) == struct.pack(">i", 200)
            assert await read_exactly(s, 50) == b"x" * 50
            await assert_closed_by_peer(s)


async def test_client_not_reading_does_not_block_others() -> None:
    big = b"B" * (4 * 1024 * 1024)

    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        return [big] if bytes(f) == b"big" else [bytes(f)]

    async with running_server(handler, idle_timeout_ms=800) as server:
        async with await connect(server) as stuck, await connect(server) as other:
            await stuck.send_all(frame(b"big") * 4)  # ~16 MiB of responses nobody reads
            for i in range(20):
                await other.send_all(frame(b"ping%d" % i))
                assert await read_frame(other) == b"ping%d" % i
            # The stuck writer is dropped once it makes no progress for the idle timeout.
            await wait_until(lambda: server.connection_count < 2, timeout=10)


async def test_idle_connection_is_closed() -> None:
    async with running_server(echo, idle_timeout_ms=200) as server, await connect(server) as s:
        await s.send_all(frame(b"hi"))
        assert await read_frame(s) == b"hi"
        with trio.fail_after(5):
            await assert_closed_by_peer(s)


async def test_aclose_closes_connections_and_stops_accepting() -> None:
    async with trio.open_nursery() as nursery:
        from kafkapy.network.server import SocketServer

        server = SocketServer("127.0.0.1", 0, echo)
        port = await nursery.start(server.run)
        s = await trio.open_tcp_stream("127.0.0.1", port)
        await s.send_all(frame(b"x"))
        assert await read_frame(s) == b"x"
        assert server.connection_count == 1
        await server.aclose()
        assert server.connection_count == 0
        await assert_closed_by_peer(s)
        await s.aclose()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port)


async def test_handler_oserror_is_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        raise OSError(errno.EIO, "disk on fire")

    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(frame(b"x"))
        await assert_closed_by_peer(s)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


async def test_peer_reset_mid_response_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    import socket as stdsocket

    big = b"R" * (8 * 1024 * 1024)

    async def handler(f: memoryview, conn: ConnectionInfo) -> list[Any]:
        return [big]

    async with running_server(handler) as server:
        s = await connect(server)
        await s.send_all(frame(b"x"))
        await read_exactly(s, 1000)
        s.socket.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
        await s.aclose()  # RST while the server is still writing
        await wait_until(lambda: server.connection_count == 0)
        async with await connect(server) as s2:
            await s2.send_all(frame(b"y"))
            assert len(await read_frame(s2)) == len(big)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_small_chunks_are_coalesced_into_one_send(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafkapy.network.server import SocketServer

    sends: list[int] = []
    real_send_all = SocketServer._send_all

    async def counting_send_all(self: SocketServer, sock: Any, data: Any) -> None:
        sends.append(len(data))
        await real_send_all(self, sock, data)

    monkeypatch.setattr(SocketServer, "_send_all", counting_send_all)
    path = tmp_path / "seg"
    path.write_bytes(b"F" * 1000)
    with open(path, "rb") as f:
        responses = {
            b"small": [b"ab"] * 100,
            b"big": [b"h", b"X" * 200_000, b"t"],
            b"file": [b"h", FileChunk(f, 0, 1000), b"t"],
        }

        async def handler(req: memoryview, conn: ConnectionInfo) -> list[Any]:
            return responses[bytes(req)]

        async with running_server(handler) as server, await connect(server) as s:
            for name, expect_sends in [(b"small", [204]), (b"big", [5, 200_000, 1]), (b"file", [5, 1])]:
                sends.clear()
                await s.send_all(frame(name))
                got = await read_frame(s)
                assert got == b"".join(c if isinstance(c, bytes) else b"F" * 1000 for c in responses[name])
                assert sends == expect_sends, name

