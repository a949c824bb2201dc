"""Idempotent-producer state per partition: Kafka's sequence rules and `.snapshot` files.

Per producer id we keep the epoch and the metadata of its last 5 batches, so a retried
batch (same epoch, same first/last sequence) is answered with its original offsets
instead of being written twice.  State is rebuilt on load from the newest snapshot plus
a replay of the batch headers after it.
"""
from __future__ import annotations

import collections
import os
import struct
from typing import Iterable

import attrs

from kafkapy import native
from kafkapy.log.checkpoint import write_atomic
from kafkapy.protocol.errors import ErrorCode, KafkaError

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
NO_EPOCH = -1
SNAPSHOT_SUFFIX = ".snapshot"
_SNAP_HEAD = struct.Struct(">hIi")
_SNAP_ENTRY = struct.Struct(">qhiqiqiq")


def increment_seq(seq: int, delta: int) -> int:
    """seq + delta on Kafka's int32 sequence ring (wraps after 2^31-1 to 0)."""
    return seq + delta if seq <= INT32_MAX - delta else seq + delta - INT32_MAX - 1


def decrement_seq(seq: int, delta: int) -> int:
    return seq - delta if seq >= delta else INT32_MAX - (delta - seq) + 1


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


@attrs.define(slots=True)
class BatchMetadata:
    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_seq(self) -> int:
        return decrement_seq(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@attrs.define(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int = NO_EPOCH
    batches: collections.deque = attrs.Factory(lambda: collections.deque(maxlen=NUM_BATCHES_TO_RETAIN))
    coordinator_epoch: int = -1
    last_timestamp: int = -1
    current_txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def last_data_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def maybe_update_epoch(self, epoch: int) -> None:
        if epoch != self.producer_epoch:
            self.batches.clear()
            self.producer_epoch = epoch

    def add_batch(self, epoch: int, last_seq: int, last_offset: int, offset_delta: int, ts: int) -> None:
        self.maybe_update_epoch(epoch)
        self.batches.append(BatchMetadata(last_seq, last_offset, offset_delta, ts))
        self.last_timestamp = ts

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.producer_epoch:
            return None
        for b in self.batches:
            if b.first_seq == first_seq and b.last_seq == last_seq:
                return b
        return None

    def copy(self) -> "ProducerStateEntry":
        return ProducerStateEntry(self.producer_id, self.producer_epoch,
                                  collections.deque(self.batches, maxlen=NUM_BATCHES_TO_RETAIN),
                                  self.coordinator_epoch, self.last_timestamp,
                                  self.current_txn_first_offset)


@attrs.frozen(slots=True)
class ProducerBatch:
    """The producer-relevant fields of one batch, with offsets already assigned."""

    producer_id: int
    producer_epoch: int
    base_sequence: int
    first_offset: int
    last_offset: int
    max_timestamp: int
    is_transactional: bool = False
    is_control: bool = False
    is_abort: bool = False  # control batches: ABORT (True) or COMMIT marker


@attrs.frozen(slots=True)
class CompletedTxn:
    """A transaction ended by a marker at `last_offset`."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


class ProducerStateManager:
    """Producer id -> ProducerStateEntry for one partition, plus its snapshots."""

    __slots__ = ("dir", "producers", "map_end_offset")

    def __init__(self, dir_path: str) -> None:
        self.dir = dir_path
        self.producers: dict[int, ProducerStateEntry] = {}
        self.map_end_offset = 0

    # ---- validation and update ---------------------------------------------------
    def prepare(self, batches: Iterable[ProducerBatch], from_client: bool
                ) -> tuple[dict[int, ProducerStateEntry], BatchMetadata | None, list[CompletedTxn]]:
        """Check `batches` against the current state without changing it.

        Returns the updated entries to `commit` after the write, the duplicate's
        metadata when a client retried a batch that is already in the log, and the
        transactions the batches' markers complete.  Raises KafkaError
        INVALID_PRODUCER_EPOCH / OUT_OF_ORDER_SEQUENCE_NUMBER (client appends only;
        replicated data is taken as the leader wrote it)."""
        updates: dict[int, ProducerStateEntry] = {}
        completed: list[CompletedTxn] = []
        for b in batches:
            if b.producer_id < 0:
                continue
            current = self.producers.get(b.producer_id)
            if from_client and current is not None and not b.is_control:
                last_seq = increment_seq(b.base_sequence, b.last_offset - b.first_offset)
                dup = current.find_duplicate(b.producer_epoch, b.base_sequence, last_seq)
                if dup is not None:
                    return updates, dup, completed
            entry = updates.get(b.producer_id)
            if entry is None:
                entry = current.copy() if current is not None else ProducerStateEntry(b.producer_id)
                updates[b.producer_id] = entry
            done = _apply(entry, b, from_client)
            if done is not None:
                completed.append(done)
        return updates, None, completed

    def commit(self, updates: dict[int, ProducerStateEntry], end_offset: int) -> None:
        self.producers.update(updates)
        self.map_end_offset = end_offset

    def update_from_batch(self, b: ProducerBatch) -> CompletedTxn | None:
        """Replay one batch from the log (recovery, follower): no checks."""
        done = None
        if b.producer_id >= 0:
            entry = self.producers.get(b.producer_id)
            if entry is None:
                entry = self.producers[b.producer_id] = ProducerStateEntry(b.producer_id)
            done = _apply(entry, b, False)
        self.map_end_offset = b.last_offset + 1
        return done

    def last_stable_offset_after(self, txn: CompletedTxn) -> int:
        """LSO once `txn` completed: first offset of another producer's open txn."""
        offs = [e.current_txn_first_offset for pid, e in self.producers.items()
                if pid != txn.producer_id and e.current_txn_first_offset >= 0]
        return min(offs) if offs else txn.last_offset + 1

    def first_unstable_offset(self) -> int | None:
        offs = [e.current_txn_first_offset for e in self.producers.values() if e.current_txn_first_offset >= 0]
        return min(offs) if offs else None

    def remove_expired(self, now_ms: int, expiration_ms: int) -> None:
        """Forget producers idle longer than producer.id.expiration.ms (no open txn)."""
        dead = [pid for pid, e in self.producers.items()
                if e.current_txn_first_offset < 0 and now_ms - e.last_timestamp >= expiration_ms]
        for pid in dead:
            del self.producers[pid]

    def clear(self) -> None:
        self.producers.clear()

    # ---- snapshots ---------------------------------------------------------------
    def snapshot_path(self, offset: int) -> str:
        return os.path.join(self.dir, f"{offset:020d}{SNAPSHOT_SUFFIX}")

    def snapshot_offsets(self) -> list[int]:
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(SNAPSHOT_SUFFIX) and name[:-len(SNAPSHOT_SUFFIX)].isdigit():
                out.append(int(name[:-len(SNAPSHOT_SUFFIX)]))
        return sorted(out)

    def take_snapshot(self, offset: int | None = None) -> None:
        """Write the state as of `offset` (default map_end_offset) to `<offset>.snapshot`."""
        off = self.map_end_offset if offset is None else offset
        body = bytearray(struct.pack(">i", len(self.producers)))
        for e in self.producers.values():
            last = e.batches[-1] if e.batches else None
            body += _SNAP_ENTRY.pack(e.producer_id, e.producer_epoch, last.last_seq if last else -1,
                                     last.last_offset if last else -1, last.offset_delta if last else 0,
                                     e.last_timestamp, e.coordinator_epoch, e.current_txn_first_offset)
        crc = native.crc32c(bytes(body))
        write_atomic(self.snapshot_path(off), struct.pack(">hI", 1, crc) + bytes(body))

    def load_snapshot(self, offset: int) -> bool:
        """Replace the state with `<offset>.snapshot`; a corrupt file is deleted and
        False returned so the caller replays from further back."""
        path = self.snapshot_path(offset)
        try:
            with open(path, "rb") as f:
                data = f.read()
            producers = decode_snapshot(data)
        except (OSError, ValueError, struct.error):
            self.delete_snapshot(offset)
            return False
        self.producers = {e.producer_id: e for e in producers}
        self.map_end_offset = offset
        return True

    def delete_snapshot(self, offset: int) -> None:
        try:
            os.unlink(self.snapshot_path(offset))
        except FileNotFoundError:
            pass

    def delete_all_snapshots(self) -> None:
        for o in self.snapshot_offsets():
            self.delete_snapshot(o)

    def delete_snapshots_outside(self, low: int, high: int) -> None:
        """Remove snapshots above `high` (truncated away) and below `low` (retained
        away, keeping the newest one at or below `low`)."""
        offs = self.snapshot_offsets()
        below = [o for o in offs if o <= low]
        for o in offs:
            if o > high or (o < low and below and o != below[-1]):
                self.delete_snapshot(o)


def decode_snapshot(data: bytes) -> list[ProducerStateEntry]:
    """Parse a snapshot (version 1, CRC-32C of everything after the crc field)."""
    if len(data) < _SNAP_HEAD.size:
        raise ValueError("snapshot too short")
    version, crc, count = _SNAP_HEAD.unpack_from(data, 0)
    if version != 1:
        raise ValueError(f"snapshot version {version}")
    if native.crc32c(data[6:]) != crc:
        raise ValueError("snapshot crc mismatch")
    if count < 0 or len(data) != _SNAP_HEAD.size + count * _SNAP_ENTRY.size:
        raise ValueError("snapshot length mismatch")
    out = []
    for pid, epoch, last_seq, last_off, delta, ts, coord, txn_first in _SNAP_ENTRY.iter_unpack(
            data[_SNAP_HEAD.size:]):
        e = ProducerStateEntry(pid, epoch, coordinator_epoch=coord, last_timestamp=ts,
                               current_txn_first_offset=txn_first)
        if last_off >= 0:
            e.batches.append(BatchMetadata(last_seq, last_off, delta, ts))
        out.append(e)
    return out


def _apply(entry: ProducerStateEntry, b: ProducerBatch, from_client: bool) -> CompletedTxn | None:
    """Kafka's ProducerAppendInfo rules for one batch onto `entry` (mutated); returns
    the transaction a marker completes."""
    if b.producer_epoch < entry.producer_epoch and from_client:
        raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                         f"epoch {b.producer_epoch} is older than {entry.producer_epoch} "
                         f"for producer {b.producer_id}")
    if b.is_control:
        done = None
        if entry.current_txn_first_offset >= 0:
            done = CompletedTxn(b.producer_id, entry.current_txn_first_offset, b.last_offset, b.is_abort)
        entry.maybe_update_epoch(b.producer_epoch)
        entry.current_txn_first_offset = -1
        entry.last_timestamp = b.max_timestamp
        return done
    if from_client:
        if b.producer_epoch != entry.producer_epoch:
            if b.base_sequence != 0 and entry.producer_epoch != NO_EPOCH:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {b.producer_id} new epoch {b.producer_epoch} must start "
                                 f"at sequence 0, got {b.base_sequence}")
        elif entry.producer_epoch != NO_EPOCH and not in_sequence(entry.last_seq, b.base_sequence):
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {b.producer_id} expected sequence "
                             f"{increment_seq(entry.last_seq, 1)}, got {b.base_sequence}")
    delta = b.last_offset - b.first_offset
    entry.add_batch(b.producer_epoch, increment_seq(b.base_sequence, delta), b.last_offset, delta,
                    b.max_timestamp)
    if b.is_transactional and entry.current_txn_first_offset < 0:
        entry.current_txn_first_offset = b.first_offset
    return None
