"""Compaction with replication: each replica compacts its own copy (as Kafka does), offsets
stay the leader's, and after the leader is killed the new leader serves the compacted log
with the original offsets and keeps appending after them."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.integration.cluster_support import broker_cluster  # noqa: F401 - fixture
from tests.integration.test_log_compaction import Acks, check_pass, produce, read_partition, roll
from tests.integration.test_replication import (
    create_topic,
    log_records,
    start_cluster,
    wait_for,
    zk_for,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.integration


def _compacted_below_active(broker, topic: str) -> bool:
    """Every key appears once below the replica's active segment, and the replica's own
    cleaner has checkpointed the partition."""
    d = Path(broker.log_dir) / f"{topic}-0"
    active = max(int(f.name.split(".")[0]) for f in d.glob("*.log"))
    keys = [k for off, (k, _) in log_records(broker, topic).items() if off < active]
    ckpt = Path(broker.log_dir) / "cleaner-offset-checkpoint"
    text = ckpt.read_text() if ckpt.exists() else ""
    return len(keys) == len(set(keys)) and f"\n{topic} 0 " in "\n" + text


def test_replicas_compact_independently_and_keep_the_leaders_offsets(broker_cluster, zk_for):
    brokers = start_cluster(broker_cluster, 2, **{"log.cleaner.backoff.ms": "200",
                                                   "log.segment.delete.delay.ms": "500"})
    zk = zk_for(broker_cluster)
    topic = f"rcompact-{uuid.uuid4().hex[:8]}"
    create_topic(broker_cluster.bootstrap, topic, 1, 2,
                 {"cleanup.policy": "compact", "segment.bytes": "16384", "segment.ms": "1000",
                  "min.cleanable.dirty.ratio": "0.01", "max.compaction.lag.ms": "1000",
                  "min.insync.replicas": "2"})
    acks = Acks()
    for rnd in range(6):
        produce(broker_cluster.bootstrap, topic,
                [(b"key-%04d" % i, b"v%d-%d-" % (rnd, i) + b"." * 60) for i in range(300)], acks)
    latest = acks.latest()
    leader_id = zk.state(topic)["leader"]
    leader = broker_cluster.brokers[leader_id]
    follower = next(b for b in brokers if b.broker_id != leader_id)
    roll(broker_cluster.bootstrap, topic, Path(leader.log_dir) / f"{topic}-0", acks,
         max(acks.by_offset))
    for b in (leader, follower):
        wait_for(lambda b=b: _compacted_below_active(b, topic), 90,
                 f"broker {b.broker_id} to compact its replica")
    for b in (leader, follower):
        recs = log_records(b, topic)
        for off, kv in recs.items():
            assert acks.by_offset[off] == kv, f"broker {b.broker_id}: offset {off} holds {kv}"
        for k, (off, v) in latest.items():
            assert recs.get(off) == (k, v), f"broker {b.broker_id} lost {k!r}@{off}"
    end_before = max(acks.by_offset) + 1  # every acked record is on both (min ISR 2)
    leader.kill9()
    wait_for(lambda: zk.state(topic)["leader"] == follower.broker_id, 60, "the follower to lead")
    recs = [r for r in read_partition(follower.bootstrap, topic) if not r[1].startswith(b"roll-")]
    check_pass(recs, acks, latest, must_hold_latest=True)
    # The new leader appends right after the old leader's last offset (acks=1: with one
    # replica left, min.insync.replicas=2 would refuse acks=all).
    after = Acks()
    p = Producer({"bootstrap.servers": follower.bootstrap, "acks": "1"})
    p.produce(topic, key=b"after", value=b"failover", on_delivery=after)
    assert p.flush(30) == 0
    assert list(after.by_offset) == [end_before]
