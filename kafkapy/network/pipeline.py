"""Pipelined responses of one connection: deferred answers written strictly in request order.

Kafka mutes a channel while one of its requests is in flight, so a producer with acks=all gets
one batch per replication round trip on each connection. kafkapy lets a connection go on
reading (and appending) Produce requests while earlier ones wait for their followers: a handler
that has done every ordered part of its work (the appends) returns a `DeferredResponse`, the
connection queues it and reads the next frame, and one writer task writes the queued
responses oldest first. At most `limit` responses are queued per connection, which bounds
what a client can pin (a queued response holds only its partition results, not the request
frame). 16 rather than a producer's usual 5 in flight: librdkafka without idempotence sends
far more, and on 2 shared cores a depth of 16 gave ~1.4x the single-message request rate of
5 with RF=3 acks=all (bench/bench_replication.py).

The queue only orders and counts; the socket server decides what may be pipelined.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio


@attrs.define(slots=True, eq=False)
class DeferredResponse:
    """A response that completes later (Produce acks=all waiting for the ISR).

    Returning one tells the server that the handler is done with the request frame (the
    frame's buffer may be reused) and that requests after it may be handled meanwhile.
    `wait()` returns the response chunks (or None: write nothing); raising closes the
    connection after every earlier response has been written.
    """

    wait: Callable[[], Awaitable["list[Any] | None"]]


@attrs.define(slots=True, eq=False)
class ResponseQueue:
    """Deferred responses of one connection in request order, at most `limit` of them."""

    limit: int = 16
    pending: deque[DeferredResponse] = attrs.field(factory=deque)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def __len__(self) -> int:
        return len(self.pending)

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.limit

    def push(self, response: DeferredResponse) -> None:
        """Queue behind every earlier response; the caller checked `full` first."""
        if self.full:
            raise RuntimeError(f"more than {self.limit} deferred responses on one connection")
        self.pending.append(response)
        self._notify()

    def oldest(self) -> DeferredResponse | None:
        return self.pending[0] if self.pending else None

    def pop_oldest(self) -> None:
        """The oldest response has been written (or dropped): make room behind it."""
        self.pending.popleft()
        self._notify()

    async def wait_for_room(self) -> None:
        while self.full:
            await self._changed.wait()

    async def wait_empty(self) -> None:
        """Until every queued response has been written."""
        while self.pending:
            await self._changed.wait()

    async def wait_nonempty(self) -> DeferredResponse:
        while not self.pending:
            await self._changed.wait()
        return self.pending[0]

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
