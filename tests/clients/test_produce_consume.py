"""Real clients against the shared kafkapy broker: each client x codec produces 10,000 keyed
messages (2 headers, explicit timestamps) into its own 3-partition topic, consumes them back
and the records are checked here (workload.py describes the messages and the files).

Checks: every message consumed exactly once; per partition the offsets run 0, 1, 2... with no
gap or repeat (a consumer must never skip an event); per-key order kept; every key in one
partition; keys, values, headers and timestamps intact; delivery reports (where the client
gives them) name the offsets the records were read at; and the batches on disk really carry
the codec (so a client that silently fell back to no compression cannot pass).
"""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import workload as wl
from driver_kcat import kcat_headers

pytestmark = pytest.mark.clients

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
COUNT = 10_000
RUN_TIMEOUT = 90.0  # a healthy run takes a few seconds; a hung broker must not eat CI
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

CLIENTS: dict[str, list[str]] = {
    "kcat": [sys.executable, str(HERE / "driver_kcat.py")],
    "confluent-kafka": [sys.executable, str(HERE / "driver_confluent.py")],
    "kafka-python": [sys.executable, str(HERE / "driver_kafka_python.py")],
    "aiokafka": [sys.executable, str(HERE / "driver_aiokafka.py")],
    "kafkajs": ["node", str(NODE_DIR / "kafkajs_driver.js")],
    "node-rdkafka": ["node", str(NODE_DIR / "rdkafka_driver.js")],
    "kafka-node": ["node", str(NODE_DIR / "kafka_node_driver.js")],
}
#: Cells a client cannot run at all, with the reason (they are reported as skipped, by name).
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("kafka-node", "lz4"): "kafka-node 5.0.0 has no lz4 codec (gzip and snappy only)",
    ("kafka-node", "zstd"): "kafka-node 5.0.0 has no zstd codec (gzip and snappy only)",
}
#: Clients that cannot carry record headers: kafka-node speaks only the pre-0.11 message
#: formats (magic 0/1), which have no headers, so its records must come back with none.
NO_HEADERS = {"kafka-node"}
#: Clients whose driver writes per-message delivery reports (kcat cannot).
REPORTS_DELIVERIES = set(CLIENTS) - {"kcat"}


def _require_client(client: str) -> None:
    """Missing tooling is a broken setup, not a reason to skip: fail with the fix."""
    if client == "kcat" and shutil.which("kcat") is None:
        pytest.fail("kcat is not installed: run scripts/setup.sh")
    if client in ("kafkajs", "node-rdkafka", "kafka-node"):
        if shutil.which("node") is None:
            pytest.fail("node is not installed: run scripts/setup.sh --clients")
        pkg = client
        if not (NODE_DIR / "node_modules" / pkg).is_dir():
            pytest.fail(f"{pkg} is not installed in {NODE_DIR}: run scripts/setup.sh --clients")


