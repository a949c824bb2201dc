"""ElectLeaders (43), AlterPartitionReassignments (45) and ListPartitionReassignments (46)
against real broker processes, driven by kafka-python's admin client (which finds the
controller itself) and by kafkapy's own codec for the NOT_CONTROLLER answers of other brokers.

Nothing here needs follower replication: elections are forced by killing brokers, and the
reassignment is observed while its new replica's broker is paused, so it cannot complete.
"""
from __future__ import annotations

import os
import signal
import time

import pytest
import trio
from kafka import KafkaAdminClient, TopicPartition as KTP

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
)
from kafkapy.protocol.messages.elect_leaders import ElectLeadersRequest
from kafkapy.protocol.messages.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
)
from tests.broker_fixture import BrokerCluster
from tests.integration.cluster_support import (  # noqa: F401 - broker_cluster is a fixture
    broker_cluster,
    create_topic,
    partition_view,
    start_brokers,
    wait_for,
    zk_session,
)
from tests.integration.kafka_wire import connect, metadata

pytestmark = pytest.mark.integration


PREFERRED, UNCLEAN = 0, 1


def admin_for(cluster: BrokerCluster, *broker_ids: int) -> KafkaAdminClient:
    bootstrap = ",".join(cluster.brokers[i].bootstrap for i in broker_ids)
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafkapy-cluster-tests",
                            request_timeout_ms=30000)


async def elect(admin: KafkaAdminClient, election_type: int,
                partitions: dict[str, list[int]] | None) -> dict[tuple[str, int], int]:
    """ElectLeaders through kafka-python; (topic, partition) -> error code."""
    resp = await trio.to_thread.run_sync(
        lambda: admin.elect_leaders(election_type, partitions, timeout_ms=30000,
                                    raise_errors=False))
    assert getattr(resp, "error_code", 0) == 0
    return {(r.topic, p.partition_id): p.error_code
            for r in resp.replica_election_results for p in r.partition_result}


