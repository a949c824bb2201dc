"""Client compatibility suite (issue 5): every client x scenario against 3 kafkapy brokers on
a 3-node ZooKeeper ensemble, each cell a real client in a driver process (py_driver.py for
kcat, confluent-kafka, kafka-python, aiokafka; node/compat_driver.js for kafkajs,
node-rdkafka, kafka-node), its output checked here (compat_checks.py). The matrix is printed
at the end of the run (conftest.py).

Scenarios (columns):
  admin       create (3 partitions, RF 3), describe (+ configs), delete; the test confirms the
              deletion in the cluster's metadata.
  keyed, gzip, snappy, lz4, zstd
              2,000 keyed messages with headers and timestamps, produced with the codec and
              read back by the same client: each exactly once, offsets 0.. per partition,
              per-key order, key in one partition, contents intact, delivery reports at the
              offsets read, and every batch on every replica's disk carries the codec.
  large       3 small messages, one 900 KB message, 3 small ones; read back by the client.
  group       600 messages; a group member reads 250 and stops (commits each record or small
              batch), the committed offsets equal what it read; a second member resumes
              exactly there and reads to the end.
  failover    20,000 messages while the test kill -9s the leader of partition 0 (after the
              first 1,000 acks, before 90%) and restarts it; every acknowledged message read back once
              (kafka-node, which has no idempotent producer, may duplicate a retried one),
              per-key order kept.
  cross-read  every client writes 500 messages into one shared topic; every client reads the
              whole topic; every reader's records are checked and identical to the others'.
Cells a client cannot run are skipped with the reason (UNSUPPORTED); operations a client
lacks inside a cell are named by the driver ("UNSUPPORTED <op>") and must be listed in
UNSUPPORTED_OPS with the reason, or the cell fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import compat_checks as ch
from compat_checks import Run
from compat_common import CLIENTS
from compat_common import MATRIX_SCENARIOS as SCENARIOS

pytestmark = pytest.mark.clients

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIENTS_DIR = HERE.parent
NODE_MODULES = CLIENTS_DIR / "node" / "node_modules"
PY_DRIVER = HERE / "py_driver.py"
NODE_DRIVER = HERE / "node" / "compat_driver.js"
PY_CLIENTS = {"kcat", "confluent-kafka", "kafka-python", "aiokafka"}

COUNT = 2000
LARGE_SIZE = 900 * 1024
GROUP_COUNT, GROUP_FIRST = 600, 250
FAILOVER_COUNT, FAILOVER_KILL_AT = 20_000, 1000
CROSS_COUNT = 500
DRIVER_TIMEOUT = 150.0  # a healthy cell takes seconds; a hung broker must not eat CI
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

#: Cells a client cannot run at all, with the reason (skipped, by name, in the matrix).
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("kafka-node", "lz4"): "kafka-node 5.0.0 has no lz4 codec (gzip and snappy only)",
    ("kafka-node", "zstd"): "kafka-node 5.0.0 has no zstd codec (gzip and snappy only)",
}
#: Operations a client lacks inside a cell it runs; the driver names them on stderr.
UNSUPPORTED_OPS: dict[str, dict[str, str]] = {
    "kcat": {
        "create": "kcat has no admin API: the test creates the topic",
        "delete": "kcat has no admin API: topic not deleted",
        "describe-configs": "kcat has no DescribeConfigs (it describes with -L -J)",
        "headers": "kcat -P gives every message the same -H headers (src, producer)",
        "timestamps": "kcat -P cannot set timestamps: CreateTime stamped by librdkafka, "
                      "checked to lie within the run",
        "delivery-reports": "kcat -P prints no per-message delivery reports (exit code only)",
    },
    "kafka-node": {
        "delete": "kafka-node 5.0.0 has createTopics but no deleteTopics",
        "headers": "kafka-node writes and reads magic 0/1 message sets, which have no headers",
        "idempotence": "kafka-node has no idempotent producer: max in-flight 1 with retries "
                       "(a retried message may be duplicated, never lost or reordered)",
    },
    "node-rdkafka": {
        "describe-configs": "node-rdkafka 3.x AdminClient has no describeConfigs",
    },
}
#: Producers without idempotence: a retry after a failover may write a message twice.
NOT_IDEMPOTENT = {"kafka-node"}


# --- running drivers --------------------------------------------------------------------------

class Cell:
    """One matrix cell: runs the client's driver and remembers what the client lacked."""

    def __init__(self, client: str, scenario: str, brokers: dict, tmp_path: Path,
                 request: pytest.FixtureRequest | None) -> None:
        self.client, self.scenario, self.brokers = client, scenario, brokers
        self.tmp, self.request = tmp_path, request
        self.bootstrap = ",".join(b.bootstrap for b in brokers.values())
        self.lacked: dict[str, str] = {}

    def command(self, scenario: str, **opts) -> list[str]:
        if self.client in PY_CLIENTS:
            cmd = [sys.executable, str(PY_DRIVER)]
        else:
            cmd = ["node", str(NODE_DRIVER)]
        cmd += ["--client", self.client, "--scenario", scenario, "--bootstrap", self.bootstrap,
                "--timeout", str(int(DRIVER_TIMEOUT - 20))]
        for k, v in opts.items():
            if v is not None:
                cmd += [f"--{k.replace('_', '-')}", str(v)]
        return cmd

    def start(self, scenario: str, name: str, **opts) -> tuple[subprocess.Popen, Path]:
        self.require()
        log = self.tmp / f"{name}.log"
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        with open(log, "wb") as f:
            proc = subprocess.Popen(self.command(scenario, **opts), stdout=f,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(HERE), env=env)
        return proc, log

    def finish(self, proc: subprocess.Popen, log: Path, what: str,
               timeout: float = DRIVER_TIMEOUT) -> str:
        t0 = time.monotonic()
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            rc = None
        out = log.read_text(errors="replace")
        if rc != 0:
            pytest.fail(f"{self.client} {what}: driver "
                        f"{'timed out' if rc is None else f'exited {rc}'}:\n{out[-5000:]}")
        self._lacks(out)
        print(f"{self.client} {what}: done {time.monotonic() - t0:.1f}s after wait\n{out[-1500:]}")
        return out

    def run(self, scenario: str, name: str, **opts) -> str:
        proc, log = self.start(scenario, name, **opts)
        return self.finish(proc, log, f"{scenario} ({name})")

    def _lacks(self, output: str) -> None:
        allowed = UNSUPPORTED_OPS.get(self.client, {})
        for line in output.splitlines():
            if line.startswith("UNSUPPORTED "):
                op = line.split()[1].rstrip(":")
                if op not in allowed:
                    pytest.fail(f"{self.client}'s driver skipped '{op}' ({line}), which is not a "
                                f"known limit of the client (UNSUPPORTED_OPS): the driver must "
                                f"do it, or the table must name why the client cannot")
                if op not in self.lacked:
                    self.lacked[op] = allowed[op]
                    if self.request is not None:  # None: a cross-read writer, not this cell
                        self.request.node.user_properties.append(
                            ("compat_lacks", (op, allowed[op])))

    def require(self) -> None:
        """Missing tooling is a broken setup, not a reason to skip: fail with the fix."""
        if self.client == "kcat" and shutil.which("kcat") is None:
            pytest.fail("kcat is not installed: run scripts/setup.sh")
        if self.client not in PY_CLIENTS:
            if shutil.which("node") is None:
                pytest.fail("node is not installed: run scripts/setup.sh --clients")
            if not (NODE_MODULES / self.client).is_dir():
                pytest.fail(f"{self.client} is not installed: run scripts/setup.sh --clients")
            if not NODE_DRIVER.exists():
                pytest.fail(f"{NODE_DRIVER.relative_to(CLIENTS_DIR)} does not exist")

    def reports(self) -> bool:
        return "delivery-reports" not in UNSUPPORTED_OPS.get(self.client, {})


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def expect_ok(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what}: {len(problems)} problems:\n" + "\n".join(problems[:40]))


