"""confluent-kafka (librdkafka) for the compat suite: every scenario, every operation.

Produce: idempotent (acks=all, retries cannot reorder or duplicate within a partition), and
for large values message.max.bytes raised as a user would. Group: commit each record
synchronously after writing it.
"""
from __future__ import annotations

import json
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

import compat_common as cc

LARGE = 4 * 1024 * 1024


def _metadata(admin: AdminClient, topic: str):
    md = admin.list_topics(topic=None, timeout=10)
    return md.topics.get(topic)


def admin(a) -> None:
    client = AdminClient({"bootstrap.servers": a.bootstrap})
    fut = client.create_topics([NewTopic(a.topic, num_partitions=cc.PARTITIONS,
                                         replication_factor=cc.REPLICATION_FACTOR)],
                               operation_timeout=30, request_timeout=60)[a.topic]
    fut.result(timeout=cc.time_left(a))
    while True:
        t = _metadata(client, a.topic)
        if (t is not None and t.error is None and len(t.partitions) == cc.PARTITIONS
                and all(len(p.replicas) == cc.REPLICATION_FACTOR and p.leader >= 0
                        and p.error is None for p in t.partitions.values())):
            break
        cc.time_left(a)
        time.sleep(0.2)
    parts = {str(p.id): {"leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs)}
             for p in t.partitions.values()}
    res = ConfigResource(ConfigResource.Type.TOPIC, a.topic)
    configs = client.describe_configs([res])[res].result(timeout=cc.time_left(a))
    cfg = {k: v.value for k, v in configs.items() if k in ("cleanup.policy", "retention.ms")}
    client.delete_topics([a.topic], operation_timeout=30)[a.topic].result(timeout=cc.time_left(a))
    while _metadata(client, a.topic) is not None:
        cc.time_left(a)
        time.sleep(0.2)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"created": True, "partitions": parts, "configs": cfg, "deleted": True}, f)


def produce(a) -> None:
    conf = {"bootstrap.servers": a.bootstrap, "compression.type": a.codec, "acks": "all",
            "enable.idempotence": True, "linger.ms": 5,
            "queue.buffering.max.messages": 20000, "message.timeout.ms": 90000}
    if a.value_size:
        conf["message.max.bytes"] = LARGE
    producer = Producer(conf)
    out = cc.open_out(a.produced)
    errors: list[str] = []
    delivered = 0

    def on_delivery(err, msg, seq):
        nonlocal delivered
        if err is not None:
            errors.append(f"seq {seq}: {err}")
        else:
            delivered += 1
            if out:
                out.write(cc.delivery_line(seq, msg.partition(), msg.offset()))

    for m in cc.messages(a):
        while True:
            try:
                producer.produce(a.topic, key=m.key, value=m.value, headers=m.headers,
                                 timestamp=m.timestamp,
                                 on_delivery=lambda e, msg, s=m.seq: on_delivery(e, msg, s))
                break
            except BufferError:  # local queue full: serve delivery reports first
                producer.poll(0.1)
                cc.time_left(a)
        producer.poll(0)
    while producer.flush(1.0):
        cc.time_left(a)
    if errors:
        cc.fail(f"{len(errors)} delivery errors, first: {errors[:5]}")
    if delivered != a.count:
        cc.fail(f"{delivered} delivery reports for {a.count} messages")
    cc.log(f"produced {delivered}")


def _consumer(a, group: str, extra: dict | None = None) -> Consumer:
    conf = {"bootstrap.servers": a.bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000}
    if a.value_size:
        conf["fetch.max.bytes"] = LARGE
        conf["max.partition.fetch.bytes"] = LARGE
    conf.update(extra or {})
    return Consumer(conf)


def _ends(c: Consumer, a) -> dict[int, int]:
    return {p: c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=cc.time_left(a))[1]
            for p in range(cc.PARTITIONS)}


def consume(a) -> None:
    c = _consumer(a, f"{a.topic}-reader-ck")
    ends = _ends(c, a)
    c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in range(cc.PARTITIONS)])
    pos = {p: 0 for p in ends}
    with open(a.out, "w", encoding="utf-8") as out:
        while any(pos[p] < ends[p] for p in ends):
            cc.time_left(a)
            for msg in c.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    cc.fail(f"consume: {msg.error()}")
                if msg.offset() >= ends[msg.partition()]:
                    continue
                out.write(cc.record_line(a, msg.partition(), msg.offset(), msg.key(),
                                         msg.value(), msg.headers(), msg.timestamp()[1]))
                pos[msg.partition()] = msg.offset() + 1
    c.close()
    cc.log(f"consumed to {ends}")


def group(a) -> None:
    c = _consumer(a, a.group)
    ends = _ends(c, a)
    committed = c.committed([TopicPartition(a.topic, p) for p in ends], timeout=cc.time_left(a))
    pos = {tp.partition: max(tp.offset, 0) for tp in committed}
    c.subscribe([a.topic])
    got = 0
    with open(a.out, "w", encoding="utf-8", buffering=1) as out:
        while (a.max is None or got < a.max) and (a.max is not None
                                                   or any(pos[p] < ends[p] for p in ends)):
            cc.time_left(a)
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                cc.fail(f"poll: {msg.error()}")
            out.write(cc.record_line(a, msg.partition(), msg.offset(), msg.key(), msg.value(),
                                     msg.headers(), msg.timestamp()[1]))
            got += 1
            pos[msg.partition()] = msg.offset() + 1
            tp = TopicPartition(a.topic, msg.partition(), msg.offset() + 1)
            while True:
                try:
                    c.commit(offsets=[tp], asynchronous=False)
                    break
                except KafkaException as e:  # between generations: commit again
                    if e.args[0].code() not in (KafkaError.REBALANCE_IN_PROGRESS,
                                                KafkaError.ILLEGAL_GENERATION):
                        cc.fail(f"commit: {e}")
                    cc.time_left(a)
                    time.sleep(0.2)
    c.close()
    cc.log(f"group consumed {got}, positions {pos}")


SCENARIOS = {"admin": admin, "produce": produce, "consume": consume, "group": group}
