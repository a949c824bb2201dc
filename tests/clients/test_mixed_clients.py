"""Mixed protocol eras on one broker: kafka-node (Produce v2 / Fetch v2, magic 1) next to
clients on v2 record batches, across a broker restart.

* kafka-node produces keyed, gzip-compressed messages (up-converted to v2 on append); kafkajs,
  node-rdkafka and confluent-kafka read them, after a restart of the broker, and must all
  see the same records: same partitions and offsets, keys, values, CreateTime timestamps,
  and no headers (kafka-node cannot write any).
* kafkajs produces (v2 batches with headers); kafka-node reads them (down-converted to
  magic 1, headers dropped, as Kafka does) before and after the restart.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

import workload as wl

pytestmark = pytest.mark.clients

HERE = Path(__file__).resolve().parent
NODE = HERE / "node"
COUNT = 2000
RUN_TIMEOUT = 90.0


def run(cmd: list[str], tmp_path: Path, name: str) -> None:
    """Run one client process to completion (killed by pid on timeout)."""
    log = tmp_path / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "wb") as log_f:
        proc = subprocess.Popen(cmd, stdout=log_f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(HERE))
        try:
            rc = proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            rc = None
    output = log.read_text(errors="replace")[-4000:]
    if rc != 0:
        pytest.fail(f"{name} {'timed out' if rc is None else f'exited {rc}'}:\n{output}")
    print(f"{name}: {time.monotonic() - t0:.1f}s\n{output}")


def common(bootstrap: str, topic: str, out: Path, codec: str = "none", count: int = 0,
           base_ts: int = 0) -> list[str]:
    return ["--bootstrap", bootstrap, "--topic", topic, "--codec", codec, "--count", str(count),
            "--base-ts", str(base_ts), "--out", str(out), "--timeout", str(RUN_TIMEOUT - 20)]


def read(path: Path) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp), sorted."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return sorted((r["partition"], r["offset"], r["key"], r["value"],
                   tuple(tuple(h) for h in r["headers"]), r["timestamp"]) for r in rows)


def expected(src: str, base_ts: int, headers: bool) -> dict[int, tuple]:
    """seq -> (key, value, headers, timestamp) of what the producer sent."""
    return {m.seq: (m.key, m.value, tuple(map(tuple, m.headers)) if headers else (), m.timestamp)
            for m in wl.messages(COUNT, src, base_ts)}


def check(reader: str, rows: list[tuple], want: dict[int, tuple]) -> None:
    problems = []
    seqs = [int(r[3].split(":", 1)[0]) for r in rows]
    if sorted(seqs) != list(range(COUNT)):
        problems.append(f"read {len(rows)} records, {len(set(seqs))} distinct of {COUNT}")
    by_partition: dict[int, list[int]] = defaultdict(list)
    for (p, off, key, value, headers, ts), seq in zip(rows, seqs):
        by_partition[p].append(off)
        if want.get(seq) != (key, value, headers, ts):
            problems.append(f"seq {seq}: {(key, value[:20], headers, ts)} != {want.get(seq)}")
    for p, offs in by_partition.items():
        if offs != list(range(len(offs))):
            problems.append(f"partition {p}: offsets are not 0..{len(offs) - 1}")
    if problems:
        pytest.fail(f"{reader}: {len(problems)} problems:\n" + "\n".join(problems[:20]))


def test_kafka_node_and_v2_clients_read_each_other(broker_cluster, tmp_path: Path) -> None:
    b = broker_cluster.start()
    run_id = uuid.uuid4().hex[:8]
    legacy_topic, modern_topic = f"mix-kn-{run_id}", f"mix-js-{run_id}"
    base_ts = int(time.time() * 1000)

    # kafka-node writes magic 1 gzip wrappers with all-zero inner offsets
    kn_out = tmp_path / "kn-own.jsonl"
    run(["node", str(NODE / "kafka_node_driver.js"), "--mode", "produce",
         *common(b.bootstrap, legacy_topic, kn_out, "gzip", COUNT, base_ts),
         "--produced", str(tmp_path / "kn-produced.jsonl")], tmp_path, "kafka-node produce")
    # kafkajs writes v2 batches with headers (and reads them back itself)
    run(["node", str(NODE / "kafkajs_driver.js"),
         *common(b.bootstrap, modern_topic, tmp_path / "js-own.jsonl", "gzip", COUNT, base_ts)],
        tmp_path, "kafkajs produce")
    kn_before = tmp_path / "kn-reads-js-before.jsonl"
    run(["node", str(NODE / "kafka_node_driver.js"), "--mode", "consume",
         *common(b.bootstrap, modern_topic, kn_before)], tmp_path, "kafka-node reads kafkajs")

    b.restart()

    outs = {name: tmp_path / f"{name}.jsonl" for name in
            ("kafkajs", "node-rdkafka", "confluent-kafka", "kafka-node", "kafka-node-js")}
    readers = [
        ("kafkajs", ["node", str(NODE / "kafkajs_driver.js")], legacy_topic),
        ("node-rdkafka", ["node", str(NODE / "rdkafka_reader.js")], legacy_topic),
        ("confluent-kafka", [sys.executable, str(HERE / "driver_confluent.py")], legacy_topic),
        ("kafka-node", ["node", str(NODE / "kafka_node_driver.js"), "--mode", "consume"],
         legacy_topic),
        ("kafka-node-js", ["node", str(NODE / "kafka_node_driver.js"), "--mode", "consume"],
         modern_topic),
    ]
    for name, cmd, topic in readers:  # all after the restart
        run([*cmd, *common(b.bootstrap, topic, outs[name])], tmp_path, f"{name} reads {topic}")

    legacy_want = expected("kafka-node/gzip", base_ts, headers=False)
    reference = read(outs["kafkajs"])
    for name in ("kafkajs", "node-rdkafka", "confluent-kafka", "kafka-node"):
        rows = read(outs[name])
        check(f"{name} reading kafka-node's topic", rows, legacy_want)
        assert rows == reference, f"{name} and kafkajs read kafka-node's topic differently"
    # kafka-node's delivery reports name the offsets every reader found the messages at
    placed = {int(r[3].split(":", 1)[0]): (r[0], r[1]) for r in reference}
    for line in (tmp_path / "kn-produced.jsonl").read_text().splitlines():
        d = json.loads(line)
        assert placed[d["seq"]] == (d["partition"], d["offset"]), f"delivery report {d}"

    js_want = expected("kafkajs/gzip", base_ts, headers=False)  # legacy formats drop headers
    before, after = read(kn_before), read(outs["kafka-node-js"])
    check("kafka-node reading kafkajs's topic", before, js_want)
    assert before == after, "kafka-node read kafkajs's topic differently after the restart"
    js_own = read(tmp_path / "js-own.jsonl")
    assert [r[:4] + r[5:] for r in js_own] == [r[:4] + r[5:] for r in before]
