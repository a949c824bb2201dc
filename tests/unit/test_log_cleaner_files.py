"""The log cleaner on real segment files: what a compacted log holds afterwards, offsets
and gaps, compressed batches, tombstone timing, producer state, swaps and crash recovery
of `.cleaned`/`.swap` leftovers, the cleaner checkpoint."""
from __future__ import annotations

import os
import random

import pytest
import trio

from kafkapy import native
from kafkapy.log import LogManager, TopicPartition
from kafkapy.log.checkpoint import read_offset_checkpoint
from kafkapy.log.cleaner import CleanerConfig, OffsetMap
from kafkapy.log.cleaner_edge import (
    CleaningAborted,
    CleanStats,
    SourceSegment,
    build_offset_map,
    clean_group,
    swap_in,
)
from kafkapy.log.cleaner_manager import CLEANER_CHECKPOINT
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.records import GZIP, LZ4, SNAPPY, ZSTD, Record, build_batch, iter_batches

from test_log_helpers import read_all, small_config

pytestmark = pytest.mark.unit

TP = TopicPartition("compacted", 0)
DAY = 86_400_000


def compact_config(**kw):
    base = dict(cleanup_policy="compact", segment_bytes=2048, delete_retention_ms=DAY,
                min_cleanable_dirty_ratio=0.01)
    base.update(kw)
    return small_config(**base)


def keyed(pairs, *, ts: int = 1_000, compression: int = 0, producer_id: int = -1,
          base_sequence: int = -1, headers=None) -> memoryview:
    recs = [Record(None if k is None else k.encode(), None if v is None else v.encode(),
                   headers=list(headers or []), timestamp=ts + i) for i, (k, v) in enumerate(pairs)]
    return memoryview(build_batch(recs, compression=compression, producer_id=producer_id,
                                  producer_epoch=0 if producer_id >= 0 else -1,
                                  base_sequence=base_sequence))


def manager(tmp_path, **kw):
    m = LogManager([str(tmp_path / "d")], 1, compact_config(**kw))
    m.enable_cleaner(CleanerConfig(backoff_ms=50))
    return m, m.get_or_create_log(TP)


def records(log, start: int = 0):
    """(offset, key, value, timestamp, headers) of every record from `start`, via log.read."""
    out = []
    for _, _, raw in read_all(log, start):
        for b in iter_batches(raw):
            out += [(r.offset, r.key, r.value, r.timestamp, r.headers) for r in b.records]
    return out


def clean(m, now: int | None = None):
    """One pass of the cleaner on the filthiest log (None if nothing was cleanable)."""
    async def go():
        if now is None:
            return await m.cleaner.clean_filthiest()
        chosen = m.cleaner.grab_filthiest(now)
        return None if chosen is None else await m.cleaner.clean_log(*chosen, now=now)
    return trio.run(go)


def write_updates(log, keys: int, rounds: int, per_batch: int = 5, **kw) -> dict[str, tuple[int, str]]:
    """`rounds` updates of `keys` keys; returns key -> (offset, value) of the latest."""
    latest = {}
    for r in range(rounds):
        for k0 in range(0, keys, per_batch):
            pairs = [(f"k{k}", f"v{r}-{k}") for k in range(k0, min(keys, k0 + per_batch))]
            info = log.append_as_leader(keyed(pairs, ts=1_000 + r, **kw), 0, 10_000)
            for i, (k, v) in enumerate(pairs):
                latest[k] = (info.first_offset + i, v)
    log.update_high_watermark(log.log_end_offset)
    return latest


def assert_holds_exactly(log, latest: dict[str, tuple[int, str]], upto: int) -> None:
    """Below `upto` (the cleaned part) one record per key: its latest value if that is
    below `upto`, else its newest value below `upto` (the active segment is never used
    to deduplicate).  Every key is still there with its latest value somewhere."""
    seen, everything = {}, {}
    for off, k, v, _, _ in records(log):
        key = k.decode()
        everything[key] = (off, v.decode())
        if off >= upto:
            continue
        assert key not in seen, f"{key} appears twice below {upto}"
        seen[key] = (off, v.decode())
    assert everything == latest
    for k, ov in latest.items():
        if ov[0] < upto:
            assert seen[k] == ov


