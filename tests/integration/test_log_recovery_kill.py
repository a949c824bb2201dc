"""kill -9 a process that is appending, then recover: every acknowledged batch stays.

The writer appends batches through a LogManager and prints each batch's offsets after
`append_as_leader` returns (the data is then in the page cache, which survives the
process).  The parent kills it with SIGKILL mid-stream, reopens the directory and
checks that every reported batch is readable with the exact content the writer sent.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest

from kafkapy import native
from kafkapy.log import LogConfig, LogManager, TopicPartition

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
UNIT = os.path.join(os.path.dirname(HERE), "unit")
TP = TopicPartition("crash", 0)

WRITER = r"""
import random, sys
from test_log_helpers import make_batch
from kafkapy.log import LogConfig, LogManager, TopicPartition
log_dir, seed, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
cfg = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512, segment_index_bytes=4096)
m = LogManager([log_dir], 0, cfg)
log = m.get_or_create_log(TopicPartition("crash", 0))
i = start
print("ready", log.log_end_offset, flush=True)
while True:
    n = rnd.randrange(1, 20)
    vals = [b"%d:%d:" % (i, k) + b"p" * rnd.randrange(0, 3000) for k in range(n)]
    info = log.append_as_leader(memoryview(make_batch(vals)), 1, 1000 + i)
    log.update_high_watermark(log.log_end_offset)
    print(i, info.first_offset, info.last_offset, n, flush=True)
    i += 1
"""


def run_writer_and_kill(log_dir: str, seed: int, start: int, kill_after: int) -> dict[int, tuple]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([UNIT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, log_dir, str(seed), str(start)],
                            stdout=subprocess.PIPE, env=env, text=True)
    acked: dict[int, tuple] = {}
    try:
        assert proc.stdout.readline().startswith("ready")
        for line in proc.stdout:
            i, first, last, n = map(int, line.split())
            acked[i] = (first, last, n)
            if len(acked) >= kill_after:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # lines printed after we stopped reading were acked too
    for line in proc.stdout.read().splitlines():
        parts = line.split()
        if len(parts) == 4:
            i, first, last, n = map(int, parts)
            acked[i] = (first, last, n)
    return acked


def check_log(log_dir: str, acked: dict[int, tuple]) -> int:
    m = LogManager([log_dir], 0, LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512,
                                            segment_index_bytes=4096))
    try:
        log = m.get_log(TP)
        by_first = {first: (i, last, n) for i, (first, last, n) in acked.items()}
        found = set()
        off = 0
        while off < log.log_end_offset:
            data = log.read(off, 1 << 20).records.tobytes()
            scan = native.scan_batches(data)
            assert scan.error is None
            for b in scan.batches:
                raw = data[b.position:b.position + b.size]
                if b.base_offset in by_first:
                    i, last, n = by_first[b.base_offset]
                    assert (b.last_offset, b.record_count) == (last, n)
                    assert b"%d:0:" % i in raw
                    found.add(i)
            off = scan.batches[-1].last_offset + 1
        missing = sorted(set(acked) - found)
        assert not missing, f"acknowledged batches lost: {missing[:10]}"
        assert log.log_end_offset >= max(last for _, last, _ in acked.values()) + 1
        return log.log_end_offset
    finally:
        m.shutdown()


def test_kill_minus_nine_loses_no_acknowledged_batch(tmp_path):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    log_dir = str(tmp_path / "logs")
    acked = run_writer_and_kill(log_dir, seed, 0, kill_after=300)
    assert len(acked) >= 300
    check_log(log_dir, acked)
    # second round continues on the recovered log (after a clean shutdown of the checker)
    more = run_writer_and_kill(log_dir, seed + 1, 100_000, kill_after=200)
    acked.update(more)
    check_log(log_dir, acked)
