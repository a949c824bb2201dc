"""SocketServer pipelining over loopback: deferred responses keep request order.

Frames whose first two bytes are API key 0 (Produce) may be pipelined: their handler may return
a `DeferredResponse`, and the connection reads on while it completes. Responses must still go
out strictly in request order, a slow or failing one in the middle must neither reorder nor
let later responses overtake it, at most `max_pipelined_requests` may be deferred, and any
other API waits until every earlier response is written.
"""
from __future__ import annotations

import random
import struct
from typing import Any

import pytest
import trio

from kafkapy.network.pipeline import DeferredResponse
from kafkapy.network.server import ConnectionInfo
from network_helpers import assert_closed_by_peer, connect, frame, read_frame, running_server

pytestmark = pytest.mark.integration

PRODUCE = struct.pack(">h", 0)
METADATA = struct.pack(">h", 3)


def _seeded(name: str) -> random.Random:
    seed = random.randrange(2**32)
    print(f"{name}: seed={seed}")
    return random.Random(seed)


async def test_deferred_responses_written_in_request_order_while_later_ones_are_handled(
) -> None:
    rng = _seeded("deferred-order")
    handled: list[int] = []
    ready_at: dict[int, float] = {}
    most_pending = 0
    pending = 0

    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        nonlocal pending, most_pending
        i = int(bytes(f[2:]).split(b":")[0])
        handled.append(i)
        pending += 1
        most_pending = max(most_pending, pending)
        # Like a produce's high watermark, completion runs on its own clock from here.
        ready_at[i] = trio.current_time() + rng.choice([0, 0.001, 0.02, 0.05])

        async def wait() -> list[Any]:
            nonlocal pending
            await trio.sleep_until(ready_at[i])
            pending -= 1
            return [b"r", str(i).encode()]

        return DeferredResponse(wait)

    n = 60
    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(b"".join(frame(PRODUCE + b"%d:" % i + b"x" * rng.randrange(3000))
                                  for i in range(n)))
        for i in range(n):
            assert await read_frame(s) == b"r%d" % i
    assert handled == list(range(n))            # handled in arrival order
    assert 1 < most_pending <= 16                # really pipelined, and bounded
    by_completion = sorted(range(n), key=lambda i: ready_at[i])
    assert by_completion != list(range(n)), "no later request was ready before an earlier one"


async def test_at_most_max_pipelined_requests_are_deferred() -> None:
    release = trio.Event()
    handled: list[int] = []

    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        i = f[2]
        handled.append(i)

        async def wait() -> list[Any]:
            await release.wait()
            return [bytes([i])]

        return DeferredResponse(wait)

    async with running_server(handler, max_pipelined_requests=3) as server, \
            await connect(server) as s:
        await s.send_all(b"".join(frame(PRODUCE + bytes([i])) for i in range(7)))
        with trio.fail_after(5):
            while len(handled) < 3:
                await trio.sleep(0.005)
        await trio.sleep(0.1)   # give the server a chance to (wrongly) take a fourth
        assert handled == [0, 1, 2]
        release.set()
        for i in range(7):
            assert await read_frame(s) == bytes([i])
    assert handled == list(range(7))


async def test_slow_request_in_the_middle_holds_back_later_responses() -> None:
    ready_at: dict[bytes, float] = {}

    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        tag = bytes(f[2:])
        ready_at[tag] = trio.current_time() + (0.3 if tag == b"slow" else 0)

        async def wait() -> list[Any]:
            await trio.sleep_until(ready_at[tag])
            return [tag]

        return DeferredResponse(wait)

    async with running_server(handler) as server, await connect(server) as s:
        tags = [b"a", b"slow", b"c", b"d"]
        await s.send_all(b"".join(frame(PRODUCE + t) for t in tags))
        assert await read_frame(s) == b"a"
        assert await read_frame(s) == b"slow"
        assert trio.current_time() >= ready_at[b"slow"]
        assert [await read_frame(s) for _ in range(2)] == [b"c", b"d"]
    assert ready_at[b"c"] < ready_at[b"slow"] and ready_at[b"d"] < ready_at[b"slow"]


async def test_failing_deferred_closes_after_earlier_responses_never_reorders() -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        tag = bytes(f[2:])

        async def wait() -> list[Any]:
            if tag == b"boom":
                await trio.sleep(0.05)
                raise ValueError("deferred part failed")
            return [tag]

        return DeferredResponse(wait)

    async with running_server(handler) as server:
        async with await connect(server) as s:
            await s.send_all(b"".join(frame(PRODUCE + t) for t in (b"a", b"b", b"boom", b"z")))
            assert await read_frame(s) == b"a"
            assert await read_frame(s) == b"b"
            # "z" completed at once, but must never be written before (or instead of) "boom".
            await assert_closed_by_peer(s)
        async with await connect(server) as s:   # the server itself is fine
            await s.send_all(frame(PRODUCE + b"next"))
            assert await read_frame(s) == b"next"


async def test_other_apis_wait_until_every_earlier_response_is_written() -> None:
    release = trio.Event()
    written_before_metadata: list[int] = []
    done: list[int] = []

    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        if bytes(f[:2]) == METADATA:
            written_before_metadata.append(len(done))
            return [b"metadata"]
        i = f[2]

        async def wait() -> list[Any]:
            await release.wait()
            done.append(i)
            return [bytes([i])]

        return DeferredResponse(wait)

    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(frame(PRODUCE + b"\x00") + frame(PRODUCE + b"\x01")
                         + frame(METADATA + b"?") + frame(PRODUCE + b"\x02"))
        await trio.sleep(0.1)
        assert written_before_metadata == []   # not handled while produces are pending
        release.set()
        assert [await read_frame(s) for _ in range(4)] == [b"\x00", b"\x01", b"metadata",
                                                           b"\x02"]
    assert written_before_metadata == [2]


async def test_immediate_response_after_deferred_ones_keeps_its_place() -> None:
    """acks=1 after acks=all on one connection: the immediate answer waits its turn."""
    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        tag = bytes(f[2:])
        if tag.startswith(b"now"):
            return [f[2:]]   # a view of the frame: must stay valid until written

        async def wait() -> list[Any]:
            await trio.sleep(0.05)
            return [tag]

        return DeferredResponse(wait)

    async with running_server(handler) as server, await connect(server) as s:
        tags = [b"d1", b"now1", b"d2", b"d3", b"now2"]
        await s.send_all(b"".join(frame(PRODUCE + t) for t in tags))
        assert [await read_frame(s) for _ in tags] == tags


async def test_half_closed_client_still_gets_owed_responses() -> None:
    async def handler(f: memoryview, conn: ConnectionInfo) -> Any:
        tag = bytes(f[2:])

        async def wait() -> list[Any]:
            await trio.sleep(0.05)
            return [tag]

        return DeferredResponse(wait)

    async with running_server(handler) as server, await connect(server) as s:
        await s.send_all(b"".join(frame(PRODUCE + t) for t in (b"1", b"2", b"3")))
        await s.send_eof()
        assert [await read_frame(s) for _ in range(3)] == [b"1", b"2", b"3"]
        await assert_closed_by_peer(s)
