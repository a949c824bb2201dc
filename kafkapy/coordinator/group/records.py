"""`__consumer_offsets` record keys and values, byte-compatible with Kafka.

Every key and value starts with an int16 schema version. Key versions 0/1 are offset
commits, key version 2 is group metadata; a null value is a tombstone. We write what a
Kafka 3.x broker with a current inter-broker protocol writes (offset key v1, offset value
v3 — or v1 when the client asked for an explicit retention —, group key v2, group value v3)
so that a log written by kafkapy can be read by Kafka and vice versa, and we read every
version Kafka has ever written (values v0-v4, flexible v4 included).
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import attrs

OFFSET_KEY_VERSION = 1
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
OFFSET_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


@attrs.define(slots=True, frozen=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@attrs.define(slots=True, frozen=True)
class GroupKey:
    group: str


@attrs.define(slots=True)
class OffsetValue:
    """One committed offset as stored (OffsetAndMetadata in Kafka)."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int | None = None


@attrs.define(slots=True)
class MemberRecord:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@attrs.define(slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: list[MemberRecord] = attrs.Factory(list)


# ---------------------------------------------------------------- writers


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return _I16.pack(len(b)) + b


def _nstr(s: str | None) -> bytes:
    return _I16.pack(-1) if s is None else _str(s)


def _bytes(b: bytes) -> bytes:
    return _I32.pack(len(b)) + bytes(b)


def encode_offset_key(group: str, topic: str, partition: int) -> bytes:
    return _I16.pack(OFFSET_KEY_VERSION) + _str(group) + _str(topic) + _I32.pack(partition)


def encode_group_key(group: str) -> bytes:
    return _I16.pack(GROUP_KEY_VERSION) + _str(group)


def encode_offset_value(value: OffsetValue) -> bytes:
    """v3 normally; v1 when an explicit expire timestamp must survive (OffsetCommit v2-v4)."""
    if value.expire_timestamp is not None:
        return (_I16.pack(OFFSET_VALUE_VERSION_WITH_EXPIRY) + _I64.pack(value.offset)
                + _str(value.metadata) + _I64.pack(value.commit_timestamp)
                + _I64.pack(value.expire_timestamp))
    return (_I16.pack(OFFSET_VALUE_VERSION) + _I64.pack(value.offset)
            + _I32.pack(value.leader_epoch) + _str(value.metadata)
            + _I64.pack(value.commit_timestamp))


def encode_group_value(value: GroupValue) -> bytes:
    parts = [_I16.pack(GROUP_VALUE_VERSION), _str(value.protocol_type),
             _I32.pack(value.generation), _nstr(value.protocol), _nstr(value.leader),
             _I64.pack(value.current_state_timestamp), _I32.pack(len(value.members))]
    for m in value.members:
        parts += [_str(m.member_id), _nstr(m.group_instance_id), _str(m.client_id),
                  _str(m.client_host), _I32.pack(m.rebalance_timeout_ms),
                  _I32.pack(m.session_timeout_ms), _bytes(m.subscription), _bytes(m.assignment)]
    return b"".join(parts)


# ---------------------------------------------------------------- readers


class RecordFormatError(ValueError):
    """A key or value in `__consumer_offsets` that no Kafka version writes."""


class _Reader:
    """Cursor over one key or value; `flexible` switches to compact encodings (v4)."""

    __slots__ = ("buf", "pos", "flexible")

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.flexible = False

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise RecordFormatError("truncated record")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def i16(self) -> int:
        return _I16.unpack(self._take(2))[0]

    def i32(self) -> int:
        return _I32.unpack(self._take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self._take(8))[0]

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise RecordFormatError("varint too long")

    def nstr(self) -> str | None:
        n = self.uvarint() - 1 if self.flexible else self.i16()
        if n < 0:
            return None
        return bytes(self._take(n)).decode("utf-8")

    def str(self) -> str:
        s = self.nstr()
        if s is None:
            raise RecordFormatError("null string in non-nullable field")
        return s

    def bytes(self) -> bytes:
        n = self.uvarint() - 1 if self.flexible else self.i32()
        if n < 0:
            raise RecordFormatError("null bytes in non-nullable field")
        return bytes(self._take(n))

    def array_len(self) -> int:
        n = self.uvarint() - 1 if self.flexible else self.i32()
        if n < 0:
            raise RecordFormatError("null array")
        return n

    def skip_tags(self) -> None:
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self._take(self.uvarint())


def decode_key(key: bytes | memoryview) -> OffsetKey | GroupKey | None:
    """OffsetKey (v0/v1), GroupKey (v2), or None for the newer record kinds Kafka's
    KIP-848 coordinator writes (versions 3+), which a classic coordinator ignores."""
    r = _Reader(key)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.str(), r.str(), r.i32())
    if version == 2:
        return GroupKey(r.str())
    if version > 2:
        return None
    raise RecordFormatError(f"unknown key version {version}")


