"""Cluster operations while an idempotent acks=all confluent-kafka producer keeps writing keyed,
sequenced messages: a reassignment [1,2,3] -> [2,3,4] onto a 4th broker, a partition leader
whose ZooKeeper session expires while it is paused (SIGSTOP), and a controlled shutdown of a
leader. Afterwards every acknowledged message is stored exactly once at its acked offset, each
key's messages are in the order they were sent, and no delivery report carries an error.

The producer runs with librdkafka's `msg` debug log captured, so the Kafka error codes its
Produce requests met are known and checked to be retriable ones only. Measured times are
printed (`pytest -s`).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import trio
from kafka import TopicPartition as KTP

from tests.broker_fixture import BrokerProcess
from tests.integration.cluster_producers import (
    KafkajsSequencedProducer,
    SequencedProducer,
    assert_exactly_once_in_order,
    assert_only_retriable,
    consume_all,
)
from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    REPLICATION_OVERRIDES,
    THREE_WAY,
    ZkProbe,
    broker_cluster,
    create_topic,
    leaders_seen_by,
    start_brokers,
    wait_until,
)
from tests.integration.kafka_wire import batch, connect, fetch, produce, records_of
from tests.integration.test_cluster_admin import admin_for
from tests.integration.test_replication import log_batches, log_records, replicas_identical

pytestmark = pytest.mark.integration


def three_brokers_and_topic(cluster, topic: str) -> tuple[dict[int, BrokerProcess], ZkProbe,
                                                           int, int, list[int]]:
    """Brokers 1-3, a THREE_WAY topic with min ISR 2 created through the controller and with
    full ISRs: (brokers, ZooKeeper probe, controller, a non-controller leader, what it leads).
    The caller closes the probe."""
    brokers = start_brokers(cluster, (1, 2, 3), REPLICATION_OVERRIDES)
    zk = ZkProbe(cluster.zk_connect)
    try:
        controller = zk.controller()
        trio.run(create_topic, brokers[controller], topic, THREE_WAY, {"min.insync.replicas": "2"})
        wait_until(lambda: zk.fully_replicated(topic, THREE_WAY), 30, "full ISRs")
        victim = next(i for i in (1, 2, 3) if i != controller)
        led = [p for p in THREE_WAY if zk.state(topic, p)["leader"] == victim]
        assert led, f"broker {victim} leads nothing"
    except BaseException:
        zk.close()
        raise
    return brokers, zk, controller, victim, led


class StaleLeaderProbe:
    """One acks=all Produce to a paused broker: connected while it is stopped (the kernel
    accepts the connection), answered after it resumes."""

    VALUE = b"stale-leader-probe"

    def __init__(self, broker: BrokerProcess, topic: str, partition: int) -> None:
        self.broker, self.topic, self.partition = broker, topic, partition
        self.connected = threading.Event()
        self.error_code: int | None = None
        self.base_offset = -1
        self.took = 0.0
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "StaleLeaderProbe":
        self.thread.start()
        return self

    def _run(self) -> None:
        async def go() -> None:
            async with connect(self.broker) as conn:
                self.connected.set()
                t0 = time.monotonic()
                resp = await produce(conn, self.topic, self.partition, batch([self.VALUE]),
                                     acks=-1)
                self.took = time.monotonic() - t0
                self.error_code, self.base_offset = resp.error_code, resp.base_offset
        try:
            trio.run(go)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.failure = e


def read_from(broker: BrokerProcess, topic: str, partition: int) -> list[tuple[bytes, int, int]]:
    """Everything below `broker`'s high watermark, fetched from it as a consumer would."""
    async def go() -> list[tuple[bytes, int, int]]:
        out: list[tuple[bytes, int, int]] = []
        async with connect(broker) as conn:
            while True:
                part = await fetch(conn, topic, partition, out[-1][2] + 1 if out else 0)
                assert part.error_code == 0, part.error_code
                recs = records_of(part.records)
                if not recs:
                    return out
                out.extend((r.value, partition, r.offset) for r in recs)
    return trio.run(go)


# --- tests -------------------------------------------------------------------------------------

