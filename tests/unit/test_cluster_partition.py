"""Partition replication state on real log files, no sockets: HW over the (maximal) ISR,
ISR shrink/expand proposals and their answers, and the follower's handling of a fetch
response (append, HW adoption, divergence truncation)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio

from kafkapy.cluster.partition import Partition
from kafkapy.cluster.replica_fetcher import FetcherConfig, FetchState, ReplicaFetcher
from kafkapy.log import TopicPartition

sys.path.insert(0, str(Path(__file__).parent))
from test_log_helpers import make_batch, open_log, small_config  # noqa: E402

pytestmark = pytest.mark.unit


def leader(tmp_path, isr=(1, 2, 3), replicas=(1, 2, 3), min_isr=1) -> tuple[Partition, list]:
    log = open_log(tmp_path, small_config(min_insync_replicas=min_isr))
    p = Partition(TopicPartition("topic", 0), 1, log)
    proposals: list[list[int]] = []
    p.isr_proposer = lambda part, isr: proposals.append(list(isr))
    p.make_leader(leader_epoch=1, partition_epoch=0, controller_epoch=1, isr=list(isr),
                  replicas=list(replicas))
    return p, proposals


def append(p: Partition, n: int) -> None:
    p.append_records_to_leader(memoryview(make_batch([b"x"] * n)), acks=1)


def test_hw_is_min_leo_over_isr_and_waits_for_unknown_followers(tmp_path):
    p, _ = leader(tmp_path)
    append(p, 10)
    assert p.high_watermark() == 0          # followers' LEOs unknown yet
    p.update_follower_fetch_state(2, 10)
    assert p.high_watermark() == 0
    p.update_follower_fetch_state(3, 4)
    assert p.high_watermark() == 4
    p.update_follower_fetch_state(3, 10)
    assert p.high_watermark() == 10


def test_shrink_is_proposed_and_counts_only_once_committed(tmp_path):
    p, proposals = leader(tmp_path)
    append(p, 10)
    p.update_follower_fetch_state(2, 10)
    p.update_follower_fetch_state(3, 2)
    append(p, 5)
    p.update_follower_fetch_state(2, 15)
    now = p.remote[3].last_caught_up_ms + 10_000
    assert p.maybe_shrink_isr(now, 3_000) == [3]
    assert proposals == [[1, 2]]
    assert p.high_watermark() == 2          # 3 still counts while the shrink is pending
    assert p.maybe_shrink_isr(now, 3_000) == []   # one proposal in flight at a time
    p.apply_isr_result(1, [1, 2], 1)
    assert p.isr == [1, 2] and p.partition_epoch == 1 and p.pending_isr is None
    assert p.high_watermark() == 15


def test_follower_keeping_up_with_steady_writes_stays_in_sync(tmp_path):
    p, proposals = leader(tmp_path, isr=(1, 2), replicas=(1, 2))
    p.remote[2].last_caught_up_ms = 0       # long ago
    for i in range(5):
        append(p, 10)                       # the leader is always ahead when 2 fetches
        p.update_follower_fetch_state(2, 10 * i)
    # 2 reached, at each fetch, the leader's end of its previous fetch: caught up recently
    assert p.remote[2].last_caught_up_ms > 0
    assert p.maybe_shrink_isr(p.remote[2].last_fetch_ms + 1_000, 3_000) == []
    assert proposals == []


def test_expansion_needs_hw_and_epoch_start_and_counts_while_pending(tmp_path):
    p, proposals = leader(tmp_path, isr=(1, 2))
    append(p, 10)
    p.update_follower_fetch_state(2, 10)
    assert p.high_watermark() == 10
    p.update_follower_fetch_state(3, 5)
    assert proposals == []
    p.update_follower_fetch_state(3, 10)
    assert proposals == [[1, 2, 3]]
    append(p, 5)
    p.update_follower_fetch_state(2, 15)
    assert p.high_watermark() == 10         # pending member 3 is waited for at once
    p.apply_isr_result(1, None, -1)         # refused: back to the committed ISR
    assert p.pending_isr is None and p.isr == [1, 2]
    assert p.high_watermark() == 15


def test_hw_frozen_below_min_isr(tmp_path):
    p, _ = leader(tmp_path, isr=(1,), min_isr=2)
    append(p, 3)
    assert p.high_watermark() == 0


def test_stale_answer_is_ignored_after_a_new_epoch(tmp_path):
    p, proposals = leader(tmp_path)
    append(p, 1)
    p.maybe_shrink_isr(p.remote[3].last_caught_up_ms + 10_000, 3_000)
    p.make_leader(leader_epoch=2, partition_epoch=3, controller_epoch=1, isr=[1, 2, 3],
                  replicas=[1, 2, 3])
    assert p.pending_isr is None
    p.apply_isr_result(1, [1, 2], 2)
    assert p.isr == [1, 2, 3] and p.partition_epoch == 3


def follower(tmp_path, batches: list[bytes]) -> tuple[Partition, ReplicaFetcher, FetchState]:
    log = open_log(tmp_path)
    for b in batches:
        log.append_as_follower(memoryview(b))
    p = Partition(TopicPartition("topic", 0), 2, log)
    p.make_follower(leader_id=1, leader_epoch=3, partition_epoch=0, controller_epoch=1,
                    isr=[1, 2], replicas=[1, 2])
    fetcher = ReplicaFetcher(2, 1, None, FetcherConfig())
    fetcher.add(p)
    return p, fetcher, fetcher.states[p.tp]


def pd(records=b"", hw=0, log_start=0, error=0, diverging=(-1, -1)):
    return SimpleNamespace(error_code=error, records=records, high_watermark=hw,
                           log_start_offset=log_start,
                           diverging_epoch=SimpleNamespace(epoch=diverging[0],
                                                           end_offset=diverging[1]))


def test_follower_appends_and_takes_min_of_leader_hw_and_own_leo(tmp_path):
    p, fetcher, state = follower(tmp_path, [])
    fetcher._process(state, pd(make_batch([b"a"] * 4, leader_epoch=3), hw=9))
    assert p.log.log_end_offset == 4 and p.log.high_watermark == 4
    assert p.log.leader_epoch_cache.latest_epoch == 3


def test_follower_truncates_divergent_tail_before_taking_hw(tmp_path):
    p, fetcher, state = follower(tmp_path, [
        make_batch([b"a"] * 5, base_offset=0, leader_epoch=1),
        make_batch([b"b"] * 5, base_offset=5, leader_epoch=2)])
    p.log.update_high_watermark(8)
    # the leader says: epoch 1 ends at 5 (it never had our epoch 2)
    assert fetcher._process(state, pd(hw=20, diverging=(1, 5))) is False
    assert p.log.log_end_offset == 5
    assert p.log.high_watermark <= 5
    assert p.log.leader_epoch_cache.latest_epoch == 1
    fetcher._process(state, pd(make_batch([b"c"] * 3, base_offset=5, leader_epoch=3), hw=8))
    assert p.log.log_end_offset == 8 and p.log.high_watermark == 8


def test_follower_backs_off_on_fenced_epoch(tmp_path):
    async def go():
        p, fetcher, state = follower(tmp_path, [])
        fetcher._process(state, pd(error=74))   # FENCED_LEADER_EPOCH
        assert state.delayed_until > trio.current_time() and p.log.log_end_offset == 0
        assert fetcher._process(state, pd(error=1)) is True   # OFFSET_OUT_OF_RANGE -> recover

    trio.run(go)


def test_fetcher_manager_moves_partitions_between_leaders(tmp_path):
    from kafkapy.cluster.replica_fetcher import ReplicaFetcherManager

    log = open_log(tmp_path)
    p = Partition(TopicPartition("topic", 0), 2, log)
    manager = ReplicaFetcherManager(2, None)
    p.make_follower(leader_id=1, leader_epoch=3, partition_epoch=0, controller_epoch=1,
                    isr=[1, 2], replicas=[1, 2, 3])
    manager.add_partition(p)
    first = manager.fetchers[1]
    assert first.states[p.tp].leader_epoch == 3
    p.make_follower(leader_id=3, leader_epoch=4, partition_epoch=1, controller_epoch=1,
                    isr=[3, 2], replicas=[1, 2, 3])
    manager.add_partition(p)
    assert set(manager.fetchers) == {3} and first.cancel_scope.cancel_called
    assert manager.fetchers[3].states[p.tp].leader_epoch == 4
    manager.remove_partition(p.tp)
    assert manager.fetchers == {}


def test_leader_reports_divergence_only_for_a_real_mismatch(tmp_path):
    from kafkapy.cluster.replica_manager import FetchSpec, ReplicaManager

    p, _ = leader(tmp_path)                 # epoch 1 from 0
    append(p, 10)
    p.make_leader(leader_epoch=4, partition_epoch=1, controller_epoch=1, isr=[1, 2, 3],
                  replicas=[1, 2, 3])       # epoch 4 from 10
    append(p, 5)

    def spec(offset, epoch):
        return FetchSpec(p.tp, offset, 1 << 20, 4, epoch)

    check = ReplicaManager._diverging_epoch
    assert check(p, spec(8, 1)) is None           # inside epoch 1
    assert check(p, spec(12, 1)) == (1, 10)       # epoch 1 ended at 10 here
    assert check(p, spec(12, 3)) == (1, 10)       # we never had epoch 3
    assert check(p, spec(15, 4)) is None
    assert check(p, spec(17, 4)) == (4, 15)       # ahead of our end in our own epoch
    assert check(p, spec(3, -1)) is None          # no epoch given: offsets decide
    p.log.leader_epoch_cache.clear_and_flush()
    assert check(p, spec(3, 2)) is None           # no epochs known: never "diverge at -1"


async def _acks_all_waiter(p: Partition, last_offset: int, result: dict,
                           term: int | None = None) -> None:
    from kafkapy.cluster.replica_manager import await_replication
    result["code"] = await await_replication(
        p, last_offset, p.leader_term if term is None else term, trio.current_time() + 30)


async def test_acks_all_wait_survives_an_epoch_bump_of_a_continuing_leader(tmp_path):
    """The controller bumps the leader epoch when it takes a follower out of the ISR (e.g. a
    follower's controlled shutdown). The leader keeps its log, so a pending acks=all write is
    still answered by the high watermark, not NOT_LEADER_OR_FOLLOWER (a non-idempotent
    client would retry a write that does get committed, and store it twice)."""
    from kafkapy.protocol.errors import ErrorCode
    from trio.testing import wait_all_tasks_blocked
    p, _ = leader(tmp_path)
    append(p, 10)
    result: dict = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_acks_all_waiter, p, 9, result)
        await wait_all_tasks_blocked()
        p.make_leader(leader_epoch=2, partition_epoch=1, controller_epoch=1, isr=[1, 2],
                      replicas=[1, 2, 3])
        await wait_all_tasks_blocked()
        assert result == {}                 # still waiting for the (new) ISR
        p.update_follower_fetch_state(2, 10)
    assert result == {"code": ErrorCode.NONE}


async def test_acks_all_wait_fails_when_leadership_was_lost_in_between(tmp_path):
    """Follower and leader again before the waiter ran: the write may have been truncated
    away meanwhile, so the high watermark says nothing about it."""
    from kafkapy.protocol.errors import ErrorCode
    from trio.testing import wait_all_tasks_blocked
    p, _ = leader(tmp_path)
    append(p, 10)
    result: dict = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_acks_all_waiter, p, 9, result)
        await wait_all_tasks_blocked()
        p.make_follower(leader_id=2, leader_epoch=2, partition_epoch=1, controller_epoch=1,
                        isr=[1, 2, 3], replicas=[1, 2, 3])
        p.make_leader(leader_epoch=3, partition_epoch=2, controller_epoch=1, isr=[1, 2, 3],
                      replicas=[1, 2, 3])
        p.update_follower_fetch_state(2, 10)
        p.update_follower_fetch_state(3, 10)
    assert result == {"code": ErrorCode.NOT_LEADER_OR_FOLLOWER}


async def test_pipelined_acks_all_wait_judges_the_term_of_its_append(tmp_path):
    """A pipelined produce starts waiting only after earlier responses: a leadership lost and
    regained between its append and its wait must still fail it (the term is the append's)."""
    from kafkapy.protocol.errors import ErrorCode
    p, _ = leader(tmp_path)
    append(p, 10)
    term_at_append = p.leader_term
    p.make_follower(leader_id=2, leader_epoch=2, partition_epoch=1, controller_epoch=1,
                    isr=[1, 2, 3], replicas=[1, 2, 3])
    p.make_leader(leader_epoch=3, partition_epoch=2, controller_epoch=1, isr=[1, 2, 3],
                  replicas=[1, 2, 3])
    p.update_follower_fetch_state(2, 10)
    p.update_follower_fetch_state(3, 10)
    result: dict = {}
    await _acks_all_waiter(p, 9, result, term=term_at_append)
    assert result == {"code": ErrorCode.NOT_LEADER_OR_FOLLOWER}