async def test_elect_leaders_outcomes(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        a, b = sorted(i for i in brokers if i != controller)
        ctl = brokers[controller]
        await create_topic(ctl, "el", {0: [a, b], 1: [b, a]})
        await create_topic(ctl, "solo", {0: [a]})
        admin = admin_for(broker_cluster, a, b, controller)
        try:
            # Everything is led by its preferred replica: an all-partitions election (null
            # topic list; kafka-python always names the partitions) reports nothing, a named
            # one says ELECTION_NOT_NEEDED.
            async with connect(ctl) as conn:
                resp = await conn.send(ApiKey.ELECT_LEADERS, 2, ElectLeadersRequest(
                    election_type=PREFERRED, topic_partitions=None, timeout_ms=10000))
            assert (resp.error_code, resp.replica_election_results) == (0, [])
            assert await elect(admin, PREFERRED, {"el": [0, 1]}) == {
                ("el", 0): ErrorCode.ELECTION_NOT_NEEDED, ("el", 1): ErrorCode.ELECTION_NOT_NEEDED}
            assert await elect(admin, PREFERRED, {"nosuch": [0]}) == {
                ("nosuch", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}

            brokers[a].kill9()

            async def a_gone() -> bool:
                _, el = await partition_view(ctl, "el")
                _, solo = await partition_view(ctl, "solo")
                return el[0][0] == b and a not in el[0][2] and solo[0][0] == -1
            await wait_for(a_gone, 40, f"broker {a}'s partitions to fail over")
            assert await elect(admin, PREFERRED, {"el": [0]}) == {
                ("el", 0): ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE}
            assert await elect(admin, UNCLEAN, {"solo": [0], "el": [1]}) == {
                ("solo", 0): ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
                ("el", 1): ErrorCode.ELECTION_NOT_NEEDED}

            # Both replicas of "el" die; the first to return is out of the ISR, so only an
            # unclean election gives the partitions a leader again.
            brokers[b].kill9()

            async def el_offline() -> bool:
                _, el = await partition_view(ctl, "el")
                return all(leader == -1 for leader, _, _ in el.values())
            await wait_for(el_offline, 40, "both partitions of 'el' to go offline")
            brokers[a].start(timeout=90)

            async def a_back() -> bool:
                async with connect(ctl) as conn:
                    md = await metadata(conn, [])
                return a in {br.node_id for br in md.brokers}
            await wait_for(a_back, 30, f"broker {a} to re-register")
            _, el = await partition_view(ctl, "el")
            assert all(leader == -1 for leader, _, _ in el.values()), el  # clean rules hold

            started = time.monotonic()
            assert await elect(admin, UNCLEAN, {"el": [0, 1]}) == {
                ("el", 0): ErrorCode.NONE, ("el", 1): ErrorCode.NONE}
            print(f"\nunclean ElectLeaders answered after {time.monotonic() - started:.2f}s")
            # The answer waited until the controller's broker saw the new leader.
            _, el = await partition_view(ctl, "el")
            assert {p: (leader, isr) for p, (leader, _, isr) in el.items()} == {
                0: (a, [a]), 1: (a, [a])}
            assert await elect(admin, PREFERRED, {"el": [0, 1]}) == {
                ("el", 0): ErrorCode.ELECTION_NOT_NEEDED,
                ("el", 1): ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE}
        finally:
            await trio.to_thread.run_sync(admin.close)


async def test_non_controller_answers_not_controller(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2))
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        other = brokers[next(i for i in brokers if i != controller)]
        await create_topic(brokers[controller], "nc", {0: [1, 2]})
        elect_req = ElectLeadersRequest(election_type=PREFERRED, timeout_ms=1000,
                                        topic_partitions=[ElectLeadersRequest.TopicPartitions(
                                            topic="nc", partitions=[0])])
        alter_req = AlterPartitionReassignmentsRequest(timeout_ms=1000, topics=[
            AlterPartitionReassignmentsRequest.ReassignableTopic(name="nc", partitions=[
                AlterPartitionReassignmentsRequest.ReassignablePartition(
                    partition_index=0, replicas=[2, 1])])])
        list_req = ListPartitionReassignmentsRequest(timeout_ms=1000, topics=None)
        async with connect(other) as conn:
            for version in (0, 1, 2):
                resp = await conn.send(ApiKey.ELECT_LEADERS, version, elect_req)
                if version >= 1:
                    assert resp.error_code == ErrorCode.NOT_CONTROLLER
                [result] = resp.replica_election_results
                assert [(p.partition_id, p.error_code) for p in result.partition_result] == [
                    (0, ErrorCode.NOT_CONTROLLER)]
            resp = await conn.send(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, alter_req)
            assert resp.error_code == ErrorCode.NOT_CONTROLLER and resp.responses == []
            resp = await conn.send(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, list_req)
            assert resp.error_code == ErrorCode.NOT_CONTROLLER
        async with connect(brokers[controller]) as conn:  # the controller serves all three
            resp = await conn.send(ApiKey.ELECT_LEADERS, 0, elect_req)
            assert resp.replica_election_results[0].partition_result[0].error_code == \
                ErrorCode.ELECTION_NOT_NEEDED
            resp = await conn.send(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, list_req)
            assert resp.error_code == ErrorCode.NONE and resp.topics == []


async def alter_reassignments(conn, targets: dict[tuple[str, int], list[int] | None]
                              ) -> dict[tuple[str, int], int]:
    """AlterPartitionReassignments v0 over kafkapy's codec; (topic, partition) -> error code."""
    by_topic: dict[str, list] = {}
    for (t, p), replicas in targets.items():
        by_topic.setdefault(t, []).append(
            AlterPartitionReassignmentsRequest.ReassignablePartition(partition_index=p,
                                                                     replicas=replicas))
    resp = await conn.send(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0,
                           AlterPartitionReassignmentsRequest(timeout_ms=10000, topics=[
                               AlterPartitionReassignmentsRequest.ReassignableTopic(
                                   name=t, partitions=ps) for t, ps in by_topic.items()]))
    assert resp.error_code == 0, resp.error_message
    return {(t.name, p.partition_index): p.error_code for t in resp.responses
            for p in t.partitions}


async def list_reassignments(conn) -> dict[tuple[str, int], tuple[list, list, list]]:
    resp = await conn.send(ApiKey.LIST_PARTITION_REASSIGNMENTS, 0,
                           ListPartitionReassignmentsRequest(timeout_ms=10000, topics=None))
    assert resp.error_code == 0, resp.error_message
    return {(t.name, p.partition_index): (p.replicas, p.adding_replicas, p.removing_replicas)
            for t in resp.topics for p in t.partitions}


async def test_reassignment_listed_while_in_progress_then_cancelled(broker_cluster) -> None:
    brokers = start_brokers(broker_cluster, (1, 2, 3))
    # Broker 4 joins after the controller is settled (so it is not the controller) and keeps
    # its registration through a pause of up to 10 s (ZooKeeper's max session here).
    brokers[4] = start_brokers(broker_cluster, (4,), {"zookeeper.session.timeout.ms": "10000"})[4]
    async with zk_session(broker_cluster) as zk:
        controller = await zk.get_controller_id()
        assert controller != 4
        ctl = brokers[controller]
        await create_topic(ctl, "move", {0: [1, 2, 3]})
        # While broker 4 is paused only kafkapy's codec talks to the controller: kafka-python
        # would send its metadata requests to any broker, the paused one included.
        os.kill(brokers[4].pid, signal.SIGSTOP)  # the new replica cannot catch up
        try:
            with trio.fail_after(8):
                async with connect(ctl) as conn:
                    assert await alter_reassignments(conn, {("move", 0): [2, 3, 4]}) == {
                        ("move", 0): ErrorCode.NONE}
                    assert await list_reassignments(conn) == {
                        ("move", 0): ([2, 3, 4, 1], [4], [1])}

                    async def metadata_shows_move() -> bool:
                        _, parts = await partition_view(ctl, "move")
                        return parts[0][1] == [2, 3, 4, 1]
                    await wait_for(metadata_shows_move, 5, "Metadata to list RS = TRS + ORS")
                    assignment = (await zk.get_data("/brokers/topics/move"))[0]
                    assert b'"adding_replicas":{"0":[4]}' in assignment.replace(b" ", b"")
                    # Per-partition errors: unknown partition or topic, a broker that does
                    # not exist.
                    assert await alter_reassignments(conn, {
                        ("move", 7): [1], ("nosuch", 0): [1], ("move", 0): [1, 99]}) == {
                        ("move", 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        ("nosuch", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        ("move", 0): ErrorCode.INVALID_REPLICA_ASSIGNMENT}
                    assert await alter_reassignments(conn, {("move", 0): None}) == {
                        ("move", 0): ErrorCode.NONE}
                    assert await list_reassignments(conn) == {}
        finally:
            os.kill(brokers[4].pid, signal.SIGCONT)

        async def moved_back() -> bool:
            # As in Kafka, the original replicas keep their order within RS ([2, 3, 1]).
            _, parts = await partition_view(ctl, "move")
            return sorted(parts[0][1]) == [1, 2, 3] and parts[0][0] in (1, 2, 3)
        await wait_for(moved_back, 10, "Metadata to show the original replicas again")
        assert b'"adding_replicas":{}' in (
            await zk.get_data("/brokers/topics/move"))[0].replace(b" ", b"")
        # kafka-python's admin client sees the same through its own code path.
        admin = admin_for(broker_cluster, controller)
        try:
            assert await trio.to_thread.run_sync(admin.list_partition_reassignments) == {}
            result = await trio.to_thread.run_sync(
                lambda: admin.alter_partition_reassignments({KTP("move", 0): None}))
            assert result[KTP("move", 0)].errno == ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
        finally:
            await trio.to_thread.run_sync(admin.close)
