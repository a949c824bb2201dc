"""Group coordinator state machine, driven with plain data and an explicit clock."""
from __future__ import annotations

import pytest

from kafkapy.coordinator.group.coordinator import GroupConfig, GroupCoordinator, partition_for
from kafkapy.coordinator.group.group import GroupState
from kafkapy.coordinator.group.records import OffsetValue
from kafkapy.coordinator.group.results import CommitResult, JoinResult, Outcome, SyncResult
from kafkapy.protocol.errors import ErrorCode as E

pytestmark = pytest.mark.unit

G = "grp"
PROTO = [("range", b"\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x00")]


class Harness:
    """Runs the coordinator like the edge does: appends succeed unless told otherwise."""

    def __init__(self, **cfg: int) -> None:
        cfg.setdefault("initial_rebalance_delay_ms", 0)
        self.c = GroupCoordinator(GroupConfig(num_partitions=4, **cfg))
        for p in range(4):
            self.c.on_elected(p, 0)
            self.c.complete_load(p, 0, _empty(), 0)
        self.now = 1000
        self.results: dict[object, object] = {}
        self.fail_appends: E | None = None
        self.hold_appends = False
        self.held: list = []
        self.log_end = 0
        self.written: list = []

    def run(self, out: Outcome) -> None:
        for waiter, result in out.completions:
            assert waiter not in self.results, f"{waiter} completed twice"
            self.results[waiter] = result
        for app in out.appends:
            if self.hold_appends:
                self.held.append(app)
            else:
                self.finish(app)
        # like the runtime: timers already due (e.g. a zero initial delay) fire at once
        if (d := self.c.next_deadline()) is not None and d <= self.now:
            self.run(self.c.expire(self.now))

    def finish(self, app, error: E | None = None) -> None:
        error = error or self.fail_appends or E.NONE
        base = self.log_end
        if error is E.NONE:
            self.written += app.records
            self.log_end += len(app.records)
        self.run(self.c.on_append_done(app.write_id, error, base, self.now))

    def join(self, waiter: str, member_id: str = "", instance: str | None = None,
             protocols=PROTO, session: int = 10000, rebalance: int = 30000,
             require_known: bool = True, skip: bool = False) -> JoinResult | None:
        self.run(self.c.join(G, member_id, instance, require_known, skip, "client", "/h",
                             rebalance, session, "consumer", protocols, waiter, self.now))
        return self.results.get(waiter)  # type: ignore[return-value]

    def sync(self, waiter: str, member_id: str, gen: int, assignments=None,
             instance: str | None = None) -> SyncResult | None:
        self.run(self.c.sync(G, gen, member_id, "consumer", None, instance,
                             assignments or {}, waiter, self.now))
        return self.results.get(waiter)  # type: ignore[return-value]

    def tick(self, ms: int) -> None:
        self.now += ms
        while (d := self.c.next_deadline()) is not None and d <= self.now:
            self.run(self.c.expire(self.now))

    def member_id(self, waiter: str) -> str:
        """Two-step KIP-394 join: MEMBER_ID_REQUIRED, then join with the given id."""
        r = self.join(waiter + "-0")
        assert r is not None and r.error is E.MEMBER_ID_REQUIRED
        return r.member_id


def _empty():
    from kafkapy.coordinator.group.records import LoadedPartition
    return LoadedPartition()


def group(h: Harness):
    return h.c.groups[G]


def form_group(h: Harness, n: int) -> list[str]:
    """n members join and sync; returns member ids, the first one is the leader."""
    ids = [h.member_id(f"m{i}") for i in range(n)]
    h.c.config.initial_rebalance_delay_ms = 100  # let the first generation take everyone
    for i, mid in enumerate(ids):
        h.join(f"j{i}", mid)
    for _ in range(5):
        h.tick(100)
    h.c.config.initial_rebalance_delay_ms = 0
    assert all(isinstance(h.results.get(f"j{i}"), JoinResult) for i in range(n))
    leader = h.results["j0"].leader_id
    ordered = [leader] + [m for m in ids if m != leader]
    gen = h.results["j0"].generation_id
    for i, mid in enumerate(ordered[1:], 1):
        assert h.sync(f"s{i}", mid, gen) is None  # followers park
    h.sync("s0", leader, gen, {m: f"a-{m}".encode() for m in ordered})
    return ordered


