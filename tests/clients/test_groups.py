"""Consumer groups with every client: no event skipped, none re-delivered beyond the last
uncommitted batch, and the commit audit stays quiet.

Per client (drivers in tests/clients/group/): a 6-partition topic with 20 records each;
three members of one group consume slowly and commit each record (kafka-python/aiokafka:
each polled batch of at most 5); once every member has records, one is killed with SIGKILL
and its partitions must be taken over (after the 6 s session timeout); when all 120 records
are consumed the other two stop gracefully (LeaveGroup). Then 30 more records are produced
and a new member must read exactly those: it resumes at the committed offsets.

Checks: every record consumed at least once with its own value; a record consumed twice was
consumed by the killed member (its uncommitted tail); the new member reads exactly the new
records; `kafkapy-consumer-groups --describe --audit` shows lag 0 and no finding.

Graceful leave (`test_group_graceful_leave`, the five clients): the same group of three with
a 30 s session timeout; one member gets SIGTERM while records flow, commits what it read and
sends LeaveGroup. Its partitions must be reassigned long before the session timeout could
have expired (limit 15 s, the measured time is printed), and every record is consumed
exactly once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.clients

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PARTS, PER_PART, MORE = 6, 20, 5
CLIENTS = ["confluent", "kafka-python", "aiokafka", "kafkajs", "rdkafka",
           "confluent-cooperative", "rdkafka-cooperative"]  # librdkafka's cooperative-sticky


def _produce(bootstrap: str, topic: str, start: int, count: int,
             partitions: int = PARTS) -> None:
    """acks=all: records start..start+count-1 of each partition, valued "<partition>:<i>"
    (also used by test_kafka_node_legacy and test_group_coordinator_failover)."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for part in range(partitions):
        for i in range(start, start + count):
            p.produce(topic, value=f"{part}:{i}".encode(), partition=part)
    assert p.flush(30) == 0


def _member(client: str, bootstrap: str, topic: str, group: str, out: Path,
            delay_ms: int, instance_id: str | None = None,
            session_timeout_ms: int = 6000) -> subprocess.Popen:
    common = ["--bootstrap", bootstrap, "--topic", topic, "--group", group,
              "--client-id", f"grp-{client}", "--out", str(out), "--delay-ms", str(delay_ms),
              "--session-timeout-ms", str(session_timeout_ms)]
    if client.endswith("-cooperative"):
        client = client.removesuffix("-cooperative")
        common += ["--assignor", "cooperative-sticky"]
    if instance_id:
        common += ["--instance-id", instance_id]
    if client in ("kafkajs", "rdkafka"):
        env = dict(os.environ, NODE_PATH=str(HERE / "node" / "node_modules"))
        cmd = ["node", str(HERE / "group" / "group_driver.js"), "--client", client, *common]
    else:
        env = dict(os.environ)
        cmd = [sys.executable, str(HERE / "group" / "driver_group.py"), "--client", client,
               *common]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(str(out) + ".err", "w"))


