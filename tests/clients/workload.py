"""The workload every client driver runs, and the pieces the Python drivers share.

Message i of a run (mirrored exactly in node/workload.js):
  key       = "key-{i % 97}"          (97 keys, ~103 messages each: per-key order is checkable)
  value     = "{i}:" + FILLER         (compressible, so codecs really compress)
  headers   = [("seq", str(i)), ("src", "<client>/<codec>")]
  timestamp = base_ts + i             (CreateTime, milliseconds)

Drivers take the same arguments (see `parse_args`) and write:
  --out       one JSON line per consumed record:
              {"partition", "offset", "key", "value", "headers": [[k, v], ...], "timestamp"}
  --produced  (where the client reports it) one JSON line per delivery report:
              {"seq", "partition", "offset"}
A driver exits 0 only after every delivery report succeeded and it consumed up to the end
offsets it read after producing; otherwise it prints why to stderr and exits non-zero.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Iterator, NamedTuple

FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit " * 2
NUM_KEYS = 97
PARTITIONS = 3
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


class Message(NamedTuple):
    seq: int
    key: str
    value: str
    headers: list[tuple[str, str]]
    timestamp: int


def message(i: int, src: str, base_ts: int) -> Message:
    return Message(i, f"key-{i % NUM_KEYS}", f"{i}:{FILLER}",
                   [("seq", str(i)), ("src", src)], base_ts + i)


def messages(count: int, src: str, base_ts: int) -> Iterator[Message]:
    for i in range(count):
        yield message(i, src, base_ts)


def parse_args(client: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=f"produce/consume driver for {client}")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--codec", choices=CODECS, default="none")
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--base-ts", type=int, default=None,
                   help="timestamp of message 0 in ms (default: now)")
    p.add_argument("--out", required=True, help="consumed records, JSON lines")
    p.add_argument("--produced", default=None, help="delivery reports, JSON lines")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds for the whole run")
    args = p.parse_args(argv)
    if args.base_ts is None:
        args.base_ts = int(time.time() * 1000)
    args.src = f"{client}/{args.codec}"
    args.deadline = time.monotonic() + args.timeout
    return args


def _text(b: bytes | str | None) -> str | None:
    if b is None or isinstance(b, str):
        return b
    return bytes(b).decode("utf-8")


def record_line(partition: int, offset: int, key, value, headers, timestamp: int) -> str:
    return json.dumps({
        "partition": partition, "offset": offset, "key": _text(key), "value": _text(value),
        "headers": [[_text(k), _text(v)] for k, v in (headers or [])],
        "timestamp": timestamp,
    }) + "\n"


def delivery_line(seq: int, partition: int, offset: int) -> str:
    return json.dumps({"seq": seq, "partition": partition, "offset": offset}) + "\n"


def open_out(path: str | None) -> IO[str] | None:
    return open(path, "w", encoding="utf-8") if path else None


def time_left(args: argparse.Namespace) -> float:
    left = args.deadline - time.monotonic()
    if left <= 0:
        fail("timed out")
    return left


def fail(msg: str) -> None:
    print(f"driver error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def log(msg: str) -> None:
    print(f"[driver {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