def test_member_id_required_then_join() -> None:
    h = Harness()
    r = h.join("w0")
    assert r.error is E.MEMBER_ID_REQUIRED and r.member_id.startswith("client-")
    assert h.c.groups[G].is_pending(r.member_id)
    r2 = h.join("w1", r.member_id)
    assert r2.error is E.NONE and r2.generation_id == 1 and r2.leader_id == r.member_id
    assert r2.protocol_name == "range" and r2.members == [(r.member_id, None, PROTO[0][1])]
    assert group(h).state is GroupState.COMPLETING_REBALANCE


def test_full_round_three_members() -> None:
    h = Harness()
    ids = [h.member_id(f"m{i}") for i in range(3)]
    h.join("j0", ids[0])          # generation 1 with one member
    assert h.results["j0"].generation_id == 1
    h.join("j1", ids[1])          # triggers rebalance; j1 parks until j0's member rejoins
    assert "j1" not in h.results
    assert h.sync("s-old", ids[0], 1).error is E.REBALANCE_IN_PROGRESS
    h.join("j2", ids[2])
    h.join("j0b", ids[0])         # the leader rejoins: everybody is answered
    res = [h.results[w] for w in ("j0b", "j1", "j2")]
    assert {r.generation_id for r in res} == {2} and {r.error for r in res} == {E.NONE}
    assert res[0].leader_id == ids[0] and len(res[0].members) == 3
    assert res[1].members == [] and res[2].members == []
    # followers sync first and park; the leader's assignment answers everyone
    assert h.sync("s1", ids[1], 2) is None
    assert h.sync("s2", ids[2], 2) is None
    h.sync("s0", ids[0], 2, {ids[0]: b"A0", ids[1]: b"A1"})
    assert h.results["s1"].assignment == b"A1"
    assert h.results["s2"].assignment == b""   # missing member gets an empty assignment
    assert h.results["s0"].assignment == b"A0" and h.results["s0"].protocol_name == "range"
    assert group(h).state is GroupState.STABLE
    for mid in ids:
        assert h.c.heartbeat(G, mid, None, 2, h.now) is E.NONE
    assert h.c.heartbeat(G, ids[1], None, 1, h.now) is E.ILLEGAL_GENERATION
    assert h.c.heartbeat(G, "nobody", None, 2, h.now) is E.UNKNOWN_MEMBER_ID
    assert len(h.written) == 1  # generation 1 never synced: only generation 2 is stored


def test_sync_waits_for_durable_group_record() -> None:
    h = Harness()
    mid = h.member_id("m")
    h.join("j", mid)
    h.hold_appends = True
    h.sync("s", mid, 1, {mid: b"x"})
    assert "s" not in h.results and group(h).state is GroupState.COMPLETING_REBALANCE
    h.hold_appends = False
    h.finish(h.held.pop(), E.NOT_LEADER_OR_FOLLOWER)
    assert h.results["s"].error is E.NOT_COORDINATOR
    assert group(h).state is GroupState.PREPARING_REBALANCE


def test_leader_rejoin_in_stable_triggers_rebalance() -> None:
    h = Harness()
    leader, follower = form_group(h, 2)
    assert group(h).state is GroupState.STABLE
    h.join("lj", leader)
    assert "lj" not in h.results and group(h).state is GroupState.PREPARING_REBALANCE
    assert h.c.heartbeat(G, follower, None, 1, h.now) is E.REBALANCE_IN_PROGRESS
    h.join("fj", follower)
    assert h.results["lj"].generation_id == 2 and h.results["lj"].leader_id == leader
    assert len(h.results["lj"].members) == 2


