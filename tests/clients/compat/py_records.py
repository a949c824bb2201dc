"""What the kafka-python and aiokafka drivers share: both describe topics as dicts whose field
names changed between releases, and both consumers hand out ConsumerRecord objects
(.partition, .offset, .key, .value, .headers, .timestamp), so reading them into the suite's
record lines and checking a produce run are the same code for the two."""
from __future__ import annotations

import argparse
from typing import IO, Callable, Iterable

import compat_common as cc


def field(d: dict, *names):
    """The first of `names` present in `d` (metadata field names differ between releases)."""
    for n in names:
        if n in d:
            return d[n]
    raise KeyError(names)


def partitions_of(t: dict) -> dict | None:
    """A described topic as {"<partition>": {leader, replicas, isr}}; None on an error."""
    if field(t, "error_code") != 0:
        return None
    return {str(field(p, "partition_index", "partition")): {
        "leader": field(p, "leader_id", "leader"),
        "replicas": list(field(p, "replica_nodes", "replicas")),
        "isr": list(field(p, "isr_nodes", "isr"))} for p in field(t, "partitions")}


def topic_ready(parts: dict | None) -> bool:
    """Every partition exists with its full replica set and a leader."""
    return bool(parts) and len(parts) == cc.PARTITIONS and all(
        len(p["replicas"]) == cc.REPLICATION_FACTOR and p["leader"] >= 0
        for p in parts.values())


def check_produced(a: argparse.Namespace, errors: list[str], acked: int) -> None:
    """A produce run passes only without delivery errors and with every message acked."""
    if errors:
        cc.fail(f"{len(errors)} delivery errors, first: {errors[:5]}")
    if acked != a.count:
        cc.fail(f"{acked} acknowledgements for {a.count} messages")
    cc.log(f"produced {acked}")


def write_below_ends(a: argparse.Namespace, out: IO[str], batches: Iterable[list],
                     ends: dict[int, int], pos: dict[int, int]) -> None:
    """Writes the records below each partition's end offset and advances `pos` past them."""
    for recs in batches:
        for r in recs:
            if r.offset < ends[r.partition]:
                out.write(cc.record_line(a, r.partition, r.offset, r.key, r.value,
                                         r.headers, r.timestamp))
                pos[r.partition] = r.offset + 1


def write_group_batch(a: argparse.Namespace, out: IO[str], batches: dict, pos: dict[int, int],
                      got: int, committed: Callable[[int], object]) -> tuple[int, dict]:
    """Writes a group poll's records (at most --max in all) and returns the new count and the
    offsets to commit for exactly what was written: {tp: committed(next offset)}."""
    done: dict = {}
    for tp, recs in batches.items():
        for r in recs:
            if a.max is not None and got >= a.max:
                break
            out.write(cc.record_line(a, r.partition, r.offset, r.key, r.value,
                                     r.headers, r.timestamp))
            got += 1
            pos[r.partition] = r.offset + 1
            done[tp] = committed(r.offset + 1)
    return got, done
