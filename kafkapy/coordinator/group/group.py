"""Classic-protocol group state: members, generation, protocol vote, committed offsets.

Plain data plus the bookkeeping rules of Kafka's GroupMetadata; decisions about *when* to
rebalance live in `coordinator.py`. Parked requests are opaque `waiter` objects owned by
the edge; this module only remembers which member holds which waiter.
"""
from __future__ import annotations

import enum
import struct
import uuid
from collections import Counter

import attrs

from kafkapy.coordinator.group.records import GroupValue, MemberRecord, OffsetValue

CONSUMER_PROTOCOL_TYPE = "consumer"


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


# Kafka's allowed predecessor states; a transition outside them is a logic error.
_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.DEAD: frozenset(GroupState),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
}


@attrs.define(slots=True, eq=False)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    awaiting_join: object | None = None   # waiter of a parked JoinGroup
    awaiting_sync: object | None = None   # waiter of a parked SyncGroup
    is_new: bool = False
    heartbeat_deadline: int | None = None  # absolute ms; member is removed after it

    def metadata(self, protocol: str) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        raise KeyError(f"member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        """Same protocols, same order, same metadata bytes."""
        return len(protocols) == len(self.protocols) and all(
            a[0] == b[0] and bytes(a[1]) == bytes(b[1]) for a, b in zip(protocols, self.protocols))

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")


@attrs.define(slots=True, eq=False)
class GroupMetadata:
    group_id: str
    state: GroupState = GroupState.EMPTY
    state_timestamp: int = -1             # when the current state was entered (ms)
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, MemberMetadata] = attrs.Factory(dict)
    static_members: dict[str, str] = attrs.Factory(dict)     # instance id -> member id
    pending_members: dict[str, int] = attrs.Factory(dict)    # member id -> expiry deadline
    pending_sync: set[str] = attrs.Factory(set)
    num_awaiting_join: int = 0
    new_member_added: bool = False
    supported_protocols: Counter[str] = attrs.Factory(Counter)
    subscribed_topics: frozenset[str] | None = None
    # rebalance timers (absolute ms, None = not armed)
    join_deadline: int | None = None      # PreparingRebalance completes at the latest here
    join_max_deadline: int | None = None  # initial-delay extensions never pass this
    sync_deadline: int | None = None      # CompletingRebalance/Stable pending-sync expiry
    initial_delay_remaining_ms: int | None = None  # set while the empty-group delay runs
    offsets: dict[tuple[str, int], OffsetValue] = attrs.Factory(dict)
    # log offset of the record behind each cached offset: a slower append of an older
    # commit must not overwrite a newer one
    offset_positions: dict[tuple[str, int], int] = attrs.Factory(dict)
    pending_offset_commits: Counter[tuple[str, int]] = attrs.Factory(Counter)

    # ------------------------------------------------------------ state

    def is_state(self, state: GroupState) -> bool:
        return self.state is state

    def transition(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise AssertionError(f"group {self.group_id}: illegal transition "
                                 f"{self.state.value} -> {state.value}")
        self.state = state
        self.state_timestamp = now_ms

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS[GroupState.PREPARING_REBALANCE]

    # ------------------------------------------------------------ members

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def is_pending(self, member_id: str) -> bool:
        return member_id in self.pending_members

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def generate_member_id(self, client_id: str, instance_id: str | None) -> str:
        """`clientId-<uuid>` (or `instanceId-<uuid>` for static members), as Kafka does."""
        return f"{instance_id if instance_id is not None else client_id}-{uuid.uuid4()}"

    def add(self, member: MemberMetadata, waiter: object | None) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        self.pending_members.pop(member.member_id, None)
        self.supported_protocols.update(name for name, _ in member.protocols)
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        member.awaiting_join = waiter
        if waiter is not None:
            self.num_awaiting_join += 1
        if self.leader_id is None:
            self.leader_id = member.member_id

    def remove(self, member_id: str) -> MemberMetadata | None:
        self.pending_members.pop(member_id, None)
        self.pending_sync.discard(member_id)
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        self.supported_protocols += Counter()  # drop zero counts
        if member.awaiting_join is not None:
            self.num_awaiting_join -= 1
        if member.group_instance_id is not None and \
                self.static_members.get(member.group_instance_id) == member_id:
            del self.static_members[member.group_instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        return member

    def update_member(self, member: MemberMetadata, protocols: list[tuple[str, bytes]],
                      rebalance_timeout_ms: int, session_timeout_ms: int,
                      waiter: object | None) -> None:
        self.supported_protocols.subtract(name for name, _ in member.protocols)
        self.supported_protocols.update(name for name, _ in protocols)
        self.supported_protocols += Counter()
        member.protocols = protocols
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        if waiter is not None and member.awaiting_join is None:
            self.num_awaiting_join += 1
        elif waiter is None and member.awaiting_join is not None:
            self.num_awaiting_join -= 1
        member.awaiting_join = waiter

    def take_join_waiter(self, member: MemberMetadata) -> object | None:
        """Detach the member's parked JoinGroup so the caller can complete it."""
        waiter = member.awaiting_join
        if waiter is not None:
            member.awaiting_join = None
            self.num_awaiting_join -= 1
        return waiter

    def take_sync_waiter(self, member: MemberMetadata) -> object | None:
        waiter = member.awaiting_sync
        member.awaiting_sync = None
        return waiter

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str
                              ) -> tuple[MemberMetadata, object | None, object | None]:
        """Move a static member to a fresh member id; returns it and the old id's waiters
        (to be answered FENCED_INSTANCE_ID)."""
        member = self.members.pop(old_id)
        old_join = self.take_join_waiter(member)
        old_sync = self.take_sync_waiter(member)
        member.member_id = new_id
        self.members[new_id] = member
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        self.static_members[instance_id] = new_id
        return member, old_join, old_sync

    def not_yet_rejoined(self) -> list[MemberMetadata]:
        return [m for m in self.members.values() if m.awaiting_join is None]

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.num_awaiting_join and not self.pending_members

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else hand leadership to any rejoined member."""
        if self.leader_id is None:
            return False
        leader = self.members.get(self.leader_id)
        if leader is not None and leader.awaiting_join is not None:
            return True
        for m in self.members.values():
            if m.awaiting_join is not None:
                self.leader_id = m.member_id
                return True
        return False

    # ------------------------------------------------------------ protocols

    def supports_protocols(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        names = [name for name, _ in protocols]
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and any(
            self.supported_protocols[n] == len(self.members) for n in names)

    def select_protocol(self) -> str:
        """Each member votes for its favourite protocol that all members support."""
        candidates = {n for n, c in self.supported_protocols.items() if c == len(self.members)}
        if not candidates:
            raise ValueError(f"group {self.group_id}: no protocol common to all members")
        votes = Counter(m.vote(candidates) for m in self.members.values())
        best = max(votes.values())
        first = next(iter(self.members.values()))
        for name, _ in first.protocols:  # deterministic tie-break: first member's order
            if votes.get(name) == best:
                return name
        return max(votes, key=votes.__getitem__)

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition(GroupState.EMPTY, now_ms)

    def current_member_metadata(self) -> list[tuple[str, str | None, bytes]]:
        assert self.protocol_name is not None
        return [(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                for m in self.members.values()]

    def _compute_subscribed_topics(self) -> frozenset[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return None
        if not self.members:
            return frozenset()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for m in self.members.values():
            parsed = parse_consumer_subscription(m.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return frozenset(topics)

    def is_subscribed_to(self, topic: str) -> bool:
        return self.subscribed_topics is not None and topic in self.subscribed_topics

    # ------------------------------------------------------------ persistence

    def to_value(self, assignments: dict[str, bytes]) -> GroupValue:
        members = [MemberRecord(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                m.rebalance_timeout_ms, m.session_timeout_ms,
                                m.metadata(self.protocol_name) if self.protocol_name else b"",
                                assignments.get(m.member_id, b""))
                   for m in self.members.values()]
        return GroupValue(self.protocol_type or "", self.generation_id, self.protocol_name,
                          self.leader_id, self.state_timestamp, members)

    @classmethod
    def from_value(cls, group_id: str, value: GroupValue, now_ms: int) -> GroupMetadata:
        """Rebuild a loaded group: Empty without members, Stable otherwise."""
        g = cls(group_id)
        g.generation_id = value.generation
        g.protocol_type = value.protocol_type or None
        g.protocol_name = value.protocol
        g.leader_id = value.leader
        for rec in value.members:
            protocols = [(value.protocol, rec.subscription)] if value.protocol else []
            m = MemberMetadata(rec.member_id, rec.group_instance_id, rec.client_id,
                               rec.client_host, rec.rebalance_timeout_ms,
                               rec.session_timeout_ms, value.protocol_type, protocols,
                               assignment=rec.assignment)
            g.members[m.member_id] = m
            g.supported_protocols.update(n for n, _ in protocols)
            if m.group_instance_id is not None:
                g.static_members[m.group_instance_id] = m.member_id
        g.state = GroupState.STABLE if g.members else GroupState.EMPTY
        g.state_timestamp = value.current_state_timestamp if value.current_state_timestamp >= 0 \
            else now_ms
        g.subscribed_topics = g._compute_subscribed_topics()
        return g


def parse_consumer_subscription(data: bytes) -> list[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version starts with version + topics);
    None when the bytes are not a consumer subscription."""
    try:
        mv = memoryview(data)
        (version,) = struct.unpack_from(">h", mv, 0)
        if version < 0:
            return None
        (n,) = struct.unpack_from(">i", mv, 2)
        pos, topics = 6, []
        for _ in range(n):
            (ln,) = struct.unpack_from(">h", mv, pos)
            if ln < 0 or pos + 2 + ln > len(mv):
                return None
            topics.append(bytes(mv[pos + 2:pos + 2 + ln]).decode("utf-8"))
            pos += 2 + ln
        return topics
    except (struct.error, UnicodeDecodeError):
        return None
