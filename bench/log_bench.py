"""Append throughput of UnifiedLog: batches of 16 records x 1 KB, leader path.

Measures the whole produce-side log path (native scan, producer checks, offset
patching, one write, index maintenance, rolls) and prints MB/s of batch bytes.
Usage: python bench/log_bench.py [--seconds 3] [--idempotent] [--dir PATH]
"""
from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
import tempfile
import time

from kafkapy import native
from kafkapy.log import LogConfig, TopicPartition, UnifiedLog


def _varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def build_batch(records: int, size: int, producer_id: int, base_sequence: int) -> bytes:
    """An uncompressed magic-2 batch (same bytes a Java producer sends with linger)."""
    value = b"k" * size
    body = bytearray()
    for i in range(records):
        rec = b"\x00" + _varint(0) + _varint(i) + _varint(-1) + _varint(len(value)) + value + _varint(0)
        body += _varint(len(rec)) + rec
    ts = int(time.time() * 1000)
    epoch = 0 if producer_id >= 0 else -1
    after = struct.pack(">hiqqqhii", 0, records - 1, ts, ts, producer_id, epoch, base_sequence,
                        records) + bytes(body)
    head = struct.pack(">ibI", -1, 2, native.crc32c(after))
    return struct.pack(">qi", 0, len(head) + len(after)) + head + after


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--idempotent", action="store_true")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    root = tempfile.mkdtemp(dir=args.dir)
    try:
        cfg = LogConfig(segment_bytes=256 * 1024 * 1024)
        log = UnifiedLog(os.path.join(root, "bench-0"), TopicPartition("bench", 0), cfg)
        pid = 1 if args.idempotent else -1
        template = build_batch(16, 1024, pid, 0)
        batches = appended = 0
        seq = 0
        start = time.perf_counter()
        deadline = start + args.seconds
        while True:
            if args.idempotent:
                data = bytearray(template)
                struct.pack_into(">i", data, 53, seq)
                # baseSequence is inside the CRC: recompute it
                struct.pack_into(">I", data, 17, native.crc32c(memoryview(data)[21:]))
                seq += 16
                view = memoryview(bytes(data))
            else:
                view = memoryview(template)  # read-only like a request buffer: append copies
            log.append_as_leader(view, 0, 0)
            batches += 1
            appended += len(template)
            if batches % 64 == 0 and time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
        log.close()
        mb = appended / 1e6
        print(f"log append: {batches} batches of 16 x 1 KB records ({len(template)} B each), "
              f"{mb:.1f} MB in {elapsed:.2f} s = {mb / elapsed:.1f} MB/s, "
              f"{batches / elapsed:.0f} batches/s{' (idempotent)' if args.idempotent else ''}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
