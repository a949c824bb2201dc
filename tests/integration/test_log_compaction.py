"""Log compaction on a real broker process (real ZooKeeper), read back with confluent-kafka:
latest value per key at its original offset, files shrink, tombstones go after
delete.retention.ms, readers during cleaning never go backwards, restarts (clean, and
kill -9 with leftover .cleaned/.swap files) recover a correct log, and __consumer_offsets
is compacted and reloaded by the group coordinator."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

KEYS = 1000
ROUNDS = 10
PAD = b"." * 100
CLEANER_OVERRIDES = {"log.cleaner.backoff.ms": "200", "log.segment.delete.delay.ms": "500"}


def create_compacted(bootstrap: str, topic: str, **extra: str) -> None:
    config = {"cleanup.policy": "compact", "segment.bytes": "32768",
              "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "8000"}
    config.update(extra)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config=config)], operation_timeout=30)[topic].result(60)


def key_of(i: int) -> bytes:
    return b"key-%04d" % i


def value_of(rnd: int, i: int) -> bytes:
    return b"v%d-%d-" % (rnd, i) + PAD


def round_of(value: bytes | None) -> int:
    return int(value.split(b"-", 1)[0][1:]) if value is not None else 1 << 30


class Acks:
    """offset -> (key, value) of every acknowledged record."""

    def __init__(self) -> None:
        self.by_offset: dict[int, tuple[bytes, bytes | None]] = {}
        self.lock = threading.Lock()

    def __call__(self, err, msg) -> None:
        assert err is None, err
        with self.lock:
            self.by_offset[msg.offset()] = (msg.key(), msg.value())

    def latest(self) -> dict[bytes, tuple[int, bytes | None]]:
        out: dict[bytes, tuple[int, bytes | None]] = {}
        for off in sorted(self.by_offset):
            k, v = self.by_offset[off]
            out[k] = (off, v)
        return out


def produce(bootstrap: str, topic: str, items, acks: Acks) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 4096,
                  "enable.idempotence": True})
    for k, v in items:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=acks)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0


def read_partition(bootstrap: str, topic: str, timeout: float = 60) -> list[tuple[int, bytes, bytes | None]]:
    """Every record of partition 0 from the beginning to the end, in order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                return out
            out.append((msg.offset(), msg.key(), msg.value()))
        raise AssertionError(f"no end of partition within {timeout}s ({len(out)} records)")
    finally:
        c.close()


def read_with_kafka_python(bootstrap: str, topic: str, timeout: float = 60):
    """The same read with kafka-python (its own batch/gap handling, not librdkafka's)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        out = []
        deadline = time.monotonic() + timeout
        while c.position(tp) < end:
            assert time.monotonic() < deadline, f"kafka-python stuck at {c.position(tp)} < {end}"
            for recs in c.poll(timeout_ms=500).values():
                out += [(r.offset, r.key, r.value) for r in recs]
        return out
    finally:
        c.close()


def log_bytes(part_dir: Path) -> int:
    return sum(f.stat().st_size for f in part_dir.glob("*.log"))


def roll(bootstrap: str, topic: str, part_dir: Path, acks: Acks, past_offset: int,
         timeout: float = 60) -> None:
    """Make the segment holding `past_offset` non-active: segment.ms is short, so an
    append (an ignored `roll-*` key) after it has passed starts a new segment."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        bases = sorted(int(f.name.split(".")[0]) for f in part_dir.glob("*.log"))
        if bases and bases[-1] > past_offset:
            return
        produce(bootstrap, topic, [(b"roll-%d" % n, b"r")], acks)
        n += 1
        time.sleep(0.3)  # pacing for segment.ms; the loop itself waits on the condition
    raise AssertionError("the active segment never rolled")


def check_pass(records, acks: Acks, latest: dict[bytes, tuple[int, bytes | None]],
               must_hold_latest: bool) -> None:
    """One reader's pass: original offsets, no value older than one already seen for its
    key, and (once everything was acknowledged) every key's latest value."""
    seen: dict[bytes, int] = {}
    last: dict[bytes, tuple[int, bytes | None]] = {}
    for off, k, v in records:
        assert acks.by_offset.get(off) == (k, v), f"offset {off} holds {(k, v)}"
        r = round_of(v)
        assert r >= seen.get(k, -1), f"{k!r}: round {r} read after round {seen[k]}"
        seen[k] = r
        last[k] = (off, v)
    if must_hold_latest:
        for k, (off, v) in latest.items():
            if v is not None:
                assert last.get(k) == (off, v), f"{k!r}: latest {off} missing, read {last.get(k)}"
            else:
                assert last.get(k, (off, None)) == (off, None), f"{k!r}: tombstone lost its place"