def decode_offset_value(value: bytes | memoryview) -> OffsetValue:
    r = _Reader(value)
    version = r.i16()
    if not 0 <= version <= 4:
        raise RecordFormatError(f"unknown offset value version {version}")
    r.flexible = version >= 4
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.str()
    commit_ts = r.i64()
    expire_ts = r.i64() if version == 1 else None
    r.skip_tags()
    return OffsetValue(offset, leader_epoch, metadata, commit_ts,
                       None if expire_ts is None or expire_ts < 0 else expire_ts)


def decode_group_value(value: bytes | memoryview) -> GroupValue:
    r = _Reader(value)
    version = r.i16()
    if not 0 <= version <= 4:
        raise RecordFormatError(f"unknown group value version {version}")
    r.flexible = version >= 4
    protocol_type = r.str()
    generation = r.i32()
    protocol = r.nstr()
    leader = r.nstr()
    state_ts = r.i64() if version >= 2 else -1
    members = []
    for _ in range(r.array_len()):
        member_id = r.str()
        instance_id = r.nstr() if version >= 3 else None
        client_id = r.str()
        client_host = r.str()
        session_first = version < 1
        rebalance = -1 if session_first else r.i32()
        session = r.i32()
        if session_first:
            rebalance = session
        members.append(MemberRecord(member_id, instance_id, client_id, client_host,
                                    rebalance, session, r.bytes(), r.bytes()))
        r.skip_tags()
    r.skip_tags()
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, members)


# ---------------------------------------------------------------- replay


@attrs.define(slots=True)
class LoadedPartition:
    """Latest state of one offsets partition after replaying its log."""

    offsets: dict[str, dict[tuple[str, int], OffsetValue]] = attrs.Factory(dict)
    groups: dict[str, GroupValue] = attrs.Factory(dict)


def replay(records: Iterable[tuple[bytes | memoryview | None, bytes | memoryview | None]]
           ) -> LoadedPartition:
    """Apply (key, value) pairs in log order: latest wins, a null value deletes.

    Groups whose metadata was deleted but that still have offsets stay as offset-only
    entries (Kafka keeps their offsets too); unknown record kinds are skipped.
    """
    out = LoadedPartition()
    for key, value in records:
        apply_record(out, key, value)
    return out


def apply_record(out: LoadedPartition, key: bytes | memoryview | None,
                 value: bytes | memoryview | None) -> None:
    """One step of `replay`, for loaders that stream a log chunk by chunk."""
    if key is None:
        return
    try:
        k = decode_key(key)
    except RecordFormatError:
        return  # e.g. a transaction marker's control record
    if isinstance(k, OffsetKey):
        tp = (k.topic, k.partition)
        if value is None:
            group_offsets = out.offsets.get(k.group)
            if group_offsets is not None:
                group_offsets.pop(tp, None)
                if not group_offsets:
                    del out.offsets[k.group]
        else:
            out.offsets.setdefault(k.group, {})[tp] = decode_offset_value(value)
    elif isinstance(k, GroupKey):
        if value is None:
            out.groups.pop(k.group, None)
        else:
            out.groups[k.group] = decode_group_value(value)


def iter_key_values(batches: bytes) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record in a run of whole v2 batches, skipping control
    batches (transaction markers)."""
    from kafkapy.protocol.records import iter_batches

    for batch in iter_batches(batches):
        if not batch.info.is_control:
            for rec in batch.records:
                yield rec.key, rec.value


def build_batch(pairs: list[tuple[bytes, bytes | None]], timestamp_ms: int,
                compression: int = 0) -> bytes:
    """One v2 batch holding `pairs`, as the coordinator appends it
    (`compression` = offsets.topic.compression.codec)."""
    from kafkapy.protocol.records import Record, build_batch as _build

    return _build([Record(key=k, value=v, headers=[], timestamp=timestamp_ms) for k, v in pairs],
                  compression=compression)
