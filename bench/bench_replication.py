"""What replication costs: produce throughput and acknowledgement latency, RF=3 vs RF=1.

    .venv/bin/python bench/bench_replication.py            # own ZooKeeper + 3 brokers, ~2 min
    .venv/bin/python bench/bench_replication.py --count 100000 --latency-seconds 5

Starts ZooKeeper and three kafkapy brokers on loopback, then for each configuration creates a
3-partition topic (leaders spread over the three brokers) and measures with confluent-kafka:
  * produce MB/s and msg/s of 1 KB values, flat out (linger 5 ms, 1 MB batches),
  * acknowledgement latency p50/p99 (produce() call -> delivery report) at a paced rate,
    which for acks=all includes the followers fetching the batch and the high watermark
    passing it.
All brokers share this machine's cores, so RF=3 also pays for the followers' CPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.broker_fixture import BrokerCluster  # noqa: E402
from tests.zk_fixture import ZooKeeperServer  # noqa: E402

PARTITIONS = 3
MB = 1024 * 1024
BROKER_OVERRIDES = {"num.partitions": str(PARTITIONS), "zookeeper.session.timeout.ms": "6000",
                    "auto.leader.rebalance.enable": "false"}
CONFIGS = [("RF=1 acks=all", 1, "all"), ("RF=3 acks=1", 3, "1"), ("RF=3 acks=all", 3, "all")]


def make_topic(admin: AdminClient, rf: int) -> str:
    topic = f"bench-rf{rf}-{uuid.uuid4().hex[:6]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, rf)], operation_timeout=30)[topic].result(60)
    return topic


def throughput(bootstrap: str, topic: str, acks: str, count: int, size: int) -> tuple[float, float]:
    """Flat-out produce; returns (MB/s, msg/s)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                  "batch.size": 1_000_000, "compression.type": "none",
                  "queue.buffering.max.kbytes": 1_048_576})
    value = os.urandom(size)
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    p.produce(topic, value=b"warm-up", on_delivery=on_delivery)  # metadata + connections
    for part in range(PARTITIONS):
        p.produce(topic, value=b"warm-up", partition=part, on_delivery=on_delivery)
    p.flush(30)
    t0 = time.perf_counter()
    for i in range(count):
        while True:
            try:
                p.produce(topic, key=str(i).encode(), value=value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    remaining = p.flush(300)
    elapsed = time.perf_counter() - t0
    if failures or remaining:
        raise RuntimeError(f"{topic}: {len(failures)} failed, {remaining} undelivered: "
                           f"{failures[:3]}")
    return size * count / MB / elapsed, count / elapsed


def ack_latency(bootstrap: str, topic: str, acks: str, rate: int, seconds: float,
                size: int) -> tuple[float, float, float]:
    """Paced produce; returns (p50, p99, max) of produce() -> delivery report in ms."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 1})
    latencies: list[float] = []
    failures: list[str] = []

    def delivered(sent_ns: int):
        def cb(err, _msg) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                latencies.append((time.monotonic_ns() - sent_ns) / 1e6)
        return cb

    for part in range(PARTITIONS):  # connect to every leader before the clock starts
        p.produce(topic, value=b"warm-up", partition=part)
    p.flush(30)
    value = os.urandom(size)
    count = int(rate * seconds)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the offered load, not waiting for a condition
        p.produce(topic, key=str(i).encode(), value=value, on_delivery=delivered(time.monotonic_ns()))
        p.poll(0)
    remaining = p.flush(60)
    if failures or remaining or len(latencies) != count:
        raise RuntimeError(f"{topic}: {len(failures)} failed, {remaining} undelivered, "
                           f"{len(latencies)} of {count} acked: {failures[:3]}")
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98], max(latencies)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200_000, help="1 KB messages per throughput run")
    ap.add_argument("--size", type=int, default=1024, help="value size in bytes")
    ap.add_argument("--latency-rate", type=int, default=500,
                    help="msg/s in the latency runs (RF=3 acks=all saturates near 2,000 msg/s of "
                         "single-message requests on 2 cores, and its latency then grows to seconds)")
    ap.add_argument("--latency-seconds", type=float, default=8.0)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="kafkapy-bench-repl-") as tmp:
        zk = cluster = None
        try:
            zk = ZooKeeperServer(Path(tmp) / "zk").start()
            cluster = BrokerCluster(zk.connect, Path(tmp), overrides=BROKER_OVERRIDES)
            brokers = [cluster.start(broker_id=i, wait=False) for i in (1, 2, 3)]
            for b in brokers:
                b.wait_ready(90)
            bootstrap = cluster.bootstrap
            print(f"3 brokers (pids {', '.join(str(b.pid) for b in brokers)}) on {bootstrap}, "
                  f"ZooKeeper {zk.connect}")
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for label, rf, acks in CONFIGS:
                mbps, msgs = throughput(bootstrap, make_topic(admin, rf), acks, args.count,
                                        args.size)
                p50, p99, worst = ack_latency(bootstrap, make_topic(admin, rf), acks,
                                              args.latency_rate, args.latency_seconds, args.size)
                rows.append((label, f"{mbps:7.1f}", f"{msgs:9.0f}", f"{p50:7.1f}",
                             f"{p99:7.1f}  (max {worst:.1f})"))
                print(f"  {label}: done", flush=True)
            del admin  # close it while the brokers still answer
        except Exception:
            if cluster is not None:
                print(cluster.outputs(), file=sys.stderr)
            raise
        finally:
            if cluster is not None:
                cluster.stop_all()
            if zk is not None:
                zk.stop()
    head = ("config", "MB/s", "msg/s", "ack p50 ms", f"ack p99 ms @ {args.latency_rate} msg/s")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    print(f"\nproduce of {args.count} x {args.size} B, 3 partitions over 3 brokers")
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))
          + "  " + head[4])
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
              + "  " + r[4])
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