def test_reassignment_while_producing(broker_cluster) -> None:
    """[1,2,3] -> [2,3,4] of a partition under a continuous idempotent acks=all producer."""
    brokers = start_brokers(broker_cluster, (1, 2, 3), REPLICATION_OVERRIDES)
    # Started last, so it is not the controller (it gets paused below). It copies in small
    # fetches, so catching up spans many produce requests.
    brokers[4] = start_brokers(broker_cluster, (4,), {
        **REPLICATION_OVERRIDES, "replica.fetch.max.bytes": "16384"})[4]
    zk = ZkProbe(broker_cluster.zk_connect)
    prod = None
    try:
        controller = zk.controller()
        assert controller in (1, 2, 3)
        topic = "move-live"
        trio.run(create_topic, brokers[controller], topic, {0: [1, 2, 3]},
                 {"min.insync.replicas": "2"})
        wait_until(lambda: len(zk.state(topic, 0)["isr"]) == 3, 30, "the ISR of 3")
        bootstrap = ",".join(brokers[i].bootstrap for i in (1, 2, 3))
        prod = SequencedProducer(bootstrap, topic, rate=800, pad=300).start()
        wait_until(lambda: prod.acked_count() >= 6000, 120, "6000 acks before the move")

        admin = admin_for(broker_cluster, controller)
        try:
            before = prod.acked_count()
            result = admin.alter_partition_reassignments({KTP(topic, 0): [2, 3, 4]})
            assert result == {KTP(topic, 0): None}
            started = time.monotonic()
            # Hold the new replica back while 2000 more messages are acked by [1,2,3], so
            # the move really happens under production (no session expiry: 6 s timeout).
            os.kill(brokers[4].pid, signal.SIGSTOP)
            try:
                wait_until(lambda: prod.acked_count() >= before + 2000, 60,
                           "2000 acks while the new replica is held back")
                ongoing = admin.list_partition_reassignments()
            finally:
                os.kill(brokers[4].pid, signal.SIGCONT)
            assert ongoing == {KTP(topic, 0): {"replicas": [2, 3, 4, 1],
                                               "adding_replicas": [4],
                                               "removing_replicas": [1]}}, ongoing

            def done() -> bool:
                s = zk.state(topic, 0)
                return (not admin.list_partition_reassignments()
                        and sorted(s["isr"]) == [2, 3, 4])
            caught_up = wait_until(done, 120, "the reassignment to complete")
            took = time.monotonic() - started
            during = prod.acked_count() - before
        finally:
            admin.close()
        assert not prod.stop.is_set() and prod.thread.is_alive()
        assignment = json.loads(zk.zk.get(f"/brokers/topics/{topic}")[0])
        assert assignment["partitions"] == {"0": [2, 3, 4]}
        assert not assignment.get("adding_replicas") and not assignment.get("removing_replicas")
        state = zk.state(topic, 0)
        assert state["leader"] in (2, 3)
        after = prod.acked_count()
        wait_until(lambda: prod.acked_count() >= after + 2000, 120,
                   "2000 more acks on the new replica set")
        prod.finish()
        print(f"\nreassignment [1,2,3] -> [2,3,4] completed in {took:.2f}s while producing "
              f"(broker 4 held back, then in the ISR {caught_up:.2f}s after SIGCONT); "
              f"{during} messages acked during the move, {len(prod.acked)} in all; leader "
              f"{state['leader']}, ISR {state['isr']}; broker errors seen by the producer: "
              f"{dict(prod.broker_errors())}")
        errors = assert_only_retriable(prod)
        assert len(prod.acked) == prod.sent
        assert during >= 2000, "too little was acked while the reassignment ran"

        wait_until(lambda: not (brokers[1].log_dir / f"{topic}-0").exists(), 30,
                   "broker 1 to delete its replica")
        # Every new replica holds the same batches, byte for byte, as the leader...
        movers = [brokers[i] for i in (2, 3, 4)]
        wait_until(lambda: all(log_batches(b, topic) == log_batches(movers[0], topic)
                               for b in movers[1:]), 60, "the replicas to converge")
        for b in movers:
            on_disk = {v: off for off, (_, v) in log_records(b, topic).items()}
            missing = [(v, off) for v, _, off in prod.acked
                       if v not in on_disk or (off is not None and on_disk[v] != off)]
            assert not missing, (f"broker {b.broker_id}'s segments lack {len(missing)} acked "
                                 f"messages, e.g. {missing[:3]}")
        # ...and a consumer reading from the leader gets each acked message once, in order.
        assert_exactly_once_in_order(prod.acked, consume_all(bootstrap, topic, 1))
        # Broker 4 as the leader serves all of it: stop 2 and 3 (controlled shutdown moves
        # leadership within the ISR, to 4 last).
        brokers[2].stop()
        brokers[3].stop()
        wait_until(lambda: leaders_seen_by(brokers[4], topic)[1].get(0) == 4, 40,
                   "broker 4 to lead the partition")
        wait_until(lambda: len(read_from(brokers[4], topic, 0)) == len(prod.acked), 30,
                   "broker 4's high watermark to cover its log")
        assert_exactly_once_in_order(prod.acked, read_from(brokers[4], topic, 0))
        print(f"broker 4 as leader serves all {len(prod.acked)} acked messages; errors "
              f"{dict(errors)}")
    finally:
        if prod is not None:
            prod.stop.set()
        zk.close()