def test_compaction_keeps_latest_value_per_key_at_original_offsets(tmp_path):
    m, log = manager(tmp_path)
    latest = write_updates(log, 40, 10)
    before_size = log.size_in_bytes()
    before_segments = len(log.segments)
    active = log.active_segment
    result = clean(m)
    assert result is not None and not result.aborted and result.swapped == result.groups
    assert log.active_segment is active  # never rewritten
    assert_holds_exactly(log, latest, active.base_offset)
    assert log.size_in_bytes() < before_size / 2
    assert len(log.segments) <= before_segments
    # Every offset below the LEO is still fetchable: a gap is skipped to the next batch.
    for off in range(0, log.log_end_offset, 7):
        info = log.read(off, 1 << 20)
        first = native.scan_batches(info.records.tobytes(), allow_gaps=True).batches[0]
        assert first.last_offset >= off
    assert read_offset_checkpoint(os.path.join(m.log_dirs[0], CLEANER_CHECKPOINT)) == {
        TP: active.base_offset}
    assert clean(m) is None  # nothing dirty is left
    m.shutdown()


def test_restart_after_compaction_reads_the_same(tmp_path):
    m, log = manager(tmp_path)
    latest = write_updates(log, 30, 6)
    clean(m)
    expected = records(log)
    upto = log.active_segment.base_offset
    m.shutdown()
    for clean_shutdown in (True, False):
        m2 = LogManager([str(tmp_path / "d")], 1, compact_config())
        log2 = m2.get_log(TP)
        assert records(log2) == expected
        assert_holds_exactly(log2, latest, upto)
        m2.enable_cleaner(CleanerConfig())
        assert m2.cleaner.checkpoints == {TP: upto}
        m2.shutdown()
        if not clean_shutdown:
            os.unlink(os.path.join(m2.log_dirs[0], ".kafka_cleanshutdown"))


@pytest.mark.parametrize("codec", [GZIP, SNAPPY, LZ4, ZSTD])
def test_compressed_batches_are_rebuilt_with_their_codec(tmp_path, codec):
    m, log = manager(tmp_path)
    latest = write_updates(log, 20, 8, per_batch=10, compression=codec,
                           headers=[("h", b"\xff\x00raw")])
    clean(m)
    upto = log.active_segment.base_offset
    assert_holds_exactly(log, latest, upto)
    for base, last, raw in read_all(log):
        info = native.scan_batches(raw, allow_gaps=True).batches[0]
        assert info.compression == codec  # CRC checked by the scan
    assert all(h == [("h", b"\xff\x00raw")] for *_, h in records(log))
    m.shutdown()


def test_batch_keeps_base_and_last_offset_when_records_inside_go(tmp_path):
    m, log = manager(tmp_path, segment_bytes=400)
    log.append_as_leader(keyed([("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")]), 0, 10_000)
    log.append_as_leader(keyed([("b", "2"), ("c", "2")]), 0, 10_000)
    while len(log.segments) < 3:
        log.append_as_leader(keyed([("z", "x" * 50)]), 0, 10_000)
    log.update_high_watermark(log.log_end_offset)
    clean(m)
    first = native.scan_batches(read_all(log)[0][2], allow_gaps=True).batches[0]
    assert (first.base_offset, first.last_offset, first.record_count) == (0, 3, 2)
    assert [(o, k) for o, k, *_ in records(log)][:4] == [(0, b"a"), (3, b"d"), (4, b"b"), (5, b"c")]
    m.shutdown()


