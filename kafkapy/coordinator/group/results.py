"""Plain-data inputs and outputs of the sans-I/O group coordinator.

The coordinator never awaits: it answers parked requests by listing `(waiter, result)`
pairs and asks the edge to persist records by listing `Append`s. The edge reports each
append's fate back with `GroupCoordinator.on_append_done`, which may answer more waiters —
in particular an offset commit is answered only from there, after the write succeeded.
"""
from __future__ import annotations

import attrs

from kafkapy.protocol.errors import ErrorCode


@attrs.define(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    # (member id, group instance id, metadata) — filled for the leader only
    members: list[tuple[str, str | None, bytes]] = attrs.Factory(list)


@attrs.define(slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@attrs.define(slots=True)
class CommitResult:
    """Per-partition errors of one OffsetCommit."""

    errors: dict[tuple[str, int], ErrorCode]


@attrs.define(slots=True)
class Append:
    """Write `records` (key, value-or-None) to `__consumer_offsets` partition `partition`."""

    write_id: int
    partition: int
    records: list[tuple[bytes, bytes | None]]


@attrs.define(slots=True)
class Outcome:
    completions: list[tuple[object, object]] = attrs.Factory(list)
    appends: list[Append] = attrs.Factory(list)

    def complete(self, waiter: object | None, result: object) -> None:
        if waiter is not None:
            self.completions.append((waiter, result))

    def extend(self, other: Outcome) -> Outcome:
        self.completions += other.completions
        self.appends += other.appends
        return self


@attrs.define(slots=True)
class MemberSummary:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@attrs.define(slots=True)
class GroupSummary:
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberSummary] = attrs.Factory(list)


@attrs.define(slots=True)
class GroupOverview:
    group_id: str
    protocol_type: str
    state: str


@attrs.define(slots=True)
class FetchedOffset:
    offset: int = -1
    leader_epoch: int = -1
    metadata: str = ""
    error: ErrorCode = ErrorCode.NONE