def run_driver(client: str, codec: str, bootstrap: str, topic: str, base_ts: int,
               tmp_path: Path) -> tuple[Path, Path | None]:
    out = tmp_path / "consumed.jsonl"
    produced = tmp_path / "produced.jsonl" if client in REPORTS_DELIVERIES else None
    cmd = CLIENTS[client] + ["--bootstrap", bootstrap, "--topic", topic, "--codec", codec,
                             "--count", str(COUNT), "--base-ts", str(base_ts),
                             "--out", str(out), "--timeout", str(RUN_TIMEOUT - 30)]
    if produced:
        cmd += ["--produced", str(produced)]
    log = tmp_path / "driver.log"
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
    output = log.read_text(errors="replace")[-6000:]
    if rc != 0:
        pytest.fail(f"{client} driver {'timed out' if rc is None else f'exited {rc}'} after "
                    f"{time.monotonic() - t0:.1f}s:\n{output}")
    print(f"{client}/{codec}: {time.monotonic() - t0:.1f}s\n{output}")
    return out, produced


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check_records(client: str, codec: str, records: list[dict], base_ts: int,
                  window: tuple[int, int]) -> dict[int, dict]:
    """All content and ordering checks; returns seq -> record."""
    src = f"{client}/{codec}"
    problems: list[str] = []
    by_seq: dict[int, dict] = {}
    seen = Counter()
    for r in records:
        try:
            seq = int(r["value"].split(":", 1)[0])
        except (AttributeError, ValueError):
            problems.append(f"unrecognised value at p{r['partition']}@{r['offset']}: {r['value']!r:.80}")
            continue
        seen[seq] += 1
        by_seq[seq] = r
        exp = wl.message(seq, src, base_ts)
        if not 0 <= seq < COUNT:
            problems.append(f"seq {seq} out of range")
            continue
        if r["key"] != exp.key:
            problems.append(f"seq {seq}: key {r['key']!r} != {exp.key!r}")
        if r["value"] != exp.value:
            problems.append(f"seq {seq}: value differs: {r['value']!r:.80}")
        want_headers = (kcat_headers(src) if client == "kcat"
                        else [] if client in NO_HEADERS else exp.headers)
        if [tuple(h) for h in r["headers"]] != want_headers:
            problems.append(f"seq {seq}: headers {r['headers']} != {want_headers}")
        if client == "kcat":  # kcat cannot set timestamps: librdkafka stamps produce time
            if not window[0] <= r["timestamp"] <= window[1]:
                problems.append(f"seq {seq}: timestamp {r['timestamp']} outside run {window}")
        elif r["timestamp"] != exp.timestamp:
            problems.append(f"seq {seq}: timestamp {r['timestamp']} != {exp.timestamp}")
    missing = [s for s in range(COUNT) if s not in seen]
    dups = {s: n for s, n in seen.items() if n > 1}
    if missing:
        problems.insert(0, f"{len(missing)} of {COUNT} messages never consumed, e.g. {missing[:10]}")
    if dups:
        problems.insert(0, f"{len(dups)} messages consumed more than once, e.g. {list(dups.items())[:10]}")

    offsets: dict[int, list[int]] = defaultdict(list)
    key_partitions: dict[str, set[int]] = defaultdict(set)
    key_seqs: dict[str, list[int]] = defaultdict(list)
    for r in records:
        offsets[r["partition"]].append(r["offset"])
        key_partitions[r["key"]].add(r["partition"])
        if r["value"] and r["value"].split(":", 1)[0].isdigit():
            key_seqs[r["key"]].append(int(r["value"].split(":", 1)[0]))
    for p, offs in sorted(offsets.items()):
        if offs != list(range(len(offs))):
            bad = next(i for i, o in enumerate(offs) if o != i)
            problems.append(f"partition {p}: offsets not 0..{len(offs) - 1} in order; first "
                            f"break at position {bad}: {offs[max(0, bad - 2):bad + 3]}")
    if set(offsets) - set(range(wl.PARTITIONS)):
        problems.append(f"records from partitions {sorted(offsets)} (topic has {wl.PARTITIONS})")
    split = {k: sorted(ps) for k, ps in key_partitions.items() if len(ps) > 1}
    if split:
        problems.append(f"{len(split)} keys in more than one partition, e.g. {list(split.items())[:5]}")
    reordered = [k for k, seqs in key_seqs.items() if seqs != sorted(seqs)]
    if reordered:
        problems.append(f"per-key order broken for {len(reordered)} keys, e.g. {reordered[:5]}")
    if problems:
        pytest.fail(f"{client}/{codec}: {len(problems)} problems:\n" + "\n".join(problems[:40]))
    return by_seq


def check_deliveries(produced: Path, by_seq: dict[int, dict]) -> None:
    reports = read_jsonl(produced)
    problems = []
    if len(reports) != COUNT or {d["seq"] for d in reports} != set(range(COUNT)):
        problems.append(f"{len(reports)} delivery reports for {COUNT} messages")
    for d in reports:
        r = by_seq.get(d["seq"])
        if r is not None and (r["partition"], r["offset"]) != (d["partition"], d["offset"]):
            problems.append(f"seq {d['seq']} acknowledged at p{d['partition']}@{d['offset']} "
                            f"but read at p{r['partition']}@{r['offset']}")
    if problems:
        pytest.fail("delivery reports disagree with the log:\n" + "\n".join(problems[:20]))


def batch_codecs(log_dir: Path, topic: str) -> Counter:
    """Compression codec of every record batch of `topic` in the broker's segment files."""
    codecs: Counter = Counter()
    dirs = [d for d in log_dir.glob(f"{topic}-*")
            if d.name.rsplit("-", 1)[0] == topic and d.name.rsplit("-", 1)[1].isdigit()]
    for d in dirs:
        for seg in sorted(d.glob("*.log")):
            data = seg.read_bytes()
            pos = 0
            while pos + 23 <= len(data):
                (length,) = struct.unpack_from(">i", data, pos + 8)
                if length <= 0:
                    break  # preallocated zero tail
                magic = data[pos + 16]
                attributes = struct.unpack_from(">h", data, pos + 21)[0] if magic >= 2 else data[pos + 17]
                codecs[attributes & 0x07] += 1
                pos += 12 + length
    return codecs


@pytest.mark.parametrize("codec", wl.CODECS)
@pytest.mark.parametrize("client", list(CLIENTS))
def test_produce_consume(client: str, codec: str, broker, tmp_path: Path) -> None:
    if (client, codec) in UNSUPPORTED:
        pytest.skip(f"unsupported: {UNSUPPORTED[client, codec]}")
    _require_client(client)
    topic = f"cl-{client}-{codec}-{uuid.uuid4().hex[:8]}"
    base_ts = int(time.time() * 1000)
    t_start = base_ts - 1000
    out, produced = run_driver(client, codec, broker.bootstrap, topic, base_ts, tmp_path)
    t_end = int(time.time() * 1000) + 1000

    records = read_jsonl(out)
    by_seq = check_records(client, codec, records, base_ts, (t_start, t_end))
    if produced is not None:
        check_deliveries(produced, by_seq)

    codecs = batch_codecs(broker.log_dir, topic)
    assert codecs, f"no record batches of {topic} found under {broker.log_dir}"
    assert set(codecs) == {CODEC_IDS[codec]}, (
        f"batches on disk by codec id {dict(codecs)}; expected only {CODEC_IDS[codec]} ({codec})")
