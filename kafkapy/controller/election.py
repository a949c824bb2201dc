"""Leader election strategies (Kafka's Election.scala, §3.5 of the reference). Pure.

Each strategy scans the assignment in order (first replica = preferred leader) and returns the
new leader and ISR, or None when no replica qualifies (the partition then stays offline with
leader -1). Never elects a replica outside the ISR unless unclean election is allowed.
"""
from __future__ import annotations

from typing import Collection

import attrs

from kafkapy.zk.data import LEADER_RECOVERY_RECOVERED, LEADER_RECOVERY_RECOVERING


@attrs.frozen(slots=True)
class ElectionChoice:
    leader: int
    isr: list[int]
    leader_recovery_state: int = LEADER_RECOVERY_RECOVERED

    @property
    def unclean(self) -> bool:
        return self.leader_recovery_state == LEADER_RECOVERY_RECOVERING


def offline_election(assignment: list[int], isr: list[int], live: Collection[int],
                     unclean_allowed: bool) -> ElectionChoice | None:
    """Failures and joins: first live ISR member; else, if allowed, first live replica with
    ISR [leader] and RECOVERING (KIP-704) — that is the data-losing unclean election."""
    live_isr = [r for r in isr if r in live]
    for replica in assignment:
        if replica in live and replica in isr:
            return ElectionChoice(replica, live_isr)
    if unclean_allowed:
        for replica in assignment:
            if replica in live:
                return ElectionChoice(replica, [replica], LEADER_RECOVERY_RECOVERING)
    return None


def reassign_election(target: list[int], isr: list[int],
                      live: Collection[int]) -> ElectionChoice | None:
    """Reassignment: first target replica that is live and in the ISR; ISR kept."""
    for replica in target:
        if replica in live and replica in isr:
            return ElectionChoice(replica, list(isr))
    return None


def preferred_election(assignment: list[int], isr: list[int],
                       live: Collection[int]) -> ElectionChoice | None:
    """Preferred replica: only assignment[0], and only if live and in the ISR."""
    if assignment and assignment[0] in live and assignment[0] in isr:
        return ElectionChoice(assignment[0], list(isr))
    return None


def controlled_shutdown_election(assignment: list[int], isr: list[int],
                                 live_or_shutting_down: Collection[int],
                                 shutting_down: Collection[int]) -> ElectionChoice | None:
    """Controlled shutdown: first live ISR member not shutting down; ISR minus the brokers
    shutting down."""
    new_isr = [r for r in isr if r not in shutting_down]
    for replica in assignment:
        if replica in live_or_shutting_down and replica in isr and replica not in shutting_down:
            return ElectionChoice(replica, new_isr)
    return None
