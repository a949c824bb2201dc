"""What the Python compat drivers share: the contract's command line, the message values
(including the `--value-size` padding) and the JSON-lines files.

Messages are tests/clients/workload.py's (key "key-{i%97}", value "{i}:"+filler, headers
seq/src, timestamp base_ts+i). With `--value-size N` the value is "{i}:" followed by the filler
repeated and cut to exactly N bytes (node/compat_driver.js builds the same bytes).
A consumed record whose value has BIG_VALUE bytes or more carries "value_len" and
"value_sha256" instead of "value", so a 900 KB record stays a short line (same rule in
node/common.js).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import IO, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/clients: workload.py
import workload as wl  # noqa: E402

SCENARIOS = ("admin", "produce", "consume", "group")
#: The suite's matrix: rows and columns (test_compat.py, conftest.py).
CLIENTS = ("kcat", "confluent-kafka", "kafka-python", "aiokafka",
           "kafkajs", "node-rdkafka", "kafka-node")
MATRIX_SCENARIOS = ("admin", "keyed", "gzip", "snappy", "lz4", "zstd", "large", "group",
                    "failover", "cross-read")
PARTITIONS = 3
BIG_VALUE = 4096
REPLICATION_FACTOR = 3


def value_bytes(i: int, size: int | None) -> bytes:
    """Message i's value: the workload's, or padded with the filler to exactly `size` bytes."""
    if size is None:
        return wl.message(i, "", 0).value.encode()
    prefix = f"{i}:".encode()
    filler = wl.FILLER.encode()
    reps = (size - len(prefix)) // len(filler) + 1
    return (prefix + filler * reps)[:size]


def parse_args(clients: tuple[str, ...], argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="compat-suite driver (see compat_common.py)")
    p.add_argument("--client", required=True, choices=clients)
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--codec", choices=wl.CODECS, default="none")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--value-size", type=int, default=None)
    p.add_argument("--base-ts", type=int, default=None)
    p.add_argument("--group", default=None)
    p.add_argument("--max", type=int, default=None)
    p.add_argument("--src", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--produced", default=None)
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args(argv)
    if a.base_ts is None:
        a.base_ts = int(time.time() * 1000)
    if a.src is None:
        a.src = f"{a.client}/{a.codec}"
    if a.scenario in ("consume", "group", "admin") and not a.out:
        p.error(f"--out is required for --scenario {a.scenario}")
    if a.scenario == "group" and not a.group:
        p.error("--group is required for --scenario group")
    a.deadline = time.monotonic() + a.timeout
    return a


class Msg:
    """One message to produce, as bytes (what every client API takes)."""

    __slots__ = ("seq", "key", "value", "headers", "timestamp")

    def __init__(self, i: int, a: argparse.Namespace) -> None:
        m = wl.message(i, a.src, a.base_ts)
        self.seq = i
        self.key = m.key.encode()
        self.value = value_bytes(i, a.value_size)
        self.headers = [(k, v.encode()) for k, v in m.headers]
        self.timestamp = m.timestamp


def messages(a: argparse.Namespace) -> Iterator[Msg]:
    for i in range(a.count):
        yield Msg(i, a)


def _text(b) -> str | None:
    if b is None or isinstance(b, str):
        return b
    return bytes(b).decode("utf-8")


def record_line(a: argparse.Namespace, partition: int, offset: int, key, value, headers,
                timestamp: int) -> str:
    rec: dict = {"partition": partition, "offset": offset, "key": _text(key)}
    raw = value.encode() if isinstance(value, str) else value
    if raw is not None and len(raw) >= BIG_VALUE:
        raw = bytes(raw)
        rec["value_len"] = len(raw)
        rec["value_sha256"] = hashlib.sha256(raw).hexdigest()
    else:
        rec["value"] = _text(value)
    rec["headers"] = [[_text(k), _text(v)] for k, v in (headers or [])]
    rec["timestamp"] = timestamp
    return json.dumps(rec) + "\n"


def open_out(path: str | None) -> IO[str] | None:
    """Line-buffered, so a test watching the file sees each line as it is written."""
    return open(path, "w", encoding="utf-8", buffering=1) if path else None


def time_left(a: argparse.Namespace) -> float:
    left = a.deadline - time.monotonic()
    if left <= 0:
        fail("timed out")
    return left


def unsupported(op: str, reason: str) -> None:
    print(f"UNSUPPORTED {op}: {reason}", file=sys.stderr, flush=True)


delivery_line = wl.delivery_line
fail = wl.fail
log = wl.log