def test_follower_rejoin_with_same_metadata_in_stable_gets_current_generation() -> None:
    h = Harness()
    leader, follower = form_group(h, 2)
    r = h.join("fj", follower)
    assert r.error is E.NONE and r.generation_id == 1 and r.members == []
    assert group(h).state is GroupState.STABLE


def test_session_expiry_removes_member_and_rebalances() -> None:
    h = Harness()
    leader, follower = form_group(h, 2)
    for _ in range(3):  # the leader keeps heartbeating, the follower went silent
        h.tick(4000)
        assert h.c.heartbeat(G, leader, None, 1, h.now) in (E.NONE, E.REBALANCE_IN_PROGRESS)
    assert not group(h).has(follower)
    assert group(h).state is GroupState.PREPARING_REBALANCE
    h.join("lj", leader)  # the only remaining member rejoins: new generation at once
    assert h.results["lj"].generation_id == 2 and len(h.results["lj"].members) == 1


def test_rebalance_timeout_drops_members_that_do_not_rejoin() -> None:
    h = Harness()
    a, b = form_group(h, 2)
    h.join("aj", a)
    for _ in range(3):  # b stays alive through heartbeats but never rejoins
        h.tick(9000)
        assert h.c.heartbeat(G, b, None, 1, h.now) is E.REBALANCE_IN_PROGRESS
    h.tick(2999)
    assert "aj" not in h.results
    h.tick(2)
    assert h.results["aj"].generation_id == 2 and not group(h).has(b)


def test_static_member_rejoin_without_rebalance_and_fencing() -> None:
    h = Harness()
    r = h.join("j0", instance="inst-1")           # static members skip MEMBER_ID_REQUIRED
    assert r.error is E.NONE and r.member_id.startswith("inst-1-")
    old = r.member_id
    h.sync("s0", old, 1, {old: b"assign"})
    assert group(h).state is GroupState.STABLE
    written = len(h.written)
    r2 = h.join("j1", instance="inst-1")          # restarted with no member id
    assert r2.error is E.NONE and r2.member_id != old and r2.generation_id == 1
    assert group(h).state is GroupState.STABLE and len(h.written) == written + 1
    assert r2.leader_id == old and r2.members == []   # pre-v9: old leader id, no assignment
    assert h.sync("s1", r2.member_id, 1, instance="inst-1").assignment == b"assign"
    assert h.c.heartbeat(G, old, "inst-1", 1, h.now) is E.FENCED_INSTANCE_ID
    assert h.c.heartbeat(G, r2.member_id, "inst-1", 1, h.now) is E.NONE
    assert h.join("j2", old, instance="inst-1").error is E.FENCED_INSTANCE_ID
    r3 = h.join("j3", instance="inst-1", skip=True)   # v9+: leader learns members, skips
    assert r3.skip_assignment and r3.leader_id == r3.member_id and len(r3.members) == 1


def test_static_member_is_kept_across_rebalance_until_session_timeout() -> None:
    h = Harness()
    sid = h.join("j0", instance="s").member_id
    h.sync("s0", sid, 1, {})
    dyn = h.member_id("d")
    h.join("dj", dyn)              # rebalance; the static member does not rejoin
    for _ in range(3):
        h.tick(9000)
        assert h.c.heartbeat(G, sid, "s", 1, h.now) is E.REBALANCE_IN_PROGRESS
    h.tick(3001)                   # rebalance timeout: the static member stays
    r = h.results["dj"]
    assert r.generation_id == 2 and r.leader_id == dyn and group(h).has(sid)
    assert {m[0] for m in r.members} == {sid, dyn}
    h.tick(10001)                  # now silent past its session timeout: removed
    assert not group(h).has(sid)


def test_invalid_session_timeout_and_inconsistent_protocol() -> None:
    h = Harness()
    assert h.join("a", session=5999).error is E.INVALID_SESSION_TIMEOUT
    assert h.join("b", session=1800001).error is E.INVALID_SESSION_TIMEOUT
    mid = h.member_id("m")
    h.join("j", mid)
    other = h.join("x", protocols=[("roundrobin", b"")], require_known=False)
    assert other.error is E.INCONSISTENT_GROUP_PROTOCOL
    assert h.join("u", "unknown-member").error is E.UNKNOWN_MEMBER_ID


