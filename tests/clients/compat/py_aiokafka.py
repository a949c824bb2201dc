"""aiokafka for the compat suite: every scenario, every operation.

Produce: enable_idempotence=True (acks=all; retries cannot reorder or duplicate). Group: the
records of each getmany (at most 20) are written, then exactly their offsets committed.
"""
from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

import compat_common as cc
import py_records as pr

LARGE = 4 * 1024 * 1024
TOPIC_ALREADY_EXISTS = 36


async def _describe(admin: AIOKafkaAdminClient, topic: str) -> dict | None:
    if topic not in await admin.list_topics():
        return None
    (t,) = await admin.describe_topics([topic])
    return pr.partitions_of(t)


def _check_errors(resp, what: str) -> None:
    """CreateTopics/DeleteTopics responses list (name, error_code, ...) per topic."""
    for entry in getattr(resp, "topic_errors", None) or getattr(resp, "topic_error_codes", []):
        if entry[1] != 0:
            cc.fail(f"{what}({entry[0]}): error code {entry[1]} {entry[2:]}")


async def _admin(a) -> None:
    client = AIOKafkaAdminClient(bootstrap_servers=a.bootstrap)
    await client.start()
    try:
        _check_errors(await client.create_topics(
            [NewTopic(a.topic, num_partitions=cc.PARTITIONS,
                      replication_factor=cc.REPLICATION_FACTOR)], timeout_ms=30000),
            "create_topics")
        while True:
            parts = await _describe(client, a.topic)
            if pr.topic_ready(parts):
                break
            cc.time_left(a)
            await asyncio.sleep(0.2)
        cfg = {}
        for resp in await client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, a.topic)]):
            for res in resp.resources:  # (error_code, message, type, name, entries)
                for e in res[4]:
                    if e[0] in ("cleanup.policy", "retention.ms"):
                        cfg[e[0]] = e[1]
        _check_errors(await client.delete_topics([a.topic], timeout_ms=30000), "delete_topics")
        while a.topic in await client.list_topics():
            cc.time_left(a)
            await asyncio.sleep(0.2)
    finally:
        await client.close()
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"created": True, "partitions": parts, "configs": cfg, "deleted": True}, f)


async def _produce(a) -> None:
    conf = dict(bootstrap_servers=a.bootstrap, acks="all", enable_idempotence=True,
                linger_ms=5, max_batch_size=64 * 1024, request_timeout_ms=30000,
                compression_type=None if a.codec == "none" else a.codec)
    if a.value_size:
        conf.update(max_request_size=LARGE, max_batch_size=LARGE)
    producer = AIOKafkaProducer(**conf)
    await producer.start()
    out = cc.open_out(a.produced)
    errors: list[str] = []
    acked = [0]

    def done(fut: asyncio.Future, seq: int) -> None:
        if fut.exception() is not None:
            errors.append(f"seq {seq}: {fut.exception()!r}")
            return
        acked[0] += 1
        md = fut.result()
        if out:
            out.write(cc.delivery_line(seq, md.partition, md.offset))

    futures = []
    try:
        for m in cc.messages(a):
            fut = await producer.send(a.topic, key=m.key, value=m.value, headers=m.headers,
                                      timestamp_ms=m.timestamp)
            fut.add_done_callback(lambda f, s=m.seq: done(f, s))
            futures.append(fut)
        await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True),
                               cc.time_left(a))
    finally:
        await producer.stop()
    pr.check_produced(a, errors, acked[0])


def _consumer(a, **extra) -> AIOKafkaConsumer:
    conf = dict(bootstrap_servers=a.bootstrap, enable_auto_commit=False,
                auto_offset_reset="earliest")
    if a.value_size:
        conf.update(max_partition_fetch_bytes=LARGE, fetch_max_bytes=LARGE)
    conf.update(extra)
    return AIOKafkaConsumer(**conf)


async def _consume(a) -> None:
    c = _consumer(a, group_id=None)
    await c.start()
    try:
        tps = [TopicPartition(a.topic, p) for p in range(cc.PARTITIONS)]
        ends = {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        pos = {p: 0 for p in ends}
        with open(a.out, "w", encoding="utf-8") as out:
            while any(pos[p] < ends[p] for p in ends):
                cc.time_left(a)
                pr.write_below_ends(
                    a, out, (await c.getmany(timeout_ms=500, max_records=2000)).values(),
                    ends, pos)
    finally:
        await c.stop()
    cc.log(f"consumed to {ends}")


async def _group(a) -> None:
    c = _consumer(a, group_id=a.group, session_timeout_ms=10000)
    await c.start()
    got = 0
    try:
        tps = [TopicPartition(a.topic, p) for p in range(cc.PARTITIONS)]
        ends = {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
        pos = {tp.partition: (await c.committed(tp)) or 0 for tp in tps}
        c.subscribe([a.topic])
        with open(a.out, "w", encoding="utf-8", buffering=1) as out:
            while (got < a.max) if a.max is not None else any(pos[p] < ends[p] for p in ends):
                cc.time_left(a)
                got, done = pr.write_group_batch(
                    a, out, await c.getmany(timeout_ms=500, max_records=20), pos, got,
                    lambda nxt: OffsetAndMetadata(nxt, ""))
                if done:
                    await c.commit(done)
    finally:
        await c.stop()
    cc.log(f"group consumed {got}, positions {pos}")


SCENARIOS = {"admin": lambda a: asyncio.run(_admin(a)),
             "produce": lambda a: asyncio.run(_produce(a)),
             "consume": lambda a: asyncio.run(_consume(a)),
             "group": lambda a: asyncio.run(_group(a))}