# --- cluster-side helpers (the test's own view, through confluent-kafka's admin) --------------

def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])[
        topic].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == 3 and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.1)
    pytest.fail(f"topic {topic} has no leaders after 60 s")


def topic_names(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    """Retried: the broker answering may not have the new topic's metadata yet."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 30
    while True:
        t = admin.list_topics(topic, timeout=10).topics.get(topic)
        p = t.partitions.get(partition) if t is not None and t.error is None else None
        if p is not None and p.leader >= 0:
            return p.leader
        if time.monotonic() > deadline:
            pytest.fail(f"no leader of {topic}-{partition} in metadata after 30 s")
        time.sleep(0.1)


def end_offsets(bootstrap: str, topic: str, timeout: float = 30) -> dict[int, int]:
    """High watermarks; retried while a broker's metadata has not caught up with a new topic."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-test-probe"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        for p in range(3)}
            except ck.KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        c.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)
        return {tp.partition: max(tp.offset, 0) for tp in tps}  # none yet: resume at 0
    finally:
        c.close()


def batch_codecs(brokers: dict, topic: str) -> dict[int, int]:
    from test_produce_consume import batch_codecs as on_disk

    total: dict[int, int] = {}
    for b in brokers.values():
        for codec, n in on_disk(b.log_dir, topic).items():
            total[codec] = total.get(codec, 0) + n
    return total


