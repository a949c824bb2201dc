"""A consumer group survives the kill -9 of its coordinator's broker (3 brokers, RF 3), with
every group client (confluent-kafka, kafka-python, aiokafka, kafkajs, node-rdkafka).

Two members (tests/clients/group/ drivers) consume 6 partitions slowly and commit each record;
the group's coordinator broker is SIGKILLed mid-run. The group must move to the new leader of
its `__consumer_offsets` partition, which loads the committed offsets (none lower than what
the old coordinator answered just before the kill): every record is consumed (the time after
the kill is printed), after the members stop a new member resumes exactly at the commits
(nothing committed lost), lag is 0, and the commit audit (served tables of all three brokers,
from ZooKeeper) reports nothing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.clients.test_groups import (PARTS, PER_PART, _member, _produce, _read, _stop,
                                       _wait_for)
from tests.integration.cluster_support import start_brokers

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MORE = 5


def _committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets as its coordinator answers them (OffsetFetch)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    return {tp.partition: tp.offset for tp in res[group].result(30).topic_partitions
            if tp.offset >= 0}


def _coordinator(bootstrap: str, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(30).coordinator.id


CLIENTS = ["confluent", "kafka-python", "aiokafka", "kafkajs", "rdkafka"]


@pytest.mark.parametrize("client", CLIENTS)
def test_group_moves_to_new_coordinator_after_kill9(broker_cluster, tmp_path: Path,
                                                    client: str) -> None:
    brokers = start_brokers(broker_cluster, [1, 2, 3], {
        "offsets.topic.replication.factor": "3", "offsets.topic.num.partitions": "3"})
    bootstrap = ",".join(b.bootstrap for b in brokers.values())
    topic = f"cf-{client}-{uuid.uuid4().hex[:6]}"
    group = f"g-{topic}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=3)])[
        topic].result(60)
    _produce(bootstrap, topic, 0, PER_PART)
    outs = [tmp_path / f"m{i}.txt" for i in range(2)]
    procs = [_member(client, bootstrap, topic, group, o, 100) for o in outs]
    try:
        _wait_for(lambda: all(len(_read(o)) >= 5 for o in outs), 90,
                  "both members to consume", procs)
        committed: list[dict[int, int]] = [{}]

        def some_commits() -> bool:  # kafka-python/aiokafka commit after a polled batch
            committed[0] = _committed(bootstrap, group)
            return bool(committed[0])
        _wait_for(some_commits, 60, "a committed offset", procs)
        before = committed[0]
        old = _coordinator(bootstrap, group)
        brokers[old].kill9()
        killed_at = time.monotonic()
        alive = ",".join(b.bootstrap for i, b in brokers.items() if i != old)
        all_keys = {(p, o) for p in range(PARTS) for o in range(PER_PART)}
        _wait_for(lambda: {(p, o) for out in outs for p, o, _ in _read(out)} >= all_keys,
                  120, "every record consumed after the failover", procs)
        print(f"{client}: coordinator {old} killed; every record consumed "
              f"{time.monotonic() - killed_at:.1f} s later")
        new = _coordinator(alive, group)
        assert new != old
        after = _committed(alive, group)   # loaded by the new coordinator from the log
        assert all(after.get(p, -1) >= o for p, o in before.items()), (before, after)
        for p in procs:
            _stop(p)
        records = [r for out in outs for r in _read(out)]
        assert all(v == f"{p}:{o}" for p, o, v in records)
        _produce(alive, topic, PER_PART, MORE)
        late = tmp_path / "late.txt"
        procs.append(_member(client, alive, topic, group, late, 0))
        want = {(p, o) for p in range(PARTS) for o in range(PER_PART, PER_PART + MORE)}
        _wait_for(lambda: {(p, o) for p, o, _ in _read(late)} >= want, 90,
                  "the new member to read the new records", procs)
        time.sleep(1)
        _stop(procs[-1])
        assert sorted((p, o) for p, o, _ in _read(late)) == sorted(want)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    time.sleep(3.5)
    survivor = next(b for i, b in brokers.items() if i != old)
    out = subprocess.run([sys.executable, "-m", "kafkapy.cli.consumer_groups",
                          "--bootstrap-server", survivor.bootstrap, "--describe", "--group",
                          group, "--audit", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    desc = json.loads(out.stdout)
    assert desc["audit"] == []
    assert {r["PARTITION"]: (r["CURRENT-OFFSET"], r["LAG"]) for r in desc["partitions"]} == \
        {p: (PER_PART + MORE, 0) for p in range(PARTS)}
