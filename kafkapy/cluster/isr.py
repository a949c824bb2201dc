"""Pure replication decisions: which followers fell out of sync, which may rejoin, and where a
follower truncates after the leader reports divergence or an out-of-range fetch.

Kept free of I/O and of the Partition object so the rules can be unit tested on plain numbers.
"""
from __future__ import annotations

from typing import Iterable, Protocol

import attrs

UNDEFINED = -1


@attrs.define(slots=True)
class FollowerView:
    """What the leader knows of one follower (from its fetches)."""

    broker_id: int
    log_end_offset: int
    last_caught_up_ms: int


def out_of_sync(isr: Iterable[int], leader_id: int, leader_leo: int,
                followers: dict[int, FollowerView], now_ms: int, max_lag_ms: int) -> list[int]:
    """ISR members (not the leader) that are behind and have not caught up for max_lag_ms.

    A follower exactly at the leader's end is never out of sync, even when idle: with no
    new data there is nothing to catch up on (Kafka's rule since KIP-16's removal of the
    message-count lag)."""
    out = []
    for r in isr:
        if r == leader_id:
            continue
        f = followers.get(r)
        if f is None:
            out.append(r)
            continue
        if f.log_end_offset != leader_leo and now_ms - f.last_caught_up_ms > max_lag_ms:
            out.append(r)
    return out


def may_join_isr(follower_leo: int, high_watermark: int, leader_epoch_start_offset: int) -> bool:
    """A follower rejoins once it holds everything committed and everything of the current
    leader epoch's start (KAFKA-7128: else a new leader could lose committed data)."""
    return follower_leo >= high_watermark and follower_leo >= leader_epoch_start_offset


def maximal_isr(isr: list[int], pending: list[int] | None) -> list[int]:
    """ISR used for the high watermark while an AlterPartition is in flight: an expansion
    counts at once (the new member must also be waited for), a shrink only once committed."""
    if pending is None:
        return list(isr)
    return list(isr) + [r for r in pending if r not in isr]


class EpochLookup(Protocol):
    def end_offset_for(self, requested_epoch: int,
                       log_end_offset: int | None = None) -> tuple[int, int]: ...


def divergence_truncation_offset(diverging_epoch: int, diverging_end_offset: int,
                                 cache: EpochLookup, log_end_offset: int,
                                 high_watermark: int) -> int:
    """Where a follower cuts its log when the leader says its epoch `diverging_epoch` ends at
    `diverging_end_offset`: the smaller of that and the follower's own end of the same epoch.

    If the follower's nearest epoch differs from the leader's, the cut is not final; the
    next fetch (with the follower's new last epoch) narrows it further. A follower with no
    epoch information falls back to its high watermark, the only offset known to be shared.
    """
    epoch, end = cache.end_offset_for(diverging_epoch, log_end_offset)
    if epoch == UNDEFINED or end == UNDEFINED:
        return min(high_watermark, log_end_offset)
    return max(0, min(diverging_end_offset, end, log_end_offset))


@attrs.frozen(slots=True)
class OutOfRangeAction:
    """Either truncate to `offset` (keeping the prefix) or restart the log empty at it."""

    truncate_fully: bool
    offset: int


def out_of_range_action(follower_leo: int, leader_leo: int,
                        leader_log_start: int) -> OutOfRangeAction:
    """OFFSET_OUT_OF_RANGE on a follower fetch: the follower is either ahead of the leader's
    end (cut back to it) or behind the leader's start (the prefix is gone: start over there)."""
    if leader_leo < follower_leo:
        return OutOfRangeAction(False, leader_leo)
    if follower_leo < leader_log_start:
        return OutOfRangeAction(True, leader_log_start)
    return OutOfRangeAction(False, follower_leo)