def test_group_max_size() -> None:
    h = Harness(max_size=1)
    mid = h.member_id("m")
    h.join("j", mid)
    r = h.join("x", require_known=False)
    assert r.error is E.GROUP_MAX_SIZE_REACHED


def test_initial_rebalance_delay_collects_members() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    a = h.member_id("a")
    h.join("aj", a)
    assert "aj" not in h.results
    h.tick(2000)
    b = h.member_id("b")
    h.join("bj", b)
    h.tick(1500)                   # first delay ends, a member arrived: extend
    assert "aj" not in h.results
    h.tick(3000)
    assert h.results["aj"].generation_id == 1 and len(h.results["aj"].members) == 2


def test_leave_group_batch_and_static_removal() -> None:
    h = Harness()
    a, b = form_group(h, 2)
    err, per_member, out = h.c.leave(G, [(b, None), ("ghost", None)], h.now)
    h.run(out)
    assert err is E.NONE and per_member == [E.NONE, E.UNKNOWN_MEMBER_ID]
    assert group(h).state is GroupState.PREPARING_REBALANCE
    err, per_member, out = h.c.leave(G, [("", "no-such-instance")], h.now)
    assert per_member == [E.UNKNOWN_MEMBER_ID]


def test_commit_and_fetch_with_generation_checks() -> None:
    h = Harness(offset_metadata_max_bytes=10)
    leader, follower = form_group(h, 2)
    tp = ("t", 0)

    def commit(w, member, gen, meta="", inst=None):
        h.run(h.c.commit_offsets(G, member, inst, gen,
                                 {tp: OffsetValue(42, 3, meta, h.now)}, w, h.now))
        res = h.results[w]
        assert isinstance(res, CommitResult)
        return res.errors[tp]

    assert commit("c1", follower, 0) is E.ILLEGAL_GENERATION
    assert commit("c2", "stranger", 1) is E.UNKNOWN_MEMBER_ID
    assert commit("c3", "", -1) is E.UNKNOWN_MEMBER_ID  # non-empty group: members only
    assert commit("c4", follower, 1, meta="x" * 11) is E.OFFSET_METADATA_TOO_LARGE
    assert h.c.fetch_offsets(G, [tp])[1][tp].offset == -1
    assert commit("c5", follower, 1, meta="ok") is E.NONE
    err, got = h.c.fetch_offsets(G, None)
    assert err is E.NONE and got[tp].offset == 42 and got[tp].leader_epoch == 3
    assert got[tp].metadata == "ok"
    h.join("lj", leader)        # PreparingRebalance: commits still allowed
    assert commit("c6", follower, 1) is E.NONE


def test_commit_acknowledged_only_after_append() -> None:
    h = Harness()
    h.hold_appends = True
    h.run(h.c.commit_offsets("simple", "", None, -1, {("t", 1): OffsetValue(7)}, "w", h.now))
    assert "w" not in h.results
    assert h.c.fetch_offsets("simple", [("t", 1)])[1][("t", 1)].offset == -1
    h.hold_appends = False
    h.finish(h.held.pop(), E.REQUEST_TIMED_OUT)
    assert h.results["w"].errors[("t", 1)] is E.REQUEST_TIMED_OUT
    assert h.c.fetch_offsets("simple", [("t", 1)])[1][("t", 1)].offset == -1
    h.run(h.c.commit_offsets("simple", "", None, -1, {("t", 1): OffsetValue(8)}, "w2", h.now))
    assert h.results["w2"].errors[("t", 1)] is E.NONE
    assert h.c.fetch_offsets("simple", [("t", 1)])[1][("t", 1)].offset == 8
    h.run(h.c.commit_offsets("nogroup", "m", None, 3, {("t", 1): OffsetValue(1)}, "w3", h.now))
    assert h.results["w3"].errors[("t", 1)] is E.ILLEGAL_GENERATION


