"""Commit audit end to end on the shared broker, with confluent-kafka consumers.

A well-behaved group (3 members over 6 partitions, manual synchronous commits) consumes
everything exactly once and the audit stays quiet; a rogue consumer that commits a partition
it never fetched and then moves a commit backwards is flagged in the broker log and by
`kafkapy-consumer-groups --describe --audit`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.integration

PARTS = 6
PER_PART = 10
ROOT = Path(__file__).resolve().parents[2]


def _cli(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkapy.cli.consumer_groups",
                           "--bootstrap-server", bootstrap, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _topic_with_data(bootstrap: str) -> str:
    topic = f"audit-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=1)])[
        topic].result(timeout=30)
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for part in range(PARTS):
        for i in range(PER_PART):
            p.produce(topic, value=f"{part}:{i}".encode(), partition=part)
    assert p.flush(30) == 0
    return topic


def _consumer(bootstrap: str, group: str, client_id: str) -> ck.Consumer:
    return ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                        "client.id": client_id, "enable.auto.commit": False,
                        "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                        "heartbeat.interval.ms": 500})


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_well_behaved_group_is_not_flagged(broker) -> None:
    topic = _topic_with_data(broker.bootstrap)
    group = f"good-{uuid.uuid4().hex[:6]}"
    members = [_consumer(broker.bootstrap, group, f"good-{i}") for i in range(3)]
    seen: dict[tuple[int, int], str] = {}
    try:
        for c in members:
            c.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(seen) < PARTS * PER_PART and time.monotonic() < deadline:
            for c in members:
                msg = c.poll(0.1)
                if msg is None or msg.error():
                    continue
                key = (msg.partition(), msg.offset())
                assert key not in seen, f"{key} delivered twice"
                seen[key] = msg.value().decode()
                c.commit(message=msg, asynchronous=False)
        owners = {c.memberid() for c in members}
    finally:
        for c in members:
            c.close()
    assert len(seen) == PARTS * PER_PART and len(owners) == 3
    assert all(v == f"{p}:{o}" for (p, o), v in seen.items())
    time.sleep(4)  # longer than the audit's grace period: suspicions would have surfaced
    out = _cli(broker.bootstrap, "--describe", "--group", group, "--audit", "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    desc = json.loads(out.stdout)
    assert desc["audit"] == []
    rows = {r["PARTITION"]: r for r in desc["partitions"]}
    assert sorted(rows) == list(range(PARTS))
    assert all(r["CURRENT-OFFSET"] == PER_PART and r["LAG"] == 0 for r in rows.values())
    assert f"group={group}" not in broker.output_tail(200_000)


def test_rogue_commits_are_flagged(broker) -> None:
    topic = _topic_with_data(broker.bootstrap)
    group = f"rogue-{uuid.uuid4().hex[:6]}"
    c = _consumer(broker.bootstrap, group, "rogue-client")
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got = None
        deadline = time.monotonic() + 30
        while got is None and time.monotonic() < deadline:
            m = c.poll(0.2)
            got = m if m is not None and not m.error() else None
        assert got is not None and got.offset() == 0
        c.commit(message=got, asynchronous=False)  # honest: offset 1
        # partition 1 was never assigned nor fetched: committing 7 skips 0..6 unread
        c.commit(offsets=[ck.TopicPartition(topic, 1, 7)], asynchronous=False)
        c.commit(offsets=[ck.TopicPartition(topic, 1, 3)], asynchronous=False)  # backwards
    finally:
        c.close()
    log_has = lambda s: s in broker.output_tail(400_000)  # noqa: E731
    _wait_for(lambda: log_has(f"group={group} topic={topic} partition=1 offset=7"), 20,
              "the beyond-served WARN line")
    tail = broker.output_tail(400_000)
    lines = [ln for ln in tail.splitlines() if f"group={group}" in ln]
    assert any("skipped unread" in ln and "offset=7" in ln and "client_id=rogue-client" in ln
               for ln in lines), lines
    assert any("read twice" in ln and "offset=3 previous=7" in ln for ln in lines), lines
    assert not any("partition=0" in ln for ln in lines), lines  # the honest commit
    out = _cli(broker.bootstrap, "--describe", "--group", group, "--audit")
    assert out.returncode == 2, out.stderr + out.stdout
    assert "COMMIT AUDIT" in out.stdout and "BEYOND-SERVED" in out.stdout
    assert "BACKWARDS" in out.stdout and "rogue-client" in out.stdout
    listed = _cli(broker.bootstrap, "--list")
    assert listed.returncode == 0 and group in listed.stdout.split()
