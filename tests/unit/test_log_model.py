"""Property test: random appends, rolls, truncations, DeleteRecords, clean and
crash restarts against a plain list model of the batches the log must hold."""
from __future__ import annotations

import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_log_helpers import make_batch, open_log, read_all, small_config

pytestmark = pytest.mark.unit

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5), st.integers(0, 600)),
        st.tuples(st.just("follow"), st.integers(1, 5), st.integers(0, 2)),
        st.tuples(st.just("roll"), st.just(0), st.just(0)),
        st.tuples(st.just("truncate"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("delete_records"), st.integers(0, 100), st.just(0)),
        st.tuples(st.just("epoch"), st.just(0), st.just(0)),
        st.tuples(st.just("restart"), st.booleans(), st.booleans()),
    ),
    min_size=1, max_size=40)


def crash(log) -> None:
    for seg in log.segments:
        seg.offset_index.close_without_trim()
        seg.time_index.close_without_trim()
        seg.file.close()


@settings(max_examples=int(__import__("os").environ.get("LOG_MODEL_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_log_matches_model(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp)
        cfg = small_config(segment_bytes=2048, index_interval_bytes=128)
        log = open_log(path, cfg)
        model: list[tuple[int, int, int]] = []  # (first, last, uid)
        leo = start = 0
        epoch = uid = 0
        for op, a, b in ops:
            if op == "append":
                uid += 1
                vals = [b"uid%d:" % uid + b"z" * b] * a
                info = log.append_as_leader(memoryview(make_batch(vals)), epoch, 1_000 + uid)
                assert info.first_offset == leo
                model.append((leo, leo + a - 1, uid))
                leo += a
            elif op == "follow":  # replicated batch, possibly after a gap (compaction)
                uid += 1
                first = leo + b
                data = make_batch([b"uid%d:" % uid] * a, base_offset=first, leader_epoch=epoch)
                info = log.append_as_follower(memoryview(data))
                assert (info.first_offset, info.last_offset) == (first, first + a - 1)
                model.append((first, first + a - 1, uid))
                leo = first + a
            elif op == "roll":
                log.roll()
            elif op == "truncate":
                target = start + a % (leo - start + 1)
                restart_at = target < log.segments[0].base_offset
                floor_base = max(s.base_offset for s in log.segments if s.base_offset <= max(target, log.segments[0].base_offset))
                log.truncate_to(target)
                if restart_at:  # Kafka: truncate_fully_and_start_at(target)
                    start, model, leo = target, [], target
                elif target < leo:
                    model = [m for m in model if m[1] < target]
                    # end of the remaining data, or the (now empty) segment holding target
                    leo = max(model[-1][1] + 1 if model else start, floor_base, start)
            elif op == "delete_records":
                log.update_high_watermark(leo)
                target = start + a % (leo - start + 1)
                start = max(start, target)
                assert log.delete_records_before(target) == start
                model = [m for m in model if m[1] >= start]
            elif op == "epoch":
                epoch += 1
            elif op == "restart":
                clean, from_zero = a, b
                hw = log.high_watermark
                rp = 0 if from_zero else log.recovery_point
                if clean:
                    log.close()
                else:
                    crash(log)
                log = open_log(path, cfg, had_clean_shutdown=clean, recovery_point=rp,
                               log_start_offset=start, high_watermark=hw)
            assert (log.log_start_offset, log.log_end_offset) == (start, leo), op
            got = read_all(log, start) if leo > start else []
            assert [(f, l) for f, l, _ in got] == [(f, l) for f, l, _ in model], op
            for (_, _, raw), (_, _, u) in zip(got, model):
                assert b"uid%d:" % u in raw
            entries = log.leader_epoch_cache.entries
            assert entries == sorted(entries) and all(o < max(leo, 1) or o == start for _, o in entries)
        log.close()


@settings(max_examples=int(__import__("os").environ.get("LOG_MODEL_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 700)), min_size=1, max_size=30),
       st.floats(0, 1), st.sampled_from(["truncate", "garbage", "zeros", "flip"]),
       st.binary(min_size=1, max_size=200))
def test_crash_damage_keeps_every_whole_batch_before_it(sizes, where, kind, junk):
    """Damage the active segment at a random byte after a crash: recovery keeps every
    batch whose bytes are intact up to the first damaged one, drops the rest, and
    appends continue right after the survivors."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp)
        cfg = small_config(segment_bytes=3000, index_interval_bytes=100)
        log = open_log(path, cfg)
        ranges = []
        for i, (n, size) in enumerate(sizes):
            info = log.append_as_leader(memoryview(make_batch([b"%d:" % i + b"q" * size] * n)), 0, 1)
            ranges.append((info.first_offset, info.last_offset))
        seg = log.active_segment
        if seg.size == 0:
            return
        layout = []  # (first, last, start, end) of each batch in the damaged segment
        for f, l in ranges:
            if f >= seg.base_offset:
                h = seg.translate_offset(f)
                layout.append((f, l, h.position, h.position + h.size))
        pos = int(where * (seg.size - 1))
        log_path, seg_base = seg.log_path, seg.base_offset
        crash(log)
        original = pathlib.Path(log_path).read_bytes()
        with open(log_path, "r+b") as f:
            if kind == "truncate":
                f.truncate(pos)
            else:
                f.seek(pos)
                old = f.read(1)
                f.seek(pos)
                f.write(junk if kind == "garbage" else bytes(len(junk)) if kind == "zeros"
                        else bytes([old[0] ^ 0x01]))
        damaged = pathlib.Path(log_path).read_bytes()
        expect = [(f, l) for f, l in ranges if f < seg_base]
        expected_next = seg_base
        for f, l, start, end in layout:
            if len(damaged) < end:
                break
            diff = [i for i in range(start, end) if damaged[i] != original[i]]
            if any(8 <= i - start < 12 or i - start >= 16 for i in diff):
                break  # length or CRC-covered bytes changed
            # baseOffset and partitionLeaderEpoch are outside the CRC (as in Kafka): a
            # changed baseOffset is only caught when it breaks offset order.
            base = int.from_bytes(damaged[start:start + 8], "big", signed=True)
            if base < expected_next or base + (l - f) - seg_base > 2**31 - 1:
                break
            expect.append((base, base + l - f))
            expected_next = base + l - f + 1
        log = open_log(path, cfg)  # recovery point 0: everything is re-validated
        assert [(f, l) for f, l, _ in read_all(log)] == expect
        leo = expect[-1][1] + 1 if expect else 0
        assert log.log_end_offset >= leo
        nxt = log.append_as_leader(memoryview(make_batch([b"after"])), 0, 1)
        assert nxt.first_offset == log.log_end_offset - 1 and nxt.first_offset >= leo
        log.close()