def test_not_coordinator_and_loading() -> None:
    c = GroupCoordinator(GroupConfig(num_partitions=4))
    p = partition_for(G, 4)
    w = object()
    out = c.join(G, "", None, True, False, "c", "h", 1, 10000, "consumer", PROTO, w, 0)
    assert out.completions[0][1].error is E.NOT_COORDINATOR
    c.on_elected(p, 5)
    assert c.heartbeat(G, "m", None, 1, 0) is E.NONE  # loading: heartbeats answered blindly
    assert c.fetch_offsets(G, None)[0] is E.COORDINATOR_LOAD_IN_PROGRESS
    c.complete_load(p, 5, _empty(), 0)
    assert c.fetch_offsets(G, None) == (E.NONE, {})
    assert c.on_elected(p, 4) is False  # stale epoch ignored
    c.commit_offsets(G, "", None, -1, {("t", 0): OffsetValue(1)}, w, 0)
    assert c.on_elected(p, 6) is False  # already ours: no reload, cache kept
    assert not c.is_loading(G) and G in c.groups


def test_unload_answers_parked_requests_not_coordinator() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    mid = h.member_id("m")
    h.join("j", mid)
    h.run(h.c.on_resigned(partition_for(G, 4), 1))
    assert h.results["j"].error is E.NOT_COORDINATOR
    assert G not in h.c.groups


def test_describe_list_delete() -> None:
    h = Harness()
    a, b = form_group(h, 2)
    err, summary = h.c.describe(G)
    assert summary.state == "Stable" and summary.protocol == "range"
    assert {m.member_id for m in summary.members} == {a, b}
    assert h.c.list_groups(["stable"])[1][0].group_id == G
    assert h.c.list_groups(["Empty"])[1] == []
    errors, _ = h.c.delete_groups([G, "missing"], h.now)
    assert errors == {G: E.NON_EMPTY_GROUP, "missing": E.GROUP_ID_NOT_FOUND}
    h.run(h.c.commit_offsets(G, a, None, 1, {("t", 0): OffsetValue(1),
                                            ("other", 0): OffsetValue(2)}, "c", h.now))
    err, per_tp, _ = h.c.delete_offsets(G, [("t", 0), ("other", 0)], h.now)
    assert per_tp == {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("other", 0): E.NONE}
    _, _, out = h.c.leave(G, [(a, None), (b, None)], h.now)
    h.run(out)
    assert group(h).state is GroupState.EMPTY
    errors, out = h.c.delete_groups([G], h.now)
    h.run(out)
    assert errors == {G: E.NONE} and G not in h.c.groups
    assert h.written[-1][1] is None and h.written[-2][1] is None  # tombstones


def test_retention_expires_empty_group_offsets() -> None:
    h = Harness(offsets_retention_ms=1000)
    h.run(h.c.commit_offsets("s", "", None, -1, {("t", 0): OffsetValue(5, commit_timestamp=h.now)},
                             "c", h.now))
    h.run(h.c.cleanup_expired_offsets(h.now + 999))
    assert "s" in h.c.groups
    h.run(h.c.cleanup_expired_offsets(h.now + 1000))
    assert "s" not in h.c.groups


def test_partition_for_matches_java_hashcode() -> None:
    from kafkapy.coordinator.group.coordinator import java_string_hash

    def by_formula(s: str) -> int:
        units = [int.from_bytes(s.encode("utf-16-be")[i:i + 2], "big")
                 for i in range(0, len(s.encode("utf-16-be")), 2)]
        n = len(units)
        h = sum(u * 31 ** (n - 1 - i) for i, u in enumerate(units)) % 2**32
        return h - 2**32 if h >= 2**31 else h

    assert java_string_hash("") == 0 and java_string_hash("a") == 97
    assert java_string_hash("ab") == 97 * 31 + 98 == 3105
    assert java_string_hash("hello") == 99162322
    for s in ["my-group", "console-consumer-12345", "ü-group", "😀", "x" * 40]:
        assert java_string_hash(s) == by_formula(s)
    assert java_string_hash("polygenelubricants") == -2**31
    assert partition_for("polygenelubricants", 50) == 0      # abs(MIN_VALUE) = 0
    h = java_string_hash("my-group")
    assert partition_for("my-group", 50) == abs(h) % 50


