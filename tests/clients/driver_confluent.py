"""confluent-kafka (librdkafka) driver: admin create -> produce with delivery reports -> assign
from the beginning and consume to the end offsets. Arguments: see workload.parse_args."""
from __future__ import annotations

import sys

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import workload as wl


def create_topic(args) -> None:
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=wl.PARTITIONS,
                                            replication_factor=1)],
                                  operation_timeout=30, request_timeout=60)
    try:
        futures[args.topic].result(timeout=wl.time_left(args))
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            wl.fail(f"create_topics: {e}")


def produce(args) -> None:
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.codec,
        "acks": "all",
        "linger.ms": 5,
        "queue.buffering.max.messages": 20000,
    })
    errors: list[str] = []
    delivered = 0
    out = wl.open_out(args.produced)

    def on_delivery(err, msg, seq):
        nonlocal delivered
        if err is not None:
            errors.append(f"seq {seq}: {err}")
            return
        delivered += 1
        if out:
            out.write(wl.delivery_line(seq, msg.partition(), msg.offset()))

    for m in wl.messages(args.count, args.src, args.base_ts):
        while True:
            try:
                producer.produce(args.topic, key=m.key.encode(), value=m.value.encode(),
                                 headers=[(k, v.encode()) for k, v in m.headers],
                                 timestamp=m.timestamp,
                                 on_delivery=lambda err, msg, seq=m.seq: on_delivery(err, msg, seq))
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                producer.poll(0.1)
                wl.time_left(args)
        producer.poll(0)
    while producer.flush(1.0):
        wl.time_left(args)
    if out:
        out.close()
    if errors:
        wl.fail(f"{len(errors)} delivery errors, first: {errors[:5]}")
    if delivered != args.count:
        wl.fail(f"{delivered} delivery reports for {args.count} messages")
    wl.log(f"produced {delivered}")


def consume(args) -> None:
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"{args.topic}-reader",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    tps = [TopicPartition(args.topic, p) for p in range(wl.PARTITIONS)]
    ends = {}
    for tp in tps:
        low, high = consumer.get_watermark_offsets(tp, timeout=wl.time_left(args))
        ends[tp.partition] = high
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(wl.PARTITIONS)])
    done = {p: ends[p] == 0 for p in ends}
    got = 0
    with open(args.out, "w", encoding="utf-8") as out:
        while not all(done.values()):
            wl.time_left(args)
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    wl.fail(f"consume: {msg.error()}")
                out.write(wl.record_line(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                         msg.headers(), msg.timestamp()[1]))
                got += 1
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done[msg.partition()] = True
    consumer.close()
    wl.log(f"consumed {got} (end offsets {ends})")


def main(argv: list[str] | None = None) -> None:
    args = wl.parse_args("confluent-kafka", argv)
    create_topic(args)
    produce(args)
    consume(args)


if __name__ == "__main__":
    main(sys.argv[1:])
