"""Plain data that leaves the ZooKeeper edge: watch/session events, multi-op descriptions,
op results and the errors the Kafka-specific operations raise.

Consumers (controller, config manager, broker) read these from their trio channel; nothing
here touches kazoo, so the sans-I/O parts of kafkapy can build and match on them freely.
"""
from __future__ import annotations

import attrs

# Watch event kinds (ZooKeeper's EventType, minus NONE which is folded into session events).
CREATED = "CREATED"
DELETED = "DELETED"
CHANGED = "CHANGED"
CHILD = "CHILD"

# Session states (kazoo's simplified KazooState).
CONNECTED = "CONNECTED"
SUSPENDED = "SUSPENDED"
LOST = "LOST"

# Per-op error names (ZooKeeper's KeeperException codes that callers act on).
NODEEXISTS = "NODEEXISTS"
NONODE = "NONODE"
BADVERSION = "BADVERSION"
NOTEMPTY = "NOTEMPTY"
ROLLEDBACK = "ROLLEDBACK"  # another op of the same multi failed
OTHER = "OTHER"


@attrs.frozen(slots=True)
class ZkWatchEvent:
    """A one-shot watch fired: `kind` is CREATED/DELETED/CHANGED/CHILD; `path` has no chroot."""

    kind: str
    path: str


@attrs.frozen(slots=True)
class ZkSessionEvent:
    """Session state change. kazoo drops every watch on any disconnect, so on CONNECTED the
    consumer must re-read (and so re-arm) everything it watches, even if `new_session` is
    False. `new_session` True means ephemerals of the old session are gone (re-register)."""

    state: str
    session_id: int | None
    new_session: bool = False


@attrs.frozen(slots=True)
class CreateOp:
    path: str
    data: bytes = b""
    ephemeral: bool = False
    sequential: bool = False


@attrs.frozen(slots=True)
class SetDataOp:
    path: str
    data: bytes
    version: int = -1


@attrs.frozen(slots=True)
class DeleteOp:
    path: str
    version: int = -1


@attrs.frozen(slots=True)
class CheckOp:
    path: str
    version: int


ZkOp = CreateOp | SetDataOp | DeleteOp | CheckOp


@attrs.frozen(slots=True)
class OpResult:
    """Outcome of one op. `error` is None on success or one of NODEEXISTS/NONODE/BADVERSION/
    NOTEMPTY/ROLLEDBACK/OTHER; `version` is the node's new zkVersion after a create (0) or setData;
    `path` is the created path (sequential nodes get their suffix here)."""

    error: str | None = None
    version: int = -1
    path: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ZkClientError(Exception):
    """Base class of errors raised by KafkaZkClient's Kafka-specific operations."""


class ControllerMovedError(ZkClientError):
    """The `/controller_epoch` zkVersion check failed: another controller was elected after
    us, so this broker must stop acting as controller (resign)."""


class BrokerAlreadyRegisteredError(ZkClientError):
    """`/brokers/ids/<id>` is held by another live session."""


class ZkClientClosedError(ZkClientError):
    """The client was closed while an operation waited for a connection."""
