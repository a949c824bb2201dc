"""aiokafka driver: admin create -> produce, await every future -> assign, seek to beginning,
consume to the end offsets. Arguments: see workload.parse_args."""
from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import workload as wl

TOPIC_ALREADY_EXISTS = 36


async def create_topic(args) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(args.topic, num_partitions=wl.PARTITIONS,
                                                   replication_factor=1)], timeout_ms=30000)
        # CreateTopics v0-v4 responses: topic_errors = [(name, error_code[, message])].
        for entry in resp.topic_errors:
            name, code = entry[0], entry[1]
            if code not in (0, TOPIC_ALREADY_EXISTS):
                wl.fail(f"create_topics({name}): error code {code} {entry[2:]}")
    finally:
        await admin.close()


async def produce(args) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=None if args.codec == "none" else args.codec,
        acks="all", linger_ms=5, max_batch_size=64 * 1024)
    await producer.start()
    futures = []
    try:
        for m in wl.messages(args.count, args.src, args.base_ts):
            fut = await producer.send(args.topic, key=m.key.encode(), value=m.value.encode(),
                                      headers=[(k, v.encode()) for k, v in m.headers],
                                      timestamp_ms=m.timestamp)
            futures.append((m.seq, fut))
        await producer.flush()
        results = await asyncio.wait_for(
            asyncio.gather(*(f for _, f in futures), return_exceptions=True), wl.time_left(args))
    finally:
        await producer.stop()
    out = wl.open_out(args.produced)
    errors = []
    for (seq, _), md in zip(futures, results):
        if isinstance(md, BaseException):
            errors.append(f"seq {seq}: {md!r}")
        elif out:
            out.write(wl.delivery_line(seq, md.partition, md.offset))
    if out:
        out.close()
    if errors:
        wl.fail(f"{len(errors)} delivery errors, first: {errors[:5]}")
    wl.log(f"produced {len(futures)}")


async def consume(args) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    got = 0
    try:
        tps = [TopicPartition(args.topic, p) for p in range(wl.PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
        done = {p: ends[p] == 0 for p in ends}
        with open(args.out, "w", encoding="utf-8") as out:
            while not all(done.values()):
                wl.time_left(args)
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    for r in records:
                        out.write(wl.record_line(r.partition, r.offset, r.key, r.value,
                                                 r.headers, r.timestamp))
                        got += 1
                        if r.offset + 1 >= ends[r.partition]:
                            done[r.partition] = True
    finally:
        await consumer.stop()
    wl.log(f"consumed {got} (end offsets {ends})")


async def run(args) -> None:
    await create_topic(args)
    await produce(args)
    await consume(args)


def main(argv: list[str] | None = None) -> None:
    args = wl.parse_args("aiokafka", argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
