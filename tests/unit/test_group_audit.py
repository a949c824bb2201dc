"""Commit audit: served end offsets from Fetch answers, beyond-served and backwards findings."""
from __future__ import annotations

import json
import tempfile

import pytest

from kafkapy.coordinator.group.audit import (
    BACKWARDS, BEYOND_SERVED, CommitAudit, ServedTable, parse_findings)
from kafkapy.log.records import FileRecords
from kafkapy.protocol.records import Record, build_batch, build_message_set
from kafkapy.server.fetch_tracker import served_end_offset

pytestmark = pytest.mark.unit

TP = ("t", 0)
ME = ("c1", "/127.0.0.1")


def _recs(n: int) -> list[Record]:
    return [Record(b"k", b"v%d" % i, timestamp=1000 + i) for i in range(n)]


def test_served_end_offset_v2_batches_bytes_and_file() -> None:
    data = build_batch(_recs(3), base_offset=10) + build_batch(_recs(4), base_offset=13)
    assert served_end_offset(data) == 17
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 5 + data)
        f.flush()
        assert served_end_offset(FileRecords(f, 5, len(data))) == 17
        # a slice holding only the first batch ends at that batch
        first = len(build_batch(_recs(3), base_offset=10))
        assert served_end_offset(FileRecords(f, 5, first)) == 13


def test_served_end_offset_legacy_and_partial() -> None:
    plain = build_message_set(_recs(3), magic=1, base_offset=5)
    assert served_end_offset(plain) == 8
    wrapped = build_message_set(_recs(3), magic=0, base_offset=5, compression=1)
    assert served_end_offset(wrapped) == 8
    whole = build_batch(_recs(2), base_offset=0)
    assert served_end_offset(whole + build_batch(_recs(2), base_offset=2)[:30]) == 2
    assert served_end_offset(b"") is None
    assert served_end_offset(whole[:40]) is None


def test_served_table_keeps_max_and_round_trips() -> None:
    t = ServedTable()
    t.record("c1", "127.0.0.1", TP, 10)
    t.record("c1", "/127.0.0.1", TP, 7)  # lower: ignored; host spellings are one identity
    v = t.version
    t.record("c1", "127.0.0.1", TP, 10)
    assert t.version == v and t.served(ME, TP) == 10
    back = ServedTable.from_json(t.to_json())
    assert back.served(ME, TP) == 10 and back.served(("c2", "/127.0.0.1"), TP) is None


def test_well_behaved_commits_give_no_findings() -> None:
    t = ServedTable()
    a = CommitAudit(grace_ms=100)
    t.record(*ME, TP, 5)
    assert a.on_commit("g", "m1", *ME, TP, 5, None, [t], 1000) == []
    t.record(*ME, TP, 9)
    assert a.on_commit("g", "m1", *ME, TP, 9, 5, [t], 1100) == []
    assert a.on_commit("g", "m1", *ME, TP, 9, 9, [t], 1200) == []  # same offset again
    assert a.pending == [] and a.recheck(10_000, [t]) == []


def test_commit_beyond_served_is_flagged_after_grace() -> None:
    t = ServedTable()
    a = CommitAudit(grace_ms=100)
    t.record(*ME, TP, 5)
    assert a.on_commit("g", "m1", *ME, TP, 50, 5, [t], 1000) == []  # suspicion only
    assert a.recheck(1050, [t]) == []  # not due yet
    [f] = a.recheck(1100, [t])
    assert (f.kind, f.offset, f.reference, f.member_id, f.client_id, f.host) == \
        (BEYOND_SERVED, 50, 5, "m1", "c1", "/127.0.0.1")
    assert "skipped unread" in f.log_line() and "partition=0" in f.log_line()
    assert parse_findings(a.findings_json("g")) == [f]


def test_suspicion_cleared_when_late_table_shows_the_data_served() -> None:
    """Another broker's table arrives after the commit: no false finding."""
    a = CommitAudit(grace_ms=100)
    assert a.on_commit("g", "m1", *ME, TP, 8, None, [ServedTable()], 1000) == []
    late = ServedTable()
    late.record(*ME, TP, 8)
    assert a.recheck(2000, [late]) == []
    assert a.findings == {}


