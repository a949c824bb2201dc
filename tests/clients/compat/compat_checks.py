"""Checks of what a compat driver consumed against what the producers were told to write.

Pure functions over the JSON-lines files (compat_common.py): each returns a list of problems
(empty = good), so the test can print all of them and test_compat_checks.py can prove that
each defect is caught.

A topic may hold several producer runs (`Run`): the large cell's three, the cross-read cell's
seven. A record is attributed to its run by its "src" header, or, where the reader or writer
has no headers (kafka-node), by its timestamp (each run with explicit timestamps gets its own
window base_ts .. base_ts+count-1; a kcat run, which cannot set timestamps, is known by the
time it ran).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Iterable

import attrs

import compat_common as cc

wl = cc.wl

#: Writers that cannot set per-message timestamps (librdkafka stamps CreateTime).
NO_TIMESTAMPS = {"kcat"}
#: Writers/readers without record headers: kafka-node speaks only magic 0/1 message sets.
NO_HEADERS = {"kafka-node"}
#: Writers whose headers are the same for every message (see py_kcat.kcat_headers).
FIXED_HEADERS = {"kcat"}


def kcat_headers(src: str) -> list[tuple[str, str]]:
    return [("src", src), ("producer", "kcat")]


@attrs.define(frozen=True)
class Run:
    """One producer run: `count` workload messages from `client` with this src and base_ts."""

    client: str
    src: str
    count: int
    base_ts: int
    value_size: int | None = None
    #: Wall-clock window (ms) of the run, for writers that cannot set timestamps.
    window: tuple[int, int] = (0, 0)

    def explicit_ts(self) -> bool:
        return self.client not in NO_TIMESTAMPS

    def value(self, seq: int) -> bytes:
        return cc.value_bytes(seq, self.value_size)

    def headers(self, seq: int, reader: str) -> list[tuple[str, str]]:
        if self.client in NO_HEADERS or reader in NO_HEADERS:
            return []
        if self.client in FIXED_HEADERS:
            return kcat_headers(self.src)
        return wl.message(seq, self.src, self.base_ts).headers


def digest(rec: dict) -> tuple[int, str]:
    """(length, sha256) of a record's value, whichever form the line carries."""
    if "value_sha256" in rec:
        return rec["value_len"], rec["value_sha256"]
    raw = (rec.get("value") or "").encode()
    return len(raw), hashlib.sha256(raw).hexdigest()


