"""Broker benchmark driven by confluent-kafka (librdkafka): throughput, latency, CPU cost.

    .venv/bin/python bench/bench_broker.py                 # own ZooKeeper + broker, < 2 min
    .venv/bin/python bench/bench_broker.py --bootstrap 127.0.0.1:9092 --broker-pid 1234

Measures, on a 3-partition topic per test:
  * produce MB/s and msg/s for 1 KB and 100 KB values (acks=all, 1 MB batches, linger 5 ms),
  * broker CPU ms per MB produced (utime+stime from /proc/<pid>/stat around each produce run),
  * consume MB/s and msg/s reading the 1 KB topic back from the beginning,
  * end-to-end latency p50/p99 (producer send -> consumer receive) at a paced 2,000 msg/s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Message as _Message, OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.broker_fixture import BrokerCluster, cpu_ms_of  # noqa: E402
from tests.zk_fixture import ZooKeeperServer  # noqa: E402

PARTITIONS = 3
Message_value = _Message.value
MB = 1024 * 1024


class Bench:
    def __init__(self, bootstrap: str, broker_pid: int | None) -> None:
        self.bootstrap = bootstrap
        self.broker_pid = broker_pid
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.rows: list[tuple[str, str]] = []

    def topic(self, name: str) -> str:
        slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
        topic = f"bench-{slug}-{uuid.uuid4().hex[:6]}"
        fut = self.admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=30)
        fut[topic].result(60)
        return topic

    def cpu(self) -> float | None:
        return cpu_ms_of(self.broker_pid) if self.broker_pid else None

    def produce(self, label: str, size: int, count: int) -> str:
        topic = self.topic(label)
        failures = []

        def on_delivery(err, _msg):
            if err is not None:
                failures.append(err)

        # Only failed deliveries call back into Python: the client's per-message Python work
        # would otherwise be what this measures, not the broker.
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5,
                      "batch.size": 1_000_000, "compression.type": "none",
                      "queue.buffering.max.kbytes": 1_048_576,
                      "delivery.report.only.error": True, "on_delivery": on_delivery})
        value = os.urandom(size)  # incompressible, and the broker must not care anyway
        p.produce(topic, value=b"warm-up")  # metadata + connection
        p.flush(30)
        keys = [str(i).encode() for i in range(1000)]
        produce = p.produce
        cpu0, t0 = self.cpu(), time.perf_counter()
        for i in range(count):
            while True:
                try:
                    produce(topic, value, keys[i % 1000])
                    break
                except BufferError:   # the client's queue is full: let it drain
                    p.poll(0.005)
            if not i & 0x3FF:
                p.poll(0)
        remaining = p.flush(120)
        elapsed = time.perf_counter() - t0
        cpu1 = self.cpu()
        if failures or remaining:
            raise RuntimeError(f"produce {label}: {len(failures)} failed, {remaining} undelivered:"
                               f" {failures[:3]}")
        mb = size * count / MB
        self.rows.append((f"produce {label}", f"{mb / elapsed:8.1f} MB/s {count / elapsed:10.0f} msg/s"
                                              f"  ({count} x {size} B in {elapsed:.1f}s)"))
        if cpu0 is not None:
            self.rows.append((f"broker CPU per MB, {label}", f"{(cpu1 - cpu0) / mb:8.1f} ms/MB"))
        return topic

    def consume(self, label: str, topic: str, size: int, count: int) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "fetch.max.bytes": 52_428_800})
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        want = count + 1  # the warm-up message
        got = nbytes = 0
        t0 = time.perf_counter()
        deadline = t0 + 120
        while got < want:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"consume {label}: {got} of {want} after 120s")
            batch = c.consume(num_messages=min(10_000, want - got), timeout=0.5)
            bad = [m.error() for m in batch if m.error()]
            if bad:
                raise RuntimeError(f"consume {label}: {bad[0]}")
            got += len(batch)
            nbytes += sum(map(len, map(Message_value, batch)))
        elapsed = time.perf_counter() - t0  # ends with the batch holding the last record
        c.close()
        self.rows.append((f"consume {label}", f"{nbytes / MB / elapsed:8.1f} MB/s {got / elapsed:10.0f} msg/s"
                                              f"  ({got} msgs in {elapsed:.1f}s)"))

    def latency(self, rate: int, seconds: float, fetch_wait_ms: int) -> None:
        topic = self.topic("latency")
        count = int(rate * seconds)
        latencies: list[float] = []
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "fetch.wait.max.ms": fetch_wait_ms})
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        errors: list[str] = []

        def reader() -> None:
            deadline = time.monotonic() + seconds + 60
            while len(latencies) < count and time.monotonic() < deadline:
                # poll(), not consume(n): consume waits for n messages or its timeout, which
                # would add that wait to every latency.
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    errors.append(str(m.error()))
                    continue
                sent = struct.unpack_from(">q", m.value())[0]
                latencies.append((time.monotonic_ns() - sent) / 1e6)

        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 1})
        p.produce(topic, value=b"x" * 8, partition=0)  # connect before the clock starts
        p.flush(30)
        c.consume(num_messages=1, timeout=10)  # the warm-up record also readies the consumer
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        pad = b"\0" * 1016
        start = time.monotonic()
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load, not waiting for a condition
            p.produce(topic, key=str(i).encode(),
                      value=struct.pack(">q", time.monotonic_ns()) + pad)
            p.poll(0)
        p.flush(60)
        t.join(seconds + 70)
        c.close()
        if len(latencies) < count:
            raise RuntimeError(f"latency: received {len(latencies)} of {count}; {errors[:3]}")
        q = statistics.quantiles(latencies, n=100)
        self.rows.append((f"end-to-end latency @ {rate} msg/s (fetch wait {fetch_wait_ms} ms)",
                          f"p50 {q[49]:7.1f} ms   p99 {q[98]:7.1f} ms   max {max(latencies):7.1f} ms"
                          f"  ({count} msgs)"))

    def print_table(self) -> None:
        width = max(len(k) for k, _ in self.rows)
        print()
        print(f"{'benchmark':<{width}}  result")
        print(f"{'-' * width}  {'-' * 60}")
        for k, v in self.rows:
            print(f"{k:<{width}}  {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="benchmark a running broker instead of starting one")
    ap.add_argument("--broker-pid", type=int, help="its pid, for the CPU figures")
    ap.add_argument("--count-1k", type=int, default=1_000_000, help="1 KB messages to produce")
    ap.add_argument("--count-100k", type=int, default=10_000, help="100 KB messages to produce")
    ap.add_argument("--latency-rate", type=int, default=2_000)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--fetch-wait-ms", type=int, default=100,
                    help="consumer fetch.wait.max.ms in the latency test: a broker that answers "
                         "a waiting Fetch as soon as data arrives keeps p50 well below it")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kafkapy-bench-") as tmp:
        zk = cluster = None
        try:
            if args.bootstrap:
                bootstrap, pid = args.bootstrap, args.broker_pid
            else:
                zk = ZooKeeperServer(Path(tmp) / "zk").start()
                cluster = BrokerCluster(zk.connect, Path(tmp),
                                        overrides={"num.partitions": str(PARTITIONS)})
                broker = cluster.start(broker_id=0)
                bootstrap, pid = broker.bootstrap, broker.pid
                print(f"broker pid {pid} on {bootstrap}, ZooKeeper {zk.connect}, data in {tmp}")
            bench = Bench(bootstrap, pid)
            topic_1k = bench.produce("1 KB", 1024, args.count_1k)
            bench.produce("100 KB", 100 * 1024, args.count_100k)
            bench.consume("1 KB", topic_1k, 1024, args.count_1k)
            bench.latency(args.latency_rate, args.latency_seconds, args.fetch_wait_ms)
            bench.print_table()
            del bench  # close its admin client while the broker still answers
        except Exception:
            if cluster is not None:
                print(cluster.outputs(), file=sys.stderr)
            raise
        finally:
            if cluster is not None:
                cluster.stop_all()
            if zk is not None:
                zk.stop()
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
