"""Pure replication rules: ISR shrink/expand decisions and follower truncation offsets."""
from __future__ import annotations

import pytest

from kafkapy.cluster import isr as R
from kafkapy.log.epoch_cache import LeaderEpochFileCache

pytestmark = pytest.mark.unit


def fv(broker_id: int, leo: int, caught_up: int) -> R.FollowerView:
    return R.FollowerView(broker_id, leo, caught_up)


def test_out_of_sync_only_lagging_past_max_lag():
    followers = {2: fv(2, 90, 0), 3: fv(3, 100, 0), 4: fv(4, 95, 9_000)}
    # 2 is behind and last caught up 10 s ago; 3 is at the leader's end (idle is fine);
    # 4 is behind but caught up 1 s ago.
    assert R.out_of_sync([1, 2, 3, 4], 1, 100, followers, 10_000, 3_000) == [2]


def test_out_of_sync_unknown_follower_and_boundary():
    assert R.out_of_sync([1, 5], 1, 10, {}, 0, 3_000) == [5]
    # exactly max_lag ago is still in sync (strictly greater drops it)
    assert R.out_of_sync([1, 2], 1, 10, {2: fv(2, 5, 7_000)}, 10_000, 3_000) == []
    assert R.out_of_sync([1, 2], 1, 10, {2: fv(2, 5, 6_999)}, 10_000, 3_000) == [2]


@pytest.mark.parametrize("leo,hw,epoch_start,ok", [
    (100, 100, 50, True), (99, 100, 50, False), (100, 90, 120, False), (120, 90, 120, True)])
def test_may_join_isr(leo, hw, epoch_start, ok):
    assert R.may_join_isr(leo, hw, epoch_start) is ok


def test_maximal_isr_counts_expansion_not_shrink():
    assert R.maximal_isr([1, 2], None) == [1, 2]
    assert R.maximal_isr([1, 2], [1, 2, 3]) == [1, 2, 3]
    assert R.maximal_isr([1, 2, 3], [1, 2]) == [1, 2, 3]


def cache(tmp_path, entries, leo):
    c = LeaderEpochFileCache(str(tmp_path / "leader-epoch-checkpoint"), lambda: leo)
    for epoch, start in entries:
        c.assign(epoch, start)
    return c


def test_divergence_cuts_at_the_smaller_end_of_the_shared_epoch(tmp_path):
    # follower wrote epoch 5 from 80 (unreplicated); leader says epoch 3 ends at 100
    c = cache(tmp_path, [(3, 0), (5, 80)], 120)
    assert R.divergence_truncation_offset(3, 100, c, 120, 60) == 80
    # follower's epoch 3 is longer than the leader's: cut at the leader's end
    (tmp_path / "other").mkdir()
    c2 = cache(tmp_path / "other", [(3, 0)], 150)
    assert R.divergence_truncation_offset(3, 100, c2, 150, 60) == 100


def test_divergence_with_unknown_epoch_goes_below_it(tmp_path):
    # follower only knows epochs 2 and 5; leader's epoch 3 -> follower's nearest is 2,
    # which ends where 5 starts (80): the cut is not final, the next fetch narrows it.
    c = cache(tmp_path, [(2, 0), (5, 80)], 120)
    assert R.divergence_truncation_offset(3, 100, c, 120, 60) == 80


def test_divergence_without_epochs_falls_back_to_hw(tmp_path):
    c = cache(tmp_path, [], 40)
    assert R.divergence_truncation_offset(3, 100, c, 40, 25) == 25


def test_out_of_range_actions():
    assert R.out_of_range_action(120, 100, 0) == R.OutOfRangeAction(False, 100)
    assert R.out_of_range_action(10, 500, 200) == R.OutOfRangeAction(True, 200)
    assert R.out_of_range_action(300, 500, 200) == R.OutOfRangeAction(False, 300)
