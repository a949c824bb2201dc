"""What replication costs: produce throughput and acknowledgement latency, RF=3 vs RF=1.

    .venv/bin/python bench/bench_replication.py            # own ZooKeeper + 3 brokers, ~1.5 min
    .venv/bin/python bench/bench_replication.py --count 100000 --latency-seconds 5
    .venv/bin/python bench/bench_replication.py --single-count 0   # skip the request-rate runs

Starts ZooKeeper and three kafkapy brokers on loopback, then for each configuration creates a
3-partition topic (leaders spread over the three brokers) and measures with confluent-kafka:
  * produce MB/s and msg/s of 1 KB values, flat out (linger 5 ms, 1 MB batches), and the
    brokers' CPU time (all three together) per MB produced, counted until the producer's
    flush returns (with acks=1 the followers may still be fetching then: a lower bound),
  * acknowledgement latency p50/p99 (produce() call -> delivery report) at a paced rate,
    which for acks=all includes the followers fetching the batch and the high watermark
    passing it,
  * single-message requests (batch.num.messages=1): the request-rate ceiling (flat out) and
    the acknowledgement latency at a paced 2,000 msg/s, where per-request costs dominate.
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

from tests.broker_fixture import BrokerCluster, cpu_ms_of  # noqa: E402
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


def _flat_out(p: Producer, topic: str, count: int, size: int) -> float:
    """Warm up every leader, then produce `count` keyed values of `size` bytes as fast as the
    client takes them; returns the seconds until the last delivery report."""
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    for part in range(PARTITIONS):  # metadata + a connection to every leader
        p.produce(topic, value=b"warm-up", partition=part, on_delivery=on_delivery)
    p.flush(30)
    value = os.urandom(size)
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
    return elapsed


def throughput(bootstrap: str, topic: str, acks: str, count: int, size: int) -> tuple[float, float]:
    """Flat-out produce; returns (MB/s, msg/s)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                  "batch.size": 1_000_000, "compression.type": "none",
                  "queue.buffering.max.kbytes": 1_048_576})
    elapsed = _flat_out(p, topic, count, size)
    return size * count / MB / elapsed, count / elapsed


def ack_latency(bootstrap: str, topic: str, acks: str, rate: int, seconds: float,
                size: int, extra: dict | None = None) -> tuple[float, float, float]:
    """Paced produce; returns (p50, p99, max) of produce() -> delivery report in ms."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 1, **(extra or {})})
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


SINGLE = {"linger.ms": 0, "batch.num.messages": 1}  # one message per partition per request


def request_ceiling(bootstrap: str, topic: str, acks: str, count: int, size: int) -> float:
    """Single-message requests flat out; returns msg/s (= produce requests/s: each broker
    leads one partition, so every request carries exactly one message)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, **SINGLE})
    return count / _flat_out(p, topic, count, size)


def print_table(title: str, head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Left-aligned first column, right-aligned middle ones, the last one free-form."""
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    print(title)
    for r in [head, *rows]:
        cells = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells) + "  " + r[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200_000, help="1 KB messages per throughput run")
    ap.add_argument("--size", type=int, default=1024, help="value size in bytes")
    ap.add_argument("--latency-rate", type=int, default=500,
                    help="msg/s in the paced latency runs of the first table")
    ap.add_argument("--latency-seconds", type=float, default=8.0)
    ap.add_argument("--single-count", type=int, default=20_000,
                    help="messages per single-message request-ceiling run (0 skips those runs)")
    ap.add_argument("--single-rate", type=int, default=2000,
                    help="msg/s of the paced single-message latency runs")
    ap.add_argument("--single-seconds", type=float, default=5.0)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    rows: list[tuple[str, ...]] = []
    single_rows: list[tuple[str, ...]] = []
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

            def broker_cpu_ms() -> float:
                return sum(cpu_ms_of(b.pid) for b in brokers)

            admin = AdminClient({"bootstrap.servers": bootstrap})
            for label, rf, acks in CONFIGS:
                topic = make_topic(admin, rf)
                cpu0 = broker_cpu_ms()
                mbps, msgs = throughput(bootstrap, topic, acks, args.count, args.size)
                cpu_per_mb = (broker_cpu_ms() - cpu0) / (args.count * args.size / MB)
                p50, p99, worst = ack_latency(bootstrap, make_topic(admin, rf), acks,
                                              args.latency_rate, args.latency_seconds, args.size)
                rows.append((label, f"{mbps:7.1f}", f"{msgs:9.0f}", f"{cpu_per_mb:6.1f}",
                             f"{p50:7.1f}", f"{p99:7.1f}  (max {worst:.1f})"))
                if args.single_count > 0:
                    ceiling = request_ceiling(bootstrap, make_topic(admin, rf), acks,
                                              args.single_count, args.size)
                    s50, s99, s_worst = ack_latency(
                        bootstrap, make_topic(admin, rf), acks, args.single_rate,
                        args.single_seconds, args.size, SINGLE)
                    single_rows.append((label, f"{ceiling:8.0f}", f"{s50:7.1f}",
                                        f"{s99:7.1f}  (max {s_worst:.1f})"))
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
    print()
    print_table(f"produce of {args.count} x {args.size} B, 3 partitions over 3 brokers",
                ("config", "MB/s", "msg/s", "broker CPU ms/MB", "ack p50 ms",
                 f"ack p99 ms @ {args.latency_rate} msg/s"), rows)
    if single_rows:
        print()
        print_table(f"single-message requests of {args.size} B (batch.num.messages=1)",
                    ("config", "ceiling req/s", "ack p50 ms",
                     f"ack p99 ms @ {args.single_rate} msg/s"), single_rows)
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