def test_protocol_chosen_by_vote_among_common_protocols() -> None:
    h = Harness(initial_rebalance_delay_ms=100)
    prefs = [[("range", b"r"), ("rr", b"x"), ("sticky", b"s")],
             [("range", b"r"), ("rr", b"x")],
             [("rr", b"x"), ("range", b"r")]]
    for i, protos in enumerate(prefs):
        h.join(f"j{i}", protocols=protos, require_known=False)
    h.tick(100)
    h.tick(100)
    res = [h.results[f"j{i}"] for i in range(3)]
    assert {r.protocol_name for r in res} == {"range"}   # 2 votes to 1; sticky not common
    leader = next(r for r in res if r.members)
    assert sorted(meta for _, _, meta in leader.members) == [b"r", b"r", b"r"]
    assert h.join("x", protocols=[("sticky", b"")], require_known=False).error \
        is E.INCONSISTENT_GROUP_PROTOCOL


def test_pending_member_holds_rebalance_until_its_session_expires() -> None:
    h = Harness()
    a, = form_group(h, 1)
    pending = h.member_id("late")          # got MEMBER_ID_REQUIRED, never comes back
    h.join("aj", a)                        # leader rejoin: would complete at once...
    assert "aj" not in h.results           # ...but the pending member is awaited
    h.tick(10001)
    assert h.results["aj"].generation_id == 2 and not group(h).is_pending(pending)


def test_deleted_group_with_inflight_commit_does_not_linger_dead() -> None:
    h = Harness()
    h.hold_appends = True
    h.run(h.c.commit_offsets("s", "", None, -1, {("t", 0): OffsetValue(1)}, "c", h.now))
    h.hold_appends = False
    errors, out = h.c.delete_groups(["s"], h.now)
    h.run(out)
    assert errors == {"s": E.NONE} and "s" not in h.c.groups
    h.finish(h.held.pop())            # the commit lands after the deletion
    assert h.results["c"].errors[("t", 0)] is E.NONE
    h.run(h.c.commit_offsets("s", "", None, -1, {("t", 0): OffsetValue(2)}, "c2", h.now))
    assert h.results["c2"].errors[("t", 0)] is E.NONE
    assert h.c.fetch_offsets("s", None)[1][("t", 0)].offset == 2


def test_deleted_topic_offsets_are_dropped() -> None:
    h = Harness()
    h.run(h.c.commit_offsets("s", "", None, -1, {("gone", 0): OffsetValue(4),
                                                ("kept", 0): OffsetValue(5)}, "c", h.now))
    written = len(h.written)
    h.run(h.c.remove_partitions([("gone", 0)], h.now))
    assert list(h.c.fetch_offsets("s", None)[1]) == [("kept", 0)]
    assert h.c.fetch_offsets("s", [("gone", 0)])[1][("gone", 0)].offset == -1
    assert len(h.written) == written + 1 and h.written[-1][1] is None


def test_stable_consumer_group_keeps_subscribed_offsets() -> None:
    """KIP-211: in a Stable group only offsets of topics nobody subscribes to expire."""
    h = Harness(offsets_retention_ms=1000)
    a, = form_group(h, 1)                 # PROTO subscribes to topic "t"
    h.run(h.c.commit_offsets(G, a, None, 1, {("t", 0): OffsetValue(1, commit_timestamp=h.now),
                                            ("old", 0): OffsetValue(2, commit_timestamp=h.now)},
                             "c", h.now))
    assert group(h).subscribed_topics == frozenset({"t"})
    h.run(h.c.cleanup_expired_offsets(h.now + 5000))
    assert list(h.c.fetch_offsets(G, None)[1]) == [("t", 0)]