class _Index:
    """Attributes records to (run, seq)."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        self.by_src = defaultdict(list)
        for r in runs:
            self.by_src[r.src].append(r)
        self.by_hash: dict[tuple[int, str], list[tuple[Run, int]]] = defaultdict(list)
        for r in runs:
            if r.value_size is not None and r.value_size >= cc.BIG_VALUE:
                for seq in range(r.count):
                    v = r.value(seq)
                    self.by_hash[len(v), hashlib.sha256(v).hexdigest()].append((r, seq))

    def identify(self, rec: dict) -> tuple[Run, int] | str:
        headers = dict(tuple(h) for h in rec.get("headers") or [])
        ts = rec.get("timestamp")
        if "src" in headers:
            cands = self.by_src.get(headers["src"], [])
        else:
            cands = [r for r in self.runs
                     if r.explicit_ts() and r.base_ts <= ts < r.base_ts + r.count]
            if not cands:
                cands = [r for r in self.runs if not r.explicit_ts()
                         and r.window[0] <= ts <= r.window[1]]
        if not cands:
            return f"no producer run matches headers {rec.get('headers')} timestamp {ts}"
        if "value" in rec:
            try:
                seq = int((rec["value"] or "").split(":", 1)[0])
            except ValueError:
                return f"unrecognised value {rec['value']!r:.60}"
        elif "seq" in headers:
            seq = int(headers["seq"])
        else:
            hits = [(r, s) for r, s in self.by_hash.get(digest(rec), []) if r in cands]
            if len(hits) != 1:
                return f"large value {digest(rec)} matches {len(hits)} messages"
            return hits[0]
        if explicit := [r for r in cands if r.explicit_ts()]:
            exact = [r for r in explicit if ts == r.base_ts + seq]
            cands = exact or explicit
        if len(cands) > 1:
            sized = [r for r in cands if r.value_size is None or r.value_size < cc.BIG_VALUE]
            cands = sized or cands
        return cands[0], seq


def check_records(records: list[dict], runs: list[Run], reader: str,
                  duplicates_allowed: bool = False,
                  complete: Iterable[Run] | None = None) -> list[str]:
    """Every message of every run in `complete` (default: all) read exactly once (at least
    once when `duplicates_allowed`), nothing else read; contents intact; offsets 0, 1, 2...
    per partition in read order; each (run, key) in one partition, in produce order."""
    problems: list[str] = []
    index = _Index(runs)
    seen: Counter = Counter()
    first_seen: dict = {}
    key_parts: dict = defaultdict(set)
    key_seqs: dict = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for rec in records:
        where = f"p{rec['partition']}@{rec['offset']}"
        offsets[rec["partition"]].append(rec["offset"])
        who = index.identify(rec)
        if isinstance(who, str):
            problems.append(f"{where}: {who}")
            continue
        run, seq = who
        if not 0 <= seq < run.count:
            problems.append(f"{where}: seq {seq} outside {run.src}'s 0..{run.count - 1}")
            continue
        seen[run, seq] += 1
        first_seen.setdefault((run, seq), rec)
        key = f"key-{seq % wl.NUM_KEYS}"
        if rec["key"] != key:
            problems.append(f"{where} {run.src}#{seq}: key {rec['key']!r} != {key!r}")
        v = run.value(seq)
        if digest(rec) != (len(v), hashlib.sha256(v).hexdigest()):
            problems.append(f"{where} {run.src}#{seq}: value differs "
                            f"({rec.get('value', '')!r:.60}, {digest(rec)[0]} bytes)")
        want_h = run.headers(seq, reader)
        if [tuple(h) for h in rec.get("headers") or []] != want_h:
            problems.append(f"{where} {run.src}#{seq}: headers {rec.get('headers')} != {want_h}")
        if run.explicit_ts():
            if rec["timestamp"] != run.base_ts + seq:
                problems.append(f"{where} {run.src}#{seq}: timestamp {rec['timestamp']} != "
                                f"{run.base_ts + seq}")
        elif not run.window[0] <= rec["timestamp"] <= run.window[1]:
            problems.append(f"{where} {run.src}#{seq}: timestamp {rec['timestamp']} outside "
                            f"the run {run.window}")
        key_parts[run.src, key].add(rec["partition"])
        key_seqs[run.src, key].append(seq)
    must = list(runs if complete is None else complete)
    for run in must:
        missing = [s for s in range(run.count) if seen[run, s] == 0]
        if missing:
            problems.insert(0, f"{run.src}: {len(missing)} of {run.count} messages never "
                               f"read, e.g. {missing[:10]}")
    dups = {f"{r.src}#{s}": n for (r, s), n in seen.items() if n > 1}
    if dups and not duplicates_allowed:
        problems.insert(0, f"{len(dups)} messages read more than once, e.g. "
                           f"{list(dups.items())[:10]}")
    for p, offs in sorted(offsets.items()):
        if offs != list(range(len(offs))):
            bad = next(i for i, o in enumerate(offs) if o != i)
            problems.append(f"partition {p}: offsets not 0..{len(offs) - 1} in order; first "
                            f"break at position {bad}: {offs[max(0, bad - 2):bad + 3]}")
    if set(offsets) - set(range(cc.PARTITIONS)):
        problems.append(f"records from partitions {sorted(offsets)}")
    split = {k: sorted(v) for k, v in key_parts.items() if len(v) > 1}
    if split:
        problems.append(f"{len(split)} keys in more than one partition, e.g. "
                        f"{list(split.items())[:5]}")
    reordered = []
    for k, seqs in key_seqs.items():
        firsts = list(dict.fromkeys(seqs))  # a retried duplicate repeats an earlier seq
        if firsts != sorted(firsts):
            reordered.append(k)
    if reordered:
        problems.append(f"per-key order broken for {len(reordered)} keys, e.g. {reordered[:5]}")
    return problems


def check_deliveries(reports: list[dict], run: Run, records: list[dict],
                     runs: list[Run] | None = None) -> list[str]:
    """Each message acknowledged once, at the partition and offset where it was read."""
    problems = []
    seqs = Counter(d["seq"] for d in reports)
    if set(seqs) != set(range(run.count)) or any(n != 1 for n in seqs.values()):
        problems.append(f"{run.src}: {len(reports)} delivery reports for {run.count} messages "
                        f"({len(set(seqs))} distinct seqs)")
    index = _Index(runs or [run])
    where: dict = defaultdict(set)
    for rec in records:
        who = index.identify(rec)
        if not isinstance(who, str) and who[0] == run:
            where[who[1]].add((rec["partition"], rec["offset"]))
    for d in reports:
        at = (d["partition"], d["offset"])
        if at not in where.get(d["seq"], ()):
            problems.append(f"{run.src}#{d['seq']} acknowledged at p{at[0]}@{at[1]} but read at "
                            f"{sorted(where.get(d['seq'], ())) or 'nowhere'}")
    return problems[:40]


def check_group_resume(first: list[dict], second: list[dict], ends: dict[int, int],
                       committed: dict[int, int]) -> list[str]:
    """Run 1 read a prefix of each partition and committed exactly its end; run 2 read from
    there to the end: together every offset once."""
    problems = []
    for p in range(cc.PARTITIONS):
        a = [r["offset"] for r in first if r["partition"] == p]
        b = [r["offset"] for r in second if r["partition"] == p]
        if a != list(range(len(a))):
            problems.append(f"partition {p}: first run read offsets {a[:5]}..., "
                            f"not 0..{len(a) - 1}")
        if committed.get(p, 0) != len(a):
            problems.append(f"partition {p}: committed {committed.get(p)} after the first run, "
                            f"which read up to {len(a)}")
        if b != list(range(len(a), ends[p])):
            problems.append(f"partition {p}: second run read {b[:3]}..{b[-3:]} ({len(b)}), "
                            f"expected {len(a)}..{ends[p] - 1}")
    return problems


def record_map(records: list[dict], with_headers: bool) -> dict:
    """(partition, offset) -> what a reader saw, for comparing readers with each other."""
    return {(r["partition"], r["offset"]): (
        r["key"], digest(r), r["timestamp"],
        tuple(map(tuple, r["headers"])) if with_headers else None) for r in records}
