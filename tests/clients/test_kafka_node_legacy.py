"""kafka-node 5.0.0's old `Consumer` and `Offset` against ZooKeeper-stored offsets.

Those classes commit with OffsetCommit v0 and read back with OffsetFetch v0, which a
ZooKeeper-mode Kafka broker keeps in `/consumers/<group>/offsets/<topic>/<partition>` (ASCII
long, under the broker's chroot); the Consumer fetches with Fetch v0 (magic 0, down-converted).
Driver: tests/clients/node/kafka_node_old_consumer.js.

`test_old_consumer_resumes_from_zookeeper_offsets`: 3 partitions x 30 records. A first
Consumer (commit after every fetch response, small fetches) stops after 40 messages; the
znodes (read with kazoo) must hold, per partition, the offset after the last message it
received. 10 more records per partition are produced; a second Consumer of the group
(autoCommit, forced commit on close) must read exactly the records the first did not: nothing
skipped, nothing twice, and the znodes end at the log end.

`test_offset_class_commit_v0_is_zookeeper_only`: `Offset.commit` writes the znode; kafka-node's
`Offset.fetchCommits` asks with OffsetFetch v1, i.e. the group coordinator's store, which as
in Kafka knows nothing of a v0 commit (-1); a Consumer of that group starts at the znode.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest

ck = pytest.importorskip("confluent_kafka")
kazoo_client = pytest.importorskip("kazoo.client")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.clients.test_groups import _produce  # noqa: E402

pytestmark = [pytest.mark.clients,
              pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")]

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node" / "kafka_node_old_consumer.js"
PARTS, FIRST, MORE, STOP_AFTER = 3, 30, 10, 40


def _create(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTS, replication_factor=1)])[
        topic].result(30)


def _node(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, NODE_PATH=str(HERE / "node" / "node_modules"))
    out = subprocess.run(["node", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"kafka-node exited {out.returncode}:\n{out.stderr[-3000:]}"
    return out


def _consume(broker, topic: str, group: str, out: Path, count: int, commit: str,
             max_bytes: int = 1048576) -> list[tuple[int, int, str]]:
    _node("--mode", "consume", "--bootstrap", broker.bootstrap, "--topic", topic,
          "--partitions", str(PARTS), "--group", group, "--out", str(out), "--count", str(count),
          "--commit", commit, "--max-bytes", str(max_bytes))
    records = []
    for line in out.read_text().splitlines():
        p, o, v = line.split(" ", 2)
        records.append((int(p), int(o), v))
    return records


def _znodes(broker, group: str, topic: str) -> dict[int, int]:
    """The offsets under /consumers/<group>/offsets/<topic> in the broker's chroot."""
    zk = kazoo_client.KazooClient(hosts=broker.zk_connect)
    zk.start(timeout=30)
    try:
        path = f"/consumers/{group}/offsets/{topic}"
        if not zk.exists(path):
            return {}
        return {int(c): int(zk.get(f"{path}/{c}")[0].decode("ascii"))
                for c in zk.get_children(path)}
    finally:
        zk.stop()
        zk.close()


def _next_offsets(records: list[tuple[int, int, str]]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for p, o, _ in records:
        ends[p] = max(ends.get(p, 0), o + 1)
    return ends


def test_old_consumer_resumes_from_zookeeper_offsets(broker, tmp_path: Path) -> None:
    topic = f"kn-old-{uuid.uuid4().hex[:6]}"
    group = f"g-{topic}"
    _create(broker.bootstrap, topic)
    _produce(broker.bootstrap, topic, 0, FIRST, PARTS)

    first = _consume(broker, topic, group, tmp_path / "first.txt", STOP_AFTER, "explicit",
                     max_bytes=200)  # a few messages per partition and fetch: stops mid-topic
    assert all(v == f"{p}:{o}" for p, o, v in first), first
    assert not [k for k, n in Counter((p, o) for p, o, _ in first).items() if n > 1]
    assert STOP_AFTER <= len(first) < PARTS * FIRST, len(first)
    for p, end in _next_offsets(first).items():  # each partition read from 0 without a gap
        assert sorted(o for q, o, _ in first if q == p) == list(range(end)), p
    assert _znodes(broker, group, topic) == _next_offsets(first)

    _produce(broker.bootstrap, topic, FIRST, MORE, PARTS)
    total = PARTS * (FIRST + MORE)
    second = _consume(broker, topic, group, tmp_path / "second.txt", total - len(first), "auto")
    assert all(v == f"{p}:{o}" for p, o, v in second), second
    got = Counter((p, o) for p, o, _ in first + second)
    assert set(got) == {(p, o) for p in range(PARTS) for o in range(FIRST + MORE)}, \
        "records skipped (or foreign ones read) across the restart"
    assert [k for k, n in got.items() if n > 1] == [], "records delivered twice"
    assert _znodes(broker, group, topic) == {p: FIRST + MORE for p in range(PARTS)}


def test_offset_class_commit_v0_is_zookeeper_only(broker, tmp_path: Path) -> None:
    topic = f"kn-offset-{uuid.uuid4().hex[:6]}"
    group = f"g-{topic}"
    _create(broker.bootstrap, topic)
    _produce(broker.bootstrap, topic, 0, FIRST, PARTS)
    out = _node("--mode", "offset", "--bootstrap", broker.bootstrap, "--topic", topic,
                "--partitions", str(PARTS), "--group", group, "--set", "0:7,1:0,2:29")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["commit"][topic]["errorCode"] == 0, answer
    assert _znodes(broker, group, topic) == {0: 7, 1: 0, 2: 29}
    # OffsetFetch v1 reads the coordinator's store: a v0 commit is not there (Kafka alike)
    assert answer["fetchCommits"] == {topic: {"0": -1, "1": -1, "2": -1}}, answer
    # a Consumer of the group starts at the znodes (1:0 commits nothing new: kafka-node
    # treats offset 0 as "start"): 23 + 30 + 1 records
    records = _consume(broker, topic, group, tmp_path / "c.txt", 23 + 30 + 1, "explicit")
    assert sorted((p, o) for p, o, _ in records) == sorted(
        [(0, o) for o in range(7, FIRST)] + [(1, o) for o in range(FIRST)] + [(2, 29)])