def _read(path: Path) -> list[tuple[int, int, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            out.append((int(parts[0]), int(parts[1]), parts[2]))
    return out


def _wait_for(cond, timeout: float, what: str, procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        for p in procs:
            if p.poll() not in (None, 0, -signal.SIGKILL):
                raise AssertionError(f"a member exited with {p.returncode} waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _group_topic(broker, prefix: str) -> tuple[str, str]:
    """A fresh PARTS-partition topic holding PER_PART records "<partition>:<index>" per
    partition, and the name of a new group for it: (topic, group)."""
    topic = f"{prefix}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=1)])[
        topic].result(30)
    _produce(broker.bootstrap, topic, 0, PER_PART)
    return topic, f"g-{topic}"


def _every_record_consumed(outs: list[Path]) -> bool:
    """Whether the members' outputs together hold every record _group_topic produced."""
    return {(p, o) for out in outs for p, o, _ in _read(out)} >= {
        (p, o) for p in range(PARTS) for o in range(PER_PART)}


def _records(outs: list[Path]) -> list[tuple[int, int, str]]:
    """Every record the members consumed; each one must carry the value produced for its
    partition and offset."""
    records = [r for out in outs for r in _read(out)]
    wrong = [r for r in records if r[2] != f"{r[0]}:{r[1]}"]
    assert not wrong, f"records with another value than produced at their offset: {wrong[:5]}"
    return records


def _kill_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def _assigned(path: Path) -> list[str]:
    log = Path(str(path) + ".log")
    return log.read_text().splitlines() if log.exists() else []


def _latest_parts(path: Path) -> set[int]:
    """Partitions of the member's latest assignment (empty before the first one)."""
    lines = _assigned(path)
    if not lines:
        return set()
    return {int(x) for x in lines[-1].removeprefix("ASSIGNED").strip().split(",") if x}


@pytest.mark.parametrize("client", CLIENTS)
def test_group_kill_takeover_and_resume(broker, tmp_path: Path, client: str) -> None:
    topic, group = _group_topic(broker, f"grp-{client}")
    outs = [tmp_path / f"m{i}.txt" for i in range(3)]
    procs = [_member(client, broker.bootstrap, topic, group, o, 150) for o in outs]
    try:
        _wait_for(lambda: all(len(_read(o)) >= 2 for o in outs), 60,
                  "every member to consume", procs)
        seen_assignments = [len(_assigned(o)) for o in outs[1:]]
        procs[0].kill()  # SIGKILL: no LeaveGroup, taken over after the session timeout
        procs[0].wait(10)
        killed = set((p, o) for p, o, _ in _read(outs[0]))
        # taken over: 6 s session timeout, then one rebalance (heartbeats every 0.5 s)
        _wait_for(lambda: [len(_assigned(o)) for o in outs[1:]] != seen_assignments
                  and {x for o in outs[1:] for x in _assigned(o)[-1].removeprefix(
                      "ASSIGNED").strip().split(",")} == {str(p) for p in range(PARTS)},
                  15, "the survivors to take over every partition", procs)
        _wait_for(lambda: _every_record_consumed(outs), 90, "every record consumed", procs)
        for p in procs[1:]:
            _stop(p)
        records = _records(outs)
        dup = [k for k, n in Counter((p, o) for p, o, _ in records).items() if n > 1]
        assert set(dup) <= killed, f"re-delivered records not owned by the killed member: {dup}"
        # the killed member's uncommitted tail is at most one batch per partition
        assert len(dup) <= 5 * PARTS, dup
        _produce(broker.bootstrap, topic, PER_PART, MORE)
        late = tmp_path / "late.txt"
        procs.append(_member(client, broker.bootstrap, topic, group, late, 0))
        want = {(p, o) for p in range(PARTS) for o in range(PER_PART, PER_PART + MORE)}
        _wait_for(lambda: {(p, o) for p, o, _ in _read(late)} >= want, 60,
                  "the new member to read the new records", procs)
        time.sleep(1)  # anything re-delivered would arrive now
        _stop(procs[-1])
        got = [(p, o) for p, o, _ in _read(late)]
        assert sorted(got) == sorted(want), "new member did not resume at the commits"
    finally:
        _kill_all(procs)
    time.sleep(3.5)  # past the audit's grace period
    out = subprocess.run([sys.executable, "-m", "kafkapy.cli.consumer_groups",
                          "--bootstrap-server", broker.bootstrap, "--describe", "--group",
                          group, "--audit", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    desc = json.loads(out.stdout)
    assert desc["audit"] == []
    assert {r["PARTITION"]: (r["CURRENT-OFFSET"], r["LAG"]) for r in desc["partitions"]} == \
        {p: (PER_PART + MORE, 0) for p in range(PARTS)}


LEAVE_CLIENTS = ["confluent", "kafka-python", "aiokafka", "kafkajs", "rdkafka"]
LEAVE_SESSION_MS = 30_000   # a takeover within LEAVE_LIMIT_S can only come from LeaveGroup
LEAVE_LIMIT_S = 15.0


@pytest.mark.parametrize("client", LEAVE_CLIENTS)
def test_group_graceful_leave(broker, tmp_path: Path, client: str) -> None:
    topic, group = _group_topic(broker, f"leave-{client}")
    outs = [tmp_path / f"m{i}.txt" for i in range(3)]
    procs = [_member(client, broker.bootstrap, topic, group, o, 120,
                     session_timeout_ms=LEAVE_SESSION_MS) for o in outs]
    every = set(range(PARTS))
    try:
        def stable() -> bool:
            parts = [_latest_parts(o) for o in outs]
            return all(parts) and set().union(*parts) == every and \
                sum(map(len, parts)) == PARTS and all(len(_read(o)) >= 2 for o in outs)
        _wait_for(stable, 90, "three members with every partition, each consuming", procs)
        seen = [len(_assigned(o)) for o in outs[1:]]
        left = _latest_parts(outs[0])
        sigterm_at = time.monotonic()
        procs[0].send_signal(signal.SIGTERM)  # the driver commits, then leaves the group
        _wait_for(lambda: all(len(_assigned(o)) > n for o, n in zip(outs[1:], seen))
                  and set().union(*(_latest_parts(o) for o in outs[1:])) == every,
                  LEAVE_LIMIT_S, f"the survivors to take over {sorted(left)} (LeaveGroup; "
                  f"the {LEAVE_SESSION_MS} ms session timeout has not expired)", procs)
        took = time.monotonic() - sigterm_at
        print(f"{client}: partitions {sorted(left)} taken over {took:.2f} s after SIGTERM")
        assert procs[0].wait(20) == 0, "the leaving member did not exit cleanly"
        _wait_for(lambda: _every_record_consumed(outs), 90, "every record consumed", procs)
        time.sleep(1)  # anything re-delivered would arrive now
        for p in procs[1:]:
            _stop(p)
        records = _records(outs)
        assert {(p, o) for p, o, _ in _read(outs[0])}, "the leaving member consumed nothing"
        dup = sorted(k for k, n in Counter((p, o) for p, o, _ in records).items() if n > 1)
        assert not dup, f"records delivered twice after a graceful leave: {dup}"
        assert len(records) == PARTS * PER_PART
    finally:
        _kill_all(procs)


def test_static_member_rejoins_without_rebalance(broker, tmp_path: Path) -> None:
    """librdkafka static membership (KIP-345): a member killed and restarted with its
    group.instance.id inside the session timeout gets its partitions back and the other
    member sees no rebalance; nothing is skipped."""
    topic, group = _group_topic(broker, "grp-static")
    outs = [tmp_path / "s0.txt", tmp_path / "s1.txt", tmp_path / "s0b.txt"]
    procs = [_member("confluent", broker.bootstrap, topic, group, outs[i], 200, f"inst-{i}")
             for i in range(2)]
    try:
        def stable() -> bool:
            a = [_assigned(o) for o in outs[:2]]
            if not all(a) or not all(len(_read(o)) >= 2 for o in outs[:2]):
                return False
            parts = [set(x[-1].removeprefix("ASSIGNED").strip().split(",")) for x in a]
            return parts[0] | parts[1] == {str(p) for p in range(PARTS)}
        _wait_for(stable, 60, "two stable members", procs)
        before_other = _assigned(outs[1])
        mine = _assigned(outs[0])[-1]
        procs[0].kill()
        procs[0].wait(10)
        procs.append(_member("confluent", broker.bootstrap, topic, group, outs[2], 200,
                             "inst-0"))
        _wait_for(lambda: len(_read(outs[2])) >= 2, 30, "the restarted member to consume",
                  procs)
        assert _assigned(outs[2]) == [mine], "the static member did not get its partitions back"
        assert _assigned(outs[1]) == before_other, "the other member went through a rebalance"
        _wait_for(lambda: _every_record_consumed(outs), 60, "every record consumed", procs)
        records = _records(outs)
        dup = [k for k, n in Counter((p, o) for p, o, _ in records).items() if n > 1]
        assert set(dup) <= {(p, o) for p, o, _ in _read(outs[0])}, dup
        assert _assigned(outs[1]) == before_other
    finally:
        _kill_all(procs)
