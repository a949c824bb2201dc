"""Recovery on open (§5.8): torn tails, garbage, corrupt and missing indexes."""
from __future__ import annotations

import os
import random

import pytest

from kafkapy.log.checkpoint import write_epoch_checkpoint

from test_log_helpers import make_batch, open_log, read_all, small_config

pytestmark = pytest.mark.unit


def crash(log) -> None:
    """Drop the log the way kill -9 would: no flush, no index trim, no snapshot."""
    for seg in log.segments:
        seg.offset_index.close_without_trim()
        seg.time_index.close_without_trim()
        seg.file.close()


def fill(log, n: int, epoch: int = 0) -> list[tuple[int, int]]:
    out = []
    for i in range(n):
        info = log.append_as_leader(memoryview(make_batch([b"%d" % i * 30] * (1 + i % 3))), epoch, 9_000)
        out.append((info.first_offset, info.last_offset))
    return out


def test_torn_tail_truncated_to_last_whole_batch(tmp_path):
    log = open_log(tmp_path)
    ranges = fill(log, 40)
    active = log.active_segment
    last_pos = active.translate_offset(ranges[-1][0]).position
    path, size = active.log_path, active.size
    crash(log)
    os.truncate(path, last_pos + (size - last_pos) // 2)  # cut the last batch in half
    log = open_log(tmp_path)
    assert log.log_end_offset == ranges[-2][1] + 1
    assert [(b, l) for b, l, _ in read_all(log)] == ranges[:-1]
    assert log.append_as_leader(memoryview(make_batch([b"x"])), 0, 1).first_offset == ranges[-2][1] + 1


def test_garbage_tail_is_cut(tmp_path):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    log = open_log(tmp_path)
    ranges = fill(log, 25)
    path, size = log.active_segment.log_path, log.active_segment.size
    crash(log)
    with open(path, "ab") as f:
        f.write(rnd.randbytes(rnd.randrange(1, 3000)))
    log = open_log(tmp_path)
    assert log.active_segment.size == size
    assert [(b, l) for b, l, _ in read_all(log)] == ranges


def test_zeroed_tail_after_crash(tmp_path):
    """Preallocated-looking zero bytes after the last batch are not data."""
    log = open_log(tmp_path)
    ranges = fill(log, 5)
    path = log.active_segment.log_path
    crash(log)
    with open(path, "ab") as f:
        f.write(bytes(4096))
    log = open_log(tmp_path)
    assert [(b, l) for b, l, _ in read_all(log)] == ranges


def test_corruption_in_middle_segment_drops_later_segments(tmp_path):
    log = open_log(tmp_path)
    ranges = fill(log, 80)
    assert len(log.segments) >= 4
    victim = log.segments[1]
    h = victim.translate_offset(victim.base_offset + 3)
    bad_path, bad_pos = victim.log_path, h.position + 40  # inside the CRC-covered part
    later = [s.log_path for s in log.segments[2:]]
    crash(log)
    with open(bad_path, "r+b") as f:
        f.seek(bad_pos)
        b = f.read(1)
        f.seek(bad_pos)
        f.write(bytes([b[0] ^ 0xFF]))
    log = open_log(tmp_path)
    assert log.log_end_offset == h.base_offset
    assert [(b, l) for b, l, _ in read_all(log)] == [r for r in ranges if r[1] < h.base_offset]
    assert not any(os.path.exists(p) for p in later)


def test_corrupt_and_missing_indexes_rebuilt_after_clean_shutdown(tmp_path):
    cfg = small_config(segment_bytes=1 << 20, index_interval_bytes=64)
    log = open_log(tmp_path, cfg)
    fill(log, 50)
    seg = log.active_segment
    want = [seg.offset_index.entry(i) for i in range(seg.offset_index.entries)]
    want_time = [seg.time_index.entry(i) for i in range(seg.time_index.entries)]
    idx_path, time_path = seg.offset_index.path, seg.time_index.path
    log.close()
    with open(idx_path, "r+b") as f:  # swap two entries: offsets no longer increasing
        a, b = f.read(8), f.read(8)
        f.seek(0)
        f.write(b + a)
    os.unlink(time_path)
    log = open_log(tmp_path, cfg, had_clean_shutdown=True)
    seg = log.active_segment
    assert [seg.offset_index.entry(i) for i in range(seg.offset_index.entries)] == want
    got_time = [seg.time_index.entry(i) for i in range(seg.time_index.entries)]
    assert got_time[: len(want_time)] == want_time[: len(got_time)] and got_time
    assert log.log_end_offset == read_all(log)[-1][1] + 1


def test_epoch_cache_truncated_to_recovered_log(tmp_path):
    log = open_log(tmp_path)
    fill(log, 10, epoch=1)
    ranges = fill(log, 10, epoch=4)
    cache_path = log.leader_epoch_cache.path
    active = log.active_segment
    start4 = ranges[0][0]
    h = active.translate_offset(start4)
    crash(log)
    os.truncate(active.log_path, h.position + 5)
    write_epoch_checkpoint(cache_path, [(1, 0), (4, start4), (9, 10_000)])
    log = open_log(tmp_path)
    assert log.log_end_offset == start4
    assert log.leader_epoch_cache.entries == [(1, 0)]
    assert log.leader_epoch_cache.end_offset_for(1) == (1, start4)


def test_epoch_cache_rebuilt_from_batches_when_checkpoint_lost(tmp_path):
    log = open_log(tmp_path)
    fill(log, 5, epoch=2)
    fill(log, 5, epoch=3)
    want = log.leader_epoch_cache.entries
    crash(log)
    os.unlink(os.path.join(log.dir, "leader-epoch-checkpoint"))
    log = open_log(tmp_path)
    assert log.leader_epoch_cache.entries == want


def test_leftover_transient_files_removed(tmp_path):
    log = open_log(tmp_path)
    fill(log, 3)
    log.close()
    d = log.dir
    for name in ("00000000000000000000.log.deleted", "00000000000000000000.index.cleaned",
                 "leader-epoch-checkpoint.tmp", "00000000000000009999.index"):
        open(os.path.join(d, name), "wb").close()
    open_log(tmp_path, had_clean_shutdown=True)
    left = os.listdir(d)
    assert not any(n.endswith((".deleted", ".cleaned", ".tmp")) for n in left)
    assert "00000000000000009999.index" not in left


def test_epoch_checkpoint_corrupt_after_clean_shutdown_is_rebuilt(tmp_path):
    log = open_log(tmp_path)
    fill(log, 5, epoch=2)
    fill(log, 5, epoch=7)
    want = log.leader_epoch_cache.entries
    log.close()
    with open(os.path.join(log.dir, "leader-epoch-checkpoint"), "w") as f:
        f.write("0\n5\ngarbage\n")
    log = open_log(tmp_path, had_clean_shutdown=True)
    assert log.leader_epoch_cache.entries == want


def test_truncate_fully_forgets_producers_across_restart(tmp_path):
    log = open_log(tmp_path)
    log.append_as_leader(memoryview(make_batch([b"a"] * 3, producer_id=5, producer_epoch=0,
                                               base_sequence=0)), 0, 1)
    log.roll()
    log.append_as_leader(memoryview(make_batch([b"a"], producer_id=5, producer_epoch=0,
                                               base_sequence=3)), 0, 1)
    log.truncate_fully_and_start_at(50)
    log.close()
    log = open_log(tmp_path, had_clean_shutdown=True)
    assert log.producer_state.producers == {}
    # an unknown producer again: any sequence is accepted
    info = log.append_as_leader(memoryview(make_batch([b"b"], producer_id=5, producer_epoch=0,
                                                      base_sequence=9)), 0, 1)
    assert info.first_offset == 50 and not info.duplicate


def test_recovered_inactive_segments_have_trimmed_indexes(tmp_path):
    log = open_log(tmp_path)
    fill(log, 60)
    crash(log)
    log = open_log(tmp_path)
    for seg in log.segments[:-1]:
        assert os.path.getsize(seg.offset_index.path) == seg.offset_index.entries * 8
        assert os.path.getsize(seg.time_index.path) == seg.time_index.entries * 12
        assert seg.sanity_check()
