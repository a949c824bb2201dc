"""Print CRC-32C throughput (hardware and table paths) and per-batch scan cost.

    .venv/bin/python bench/native_bench.py [--seconds 0.5]

Numbers are wall-clock on a shared machine: compare runs on the same host only.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from kafkapy import native
from kafkapy.protocol.records import Record, build_batch


def _rate(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    """Run fn repeatedly for about `seconds`; return (calls, elapsed)."""
    n, batch = 0, 1
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed
        batch = min(batch * 2, 100_000)


def _batch_of_size(target: int) -> bytes:
    """One uncompressed v2 batch of about `target` bytes (100-byte values)."""
    value = os.urandom(100)
    n = max(1, (target - 61) // 110)
    return build_batch([Record(b"k", value, [], 1_700_000_000_000 + i) for i in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args()

    print(f"SSE4.2 crc32 instruction available: {native.crc32c_hw_available()}")
    for size in (64 * 1024, 1024 * 1024):
        data = os.urandom(size)
        for name, fn in (("crc32c", native.crc32c), ("table", native.crc32c_table)):
            n, el = _rate(lambda: fn(data), args.seconds)
            print(f"{name:>7} {size // 1024:>5} KiB buffer: {n * size / el / 1e9:6.2f} GB/s")

    batch = _batch_of_size(16 * 1024)
    n, el = _rate(lambda: native.scan_batches(batch), args.seconds)
    print(f"scan_batches, one {len(batch)}-byte batch: {el / n * 1e6:7.2f} us/call")
    many = batch * 64
    n, el = _rate(lambda: native.scan_batches(many), args.seconds)
    print(f"scan_batches, 64 x {len(batch)}-byte batches: {el / n / 64 * 1e6:7.2f} us/batch")
    small = _batch_of_size(200)
    n, el = _rate(lambda: native.scan_batches(small), args.seconds)
    print(f"scan_batches, one {len(small)}-byte batch (Python overhead): {el / n * 1e6:7.2f} us/call")
    buf = bytearray(batch)
    n, el = _rate(lambda: native.assign_offsets(buf, 1000, 5), args.seconds)
    print(f"assign_offsets, one batch: {el / n * 1e6:7.2f} us/call")
    n, el = _rate(lambda: native.set_log_append_time(buf, 1_700_000_000_000), args.seconds)
    print(f"set_log_append_time, one {len(batch)}-byte batch: {el / n * 1e6:7.2f} us/call")
    index = b"".join(i.to_bytes(4, "big") + (i * 50).to_bytes(4, "big") for i in range(100_000))
    n, el = _rate(lambda: native.offset_index_lookup(index, 100_000, 54_321), args.seconds)
    print(f"offset_index_lookup, 100k entries: {el / n * 1e6:7.2f} us/call")


if __name__ == "__main__":
    main()
