"""Shared pieces of the group coordinator: placement, configuration, write bookkeeping."""
from __future__ import annotations

from collections.abc import Callable

import attrs

from kafkapy.coordinator.group.group import GroupMetadata
from kafkapy.coordinator.group.records import OffsetValue
from kafkapy.protocol.errors import ErrorCode

E = ErrorCode

NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000


def java_string_hash(s: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed int32."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, num_partitions: int) -> int:
    """Kafka's Utils.abs(hashCode) % n, where abs(Integer.MIN_VALUE) is 0."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions


@attrs.define(slots=True)
class GroupConfig:
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    max_size: int = 2**31 - 1
    initial_rebalance_delay_ms: int = 3000
    offset_metadata_max_bytes: int = 4096
    num_partitions: int = 50
    offsets_retention_ms: int = 10080 * 60 * 1000


@attrs.define(slots=True)
class PartitionStatus:
    epoch: int
    loading: bool


@attrs.define(slots=True)
class PendingWrite:
    kind: str                       # "sync" | "static_join" | "commit" | "plain"
    group: GroupMetadata
    generation: int = -1
    member_id: str = ""
    waiter: object | None = None
    assignment: dict[str, bytes] = attrs.Factory(dict)
    revert: Callable[[], None] | None = None
    old_leader: str | None = None   # static rejoin: leader before the member id swap
    skip_assignment: bool = False   # static rejoin: client speaks JoinGroup v9+
    offsets: dict[tuple[str, int], OffsetValue] = attrs.Factory(dict)
    errors: dict[tuple[str, int], ErrorCode] = attrs.Factory(dict)


def store_group_error(error: ErrorCode) -> ErrorCode:
    """How a failed group-metadata append is reported to members (Kafka's mapping)."""
    if error in (E.UNKNOWN_TOPIC_OR_PARTITION, E.NOT_ENOUGH_REPLICAS,
                 E.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return E.COORDINATOR_NOT_AVAILABLE
    if error in (E.NOT_LEADER_OR_FOLLOWER, E.KAFKA_STORAGE_ERROR):
        return E.NOT_COORDINATOR
    if error is E.REQUEST_TIMED_OUT:
        return E.REBALANCE_IN_PROGRESS
    if error in (E.MESSAGE_TOO_LARGE, E.RECORD_LIST_TOO_LARGE, E.INVALID_FETCH_SIZE):
        return E.UNKNOWN_SERVER_ERROR
    return error
