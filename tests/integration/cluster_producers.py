"""Producers for the cluster tests and the checks of what they acknowledged.

`SequencedProducer` (confluent-kafka) and `KafkajsSequencedProducer` (kafkajs, through
kafkajs_sequenced_producer.js) write keyed, sequenced messages, idempotent with acks=all,
until stopped, and record every acknowledgement and the Kafka errors they met and retried
(librdkafka's `msg` debug log, kafkajs's error log). `assert_exactly_once_in_order` and
`assert_only_retriable` judge the outcome against what a consumer reads (`consume_all`).
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as CKTopicPartition

KEYS = 60

#: librdkafka's texts for the Kafka errors a producer may meet during leadership changes and
#: retries internally (rd_kafka_err2str of the broker error codes), by Kafka error name.
RETRIABLE = {
    "Broker: Not leader for partition": "NOT_LEADER_OR_FOLLOWER",
    "Broker: Leader not available": "LEADER_NOT_AVAILABLE",
    "Broker: Not enough in-sync replicas": "NOT_ENOUGH_REPLICAS",
    "Broker: Message(s) written to insufficient number of in-sync replicas":
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "Broker: Request timed out": "REQUEST_TIMED_OUT",
    "Broker: Unknown topic or partition": "UNKNOWN_TOPIC_OR_PARTITION",
    "Broker: Broker not available": "BROKER_NOT_AVAILABLE",
    "Broker: Replica not available": "REPLICA_NOT_AVAILABLE",
    "Broker: Fenced leader epoch": "FENCED_LEADER_EPOCH",
    "Broker: Not controller": "NOT_CONTROLLER",
}
_BROKER_ERROR = re.compile(r"Broker: [A-Za-z][^:(),]*[A-Za-z)]")


class _LogTap(logging.Handler):
    """Collects librdkafka's log lines that name a broker error."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "Broker: " in msg:
            self.lines.append(msg)


class _AckRecorder:
    """What both producers share: a reader/writer thread and the acknowledgements it
    records as (value, partition, offset or None)."""

    acked: list[tuple[bytes, int, int | None]]
    lock: threading.Lock
    thread: threading.Thread

    def start(self):
        self.thread.start()
        return self

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


class SequencedProducer(_AckRecorder):
    """confluent-kafka, acks=all, idempotent, retries at their defaults, in a thread: message
    i has key k<i % keys> and value "k<key>:<per-key sequence>", paced at `rate`/s while
    `paced` is set. Runs until stopped, or with `count` until that many are sent (finish()
    then lifts the pacing and waits for the rest). `config` overrides librdkafka settings.
    Records every delivery report and the broker errors in librdkafka's log."""

    def __init__(self, bootstrap: str, topic: str, rate: float = 800.0, pad: int = 0, *,
                 keys: int = KEYS, count: int | None = None,
                 config: dict[str, object] | None = None) -> None:
        self.topic, self.rate, self.pad = topic, rate, b"." * pad
        self.keys, self.count = keys, count
        self.tap = _LogTap()
        self.logger = logging.getLogger(f"rdkafka.{topic}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.tap)
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "topic.metadata.refresh.interval.ms": 1000,
            "partitioner": "murmur2_random", "debug": "msg", "error_cb": self._error,
            **(config or {})}, logger=self.logger)
        self.acked: list[tuple[bytes, int, int | None]] = []  # (value, partition, offset)
        self.failed: list[str] = []
        self.client_errors: list[str] = []
        self.sent = 0
        self.crashed: BaseException | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.paced = threading.Event()  # cleared: as fast as the cluster takes them
        self.paced.set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _error(self, err) -> None:
        self.client_errors.append(str(err))

    def _delivered(self, err, msg) -> None:
        with self.lock:
            if err is None:
                off = msg.offset()
                self.acked.append((msg.value(), msg.partition(), off if off is not None and off >= 0 else None))
            else:
                self.failed.append(f"{msg.value()[:20]!r}: {err}")

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.crashed = e
            raise

    def _produce(self) -> None:
        seq: dict[int, int] = defaultdict(int)
        started = time.monotonic()
        while not self.stop.is_set() and (self.count is None or self.sent < self.count):
            if self.paced.is_set() and self.sent > (time.monotonic() - started) * self.rate:
                self.producer.poll(0.01)  # pacing, so the events happen mid-stream
                continue
            k = self.sent % self.keys
            try:
                self.producer.produce(self.topic, key=b"k%d" % k,
                                      value=b"k%d:%d" % (k, seq[k]) + self.pad,
                                      on_delivery=self._delivered)
            except BufferError:
                self.producer.poll(0.05)
                continue
            seq[k] += 1
            self.sent += 1
            self.producer.poll(0)
        self.producer.flush(240)

    def finish(self) -> None:
        """Stop (or, with `count`, send the rest unpaced), flush and join the thread."""
        if self.count is None:
            self.stop.set()
        else:
            self.paced.clear()
        self.thread.join(300)
        assert not self.thread.is_alive(), "producer did not finish flushing"
        assert self.crashed is None, f"producer thread failed: {self.crashed!r}"

    def broker_errors(self) -> Counter:
        """Kafka error names met by Produce requests; unknown texts are kept verbatim."""
        seen: Counter = Counter()
        for line in self.tap.lines:
            for text in set(_BROKER_ERROR.findall(line)):
                seen[RETRIABLE.get(text, text)] += 1
        return seen