def new_topic(cell: Cell) -> str:
    return f"cx-{cell.scenario}-{cell.client}-{uuid.uuid4().hex[:6]}"


def now_ms() -> int:
    return int(time.time() * 1000)


# --- scenarios ---------------------------------------------------------------------------------

def scenario_admin(cell: Cell) -> None:
    topic = new_topic(cell)
    if "create" in UNSUPPORTED_OPS.get(cell.client, {}):
        create_topic(cell.bootstrap, topic)
    out = cell.tmp / "admin.json"
    cell.run("admin", "admin", topic=topic, out=out)
    res = json.loads(out.read_text())
    ids = set(cell.brokers)
    parts = res.get("partitions", {})
    problems = []
    if sorted(parts) != ["0", "1", "2"]:
        problems.append(f"described partitions {sorted(parts)}, expected 0, 1, 2")
    for p, d in sorted(parts.items()):
        if set(d["replicas"]) != ids or len(d["replicas"]) != 3:
            problems.append(f"partition {p}: replicas {d['replicas']}, expected each of {ids}")
        if d["leader"] not in d["replicas"]:
            problems.append(f"partition {p}: leader {d['leader']} not a replica")
        if not d["isr"] or not set(d["isr"]) <= set(d["replicas"]) or d["leader"] not in d["isr"]:
            problems.append(f"partition {p}: isr {d['isr']} (leader {d['leader']})")
    can_create = "create" not in cell.lacked
    can_delete = "delete" not in cell.lacked
    if res.get("created") is not can_create:
        problems.append(f"created={res.get('created')} but create supported={can_create}")
    if res.get("deleted") is not can_delete:
        problems.append(f"deleted={res.get('deleted')} but delete supported={can_delete}")
    if "describe-configs" not in cell.lacked and not res.get("configs"):
        problems.append("no topic configs described")
    listed = topic in topic_names(cell.bootstrap)
    if can_delete and listed:
        problems.append(f"{topic} still listed by the cluster after the client deleted it")
    if not can_delete and not listed:
        problems.append(f"{topic} gone although the client cannot delete it")
    expect_ok(problems, f"{cell.client} admin")


def produce_run(cell: Cell, topic: str, name: str, count: int, base_ts: int, src: str,
                codec: str = "none", value_size: int | None = None) -> tuple[Run, Path | None]:
    produced = cell.tmp / f"{name}.acks" if cell.reports() else None
    t0 = now_ms() - 1000
    cell.run("produce", name, topic=topic, codec=codec, count=count, base_ts=base_ts, src=src,
             value_size=value_size, produced=produced)
    return Run(cell.client, src, count, base_ts, value_size, (t0, now_ms() + 1000)), produced


def scenario_codec(cell: Cell, codec: str) -> None:
    topic = new_topic(cell)
    create_topic(cell.bootstrap, topic)
    run, produced = produce_run(cell, topic, "produce", COUNT, now_ms(),
                                f"{cell.client}/{codec}", codec)
    out = cell.tmp / "consumed.jsonl"
    cell.run("consume", "consume", topic=topic, out=out)
    records = read_jsonl(out)
    expect_ok(ch.check_records(records, [run], cell.client), f"{cell.client}/{codec} records")
    if produced:
        expect_ok(ch.check_deliveries(read_jsonl(produced), run, records),
                  f"{cell.client}/{codec} delivery reports")
    codecs = batch_codecs(cell.brokers, topic)
    assert codecs, f"no record batches of {topic} on any broker's disk"
    assert set(codecs) == {CODEC_IDS[codec]}, (
        f"batches on disk by codec id {codecs}; expected only {CODEC_IDS[codec]} ({codec})")


