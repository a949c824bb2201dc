"""One consumer-group member for tests/clients/test_groups.py, for a Python client.

Usage: driver_group.py --client {confluent,kafka-python,aiokafka} --bootstrap H:P --topic T
       --group G --client-id C --out FILE [--delay-ms N] [--instance-id I]
       [--assignor A] [--session-timeout-ms N]

Subscribes, and for every record appends "partition offset value" to FILE (flushed) and then
commits it synchronously (kafka-python/aiokafka: after each polled batch), so at most the
last batch is uncommitted when the process is killed. SIGTERM ends the loop and closes the
consumer (LeaveGroup). Prints "ASSIGNED p,p,..." lines to FILE+".log" on each assignment.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

STOP = False


def _stop(*_: object) -> None:
    global STOP
    STOP = True


class Out:
    def __init__(self, path: str) -> None:
        self.f = open(path, "a", buffering=1)
        self.log = open(path + ".log", "a", buffering=1)

    def record(self, partition: int, offset: int, value: bytes | None) -> None:
        self.f.write(f"{partition} {offset} {(value or b'').decode()}\n")

    def assigned(self, parts: list[int]) -> None:
        self.log.write(f"ASSIGNED {','.join(map(str, sorted(parts)))}\n")


def run_confluent(a: argparse.Namespace, out: Out) -> None:
    """A commit can fail with ILLEGAL_GENERATION/REBALANCE_IN_PROGRESS while the member is
    between generations (cooperative rebalances keep consuming meanwhile, as with Kafka):
    keep the offset and commit it again once the generation settles or at revocation."""
    import confluent_kafka as ck

    pending: dict[int, int] = {}

    def flush(c: ck.Consumer, parts: set[int]) -> None:
        todo = [ck.TopicPartition(a.topic, p, o) for p, o in pending.items() if p in parts]
        if not todo:
            return
        try:
            c.commit(offsets=todo, asynchronous=False)
            for tp in todo:
                pending.pop(tp.partition, None)
        except ck.KafkaException:
            pass

    def on_revoke(c: ck.Consumer, ps: list) -> None:
        flush(c, {p.partition for p in ps})
        for p in ps:
            pending.pop(p.partition, None)

    conf = {"bootstrap.servers": a.bootstrap, "group.id": a.group, "client.id": a.client_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": a.session_timeout_ms, "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": a.assignor or "range"}
    if a.instance_id:
        conf["group.instance.id"] = a.instance_id
    c = ck.Consumer(conf)
    c.subscribe([a.topic], on_revoke=on_revoke,
                on_assign=lambda _c, ps: out.assigned(  # eager: ps; cooperative: added
                    list({p.partition for p in _c.assignment()} | {p.partition for p in ps})))
    try:
        while not STOP:
            msg = c.poll(0.2)
            if pending:
                flush(c, {tp.partition for tp in c.assignment()})
            if msg is None or msg.error():
                continue
            out.record(msg.partition(), msg.offset(), msg.value())
            pending[msg.partition()] = msg.offset() + 1
            flush(c, {msg.partition()})
            time.sleep(a.delay_ms / 1000)
    finally:
        c.close()


def run_kafka_python(a: argparse.Namespace, out: Out) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):  # noqa: ANN001
            pass

        def on_partitions_assigned(self, assigned):  # noqa: ANN001
            out.assigned([tp.partition for tp in assigned])

    c = KafkaConsumer(bootstrap_servers=a.bootstrap, group_id=a.group, client_id=a.client_id,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=a.session_timeout_ms, heartbeat_interval_ms=500,
                      max_poll_records=5)
    c.subscribe([a.topic], listener=Listener())
    try:
        while not STOP:
            batch = c.poll(timeout_ms=200)
            for recs in batch.values():
                for r in recs:
                    out.record(r.partition, r.offset, r.value)
                    time.sleep(a.delay_ms / 1000)
            if batch:
                c.commit()
    finally:
        c.close()


async def run_aiokafka(a: argparse.Namespace, out: Out) -> None:
    """aiokafka rebalances in a background task, so a partition can be revoked while a polled
    batch is being processed: stop at revocation and commit what was processed there."""
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    processed: dict = {}
    revocations = [0]  # a batch polled before a revocation is stale even if reassigned

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):  # noqa: ANN001
            revocations[0] += 1
            done = {tp: processed.pop(tp) for tp in revoked if tp in processed}
            if done:
                await c.commit(done)

        async def on_partitions_assigned(self, assigned):  # noqa: ANN001
            out.assigned([tp.partition for tp in assigned])

    c = AIOKafkaConsumer(bootstrap_servers=a.bootstrap, group_id=a.group,
                         client_id=a.client_id, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=a.session_timeout_ms,
                         heartbeat_interval_ms=500, max_poll_records=5)
    c.subscribe([a.topic], listener=Listener())
    await c.start()
    try:
        while not STOP:
            batch = await c.getmany(timeout_ms=200)
            polled_at = revocations[0]
            for tp, recs in batch.items():
                for r in recs:
                    if revocations[0] != polled_at or tp not in c.assignment():
                        break  # revoked meanwhile: the new owner reads the rest
                    out.record(r.partition, r.offset, r.value)
                    processed[tp] = r.offset + 1
                    await asyncio.sleep(a.delay_ms / 1000)
            done = {tp: processed.pop(tp) for tp in list(processed) if tp in c.assignment()}
            if done:
                await c.commit(done)
    finally:
        try:
            await c.stop()
        except asyncio.CancelledError:
            # aiokafka 0.14's fetcher.close() awaits the fetch tasks it cancels, and one that
            # was backing off after a failed fetch (a killed broker) re-raises that
            # cancellation; the group was already left (the coordinator closes first)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("--client", "--bootstrap", "--topic", "--group", "--client-id", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--instance-id")
    p.add_argument("--assignor")
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    out = Out(a.out)
    if a.client == "confluent":
        run_confluent(a, out)
    elif a.client == "kafka-python":
        run_kafka_python(a, out)
    elif a.client == "aiokafka":
        asyncio.run(run_aiokafka(a, out))
    else:
        print(f"unknown client {a.client}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
