"""ResponseQueue: deferred responses of one connection, in order, bounded (no sockets)."""
from __future__ import annotations

import pytest
import trio
import trio.testing

from kafkapy.network.pipeline import DeferredResponse, ResponseQueue

pytestmark = pytest.mark.unit


def _deferred(tag: str) -> DeferredResponse:
    async def wait() -> list[bytes]:
        return [tag.encode()]

    return DeferredResponse(wait)


async def test_oldest_first_and_room_after_pop() -> None:
    q = ResponseQueue(limit=2)
    a, b = _deferred("a"), _deferred("b")
    q.push(a)
    assert not q.full
    q.push(b)
    assert q.full and len(q) == 2
    with pytest.raises(RuntimeError):
        q.push(_deferred("c"))   # the reader must wait for room first
    assert q.oldest() is a
    q.pop_oldest()
    assert q.oldest() is b and not q.full


async def test_wait_for_room_blocks_until_the_oldest_is_written() -> None:
    q = ResponseQueue(limit=1)
    q.push(_deferred("a"))
    got_room = trio.Event()

    async def reader() -> None:
        await q.wait_for_room()
        got_room.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert not got_room.is_set()
        q.pop_oldest()
        with trio.fail_after(5):
            await got_room.wait()


async def test_wait_empty_and_wait_nonempty() -> None:
    q = ResponseQueue(limit=3)
    await q.wait_empty()  # empty already: returns at once
    seen: list[DeferredResponse] = []
    emptied = trio.Event()

    async def writer() -> None:
        for _ in range(2):
            seen.append(await q.wait_nonempty())
            await trio.testing.wait_all_tasks_blocked()
            q.pop_oldest()

    async def drainer() -> None:
        await q.wait_empty()
        emptied.set()

    a, b = _deferred("a"), _deferred("b")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        q.push(a)
        q.push(b)
        nursery.start_soon(drainer)
    assert seen == [a, b]
    assert emptied.is_set() and len(q) == 0


async def test_deferred_wait_returns_chunks() -> None:
    assert await _deferred("x").wait() == [b"x"]