def scenario_large(cell: Cell) -> None:
    topic = new_topic(cell)
    create_topic(cell.bootstrap, topic)
    base = now_ms()
    plan = [("small-before", 3, None), ("large", 1, LARGE_SIZE), ("small-after", 3, None)]
    runs = []
    for k, (name, count, size) in enumerate(plan):
        runs.append(produce_run(cell, topic, name, count, base + 1000 * k,
                                f"{cell.client}/{name}", value_size=size))
    out = cell.tmp / "consumed.jsonl"
    cell.run("consume", "consume", topic=topic, out=out, value_size=LARGE_SIZE)
    records = read_jsonl(out)
    all_runs = [r for r, _ in runs]
    expect_ok(ch.check_records(records, all_runs, cell.client), f"{cell.client} large records")
    big = [r for r in records if r.get("value_len", 0) == LARGE_SIZE]
    assert len(big) == 1, f"{len(big)} records of {LARGE_SIZE} bytes read, expected 1"
    for run, produced in runs:
        if produced:
            expect_ok(ch.check_deliveries(read_jsonl(produced), run, records, all_runs),
                      f"{cell.client} {run.src} delivery reports")


def scenario_group(cell: Cell) -> None:
    topic = new_topic(cell)
    group = f"g-{topic}"
    create_topic(cell.bootstrap, topic)
    run, _ = produce_run(cell, topic, "produce", GROUP_COUNT, now_ms(), f"{cell.client}/group")
    ends = end_offsets(cell.bootstrap, topic)
    assert sum(ends.values()) == GROUP_COUNT, f"end offsets {ends}"
    first, second = cell.tmp / "group-1.jsonl", cell.tmp / "group-2.jsonl"
    cell.run("group", "group-1", topic=topic, group=group, max=GROUP_FIRST, out=first)
    committed = committed_offsets(cell.bootstrap, group, topic)
    cell.run("group", "group-2", topic=topic, group=group, out=second)
    r1, r2 = read_jsonl(first), read_jsonl(second)
    assert len(r1) == GROUP_FIRST, f"first member read {len(r1)} records, told to stop at " \
                                   f"{GROUP_FIRST}"
    expect_ok(ch.check_group_resume(r1, r2, ends, committed), f"{cell.client} group resume")
    merged = sorted(r1 + r2, key=lambda r: (r["partition"], r["offset"]))
    expect_ok(ch.check_records(merged, [run], cell.client), f"{cell.client} group records")


def scenario_failover(cell: Cell) -> None:
    topic = new_topic(cell)
    create_topic(cell.bootstrap, topic)
    base = now_ms()
    produced = cell.tmp / "produce.acks" if cell.reports() else None
    t0 = now_ms() - 1000
    proc, log = cell.start("produce", "produce", topic=topic, count=FAILOVER_COUNT, base_ts=base,
                           src=f"{cell.client}/failover", produced=produced)
    probe = Consumer({"bootstrap.servers": cell.bootstrap, "group.id": "compat-test-probe"})
    try:
        victim = cell.brokers[leader_of(cell.bootstrap, topic, 0)]
        acked = _progress(produced, probe, topic)
        deadline = time.monotonic() + 90
        while (n := acked()) < FAILOVER_KILL_AT:
            if proc.poll() is not None or time.monotonic() > deadline:
                state = "exited" if proc.poll() is not None else "still below"
                pytest.fail(f"{cell.client}: producer {state} {FAILOVER_KILL_AT} acks ({n}):\n"
                            f"{log.read_text()[-3000:]}")
            time.sleep(0.01)
        victim.kill9()
        killed_mid_run = proc.poll() is None
        print(f"killed broker {victim.broker_id} (leader of p0) at {n} acked")
        victim.start(90)
        cell.finish(proc, log, "produce (failover)", timeout=DRIVER_TIMEOUT + 60)
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert killed_mid_run and n <= FAILOVER_COUNT * 0.9, (
        f"the leader was killed at {n} of {FAILOVER_COUNT} acked: not in the middle of producing")
    run = Run(cell.client, f"{cell.client}/failover", FAILOVER_COUNT, base, None,
              (t0, now_ms() + 1000))
    out = cell.tmp / "consumed.jsonl"
    cell.run("consume", "consume", topic=topic, out=out)
    records = read_jsonl(out)
    dup_ok = cell.client in NOT_IDEMPOTENT
    expect_ok(ch.check_records(records, [run], cell.client, duplicates_allowed=dup_ok),
              f"{cell.client} failover records")
    extra = len(records) - FAILOVER_COUNT
    if dup_ok and extra:
        cell.request.node.user_properties.append(
            ("compat_note", f"{extra} retried duplicates (no idempotence)"))
    if produced:
        expect_ok(ch.check_deliveries(read_jsonl(produced), run, records),
                  f"{cell.client} failover delivery reports")


