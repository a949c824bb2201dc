"""kafka-python driver (its default idempotent producer is kept on purpose): admin create ->
produce, wait for every future -> assign, seek to beginning, consume to the end offsets.
Arguments: see workload.parse_args."""
from __future__ import annotations

import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

import workload as wl


def create_topic(args) -> None:
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="kp-driver-admin")
    try:
        admin.create_topics([NewTopic(args.topic, num_partitions=wl.PARTITIONS,
                                      replication_factor=1)], timeout_ms=30000)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def produce(args) -> None:
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        compression_type=None if args.codec == "none" else args.codec,
        linger_ms=5,
        batch_size=64 * 1024,
    )
    if not producer.config.get("enable_idempotence"):
        wl.fail("kafka-python's producer is expected to be idempotent by default")
    futures = []
    for m in wl.messages(args.count, args.src, args.base_ts):
        fut = producer.send(args.topic, key=m.key.encode(), value=m.value.encode(),
                            headers=[(k, v.encode()) for k, v in m.headers],
                            timestamp_ms=m.timestamp)
        futures.append((m.seq, fut))
    producer.flush(timeout=wl.time_left(args))
    out = wl.open_out(args.produced)
    errors = []
    for seq, fut in futures:
        try:
            md = fut.get(timeout=wl.time_left(args))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
            errors.append(f"seq {seq}: {e!r}")
            continue
        if out:
            out.write(wl.delivery_line(seq, md.partition, md.offset))
    if out:
        out.close()
    producer.close()
    if errors:
        wl.fail(f"{len(errors)} delivery errors, first: {errors[:5]}")
    wl.log(f"produced {len(futures)}")


def consume(args) -> None:
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                             enable_auto_commit=False, client_id="kp-driver-consumer")
    tps = [TopicPartition(args.topic, p) for p in range(wl.PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    done = {p: ends[p] == 0 for p in ends}
    got = 0
    with open(args.out, "w", encoding="utf-8") as out:
        while not all(done.values()):
            wl.time_left(args)
            for tp, records in consumer.poll(timeout_ms=500, max_records=2000).items():
                for r in records:
                    out.write(wl.record_line(r.partition, r.offset, r.key, r.value, r.headers,
                                             r.timestamp))
                    got += 1
                    if r.offset + 1 >= ends[r.partition]:
                        done[r.partition] = True
    consumer.close()
    wl.log(f"consumed {got} (end offsets {ends})")


def main(argv: list[str] | None = None) -> None:
    args = wl.parse_args("kafka-python", argv)
    create_topic(args)
    produce(args)
    consume(args)


if __name__ == "__main__":
    main(sys.argv[1:])
