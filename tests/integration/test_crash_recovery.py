"""kill -9 in the middle of a produce stream, garbage at a segment's tail: after a restart
every acknowledged message is served, and the torn tail is cut at the last whole batch."""
from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def _create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)
    futures[topic].result(60)


def _consume_all(bootstrap: str, topic: str, partitions: int,
                 timeout: float = 120) -> dict[tuple[int, int], bytes]:
    """Everything up to each partition's high watermark (read once at the start), so a slow
    read on a loaded machine fails as slow, never as "lost"."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        seen: dict[tuple[int, int], bytes] = {}
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions:
            assert time.monotonic() < deadline, (
                f"consumer too slow: {len(seen)} records in {timeout:.0f} s, ends {ends}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key = (msg.partition(), msg.offset())
            assert key not in seen, f"offset {key} delivered twice"
            seen[key] = msg.value()
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return seen
    finally:
        consumer.close()


def test_kill9_mid_stream_keeps_every_acknowledged_message(broker_cluster):
    b = broker_cluster.start()
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    _create(b.bootstrap, topic, 3)
    acked: dict[tuple[int, int], bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def on_delivery(err, msg):
        if err is None:
            with lock:
                acked[(msg.partition(), msg.offset())] = msg.value()

    def produce_forever():
        producer = Producer({"bootstrap.servers": b.bootstrap, "acks": "all",
                             "linger.ms": 2, "message.timeout.ms": 20000,
                             "enable.idempotence": False})
        i = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=b"k%d" % (i % 50), value=b"v%08d" % i,
                                 on_delivery=on_delivery)
                i += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
        producer.flush(30)

    t = threading.Thread(target=produce_forever, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 5000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acked) >= 5000, "producer made no progress"
    b.kill9()                                  # mid-stream: no flush, no shutdown hooks
    with lock:
        before_restart = len(acked)
    b.start()
    # Let the producer land more after the restart (its retries of what the kill cut off
    # included), then stop: an unbounded stream only made the read-back slow.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= before_restart + 2000:
                break
        time.sleep(0.05)
    stop.set()
    t.join(60)
    with lock:
        expected = dict(acked)
    seen = _consume_all(b.bootstrap, topic, 3)
    missing = [k for k in expected if seen.get(k) != expected[k]]
    assert not missing, f"{len(missing)} acknowledged messages lost or changed, e.g. {missing[:5]}"


def test_garbage_tail_is_truncated_at_last_whole_batch(broker_cluster):
    b = broker_cluster.start()
    topic = f"torn-{uuid.uuid4().hex[:8]}"
    _create(b.bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(1000):
        producer.produce(topic, key=b"k", value=b"value-%d" % i)
    assert producer.flush(30) == 0
    b.kill9()
    segment = Path(b.log_dir) / f"{topic}-0" / ("0" * 20 + ".log")
    good_size = segment.stat().st_size
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    with open(segment, "ab") as f:
        f.write(bytes(rng.randrange(256) for _ in range(777)))
    b.start()
    seen = _consume_all(b.bootstrap, topic, 1)
    assert [seen[(0, i)] for i in range(1000)] == [b"value-%d" % i for i in range(1000)]
    assert segment.stat().st_size == good_size
    # The log keeps taking writes right after the cut.
    producer = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    offsets = []
    producer.produce(topic, value=b"after", on_delivery=lambda e, m: offsets.append(m.offset()))
    assert producer.flush(30) == 0
    assert offsets == [1000]
