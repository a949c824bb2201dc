"""kafka-python for the compat suite: every scenario, every operation.

Produce: kafka-python's producer is idempotent by default (acks=all); kept, and checked.
Group: the records of each poll (at most 20) are written, then their offsets committed
synchronously by explicit offsets (so a run stopped at --max commits exactly what it wrote).
"""
from __future__ import annotations

import json
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

import compat_common as cc
import py_records as pr

LARGE = 4 * 1024 * 1024


def _describe(admin: KafkaAdminClient, topic: str) -> dict | None:
    if topic not in admin.list_topics():
        return None
    (t,) = admin.describe_topics([topic])
    return pr.partitions_of(t)


def admin(a) -> None:
    client = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id="compat-admin")
    try:
        client.create_topics([NewTopic(a.topic, num_partitions=cc.PARTITIONS,
                                       replication_factor=cc.REPLICATION_FACTOR)],
                             timeout_ms=30000)
        while True:
            parts = _describe(client, a.topic)
            if pr.topic_ready(parts):
                break
            cc.time_left(a)
            time.sleep(0.2)
        resp = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, a.topic)],
                                       config_filter="all")
        cfg = _configs(resp)
        client.delete_topics([a.topic], timeout_ms=30000)
        while a.topic in client.list_topics():
            cc.time_left(a)
            time.sleep(0.2)
    finally:
        client.close()
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"created": True, "partitions": parts, "configs": cfg, "deleted": True}, f)


def _configs(resp: dict) -> dict:
    """{"topic": {name: {config: {"value": ...}}}} -> two well-known topic configs."""
    return {k: v["value"] for topic in resp.get("topic", {}).values() for k, v in topic.items()
            if k in ("cleanup.policy", "retention.ms")}


def produce(a) -> None:
    conf = dict(bootstrap_servers=a.bootstrap, acks="all", linger_ms=5,
                batch_size=64 * 1024, compression_type=None if a.codec == "none" else a.codec,
                retries=2**31 - 1, request_timeout_ms=30000)
    if a.value_size:
        conf.update(max_request_size=LARGE)
    producer = KafkaProducer(**conf)
    if not producer.config.get("enable_idempotence"):
        cc.fail("kafka-python's producer is expected to be idempotent by default")
    out = cc.open_out(a.produced)
    errors: list[str] = []
    acked = [0]

    def ok(md, seq):
        acked[0] += 1
        if out:
            out.write(cc.delivery_line(seq, md.partition, md.offset))

    def bad(exc, seq):
        errors.append(f"seq {seq}: {exc!r}")

    for m in cc.messages(a):
        fut = producer.send(a.topic, key=m.key, value=m.value, headers=m.headers,
                            timestamp_ms=m.timestamp)
        fut.add_callback(ok, seq=m.seq)
        fut.add_errback(bad, seq=m.seq)
    producer.flush(timeout=cc.time_left(a))
    producer.close(timeout=cc.time_left(a))
    pr.check_produced(a, errors, acked[0])


def _consumer(a, **extra) -> KafkaConsumer:
    conf = dict(bootstrap_servers=a.bootstrap, enable_auto_commit=False,
                auto_offset_reset="earliest", client_id="compat-consumer")
    if a.value_size:
        conf.update(max_partition_fetch_bytes=LARGE, fetch_max_bytes=LARGE)
    conf.update(extra)
    return KafkaConsumer(**conf)


def consume(a) -> None:
    c = _consumer(a, group_id=None)
    tps = [TopicPartition(a.topic, p) for p in range(cc.PARTITIONS)]
    ends = {tp.partition: off for tp, off in c.end_offsets(tps).items()}
    c.assign(tps)
    c.seek_to_beginning(*tps)
    pos = {p: 0 for p in ends}
    with open(a.out, "w", encoding="utf-8") as out:
        while any(pos[p] < ends[p] for p in ends):
            cc.time_left(a)
            pr.write_below_ends(a, out, c.poll(timeout_ms=500, max_records=2000).values(),
                                ends, pos)
    c.close()
    cc.log(f"consumed to {ends}")


def group(a) -> None:
    c = _consumer(a, group_id=a.group, session_timeout_ms=10000, max_poll_records=20)
    tps = [TopicPartition(a.topic, p) for p in range(cc.PARTITIONS)]
    ends = {tp.partition: off for tp, off in c.end_offsets(tps).items()}
    pos = {tp.partition: (c.committed(tp) or 0) for tp in tps}
    c.subscribe([a.topic])
    got = 0
    with open(a.out, "w", encoding="utf-8", buffering=1) as out:
        while (got < a.max) if a.max is not None else any(pos[p] < ends[p] for p in ends):
            cc.time_left(a)
            got, done = pr.write_group_batch(a, out, c.poll(timeout_ms=500), pos, got,
                                             lambda nxt: OffsetAndMetadata(nxt, "", -1))
            if done:
                c.commit(done)
    c.close()
    cc.log(f"group consumed {got}, positions {pos}")


SCENARIOS = {"admin": admin, "produce": produce, "consume": consume, "group": group}