def test_tombstone_removed_only_after_delete_retention(tmp_path):
    m, log = manager(tmp_path, delete_retention_ms=5_000, segment_bytes=600)
    log.append_as_leader(keyed([("gone", "v1"), ("stay", "v1")], ts=111), 0, 10_000)
    log.append_as_leader(keyed([("gone", None)], ts=222), 0, 10_000)
    while len(log.segments) < 3:
        log.append_as_leader(keyed([("filler", "f" * 80)]), 0, 10_000)
    log.update_high_watermark(log.log_end_offset)
    t0 = 10_000_000
    clean(m, now=t0)
    recs = {k: (v, ts) for _, k, v, ts, _ in records(log)}
    assert recs[b"gone"] == (None, 222)  # kept, timestamp intact under the delete horizon
    assert m.cleaner.latest_delete_horizon[TP] == t0 + 5_000
    # Before the horizon: a pass (forced by the expired-horizon rule later) keeps it.
    assert m.cleaner.grab_filthiest(t0 + 4_999) is None
    chosen = m.cleaner.grab_filthiest(t0 + 5_000)
    assert chosen is not None  # idle log, but its tombstones have expired
    trio.run(lambda: m.cleaner.clean_log(*chosen, now=t0 + 5_000))
    keys = [k for _, k, *_ in records(log)]
    assert b"gone" not in keys and b"stay" in keys
    assert m.cleaner.latest_delete_horizon[TP] == -1
    assert m.cleaner.grab_filthiest(t0 + 10**9) is None  # nothing left to do: no loop
    m.shutdown()


def test_last_batch_of_each_producer_survives_as_empty_batch(tmp_path):
    m, log = manager(tmp_path, segment_bytes=700)
    pid = 4242
    log.append_as_leader(keyed([("a", "p0")], producer_id=pid, base_sequence=0), 0, 10_000)
    log.append_as_leader(keyed([("a", "p1"), ("b", "p1")], producer_id=pid, base_sequence=1), 0,
                         10_000)
    last_pid_offset = log.log_end_offset - 1
    log.append_as_leader(keyed([("a", "x"), ("b", "x")]), 0, 10_000)  # supersedes both
    while len(log.segments) < 3:
        log.append_as_leader(keyed([("f", "f" * 80)]), 0, 10_000)
    log.update_high_watermark(log.log_end_offset)
    clean(m)
    batches = [native.scan_batches(raw, allow_gaps=True).batches[0] for *_, raw in read_all(log)]
    mine = [b for b in batches if b.producer_id == pid]
    assert len(mine) == 1  # the older batch is gone, the last one stays
    assert (mine[0].record_count, mine[0].last_offset, mine[0].base_sequence) == (0, last_pid_offset, 1)
    m.shutdown()
    m2 = LogManager([str(tmp_path / "d")], 1, compact_config())
    entry = m2.get_log(TP).producer_state.producers[pid]
    assert (entry.last_seq, entry.last_data_offset) == (2, last_pid_offset)
    # The producer's next batch is in sequence; a retry of its last batch is a duplicate.
    log2 = m2.get_log(TP)
    dup = log2.append_as_leader(keyed([("a", "p1"), ("b", "p1")], producer_id=pid, base_sequence=1),
                                0, 10_000)
    assert dup.duplicate and dup.last_offset == last_pid_offset
    log2.append_as_leader(keyed([("c", "p3")], producer_id=pid, base_sequence=3), 0, 10_000)
    m2.shutdown()


def test_produce_without_key_to_a_compacted_topic_is_invalid_record(tmp_path):
    m, log = manager(tmp_path)
    with pytest.raises(KafkaError) as e:
        log.append_as_leader(keyed([("k", "1"), (None, "orphan")], compression=GZIP), 0, 10_000)
    assert e.value.code == ErrorCode.INVALID_RECORD
    assert log.log_end_offset == 0
    m.shutdown()


def test_null_key_records_are_dropped_by_the_cleaner(tmp_path):
    m, log = manager(tmp_path, segment_bytes=500, cleanup_policy="delete")
    # Written before the topic became compacted (cleanup.policy switched later).
    log.append_as_leader(keyed([(None, "orphan"), ("k", "1")]), 0, 10_000)
    log.update_config(compact_config(segment_bytes=500))
    while len(log.segments) < 3:
        log.append_as_leader(keyed([("f", "f" * 80)]), 0, 10_000)
    log.update_high_watermark(log.log_end_offset)
    clean(m)
    assert [(o, k) for o, k, *_ in records(log)][0] == (1, b"k")
    m.shutdown()