class KafkajsSequencedProducer(_AckRecorder):
    """The same workload from kafkajs (idempotent, acks -1, its default retries), run by
    kafkajs_sequenced_producer.js until its stdin closes; same interface as
    SequencedProducer. Keys go to partition key % partitions."""

    SCRIPT = Path(__file__).with_name("kafkajs_sequenced_producer.js")
    NODE_MODULES = Path(__file__).resolve().parents[1] / "clients" / "node" / "node_modules"

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float = 500.0) -> None:
        self.acked: list[tuple[bytes, int, int | None]] = []
        self.unanswered: list[bytes] = []  # send() resolved, but no broker acked them
        self.resent: set[bytes] = set()  # acked, then sent again under a new sequence
        self.failed: list[str] = []
        self.errors: Counter = Counter()
        self.sent = 0
        self.connected = threading.Event()
        self.ended = False
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.proc = subprocess.Popen(
            ["node", str(self.SCRIPT), bootstrap, topic, str(partitions), str(KEYS), str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(os.environ, NODE_PATH=str(self.NODE_MODULES)), text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.other: list[str] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                self.other.append(line.rstrip())
                continue
            with self.lock:
                if "acked" in msg:
                    self.acked.extend((v.encode(), p, off) for v, p, off in msg["acked"])
                    self.sent += len(msg["acked"])
                elif "twice" in msg:
                    self.resent.update(v.encode() for v in msg["twice"])
                elif "unanswered" in msg:
                    self.unanswered.extend(v.encode() for v, _ in msg["unanswered"])
                    self.sent += len(msg["unanswered"])
                elif "failed" in msg:
                    self.failed.append(f"{msg['values'][:2]}...: {msg['failed']}")
                    self.sent += len(msg["values"])
                elif "errors" in msg:
                    self.errors.update(msg["errors"])
                    self.ended = True
                elif "connected" in msg:
                    self.connected.set()
                else:
                    self.other.append(line.rstrip())

    def finish(self) -> None:
        self.stop.set()
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        self.thread.join(10)
        assert self.proc.returncode == 0 and self.ended, (self.proc.returncode, self.other[-5:])

    def broker_errors(self) -> Counter:
        return Counter({("NOT_LEADER_OR_FOLLOWER" if t == "NOT_LEADER_FOR_PARTITION" else t): n
                        for t, n in self.errors.items()})

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def consume_all(bootstrap: str, topic: str, partitions: int,
                config: dict[str, object] | None = None) -> list[tuple[bytes, int, int]]:
    """Every record of every partition up to its high watermark: (value, partition, offset)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         **(config or {})})
    try:
        ends = {p: consumer.get_watermark_offsets(CKTopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([CKTopicPartition(topic, p, 0) for p in range(partitions)])
        out: list[tuple[bytes, int, int]] = []
        position = {p: 0 for p in range(partitions)}
        deadline = time.monotonic() + 120
        while any(position[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    raise AssertionError(f"consumer error: {msg.error()}")
                out.append((msg.value(), msg.partition(), msg.offset()))
                position[msg.partition()] = msg.offset() + 1
        assert all(position[p] >= ends[p] for p in ends), (position, ends)
        return out
    finally:
        consumer.close()


def assert_exactly_once_in_order(acked: list[tuple[bytes, int, int | None]],
                                 stored: list[tuple[bytes, int, int]]) -> int:
    """The project's promise, checked the same way by every cluster test: every acked value
    stored once, at its acked (partition, offset) — or, when librdkafka acked it without an
    offset (a retried batch acknowledged implicitly by a later sequence of the same partition),
    once in its partition; nothing stored twice and nothing else stored; per key the sequence
    numbers strictly increase in offset order. Returns how many were acked without an offset."""
    where: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for value, p, off in stored:
        where[value].append((p, off))
    twice = {v: w for v, w in where.items() if len(w) > 1}
    assert not twice, f"{len(twice)} values stored twice, e.g. {list(twice.items())[:3]}"
    wrong = [(v, (p, off), where.get(v)) for v, p, off in acked
             if (where.get(v) != [(p, off)] if off is not None
                 else [q for q, _ in where.get(v, [])] != [p])]
    assert not wrong, (f"{len(wrong)} acked messages not at their acked partition/offset "
                       f"(value, acked at, found at), e.g. {wrong[:5]}")
    assert len(stored) == len(acked), f"{len(stored)} stored, {len(acked)} acked"
    last: dict[bytes, int] = {}
    for value, p, off in sorted(stored, key=lambda s: (s[1], s[2])):
        key, seq = value.split(b".", 1)[0].split(b":")
        assert int(seq) > last.get(key, -1), f"{key!r} out of order at {p}/{off}"
        last[key] = int(seq)
    return sum(1 for _, _, off in acked if off is None)


def assert_only_retriable(prod) -> Counter:
    """No failed delivery, and every broker error the producer met is a retriable one."""
    assert prod.failed == [], f"{len(prod.failed)} failed deliveries, e.g. {prod.failed[:5]}"
    errors = prod.broker_errors()
    allowed = set(RETRIABLE.values()) | {"CONNECTION"}  # kafkajs: broker connection closed
    unexpected = {e: n for e, n in errors.items() if e not in allowed}
    examples = [ln for ln in prod.tap.lines if "Broker: " in ln][:5] if hasattr(prod, "tap") else []
    assert not unexpected, f"non-retriable errors met by the producer: {unexpected} {examples}"
    return errors