def _progress(produced: Path | None, probe: Consumer, topic: str):
    """How many messages are acknowledged so far: delivery reports where the client writes
    them (cheap to poll, so the kill lands early even for a fast producer), else the sum of
    the high watermarks."""
    if produced is not None:
        def reports() -> int:
            try:
                return produced.read_bytes().count(b"\n")
            except FileNotFoundError:
                return 0
        return reports

    def watermarks() -> int:
        try:
            return sum(probe.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                       for p in range(3))
        except ck.KafkaException:  # metadata of the new topic not there yet
            return 0
    return watermarks


class CrossTopic:
    """The shared topic of the cross-read cells: every client writes once (on first use)."""

    def __init__(self) -> None:
        self.topic = f"cx-cross-{uuid.uuid4().hex[:6]}"
        self.runs: dict[str, Run] = {}
        self.errors: dict[str, str] = {}
        self.reports: dict[str, Path] = {}
        self.reference: tuple[str, list[dict]] | None = None
        self.produced = False

    def produce_all(self, brokers: dict, tmp: Path) -> None:
        if self.produced:
            return
        self.produced = True
        bootstrap = ",".join(b.bootstrap for b in brokers.values())
        create_topic(bootstrap, self.topic)
        base = now_ms() - 3 * 24 * 3600 * 1000  # explicit timestamps far from kcat's "now"
        for k, client in enumerate(CLIENTS):
            cell = Cell(client, "cross-read", brokers, tmp, None)
            try:
                run, produced = produce_run(cell, self.topic, f"cross-{client}", CROSS_COUNT,
                                            base + k * 1_000_000, f"{client}/cross")
                self.runs[client] = run
                if produced:
                    self.reports[client] = produced
            except pytest.fail.Exception as e:
                self.errors[client] = str(e)[:3000]
                # what it wrote is unknown: attribute it, demand none of it
                self.runs[client] = Run(client, f"{client}/cross", CROSS_COUNT,
                                        base + k * 1_000_000, None, (base, now_ms()))


@pytest.fixture(scope="module")
def cross_topic() -> CrossTopic:
    return CrossTopic()


def scenario_cross(cell: Cell, cross: CrossTopic) -> None:
    cross.produce_all(cell.brokers, cell.tmp)
    if cell.client in cross.errors:
        pytest.fail(f"{cell.client} could not write its share of the shared topic:\n"
                    f"{cross.errors[cell.client]}")
    out = cell.tmp / "cross.jsonl"
    cell.run("consume", "consume", topic=cross.topic, out=out)
    records = read_jsonl(out)
    runs = list(cross.runs.values())
    complete = [r for c, r in cross.runs.items() if c not in cross.errors]
    expect_ok(ch.check_records(records, runs, cell.client, complete=complete),
              f"{cell.client} reading every client's records")
    writer_problems = []
    for client, path in cross.reports.items():
        writer_problems += ch.check_deliveries(read_jsonl(path), cross.runs[client], records, runs)
    expect_ok(writer_problems, "delivery reports vs what this client read")
    if cross.reference is None:
        cross.reference = (cell.client, records)
        return
    ref_client, ref = cross.reference
    headers = cell.client not in ch.NO_HEADERS and ref_client not in ch.NO_HEADERS
    mine, theirs = ch.record_map(records, headers), ch.record_map(ref, headers)
    diff = [k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    assert not diff, (f"{cell.client} and {ref_client} read the shared topic differently at "
                      f"{len(diff)} offsets, e.g. "
                      + "; ".join(f"{k}: {mine.get(k)} vs {theirs.get(k)}" for k in diff[:5]))


# --- the matrix --------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_compat(scenario: str, client: str, compat_brokers, cross_topic: CrossTopic,
                tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if (client, scenario) in UNSUPPORTED:
        pytest.skip(UNSUPPORTED[client, scenario])
    cell = Cell(client, scenario, compat_brokers, tmp_path, request)
    if scenario == "admin":
        scenario_admin(cell)
    elif scenario == "keyed":
        scenario_codec(cell, "none")
    elif scenario in CODEC_IDS:
        scenario_codec(cell, scenario)
    elif scenario == "large":
        scenario_large(cell)
    elif scenario == "group":
        scenario_group(cell)
    elif scenario == "failover":
        scenario_failover(cell)
    elif scenario == "cross-read":
        scenario_cross(cell, cross_topic)
    else:
        pytest.fail(f"unknown scenario {scenario}")
