"""Log cleaner throughput: one compacted partition, `--keys` keys updated `--rounds`
times in batches of `--batch` records of `--value-size` bytes, then one cleaning pass.

Prints the MB/s cleaned (bytes of the log section rewritten / wall time of the pass, map
building included), the size before and after, and the longest stall the event loop saw
while the worker thread cleaned (a trio task sleeping 1 ms in a loop measures it).
Usage: python bench/bench_cleaner.py [--keys 20000] [--rounds 10] [--value-size 200]
       [--batch 50] [--codec none|gzip|lz4|zstd|snappy] [--dir PATH]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time

import trio

from kafkapy.log import LogConfig, LogManager, TopicPartition
from kafkapy.log.cleaner import CleanerConfig
from kafkapy.protocol.records import GZIP, LZ4, NONE, SNAPPY, ZSTD, Record, build_batch

CODECS = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}


def fill(log, keys: int, rounds: int, value_size: int, batch: int, codec: int, seed: int) -> int:
    rng = random.Random(seed)
    value = bytes(rng.randrange(256) for _ in range(value_size))
    ts = int(time.time() * 1000)
    order = list(range(keys))
    for r in range(rounds):
        rng.shuffle(order)
        for i in range(0, keys, batch):
            recs = [Record(b"key-%08d" % k, value, timestamp=ts) for k in order[i:i + batch]]
            log.append_as_leader(memoryview(build_batch(recs, compression=codec)), 0, ts)
    log.roll()
    log.update_high_watermark(log.log_end_offset)
    return log.size_in_bytes()


async def _tick(stalls: list[float], done: trio.Event) -> None:
    while not done.is_set():
        t = time.perf_counter()
        await trio.sleep(0.001)
        stalls.append(time.perf_counter() - t - 0.001)


def _summary(stalls: list[float]) -> str:
    s = sorted(stalls) or [0.0]
    return f"worst {s[-1] * 1000:.1f} ms, p99 {s[int(len(s) * 0.99)] * 1000:.1f} ms"


async def clean_and_watch(cleaner, baseline_s: float) -> tuple[object, str, str]:
    """The event loop's stalls (a 1 ms ticker) first idle for `baseline_s` (the machine's
    own noise), then while one pass runs in the worker thread."""
    idle: list[float] = []
    busy: list[float] = []
    done = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(_tick, idle, done)
        await trio.sleep(baseline_s)
        done.set()
    done = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(_tick, busy, done)
        result = await cleaner.clean_filthiest()
        done.set()
    return result, _summary(idle), _summary(busy)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--value-size", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--codec", choices=sorted(CODECS), default="none")
    ap.add_argument("--segment-bytes", type=int, default=8 * 1024 * 1024)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    root = tempfile.mkdtemp(dir=args.dir)
    try:
        cfg = LogConfig(cleanup_policy="compact", segment_bytes=args.segment_bytes,
                        min_cleanable_dirty_ratio=0.0, file_delete_delay_ms=0)
        lm = LogManager([root], 0, cfg)
        cleaner = lm.enable_cleaner(CleanerConfig())
        log = lm.get_or_create_log(TopicPartition("bench", 0))
        t = time.perf_counter()
        before = fill(log, args.keys, args.rounds, args.value_size, args.batch,
                      CODECS[args.codec], seed)
        fill_s = time.perf_counter() - t
        result, idle, busy = trio.run(clean_and_watch, cleaner, 2.0)
        after = log.size_in_bytes()
        mb = before / 1e6
        print(f"seed={seed} keys={args.keys} rounds={args.rounds} value={args.value_size}B "
              f"batch={args.batch} codec={args.codec} segments={len(log.segments)}")
        print(f"log {mb:.1f} MB written in {fill_s:.2f}s; cleaned to {after / 1e6:.2f} MB "
              f"({result.stats.records_retained} of {result.stats.records_read} records kept, "
              f"{result.groups} groups)")
        print(f"cleaning pass {result.elapsed_s:.2f}s = {mb / result.elapsed_s:.1f} MB/s cleaned "
              f"({result.stats.records_read / result.elapsed_s / 1000:.0f}k records/s)")
        print(f"event-loop stalls: idle {idle}; while cleaning {busy}; load {os.getloadavg()[0]:.1f}")
        lm.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