def test_leader_session_expiry_while_producing(broker_cluster) -> None:
    """A partition leader (not the controller) paused past its ZooKeeper session timeout."""
    topic = "expiry"
    brokers, zk, controller, victim, led = three_brokers_and_topic(broker_cluster, topic)
    prod = None
    try:
        old_states = {p: zk.state(topic, p) for p in THREE_WAY}
        old_epoch = zk.broker_epoch(victim)
        prod = SequencedProducer(broker_cluster.bootstrap, topic, rate=800).start()
        wait_until(lambda: prod.acked_count() >= 3000, 120, "3000 acks before the pause")

        paused = brokers[victim]
        os.kill(paused.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            expired = wait_until(lambda: zk.broker_epoch(victim) is None, 40,
                                 f"broker {victim}'s session to expire")
            moved = wait_until(lambda: all(
                zk.state(topic, p)["leader"] not in (-1, victim)
                and victim not in zk.state(topic, p)["isr"] for p in THREE_WAY), 30,
                "leadership and ISR to leave the paused broker") + expired
            in_zk = time.monotonic() - t0
            survivors = [b for i, b in brokers.items() if i != victim]

            def survivors_agree() -> bool:
                views = [leaders_seen_by(b, topic) for b in survivors]
                return all(v == views[0] for v in views) and all(
                    views[0][1].get(p) not in (None, -1, victim) for p in THREE_WAY)
            wait_until(survivors_agree, 20, "the survivors' Metadata to show the new leaders")
            agreed = time.monotonic() - t0
            acked = prod.acked_count()
            wait_until(lambda: prod.acked_count() >= acked + 1000, 60,
                       "1000 acks while the old leader is paused")
            # A write queued in the paused broker's socket, handled the moment it resumes,
            # while it still believes it leads: it must not be acknowledged and then lost.
            probe = StaleLeaderProbe(paused, topic, led[0]).start()
            wait_until(probe.connected.is_set, 10, "the probe to connect to the paused broker")
        finally:
            os.kill(paused.pid, signal.SIGCONT)
        resumed = time.monotonic()
        new_states = {p: zk.state(topic, p) for p in THREE_WAY}
        for p in led:
            assert new_states[p]["leader"] in old_states[p]["isr"]
            assert new_states[p]["leader_epoch"] > old_states[p]["leader_epoch"]
        print(f"\nleader {victim} (leading {topic}-{led}) paused: session expired after "
              f"{expired:.2f}s, leaders moved in ZooKeeper after {in_zk:.2f}s "
              f"(zookeeper.session.timeout.ms=6000); survivors' Metadata agreed after "
              f"{agreed:.2f}s; new leaders "
              f"{ {p: new_states[p]['leader'] for p in led} }")

        probe.thread.join(60)
        assert probe.error_code is not None, f"stale-leader probe failed: {probe.failure!r}"
        wait_until(lambda: (zk.broker_epoch(victim) or 0) > old_epoch, 40,
                   f"broker {victim} to re-register")
        reregistered = time.monotonic() - resumed
        rejoined = wait_until(
            lambda: all(victim in zk.state(topic, p)["isr"] for p in THREE_WAY), 90,
            f"broker {victim} to rejoin every ISR") + reregistered

        def one_view() -> bool:
            views = [leaders_seen_by(b, topic) for b in brokers.values()]
            cid = zk.controller()
            return (cid not in (-1,) and all(v == (cid, views[0][1]) for v in views)
                    and len(views[0][1]) == 3 and all(
                        views[0][1][p] == zk.state(topic, p)["leader"] for p in THREE_WAY))
        wait_until(one_view, 30, "every broker to agree on the controller and every leader")
        cid, leaders = leaders_seen_by(paused, topic)
        assert all(leaders[p] != victim for p in led), "the resumed broker took leadership back"
        print(f"resumed broker {victim}: re-registered with a new broker epoch after "
              f"{reregistered:.2f}s, back in every ISR after {rejoined:.2f}s; controller {cid}, "
              f"leaders {leaders}; the acks=all write queued while it was paused was answered "
              f"with error {probe.error_code} after {probe.took:.2f}s")

        wait_until(lambda: prod.acked_count() >= acked + 2000, 60, "acks after the resume")
        prod.finish()
        errors = assert_only_retriable(prod)
        assert len(prod.acked) == prod.sent
        stored = consume_all(broker_cluster.bootstrap, topic, 3)
        found = [(p, off) for v, p, off in stored if v == probe.VALUE]
        if probe.error_code == 0:  # acknowledged: then it must be there
            assert found == [(led[0], probe.base_offset)], (
                "an acks=all write the resumed old leader acknowledged was lost")
        stored = [s for s in stored if s[0] != probe.VALUE]
        assert_exactly_once_in_order(prod.acked, stored)
        # The resumed broker truncated whatever it appended as a stale leader: its segments
        # now hold the same batches, byte for byte, as the other replicas.
        replicas = list(brokers.values())
        converged = wait_until(lambda: replicas_identical(replicas, topic, 3), 60,
                               "every replica's segments to converge")
        if probe.error_code != 0:
            assert all(v != probe.VALUE for _, v in log_records(paused, topic, led[0]).values())
        print(f"{len(prod.acked)} acked messages read back exactly once in per-key order; "
              f"replicas identical on disk after {converged:.2f}s; broker errors seen by the "
              f"producer: {dict(errors)}")
    finally:
        if brokers[victim].running():
            os.kill(brokers[victim].pid, signal.SIGCONT)
        if prod is not None:
            prod.stop.set()
        zk.close()


@pytest.mark.parametrize("client", ["confluent-kafka", "kafkajs"])
def test_controlled_shutdown_under_producer(broker_cluster, client: str) -> None:
    """SIGTERM of a leader while producing: no failed delivery, only retriable errors."""
    topic = "graceful-live"
    brokers, zk, controller, victim, led = three_brokers_and_topic(broker_cluster, topic)
    prod = None
    try:
        if client == "kafkajs":
            prod = KafkajsSequencedProducer(broker_cluster.bootstrap, topic, 3, rate=500).start()
        else:
            prod = SequencedProducer(broker_cluster.bootstrap, topic, rate=1000).start()
        wait_until(lambda: prod.acked_count() >= 3000, 120, "3000 acks before the shutdown")

        registrations = zk.zk.exists("/brokers/ids")
        proc = brokers[victim].proc
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        moved_zxid = 0

        def moved_off() -> bool:
            nonlocal moved_zxid
            nodes = [zk.zk.get(f"/brokers/topics/{topic}/partitions/{p}/state")
                     for p in THREE_WAY]
            moved_zxid = max(stat.mzxid for _, stat in nodes)
            return all(json.loads(d)["leader"] != victim and victim not in json.loads(d)["isr"]
                       for d, _ in nodes)
        moved = wait_until(moved_off, 30, f"leadership to leave broker {victim}")
        proc.wait(30)
        exited = time.monotonic() - t0
        assert proc.returncode == 0, brokers[victim].output_tail()
        deregistered = zk.zk.exists("/brokers/ids")
        assert deregistered.cversion > registrations.cversion
        assert moved_zxid < deregistered.pzxid, "leadership moved only after the broker left"

        acked = prod.acked_count()
        wait_until(lambda: prod.acked_count() >= acked + 2000, 60, "acks after the shutdown")
        prod.finish()
        print(f"\ncontrolled shutdown of leader {victim} (of {topic}-{led}) under a {client} "
              f"producer: leadership moved after {moved:.2f}s, exited after {exited:.2f}s; "
              f"{len(prod.acked)} acked; errors the producer met and retried: "
              f"{dict(prod.broker_errors())}")
        assert_only_retriable(prod)
        # kafkajs sends one partition per send(), so its multi-broker retry bugs (messages
        # dropped or sent twice by the client itself) must not show up either.
        assert not getattr(prod, "unanswered", None) and not getattr(prod, "resent", None)
        assert len(prod.acked) == prod.sent
        assert_exactly_once_in_order(prod.acked, consume_all(broker_cluster.bootstrap, topic, 3))
    finally:
        if prod is not None:
            prod.stop.set()
            if isinstance(prod, KafkajsSequencedProducer):
                prod.kill()
        zk.close()
