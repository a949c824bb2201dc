"""Replication between three kafkapy broker processes coordinated by a real ZooKeeper.

Every acknowledged (acks=all) message must survive a follower's or the leader's kill -9; a
follower that comes back rejoins the ISR; a former leader's unreplicated tail is truncated
away and its log converges to the new leader's, batch for batch.

Replicas are compared by reading each broker's segment files directly (whole batches, by
base offset), which checks what is really on every disk rather than what a leader serves.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

from kafkapy import native
from kafkapy.protocol.records import decode_batch
from tests.integration.cluster_support import broker_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


FAST = {
    "replica.lag.time.max.ms": "3000",
    "zookeeper.session.timeout.ms": "6000",
    "replica.fetch.backoff.ms": "200",
    "replica.fetch.wait.max.ms": "200",
    "controlled.shutdown.enable": "false",
    "offsets.topic.replication.factor": "1",
}


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.1) -> object:
    """Poll `predicate` until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # condition poll interval, bounded by the deadline


def start_cluster(cluster, n: int = 3, **extra: str) -> list:
    return [cluster.start(overrides={**FAST, **extra}) for _ in range(n)]


def create_topic(bootstrap: str, topic: str, partitions: int, rf: int,
                 configs: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(topic, partitions, rf, config=configs or {})],
                              operation_timeout=30)
    fut[topic].result(60)


class Zk:
    """Reads partition state and the controller from the cluster's chroot."""

    def __init__(self, connect: str) -> None:
        self.client = KazooClient(hosts=connect, timeout=10)
        self.client.start(timeout=15)

    def state(self, topic: str, partition: int = 0) -> dict:
        data, _ = self.client.get(f"/brokers/topics/{topic}/partitions/{partition}/state")
        return json.loads(data)

    def close(self) -> None:
        self.client.stop()
        self.client.close()


@pytest.fixture
def zk_for(request):
    opened: list[Zk] = []

    def make(cluster) -> Zk:
        z = Zk(cluster.zk_connect)
        opened.append(z)
        return z

    yield make
    for z in opened:
        z.close()


def log_batches(broker, topic: str, partition: int = 0) -> dict[int, bytes]:
    """{base offset: raw batch bytes} of every whole batch in the partition's segments."""
    d = Path(broker.log_dir) / f"{topic}-{partition}"
    out: dict[int, bytes] = {}
    for seg in sorted(d.glob("*.log")):
        buf = seg.read_bytes()
        scan = native.scan_batches(buf, allow_gaps=True)
        for b in scan.batches:
            out[b.base_offset] = buf[b.position:b.position + b.size]
    return out


def log_records(broker, topic: str, partition: int = 0) -> dict[int, tuple[bytes, bytes]]:
    """{offset: (key, value)} read from the segment files."""
    out = {}
    for raw in log_batches(broker, topic, partition).values():
        scan = native.scan_batches(raw, allow_gaps=True)
        for rec in decode_batch(raw, scan.batches[0]):
            if not rec.is_control:
                out[rec.offset] = (rec.key, rec.value)
    return out


class AckingProducer:
    """confluent-kafka producer in a thread, recording what was acknowledged (acks=all)."""

    def __init__(self, bootstrap: str, topic: str, *, acks: str = "all",
                 keys: int = 64, rate: float = 1500.0) -> None:
        self.rate = rate
        self.topic = topic
        self.acked: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.limit = 0
        self.keys = keys
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                                  "linger.ms": 5, "message.timeout.ms": 60000,
                                  "retries": 1000000, "retry.backoff.ms": 100,
                                  "enable.idempotence": False,
                                  "topic.metadata.refresh.interval.ms": 1000})
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err, msg) -> None:
        with self.lock:
            if err is None:
                self.acked[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
            else:
                self.errors.append(str(err))

    def start(self, limit: int) -> "AckingProducer":
        self.limit = limit
        self.thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set() and self.sent < self.limit:
            if self.sent > (time.monotonic() - started) * self.rate:
                self.producer.poll(0.01)  # pacing, so failures happen mid-stream
                continue
            i = self.sent
            try:
                self.producer.produce(self.topic, key=b"k%d" % (i % self.keys),
                                      value=b"v%08d" % i, on_delivery=self._on_delivery)
                self.sent += 1
            except BufferError:
                self.producer.poll(0.05)
            self.producer.poll(0)
        self.producer.flush(90)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def finish(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "producer did not finish"


def assert_replicas_hold(brokers, topic: str, acked: dict, partitions: int) -> None:
    """Every acked message is on every broker's disk at its acked offset."""
    for b in brokers:
        records: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        for p in range(partitions):
            for off, kv in log_records(b, topic, p).items():
                records[(p, off)] = kv
        missing = [k for k, v in acked.items() if records.get(k) != v]
        assert not missing, (f"broker {b.broker_id} lacks {len(missing)} acked messages, "
                             f"e.g. {sorted(missing)[:5]}")


def replicas_identical(brokers, topic: str, partitions: int) -> bool:
    for p in range(partitions):
        # Followers store the leader's batches untouched: raw bytes must match per offset.
        first = log_batches(brokers[0], topic, p)
        if any(log_batches(b, topic, p) != first for b in brokers[1:]):
            return False
    return True


def test_follower_kill9_and_restart_keeps_acked_and_rejoins_isr(broker_cluster, zk_for):
    brokers = start_cluster(broker_cluster)
    zk = zk_for(broker_cluster)
    topic = f"rep-{uuid.uuid4().hex[:8]}"
    create_topic(broker_cluster.bootstrap, topic, 1, 3, {"min.insync.replicas": "2"})
    wait_for(lambda: len(zk.state(topic)["isr"]) == 3, 30, "ISR of 3")
    leader = zk.state(topic)["leader"]
    follower = next(b for b in brokers if b.broker_id != leader)

    prod = AckingProducer(broker_cluster.bootstrap, topic).start(20000)
    wait_for(lambda: prod.acked_count() >= 5000, 90, "5000 acks before the kill")
    follower.kill9()
    wait_for(lambda: follower.broker_id not in zk.state(topic)["isr"], 30,
             "the killed follower to leave the ISR")
    acked_while_down = prod.acked_count()
    wait_for(lambda: prod.acked_count() >= acked_while_down + 3000, 90,
             "progress with one follower down")
    t0 = time.monotonic()
    follower.start()
    wait_for(lambda: follower.broker_id in zk.state(topic)["isr"], 60,
             "the restarted follower to rejoin the ISR")
    rejoin_s = time.monotonic() - t0
    prod.finish()
    assert not prod.errors, prod.errors[:5]
    assert len(prod.acked) == 20000
    wait_for(lambda: replicas_identical(brokers, topic, 1), 60, "replicas to converge")
    assert_replicas_hold(brokers, topic, prod.acked, 1)
    assert sorted(zk.state(topic)["isr"]) == sorted(b.broker_id for b in brokers)
    print(f"follower rejoined the ISR {rejoin_s:.2f}s after restart")
