"""Commit audit (kafkapy-only, beyond Kafka): compare what a group commits with what its
members were actually served by Fetch.

Kafka trusts commits blindly; a consumer that commits past what it read silently skips
events, and one that commits backwards makes its successor read events twice. Partition
leaders record, per client identity `(client id, host)` and partition, the served end offset
(next offset after the last record returned); the coordinator checks each successful commit:

* **beyond_served**: committed offset > the highest served end offset of that partition over
  every identity seen in the group (members, past members and committers). Group-wide rather
  than per client because a partition moves between members in a rebalance and clients often
  share a client id; this can only hide a finding, never invent one. A commit at or below
  `floor` (0, or a known log start offset) or at or below the previous commit skips nothing
  new, served or not: clients such as kafka-python commit the position of every assigned
  partition, including ones they could not fetch yet (e.g. while its leader fails over).
* **backwards**: committed offset < the offset committed before it for that partition.

Served tables of other brokers arrive late (they are published periodically), so a commit that
looks beyond-served is only flagged after `grace_ms` if it still looks that way. Sans-I/O: the
caller supplies clocks and served tables and does the logging and publishing.
"""
from __future__ import annotations

import json
from collections import deque
from typing import Iterable

import attrs

Identity = tuple[str, str]  # (client id, host as DescribeGroups shows it)
TP = tuple[str, int]

BEYOND_SERVED = "beyond_served"
BACKWARDS = "backwards"
MAX_FINDINGS_PER_GROUP = 200


def normalize_host(host: str) -> str:
    """Kafka shows hosts as InetAddress.toString() ("/1.2.3.4"); use one spelling everywhere."""
    host = host or ""
    return host if host.startswith("/") else "/" + host


@attrs.define(slots=True)
class ServedTable:
    """Highest served end offset per identity and partition (one broker's Fetch answers)."""

    entries: dict[Identity, dict[TP, int]] = attrs.Factory(dict)
    version: int = 0  # bumped on every raise, so a publisher knows when to write

    def record(self, client_id: str, host: str, tp: TP, end_offset: int) -> None:
        per = self.entries.setdefault((client_id, normalize_host(host)), {})
        if per.get(tp, -1) < end_offset:
            per[tp] = end_offset
            self.version += 1

    def served(self, identity: Identity, tp: TP) -> int | None:
        per = self.entries.get(identity)
        return None if per is None else per.get(tp)

    def to_json(self) -> bytes:
        return json.dumps([{"client_id": c, "host": h,
                            "served": [[t, p, o] for (t, p), o in sorted(per.items())]}
                           for (c, h), per in sorted(self.entries.items())]).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ServedTable:
        table = cls()
        for e in json.loads(raw or b"[]"):
            table.entries[(e["client_id"], e["host"])] = {(t, p): o for t, p, o in e["served"]}
        return table


def _beyond(offset: int, served: int | None, floor: int) -> bool:
    """Could this commit skip unread events? Not at or below the floor (nothing lies before
    it), nor at or below what the group was served."""
    limit = max(floor, 0) if served is None else max(served, floor, 0)
    return offset > limit


def max_served(tables: Iterable[ServedTable], identities: Iterable[Identity],
               tp: TP) -> int | None:
    best: int | None = None
    ids = list(identities)
    for table in tables:
        for ident in ids:
            o = table.served(ident, tp)
            if o is not None and (best is None or o > best):
                best = o
    return best


@attrs.define(slots=True)
class Finding:
    """One suspicious commit; `reference` is the served end (beyond_served) or the previous
    committed offset (backwards)."""

    kind: str
    group: str
    topic: str
    partition: int
    offset: int
    reference: int | None
    member_id: str
    client_id: str
    host: str
    time_ms: int

    def log_line(self) -> str:
        what = ("commit beyond served (events skipped unread)" if self.kind == BEYOND_SERVED
                else "commit moved backwards (events read twice)")
        ref = "served" if self.kind == BEYOND_SERVED else "previous"
        return (f"AUDIT {what}: group={self.group} topic={self.topic} "
                f"partition={self.partition} offset={self.offset} {ref}={self.reference} "
                f"member={self.member_id or '-'} client_id={self.client_id} host={self.host} "
                f"time_ms={self.time_ms}")

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        return cls(**{f.name: d[f.name] for f in attrs.fields(cls)})


@attrs.define(slots=True)
class PendingCheck:
    """A commit that looked beyond-served; re-judged at `due_ms` with fresher tables."""

    due_ms: int
    finding: Finding
    identities: frozenset[Identity]
    floor: int = 0


@attrs.define(slots=True)
class CommitAudit:
    """Per-coordinator audit state: identities per group, pending re-checks, findings."""

    grace_ms: int = 3000
    identities: dict[str, set[Identity]] = attrs.Factory(dict)
    pending: list[PendingCheck] = attrs.Factory(list)
    findings: dict[str, deque[Finding]] = attrs.Factory(dict)

    def note_members(self, group: str, members: Iterable[Identity]) -> None:
        ids = self.identities.setdefault(group, set())
        ids.update((c, normalize_host(h)) for c, h in members)

    def on_commit(self, group: str, member_id: str, client_id: str, host: str, tp: TP,
                  offset: int, previous: int | None, tables: Iterable[ServedTable],
                  now_ms: int, floor: int = 0) -> list[Finding]:
        """Judge one successful commit. Returns findings to report now (backwards); a
        beyond-served suspicion is queued for `recheck` after the grace period. `floor`: an
        offset no commit can skip past (the partition's log start offset if known)."""
        host = normalize_host(host)
        self.note_members(group, [(client_id, host)])
        out: list[Finding] = []
        if previous is not None and previous >= 0 and offset < previous:
            out.append(self._add(Finding(BACKWARDS, group, tp[0], tp[1], offset, previous,
                                         member_id, client_id, host, now_ms)))
        ids = frozenset(self.identities[group])
        served = max_served(tables, ids, tp)
        # a commit that does not advance skips nothing new (the previous one was judged)
        floor = max(floor, previous if previous is not None else 0, 0)
        if _beyond(offset, served, floor):
            self.pending.append(PendingCheck(
                now_ms + self.grace_ms,
                Finding(BEYOND_SERVED, group, tp[0], tp[1], offset, served, member_id,
                        client_id, host, now_ms), ids, floor))
        return out

    def next_due(self) -> int | None:
        return min((p.due_ms for p in self.pending), default=None)

    def recheck(self, now_ms: int, tables: list[ServedTable]) -> list[Finding]:
        """Re-judge every due suspicion against `tables`; return those still beyond served.
        Identities that joined the group since the commit count too (they may have served
        the committer's data before it left)."""
        due = [p for p in self.pending if p.due_ms <= now_ms]
        if not due:
            return []
        self.pending = [p for p in self.pending if p.due_ms > now_ms]
        out = []
        for p in due:
            f = p.finding
            ids = p.identities | self.identities.get(f.group, set())
            served = max_served(tables, ids, (f.topic, f.partition))
            if _beyond(f.offset, served, p.floor):
                f.reference = served
                out.append(self._add(f))
        return out

    def _add(self, f: Finding) -> Finding:
        q = self.findings.setdefault(f.group, deque(maxlen=MAX_FINDINGS_PER_GROUP))
        q.append(f)
        return f

    def findings_json(self, group: str) -> bytes:
        return json.dumps([f.to_dict() for f in self.findings.get(group, ())]).encode()


def parse_findings(raw: bytes | None) -> list[Finding]:
    return [Finding.from_dict(d) for d in json.loads(raw or b"[]")]