def test_compaction_keeps_latest_per_key_at_original_offsets(broker_cluster):
    b = broker_cluster.start(overrides=CLEANER_OVERRIDES)
    topic = f"compact-{uuid.uuid4().hex[:8]}"
    create_compacted(b.bootstrap, topic, **{"segment.ms": "1000", "max.compaction.lag.ms": "1000"})
    part_dir = Path(b.log_dir) / f"{topic}-0"
    acks = Acks()
    for rnd in range(ROUNDS):
        produce(b.bootstrap, topic, [(key_of(i), value_of(rnd, i)) for i in range(KEYS)], acks)
    raw_bytes = sum(len(k) + len(v) for k, v in acks.by_offset.values())
    t_tombstones = time.monotonic()
    produce(b.bootstrap, topic, [(key_of(i), None) for i in range(10)], acks)
    data_latest = {k: ov for k, ov in acks.latest().items()}
    last_data_offset = max(acks.by_offset)
    roll(b.bootstrap, topic, part_dir, acks, last_data_offset)

    # Readers during cleaning: every pass is ordered per key and holds every latest value.
    deadline = time.monotonic() + 120
    passes = 0
    tombstone_seen = False
    while True:
        assert time.monotonic() < deadline, "the log was never compacted"
        recs = [r for r in read_partition(b.bootstrap, topic) if not r[1].startswith(b"roll-")]
        passes += 1
        check_pass(recs, acks, data_latest, must_hold_latest=True)
        keys = [k for _, k, _ in recs]
        compacted = len(keys) == len(set(keys))
        if compacted and time.monotonic() - t_tombstones < 8:
            # The horizon is at least 8 s after the tombstones were written.
            assert {k for _, k, v in recs if v is None} == {key_of(i) for i in range(10)}
            tombstone_seen = True
        if compacted and all(v is not None for _, _, v in recs):
            break
    print(f"compacted after {passes} reads; tombstones observed: {tombstone_seen}")
    # Exactly the latest value of every live key, at the offset it was written at.
    assert {k: (o, v) for o, k, v in recs} == {k: ov for k, ov in data_latest.items()
                                              if ov[1] is not None}
    # Smaller on disk (replaced files are gone once log.segment.delete.delay.ms passed).
    deadline = time.monotonic() + 30
    while any(part_dir.glob("*.deleted")) and time.monotonic() < deadline:
        time.sleep(0.1)
    size = log_bytes(part_dir)
    assert size < raw_bytes / 4, f"{size} bytes on disk for {raw_bytes} bytes produced"
    checkpoint = (Path(b.log_dir) / "cleaner-offset-checkpoint").read_text().split("\n")
    assert any(line.startswith(f"{topic} 0 ") for line in checkpoint)
    # Gaps inside and between batches, and the record-less last batches the earlier
    # producers left, are read the same way by another client library.
    before = read_partition(b.bootstrap, topic)
    assert read_with_kafka_python(b.bootstrap, topic) == before
    # A clean restart serves the same log.
    b.restart()
    assert read_partition(b.bootstrap, topic) == before


def _make_swap_by_hand(part_dir: Path, topic: str) -> tuple[int, int]:
    """With the broker dead, do the worker half of a cleaning pass with kafkapy's own code
    and stop where a kill -9 could: a `.swap` for the first group, a stray `.cleaned`.
    Returns (swap base offset, base offset of the segment after its group)."""
    import threading as _t

    from kafkapy.log import LogConfig, TopicPartition as TP, UnifiedLog
    from kafkapy.log.cleaner import OffsetMap
    from kafkapy.log.cleaner_edge import (
        CleanStats,
        SourceSegment,
        build_offset_map,
        clean_group,
    )

    cfg = LogConfig(cleanup_policy="compact", segment_bytes=32768)
    log = UnifiedLog(str(part_dir), TP(topic, 0), cfg, had_clean_shutdown=True)
    try:
        sources = [SourceSegment.capture(s) for s in log.segments[:-1]]
        omap = OffsetMap(100_000)
        never = _t.Event()
        build_offset_map(sources, 0, log.active_segment.base_offset, omap, 65536, never,
                         CleanStats())
        group = clean_group(str(part_dir), sources[:3], omap, {}, int(time.time() * 1000),
                            8000, 4096, 10 * 1024 * 1024, 65536, never, CleanStats(),
                            group_end=sources[3].base_offset)
        group.segment.change_file_suffixes(".cleaned", ".swap")
        group.segment.close()
        stray = clean_group(str(part_dir), sources[3:4], omap, {}, int(time.time() * 1000),
                            8000, 4096, 10 * 1024 * 1024, 65536, never, CleanStats())
        stray.segment.close()
        for s in sources:
            s.close()
        return sources[0].base_offset, sources[3].base_offset
    finally:
        for s in log.segments:
            s.close()