def test_served_to_another_member_of_the_group_counts() -> None:
    """A partition moved between members: the new owner commits what the old one read."""
    t = ServedTable()
    t.record("other", "/10.0.0.2", TP, 20)
    a = CommitAudit(grace_ms=0)
    a.note_members("g", [("other", "10.0.0.2")])
    a.on_commit("g", "m2", *ME, TP, 20, None, [t], 1000)
    assert a.recheck(1000, [t]) == []
    # but a client of another group does not vouch for this group's commit
    a.on_commit("h", "m3", "x", "/1.1.1.1", TP, 20, None, [t], 1000)
    [f] = a.recheck(1000, [t])
    assert f.group == "h" and f.reference is None


def test_commit_at_the_floor_is_never_beyond_served() -> None:
    """kafka-python commits the position of every assigned partition, also one it could not
    fetch yet (leader failing over): offset 0, or the log start offset, skips nothing."""
    a = CommitAudit(grace_ms=0)
    empty = ServedTable()
    assert a.on_commit("g", "m1", *ME, TP, 0, None, [empty], 1000) == []
    assert a.on_commit("g", "m1", *ME, TP, 40, None, [empty], 1000, floor=40) == []
    assert a.pending == [] and a.recheck(5000, [empty]) == []
    t = ServedTable()
    t.record(*ME, TP, 30)  # served before retention moved the log start to 40
    assert a.on_commit("g", "m1", *ME, TP, 40, None, [t], 1000, floor=40) == []
    assert a.recheck(5000, [t]) == []
    a.on_commit("g", "m1", *ME, TP, 41, None, [t], 1000, floor=40)  # one past: flagged
    [f] = a.recheck(5000, [t])
    assert (f.kind, f.offset, f.reference) == (BEYOND_SERVED, 41, 30)
    # re-committing the previous offset (its served entries lost with a killed leader) or
    # less is not beyond served: it skips nothing new
    assert a.on_commit("h", "m1", *ME, TP, 25, 25, [empty], 1000) == []
    assert a.recheck(5000, [empty]) == []
    a.on_commit("h", "m1", *ME, TP, 26, 25, [empty], 1000)
    [f] = a.recheck(5000, [empty])
    assert (f.group, f.offset, f.reference) == ("h", 26, None)


def test_backwards_commit_is_flagged_at_once() -> None:
    t = ServedTable()
    t.record(*ME, TP, 30)
    a = CommitAudit()
    [f] = a.on_commit("g", "m1", *ME, TP, 10, 25, [t], 1000)
    assert (f.kind, f.offset, f.reference) == (BACKWARDS, 10, 25)
    assert "read twice" in f.log_line()
    assert json.loads(a.findings_json("g"))[0]["kind"] == BACKWARDS
    assert a.on_commit("g", "m1", *ME, TP, 10, -1, [t], 1000) == []  # no previous commit


def test_findings_are_bounded_per_group() -> None:
    a = CommitAudit()
    for i in range(300):
        a.on_commit("g", "m", *ME, TP, i, i + 1, [ServedTable()], i)
    assert len(a.findings["g"]) == 200 and a.findings["g"][-1].offset == 299


def test_cli_parses_consumer_assignments_and_renders_findings() -> None:
    from kafkapy.cli.consumer_groups import finding_row, parse_assignment

    raw = (b"\x00\x01" + b"\x00\x00\x00\x02" + b"\x00\x01a" + b"\x00\x00\x00\x02"
           + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x03" + b"\x00\x02bb" + b"\x00\x00\x00\x01"
           + b"\x00\x00\x00\x05" + b"\xff\xff\xff\xff")
    assert parse_assignment(raw) == [("a", 0), ("a", 3), ("bb", 5)]
    assert parse_assignment(b"") == []
    a = CommitAudit()
    [f] = a.on_commit("g", "", *ME, TP, 1, 2, [], 0)
    assert finding_row(f) == ("g", "t", 0, "BACKWARDS", 1, 2, "-", "/127.0.0.1", "c1",
                              "1970-01-01T00:00:00.000000Z")