def test_fetch_started_before_a_swap_completes_from_the_old_file(tmp_path):
    m, log = manager(tmp_path, file_delete_delay_ms=60_000)
    write_updates(log, 30, 8)
    handed_out = log.read(0, 1 << 20)  # a FileRecords the network would sendfile later
    expected = handed_out.records.tobytes()
    clean(m)
    assert log.segments[0].file is not handed_out.records.file
    assert handed_out.records.tobytes() == expected  # old file still open and intact
    names = os.listdir(log.dir)
    assert any(n.endswith(".log.deleted") for n in names)
    log.delete_pending(0, force=True)
    names = os.listdir(log.dir)
    assert not any(n.endswith(".deleted") for n in names)
    assert os.path.exists(log.segments[0].log_path)  # the cleaned file kept its name
    m.shutdown()


def test_log_truncated_during_cleaning_abandons_the_swap(tmp_path):
    m, log = manager(tmp_path)
    write_updates(log, 30, 8)
    before = records(log)
    group, _ = _cleaned_but_not_swapped(log)  # the worker's half is done...
    log.truncate_to(log.segments[1].base_offset)  # ...when a follower truncates
    assert not swap_in(log, group, 10_000)
    assert records(log) == [r for r in before if r[0] < log.log_end_offset]
    assert not any(n.endswith((".cleaned", ".swap")) for n in os.listdir(log.dir))
    m.shutdown()


def test_segment_shrinking_under_the_worker_aborts_the_pass(tmp_path):
    m, log = manager(tmp_path)
    write_updates(log, 30, 8)
    sources = [SourceSegment.capture(s) for s in log.segments[:-1]]
    log.truncate_to(log.segments[2].base_offset + 1)
    with pytest.raises(CleaningAborted):
        build_offset_map(sources, 0, 10**6, OffsetMap(100), 4096, _never(), CleanStats())
    for s in sources:
        s.close()
    m.shutdown()


def test_log_deleted_during_a_pass_is_abandoned_quietly(tmp_path):
    m = LogManager([str(tmp_path / "d")], 1, compact_config())
    m.enable_cleaner(CleanerConfig(max_io_bytes_per_second=10_000))  # a pass of >1 s
    log = m.get_or_create_log(TP)
    write_updates(log, 30, 8)

    async def go():
        chosen = m.cleaner.grab_filthiest(10**13)
        async with trio.open_nursery() as n:
            n.start_soon(lambda: m.cleaner.clean_log(*chosen))
            with trio.fail_after(10):
                while TP not in m.cleaner.in_progress:
                    await trio.sleep(0.01)
            await trio.sleep(0.2)
            assert TP in m.cleaner.in_progress  # still cleaning when the topic goes
            m.delete_log(TP)
        return m.cleaner.results[-1]

    result = trio.run(go)
    assert result.aborted and result.swapped == 0
    assert TP not in m.cleaner.checkpoints
    m.shutdown()


def _cleaned_but_not_swapped(log, now: int = 10_000):
    """Run the worker half of a pass by hand: returns the `.cleaned` group."""
    upper = log.active_segment.base_offset
    sources = [SourceSegment.capture(s) for s in log.segments[:-1]]
    omap = OffsetMap(10_000)
    end = build_offset_map(sources, 0, upper, omap, 4096, _never(), CleanStats())
    group = clean_group(log.dir, sources[:3], omap, {}, now, DAY, 256, 1200, 4096, _never(),
                        CleanStats(), group_end=log.segments[len(sources[:3])].base_offset)
    for s in sources:
        s.close()
    return group, end


def _never():
    import threading
    return threading.Event()