def test_kill9_with_leftover_cleaned_and_swap_files_recovers(broker_cluster):
    b = broker_cluster.start(overrides={**CLEANER_OVERRIDES, "log.cleaner.enable": "false"})
    topic = f"swapcrash-{uuid.uuid4().hex[:8]}"
    create_compacted(b.bootstrap, topic, **{"segment.bytes": "8192"})
    part_dir = Path(b.log_dir) / f"{topic}-0"
    acks = Acks()
    for rnd in range(4):
        produce(b.bootstrap, topic, [(key_of(i), value_of(rnd, i)) for i in range(300)], acks)
    latest = acks.latest()
    before = read_partition(b.bootstrap, topic)
    assert len(list(part_dir.glob("*.log"))) > 5
    b.kill9()
    base, swap_group_end = _make_swap_by_hand(part_dir, topic)
    assert (part_dir / f"{base:020d}.log.swap").exists()
    assert any(part_dir.glob("*.log.cleaned"))
    b.start()
    after = read_partition(b.bootstrap, topic)
    assert not any(part_dir.glob("*.swap")) and not any(part_dir.glob("*.cleaned"))
    assert not any(part_dir.glob("*.cleaner-group-end"))
    assert all(r in before for r in after)  # nothing invented, offsets unchanged
    # The whole hand-cleaned group was replaced: no key twice below the 4th segment.
    group_keys = [k for o, k, _ in after if o < swap_group_end]
    assert len(group_keys) == len(set(group_keys))
    check_pass(after, acks, latest, must_hold_latest=True)
    assert len(after) < len(before)  # the swapped-in group is the compacted one
    # The cleaner finishes the job once enabled.
    b.restart(**{"log.cleaner.enable": "true"})
    active_base = max(int(f.name.split(".")[0]) for f in part_dir.glob("*.log"))
    deadline = time.monotonic() + 90
    while True:
        recs = read_partition(b.bootstrap, topic)
        check_pass(recs, acks, latest, must_hold_latest=True)
        keys = [k for o, k, _ in recs if o < active_base]
        if len(keys) == len(set(keys)):
            break  # below the active segment: one record per key
        assert time.monotonic() < deadline, f"still {len(keys)} records below {active_base}"
        time.sleep(0.5)


def test_consumer_offsets_compacted_then_reloaded_after_restart(broker_cluster):
    b = broker_cluster.start(overrides={**CLEANER_OVERRIDES,
                                        "offsets.topic.num.partitions": "1",
                                        "offsets.topic.segment.bytes": "8192",
                                        "log.cleaner.min.cleanable.ratio": "0.01"})
    topic = f"committed-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)], operation_timeout=30)[topic].result(60)
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    commits = 400
    try:
        for i in range(1, commits + 1):
            c.commit(offsets=[TopicPartition(topic, p, i * 10 + p) for p in range(3)],
                     asynchronous=False)
    finally:
        c.close()
    part_dir = Path(b.log_dir) / "__consumer_offsets-0"
    checkpoint = Path(b.log_dir) / "cleaner-offset-checkpoint"
    deadline = time.monotonic() + 90
    # Compacted: 1,200 offset commit records (~100 bytes each) shrink to a few.
    while True:
        text = checkpoint.read_text() if checkpoint.exists() else ""
        cleaned = any(line.startswith("__consumer_offsets 0 ") for line in text.splitlines())
        if cleaned and not any(part_dir.glob("*.deleted")) and log_bytes(part_dir) < 20_000:
            break
        assert time.monotonic() < deadline, f"not compacted: {log_bytes(part_dir)} bytes, {text!r}"
        time.sleep(0.2)
    b.restart()  # the coordinator reloads the partition from the compacted log
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    finally:
        c.close()
    assert {(t.partition, t.offset) for t in got} == {(p, commits * 10 + p) for p in range(3)}
