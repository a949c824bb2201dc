"""Log cleaner decisions (kafkapy.log.cleaner) on plain data: record/batch retention,
tombstone timing, dirty ratio and selection, the dirty section's limits, grouping."""
from __future__ import annotations

import pytest

from kafkapy.log.cleaner import (
    CleanerConfig,
    LogToClean,
    OffsetMap,
    SegmentStat,
    batch_verdict,
    choose_filthiest,
    first_dirty_offset,
    group_segments_by_size,
    is_cleanable,
    log_to_clean,
    should_retain_record,
)

pytestmark = pytest.mark.unit

NOW = 1_000_000


def mapped(**keys: int) -> OffsetMap:
    m = OffsetMap(100)
    for k, off in keys.items():
        m.put(k.encode(), off)
    return m


# ---- one record -------------------------------------------------------------------------

def test_latest_record_for_key_is_kept_and_older_ones_dropped():
    m = mapped(a=10, b=12)
    assert should_retain_record(m, b"a", True, 10, -1, NOW)
    assert not should_retain_record(m, b"a", True, 3, -1, NOW)
    assert should_retain_record(m, b"c", True, 5, -1, NOW)  # key never updated in the dirty part


def test_records_beyond_the_map_are_kept_even_if_superseded_later():
    m = mapped(a=10)
    m.note_offset(20)
    assert should_retain_record(m, b"a", True, 21, -1, NOW)
    assert should_retain_record(m, None, True, 25, -1, NOW)


def test_null_key_records_are_dropped():
    assert not should_retain_record(mapped(a=10), None, True, 4, -1, NOW)


def test_tombstone_kept_until_its_batch_delete_horizon_passes():
    m = mapped(a=10)
    # Never cleaned before: no horizon yet, the tombstone stays (its batch gets one).
    assert should_retain_record(m, b"a", False, 10, -1, NOW)
    assert should_retain_record(m, b"a", False, 10, NOW + 1, NOW)
    assert not should_retain_record(m, b"a", False, 10, NOW, NOW)
    # A superseded tombstone goes at once, horizon or not.
    assert not should_retain_record(mapped(a=11), b"a", False, 10, -1, NOW)


# ---- one batch --------------------------------------------------------------------------

def test_batch_untouched_when_everything_is_kept():
    v = batch_verdict([True, True], [False, False], -1, False, NOW, 500)
    assert v.action == "original" and v.retained == (0, 1)


def test_batch_rebuilt_when_some_records_go():
    v = batch_verdict([False, True, False], [False, False, False], -1, False, NOW, 500)
    assert v.action == "rebuild" and v.retained == (1,)


def test_tombstone_stamps_a_delete_horizon_once():
    v = batch_verdict([True, True], [False, True], -1, False, NOW, 500)
    assert v.action == "rebuild" and v.delete_horizon_ms == NOW + 500 and v.has_tombstones
    again = batch_verdict([True, True], [False, True], NOW + 500, False, NOW + 100, 500)
    assert again.action == "original" and again.delete_horizon_ms == NOW + 500


def test_last_batch_of_a_producer_survives_empty():
    assert batch_verdict([False, False], [False, False], -1, True, NOW, 500).action == "empty"
    assert batch_verdict([False, False], [False, False], -1, False, NOW, 500).action == "drop"


# ---- dirty section and ratio ------------------------------------------------------------

def segs(*sizes: int, step: int = 100, ts: list[int] | None = None) -> list[SegmentStat]:
    stamps = ts or [NOW - 10_000] * len(sizes)
    return [SegmentStat(i * step, size, stamps[i], stamps[i], (i + 1) * step)
            for i, size in enumerate(sizes)]


def test_first_dirty_offset_clamps_like_kafka():
    assert first_dirty_offset(None, 5, 100) == 5
    assert first_dirty_offset(50, 5, 100) == 50
    assert first_dirty_offset(3, 5, 100) == 5  # log start moved past it
    assert first_dirty_offset(200, 5, 100) == 5  # truncated below it


def test_dirty_ratio_counts_non_active_segments_after_the_checkpoint():
    s = segs(1000, 1000, 1000, 1000, 50)  # last one is active
    ltc = log_to_clean("t", s, 200, 0, 450, 450, NOW, 0, 2**63 - 1)
    assert (ltc.first_dirty_offset, ltc.first_uncleanable_offset) == (200, 400)
    assert (ltc.clean_bytes, ltc.cleanable_bytes) == (2000, 2000)
    assert ltc.cleanable_ratio == 0.5
    assert not is_cleanable(ltc, 0.5)  # Kafka compares strictly
    assert is_cleanable(ltc, 0.49)