@pytest.mark.parametrize("stage", ["cleaned", "swap", "swap-after-old-deleted", "swap-indexes-renamed"])
def test_crash_in_the_middle_of_a_swap_recovers_a_correct_log(tmp_path, stage):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    m, log = manager(tmp_path, segment_bytes=1024)
    latest = write_updates(log, 25, 8)
    before = records(log)
    group_end = log.segments[3].base_offset
    group, _ = _cleaned_but_not_swapped(log)
    new = group.segment
    base = new.base_offset
    if stage != "cleaned":
        new.change_file_suffixes(".cleaned", ".swap")
    if stage == "swap-after-old-deleted":
        group.sources[0].segment.rename_to_deleted()
        group.sources[1].segment.rename_to_deleted()
    if stage == "swap-indexes-renamed":  # died inside the final `.swap` -> "" renames
        for s in group.sources:
            s.segment.rename_to_deleted()
        for idx in (new.offset_index, new.time_index):
            idx.rename(idx.path[: -len(".swap")])
    new.close()
    # kill -9: no shutdown, no checkpoints beyond what is on disk.
    for s in log.segments:
        s.close()
    m._release_locks()
    m2 = LogManager([str(tmp_path / "d")], 1, compact_config())
    log2 = m2.get_log(TP)
    got = records(log2)
    offsets = [r[0] for r in got]
    assert offsets == sorted(set(offsets))
    if stage == "cleaned":
        assert got == before  # the unfinished clean is discarded
    else:
        # The swap completed (Kafka's rule: old segments whose base offset lies in the
        # swap file's offset range go, extended to the group end the cleaner recorded, as
        # the cleaned file may end early): no superseded value comes back.
        assert [s.base_offset for s in log2.segments if s.base_offset < group_end] == [base]
        in_group = [r for r in got if r[0] < group_end]
        assert len({r[1] for r in in_group}) == len(in_group)
        assert all(r in before for r in got)
        assert [r for r in got if r[0] >= group_end] == [r for r in before if r[0] >= group_end]
        assert {r[1].decode(): (r[0], r[2].decode()) for r in got} == latest
    assert not any(n.endswith((".cleaned", ".swap", ".deleted", ".cleaner-group-end"))
                   for n in os.listdir(log2.dir))
    # And a normal pass still works on the recovered log.
    m2.enable_cleaner(CleanerConfig())
    log2.update_high_watermark(log2.log_end_offset)  # the HW checkpoint died with the broker
    clean(m2)
    assert_holds_exactly(log2, latest, log2.active_segment.base_offset)
    m2.shutdown()


def test_cleaner_runs_in_the_background_and_compacts_consumer_offsets_like_topics(tmp_path):
    m, log = manager(tmp_path)
    latest = write_updates(log, 20, 10)
    other = m.get_or_create_log(TopicPartition("plain", 0), log_config=small_config())
    for _ in range(20):
        other.append_as_leader(keyed([("same", "v" * 100)]), 0, 10_000)
    other.update_high_watermark(other.log_end_offset)
    other_size = other.size_in_bytes()

    async def go():
        async with trio.open_nursery() as n:
            n.start_soon(m.run)
            with trio.fail_after(30):
                while not m.cleaner.results:
                    await trio.sleep(0.02)
            n.cancel_scope.cancel()

    trio.run(go)
    assert m.cleaner.results[0].tp == TP
    assert_holds_exactly(log, latest, log.active_segment.base_offset)
    assert other.size_in_bytes() == other_size  # cleanup.policy=delete: never compacted
    m.shutdown()


def test_truncation_and_deletion_move_the_cleaner_checkpoint_back(tmp_path):
    m, log = manager(tmp_path)
    write_updates(log, 20, 10)
    clean(m)
    ckpt_path = os.path.join(m.log_dirs[0], CLEANER_CHECKPOINT)
    cleaned_to = m.cleaner.checkpoints[TP]
    assert cleaned_to > 100
    log.truncate_to(100)  # follower divergence: what is re-fetched above 100 is dirty
    leo = log.log_end_offset  # <= 100: compaction may have emptied the offsets just below
    assert leo <= 100
    assert m.cleaner.checkpoints[TP] == leo == read_offset_checkpoint(ckpt_path)[TP]
    m.delete_log(TP)
    assert TP not in m.cleaner.checkpoints
    assert read_offset_checkpoint(ckpt_path) == {}
    log2 = m.get_or_create_log(TP)  # same name again: everything in it is dirty
    latest = write_updates(log2, 20, 10)
    clean(m)
    assert_holds_exactly(log2, latest, log2.active_segment.base_offset)
    m.shutdown()
