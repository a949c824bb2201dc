"""API keys, the version ranges kafkapy advertises, and their request/response classes.

`ADVERTISED` is the one place that decides what ApiVersions tells clients; the server may
filter it (e.g. hide transaction APIs) and hand the filtered table to
`kafkapy.protocol.api_versions.build_api_versions_responses`.
"""
from __future__ import annotations

import enum
from typing import Any

import attrs

from kafkapy.protocol.messages import REQUESTS, RESPONSES


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    LEADER_AND_ISR = 4
    STOP_REPLICA = 5
    UPDATE_METADATA = 6
    CONTROLLED_SHUTDOWN = 7
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    ALTER_REPLICA_LOG_DIRS = 34
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    ELECT_LEADERS = 43
    INCREMENTAL_ALTER_CONFIGS = 44
    ALTER_PARTITION_REASSIGNMENTS = 45
    LIST_PARTITION_REASSIGNMENTS = 46
    OFFSET_DELETE = 47
    DESCRIBE_CLIENT_QUOTAS = 48
    ALTER_CLIENT_QUOTAS = 49
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51
    ALTER_PARTITION = 56
    UPDATE_FEATURES = 57
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    ALLOCATE_PRODUCER_IDS = 67


K = ApiKey
ADVERTISED: dict[int, tuple[int, int]] = {
    K.PRODUCE: (0, 10),
    K.FETCH: (0, 16),
    K.LIST_OFFSETS: (0, 9),
    K.METADATA: (0, 12),
    K.LEADER_AND_ISR: (0, 7),
    K.STOP_REPLICA: (0, 4),
    K.UPDATE_METADATA: (0, 8),
    K.CONTROLLED_SHUTDOWN: (0, 3),
    K.OFFSET_COMMIT: (0, 9),
    K.OFFSET_FETCH: (0, 9),
    K.FIND_COORDINATOR: (0, 6),
    K.JOIN_GROUP: (0, 9),
    K.HEARTBEAT: (0, 4),
    K.LEAVE_GROUP: (0, 5),
    K.SYNC_GROUP: (0, 5),
    K.DESCRIBE_GROUPS: (0, 5),
    K.LIST_GROUPS: (0, 5),
    K.SASL_HANDSHAKE: (0, 1),
    K.API_VERSIONS: (0, 3),
    K.CREATE_TOPICS: (0, 7),
    K.DELETE_TOPICS: (0, 6),
    K.DELETE_RECORDS: (0, 2),
    K.INIT_PRODUCER_ID: (0, 4),
    K.OFFSET_FOR_LEADER_EPOCH: (0, 4),
    K.ADD_PARTITIONS_TO_TXN: (0, 3),
    K.ADD_OFFSETS_TO_TXN: (0, 3),
    K.END_TXN: (0, 3),
    K.WRITE_TXN_MARKERS: (0, 1),
    K.TXN_OFFSET_COMMIT: (0, 3),
    K.DESCRIBE_CONFIGS: (0, 4),
    K.ALTER_CONFIGS: (0, 2),
    K.SASL_AUTHENTICATE: (0, 2),
    K.CREATE_PARTITIONS: (0, 3),
    K.DELETE_GROUPS: (0, 2),
    K.ELECT_LEADERS: (0, 2),
    K.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    K.ALTER_PARTITION_REASSIGNMENTS: (0, 0),
    K.LIST_PARTITION_REASSIGNMENTS: (0, 0),
    K.OFFSET_DELETE: (0, 0),
    K.DESCRIBE_CLUSTER: (0, 1),
    K.ALTER_PARTITION: (0, 3),
    K.ALLOCATE_PRODUCER_IDS: (0, 0),
    K.DESCRIBE_PRODUCERS: (0, 0),
    K.LIST_TRANSACTIONS: (0, 1),
    K.DESCRIBE_TRANSACTIONS: (0, 0),
}
"""API key -> (min, max) version kafkapy answers and lists in ApiVersions."""
del K


@attrs.frozen(slots=True)
class ApiSpec:
    """One API as kafkapy serves it. `flexible_from` is None when no version is flexible."""

    api_key: ApiKey
    name: str
    request_class: Any
    response_class: Any
    min_version: int
    max_version: int
    flexible_from: int | None

    def is_flexible(self, version: int) -> bool:
        return self.flexible_from is not None and version >= self.flexible_from


def _spec(key: int, lo: int, hi: int) -> ApiSpec:
    req = REQUESTS[key]
    if not req.MIN_VERSION <= lo <= hi <= req.MAX_VERSION:
        raise ValueError(f"{req.__name__}: advertised {lo}-{hi} outside the schema's versions")
    return ApiSpec(
        api_key=ApiKey(key),
        name=req.__name__[: -len("Request")],
        request_class=req,
        response_class=RESPONSES[key],
        min_version=lo,
        max_version=hi,
        flexible_from=req.FLEXIBLE_FROM,
    )


API_SPECS: dict[int, ApiSpec] = {k: _spec(k, lo, hi) for k, (lo, hi) in ADVERTISED.items()}
"""The APIs kafkapy supports, with the advertised version ranges."""

CODEC_SPECS: dict[int, ApiSpec] = {
    k: _spec(k, REQUESTS[k].MIN_VERSION, REQUESTS[k].MAX_VERSION) for k in REQUESTS
}
"""Every API the codec can encode/decode, at every schema version (a superset of
API_SPECS; used e.g. by tests and tools, never to decide what clients are offered)."""