def test_uncleanable_at_last_stable_offset_and_min_compaction_lag():
    s = segs(1000, 1000, 1000, 1000, 50)
    assert log_to_clean("t", s, None, 0, 450, 250, NOW, 0, 2**63 - 1).first_uncleanable_offset == 250
    young = segs(1000, 1000, 1000, 1000, 50, ts=[NOW - 10_000, NOW - 10_000, NOW - 10, NOW, NOW])
    ltc = log_to_clean("t", young, None, 0, 450, 450, NOW, 5_000, 2**63 - 1)
    assert ltc.first_uncleanable_offset == 200
    assert ltc.cleanable_bytes == 2000 and ltc.clean_bytes == 0


def test_max_compaction_lag_makes_a_barely_dirty_log_cleanable():
    s = segs(10_000, 10_000, 10_000, 100, 50, ts=[NOW - 10_000] * 5)
    ltc = log_to_clean("t", s, 300, 0, 450, 450, NOW, 0, 5_000)
    assert ltc.needs_compaction_now and ltc.cleanable_ratio < 0.01
    assert is_cleanable(ltc, 0.5)
    relaxed = log_to_clean("t", s, 300, 0, 450, 450, NOW, 0, 50_000)
    assert not relaxed.needs_compaction_now and not is_cleanable(relaxed, 0.5)


def test_only_active_segment_is_never_cleanable():
    ltc = log_to_clean("t", segs(5000), None, 0, 80, 80, NOW, 0, 1)
    assert ltc.cleanable_bytes == 0 and not is_cleanable(ltc, 0.0)


def test_filthiest_log_is_chosen():
    a = LogToClean("a", 100, 900, 0, 10)
    b = LogToClean("b", 500, 500, 0, 10)
    c = LogToClean("c", 900, 100, 0, 10, needs_compaction_now=True)
    assert choose_filthiest([(b, 0.5), (a, 0.5)]).name == "a"
    assert choose_filthiest([(a, 0.5), (c, 0.5)]).name == "a"  # by ratio, as Kafka
    assert choose_filthiest([(c, 0.5), (b, 0.5)]).name == "c"  # only c is cleanable (overdue)
    assert choose_filthiest([(b, 0.5)]) is None
    assert choose_filthiest([(b, 0.4)]).name == "b"  # the log's own ratio setting counts


# ---- grouping and the offset map ---------------------------------------------------------

def test_segments_grouped_within_segment_bytes_and_index_size():
    s = [SegmentStat(i * 10, 300, next_offset=(i + 1) * 10, index_bytes=8, time_index_bytes=12)
         for i in range(7)]
    groups = group_segments_by_size(s, 1000, 10_000, 70)
    assert [[g.base_offset for g in grp] for grp in groups] == [[0, 10, 20], [30, 40, 50], [60]]
    by_index = group_segments_by_size(s, 10_000, 24, 70)
    assert [len(g) for g in by_index] == [2, 2, 2, 1]


def test_group_never_spans_more_than_a_32_bit_offset_delta():
    s = [SegmentStat(0, 10, next_offset=2**31 - 5), SegmentStat(2**31 - 5, 10, next_offset=2**31 + 10)]
    assert len(group_segments_by_size(s, 10_000, 10_000, 2**31 + 10)) == 2


def test_offset_map_capacity_follows_dedupe_buffer():
    cfg = CleanerConfig(dedupe_buffer_size=24 * 1000, dedupe_buffer_load_factor=0.5, num_threads=2)
    assert cfg.offset_map_slots == 250
    m = OffsetMap(2)
    m.put(b"a", 1)
    m.put(b"a", 4)
    assert not m.full and m.get(b"a") == 4 and m.latest_offset == 4
    m.put(b"b", 5)
    assert m.full and m.get(b"zz") == -1


def test_cleaner_config_from_broker_properties():
    from kafkapy.config.broker import KafkaConfig
    from kafkapy.config.topic import effective_topic_props
    from kafkapy.log import LogConfig

    cfg = KafkaConfig.from_props({"zookeeper.connect": "localhost:2181",
                                  "log.cleaner.threads": "2",
                                  "log.cleaner.backoff.ms": "250",
                                  "log.cleaner.dedupe.buffer.size": str(48 * 1024 * 1024),
                                  "log.cleaner.min.cleanable.ratio": "0.2",
                                  "log.cleaner.delete.retention.ms": "1234"})
    cc = CleanerConfig.from_broker(cfg)
    assert (cc.enable_cleaner, cc.num_threads, cc.backoff_ms, cc.io_buffer_size) == \
        (True, 2, 250, 524288)
    assert cc.offset_map_slots == int(24 * 1024 * 1024 // 24 * 0.9)
    # Broker defaults reach every log through the topic-level synonyms.
    log_cfg = LogConfig.from_props(effective_topic_props(cfg, {"cleanup.policy": "compact,delete"}))
    assert (log_cfg.min_cleanable_dirty_ratio, log_cfg.delete_retention_ms) == (0.2, 1234)
    assert log_cfg.compact_enabled and log_cfg.delete_enabled
    assert LogConfig.from_props(effective_topic_props(cfg, {})).compact_enabled is False
