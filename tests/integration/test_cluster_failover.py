"""Cluster behaviour of real broker processes: controller failover after kill -9, leader
re-election after kill -9, controlled shutdown, and a controller whose ZooKeeper session
expires while it is paused (SIGSTOP) — each must end with exactly one controller that every
broker agrees on.

Only leadership is checked here (RF=3 topics whose ISR is full from creation), so these
tests do not depend on follower replication. Measured times are printed (`pytest -s`).
The helpers live in cluster_support.py, shared with the other multi-broker tests.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest
import trio

from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    THREE_WAY,
    broker_cluster,
    broker_epoch,
    create_topic,
    partition_view,
    single_agreed_controller,
    start_brokers,
    wait_for,
    zk_session,
)
from tests.integration.kafka_wire import batch, connect, produce

pytestmark = pytest.mark.integration


# --- tests -------------------------------------------------------------------------------------

async def test_controller_failover_after_kill9(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    async with zk_session(broker_cluster) as zk:
        old = await zk.get_controller_id()
        old_epoch = (await zk.get_controller_epoch())[0]
        assert await single_agreed_controller(zk, brokers.values()) == old
        survivors = [b for i, b in brokers.items() if i != old]

        brokers[old].kill9()
        started = time.monotonic()

        async def zk_has_new_controller() -> bool:
            return (await zk.get_controller_id()) not in (-1, old)
        zk_time = await wait_for(zk_has_new_controller, 40, "a new /controller")
        new = await zk.get_controller_id()

        async def agreed() -> bool:
            return await single_agreed_controller(zk, survivors) == new
        await wait_for(agreed, 20, "survivors agreeing on the new controller")
        total = time.monotonic() - started
        print(f"\ncontroller failover after kill -9 of broker {old}: /controller -> {new} "
              f"after {zk_time:.2f}s, all survivors agree after {total:.2f}s "
              f"(zookeeper.session.timeout.ms=6000)")
        assert (await zk.get_controller_epoch())[0] > old_epoch

        # The old controller comes back as an ordinary broker: still one controller.
        brokers[old].start(timeout=90)

        async def rejoined() -> bool:
            return await single_agreed_controller(zk, brokers.values()) == new
        await wait_for(rejoined, 30, "the restarted broker to follow the new controller")


async def test_leader_reelection_after_kill9(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        await create_topic(brokers[controller], "reelect", THREE_WAY)
        # A non-controller victim, so only leader election (not controller failover) is timed.
        victim = next(i for i in (1, 2, 3) if i != controller)
        observer = brokers[controller]
        victim_partition = next(p for p, r in THREE_WAY.items() if r[0] == victim)

        async def all_led() -> bool:
            _, parts = await partition_view(observer, "reelect")
            return len(parts) == 3 and all(parts[p][0] == r[0] for p, r in THREE_WAY.items())
        await wait_for(all_led, 30, "preferred leaders of the new topic")

        brokers[victim].kill9()
        started = time.monotonic()

        async def new_leader() -> bool:
            _, parts = await partition_view(observer, "reelect")
            leader, _, isr = parts[victim_partition]
            return leader not in (-1, victim) and victim not in isr
        elapsed = await wait_for(new_leader, 40, f"a new leader of reelect-{victim_partition}")
        print(f"\nleader re-election after kill -9 of broker {victim}: Metadata shows a new "
              f"leader of reelect-{victim_partition} after {elapsed:.2f}s")

        _, parts = await partition_view(observer, "reelect")
        for p, (leader, _, isr) in parts.items():
            assert leader != victim and victim not in isr
            if p != victim_partition:
                assert leader == THREE_WAY[p][0]  # partitions it did not lead kept their leader
        # Every survivor agrees (UpdateMetadata reaches each broker on its own channel, so the
        # others may trail the observer by a moment), and the new leader really takes writes.
        async def survivors_agree() -> bool:
            for i in (1, 2, 3):
                if i != victim and (await partition_view(brokers[i], "reelect"))[1] != parts:
                    return False
            return True
        trailing = await wait_for(survivors_agree, 20, "every survivor's Metadata to agree")
        print(f"the other survivor agreed {trailing:.2f}s later")
        new = parts[victim_partition][0]
        async with connect(brokers[new]) as conn:
            resp = await produce(conn, "reelect", victim_partition, batch([b"after-failover"]),
                                 acks=1)
        assert resp.error_code == 0


@pytest.mark.parametrize("who", ["broker", "controller"])
async def test_controlled_shutdown_moves_leadership_while_alive(broker_cluster, who: str) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        await create_topic(brokers[controller], "graceful", THREE_WAY)
        tps = [("graceful", p) for p in THREE_WAY]

        async def created() -> bool:
            states = await zk.get_partition_states(tps)
            return len(states) == 3 and all(len(s.isr) == 3 for s in states.values())
        await wait_for(created, 30, "partition states of the new topic")
        victim = controller if who == "controller" else next(i for i in (1, 2, 3)
                                                             if i != controller)
        proc = brokers[victim].proc

        registrations = await zk.exists("/brokers/ids")
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        moved_at_zxid = 0

        async def moved_off() -> bool:
            nonlocal moved_at_zxid
            nodes = [await zk.get_data(f"/brokers/topics/{t}/partitions/{p}/state") for t, p in tps]
            states = [json.loads(data) for data, _ in nodes]
            moved_at_zxid = max(stat.mzxid for _, stat in nodes)
            return all(s["leader"] != victim and victim not in s["isr"] for s in states)
        moved = await wait_for(moved_off, 30, f"leadership and ISR to leave broker {victim}")
        await trio.to_thread.run_sync(proc.wait, 30)
        exited = time.monotonic() - started
        print(f"\ncontrolled shutdown of {who} {victim}: leadership moved off after "
              f"{moved:.2f}s, process exited after {exited:.2f}s")
        assert proc.returncode == 0, brokers[victim].output_tail()
        assert exited < 10, "a graceful stop should not wait out request timeouts"
        # Moved by the ControlledShutdown request, not by the broker's node vanishing at exit:
        # the state writes that moved it precede the deregistration (pzxid of /brokers/ids is
        # the zxid of its last child change, the victim's node going away).
        deregistered = await zk.exists("/brokers/ids")
        assert deregistered.cversion > registrations.cversion
        assert moved_at_zxid < deregistered.pzxid, "leadership moved only after the broker left"
        assert "controlled shutdown succeeded" in brokers[victim].output_tail()
        survivors = [b for i, b in brokers.items() if i != victim]

        async def one_controller() -> bool:
            return await single_agreed_controller(zk, survivors) not in (-1, victim)
        agreed = await wait_for(one_controller, 20, "one controller among the survivors")
        if who == "controller":  # no session expiry to wait for: the node went at exit
            print(f"new controller {await zk.get_controller_id()} agreed {agreed:.2f}s after exit")
        for b in survivors:
            _, parts = await partition_view(b, "graceful")
            assert all(leader not in (-1, victim) for leader, _, _ in parts.values())


async def test_controller_session_expiry_while_paused(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    async with zk_session(broker_cluster) as zk:
        old = await zk.get_controller_id()
        await create_topic(brokers[old], "paused", THREE_WAY)
        old_epoch = (await zk.get_controller_epoch())[0]
        old_broker_epoch = await broker_epoch(zk, old)
        paused = brokers[old]
        others = [b for i, b in brokers.items() if i != old]

        os.kill(paused.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()

            async def replaced() -> bool:
                return (await zk.get_controller_id() not in (-1, old)
                        and await broker_epoch(zk, old) is None)
            elapsed = await wait_for(replaced, 40, "the paused controller's session to expire")
            print(f"\ncontroller {old} paused (SIGSTOP): session expired and broker "
                  f"{await zk.get_controller_id()} took over after {elapsed:.2f}s")
        finally:
            os.kill(paused.pid, signal.SIGCONT)
        resumed = time.monotonic()

        async def reregistered() -> bool:
            epoch = await broker_epoch(zk, old)
            return epoch is not None and epoch > old_broker_epoch
        await wait_for(reregistered, 40, "the resumed broker to re-register")

        async def one_controller() -> bool:
            return await single_agreed_controller(zk, brokers.values()) >= 0
        await wait_for(one_controller, 30, "one controller all brokers agree on")
        print(f"resumed broker {old} re-registered with a new broker epoch; one agreed "
              f"controller {await zk.get_controller_id()} after "
              f"{time.monotonic() - resumed:.2f}s")
        assert (await zk.get_controller_epoch())[0] > old_epoch
        # No split brain on leadership either: every broker reports the same leaders, each
        # partition has one, and the resumed broker agrees with /controller.
        async def same_leaders_everywhere() -> bool:
            views = [(await partition_view(b, "paused"))[1] for b in brokers.values()]
            return (all(v == views[0] for v in views[1:]) and len(views[0]) == 3
                    and all(leader >= 0 for leader, _, _ in views[0].values()))
        await wait_for(same_leaders_everywhere, 20, "every broker to report the same leaders")
        assert paused.running() and all(b.running() for b in others)
