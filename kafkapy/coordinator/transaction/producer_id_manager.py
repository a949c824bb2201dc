"""Hands out producer ids from blocks reserved in ZooKeeper.

A block of 1000 ids is claimed with a conditional write of `/latest_producer_id_block`
(Kafka's ZooKeeper-mode scheme), so ids are unique across brokers and restarts. The next
block is claimed before the current one runs out, off the request path where possible.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import trio

from kafkapy.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

PREFETCH_REMAINING = 100


class ProducerIdManager:
    def __init__(self, broker_id: int, allocate_block: Callable[[int], Awaitable[Any]]) -> None:
        """`allocate_block(broker_id)` returns a block with `block_start`/`block_end`."""
        self._broker_id = broker_id
        self._allocate = allocate_block
        self._next = 0
        self._end = -1        # inclusive end of the current block; -1 = none yet
        self._lock = trio.Lock()

    async def _claim(self) -> None:
        try:
            block = await self._allocate(self._broker_id)
        except KafkaError:
            raise
        except Exception as e:  # ZooKeeper unreachable: the client retries this error
            log.warning("could not allocate a producer id block: %s", e)
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, str(e)) from e
        self._next, self._end = block.block_start, block.block_end
        log.info("claimed producer id block %d-%d", block.block_start, block.block_end)

    async def generate_producer_id(self) -> int:
        async with self._lock:
            if self._next > self._end:
                await self._claim()
            pid = self._next
            self._next += 1
            return pid
