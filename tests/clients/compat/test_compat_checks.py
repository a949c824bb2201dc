"""The compat suite's checks catch what they claim to: synthetic consumed records with one
defect each must produce a problem that names it (and a correct read none)."""
from __future__ import annotations

import copy
import hashlib
import zlib

import pytest

import compat_checks as ch
import compat_common as cc
from compat_checks import Run
from compat_matrix import render_matrix

pytestmark = pytest.mark.unit

BASE = 1_700_000_000_000


def write(runs: list[Run], reader: str = "confluent-kafka") -> list[dict]:
    """A correct read of the runs, in produce order, crc32 standing in for a partitioner."""
    nxt = [0] * cc.PARTITIONS
    out = []
    for run in runs:
        for seq in range(run.count):
            key = f"key-{seq % 97}"
            p = zlib.crc32(f"{run.src}{key}".encode()) % cc.PARTITIONS
            v = run.value(seq)
            rec = {"partition": p, "offset": nxt[p], "key": key,
                   "headers": [list(h) for h in run.headers(seq, reader)],
                   "timestamp": run.base_ts + seq if run.explicit_ts() else run.window[0] + 5}
            if len(v) >= cc.BIG_VALUE:
                rec.update(value_len=len(v), value_sha256=hashlib.sha256(v).hexdigest())
            else:
                rec["value"] = v.decode()
            out.append(rec)
            nxt[p] += 1
    return out


RUN = Run("confluent-kafka", "confluent-kafka/gzip", 300, BASE)
CROSS = [Run("kafkajs", "kafkajs/cross", 200, BASE), Run("kafka-node", "kafka-node/cross", 200,
                                                         BASE + 1_000_000),
         Run("kcat", "kcat/cross", 200, 0, window=(BASE + 5_000_000, BASE + 5_001_000))]
LARGE = [Run("aiokafka", "aiokafka/small-before", 3, BASE),
         Run("aiokafka", "aiokafka/large", 1, BASE + 1000, 900 * 1024),
         Run("aiokafka", "aiokafka/small-after", 3, BASE + 2000)]


def test_correct_reads_pass() -> None:
    assert ch.check_records(write([RUN]), [RUN], "confluent-kafka") == []
    for reader in ("kafka-python", "kafka-node"):
        assert ch.check_records(write(CROSS, reader), CROSS, reader) == []
    assert ch.check_records(write(LARGE), LARGE, "aiokafka") == []


def _one(records: list[dict], seq: int) -> dict:
    return next(r for r in records if r.get("value", "").startswith(f"{seq}:"))


@pytest.mark.parametrize("defect, expect", [
    ("drop", "never read"), ("duplicate", "more than once"), ("key", "key"),
    ("value", "value differs"), ("header", "headers"), ("timestamp", "timestamp"),
    ("gap", "offsets not"), ("reorder", "per-key order"), ("split", "more than one partition"),
    ("foreign", "no producer run"),
])
def test_each_defect_is_named(defect: str, expect: str) -> None:
    recs = write([RUN])
    r = _one(recs, 150)
    if defect == "drop":
        recs.remove(r)
        for x in recs:  # keep offsets contiguous: only the loss itself is wrong
            if x["partition"] == r["partition"] and x["offset"] > r["offset"]:
                x["offset"] -= 1
    elif defect == "duplicate":
        d = copy.deepcopy(r)
        tail = max(x["offset"] for x in recs if x["partition"] == r["partition"])
        d["offset"] = tail + 1
        recs.append(d)
    elif defect == "key":
        r["key"] = "key-x"
    elif defect == "value":
        r["value"] = r["value"][:-1] + "!"
    elif defect == "header":
        r["headers"][0][1] = "999"
    elif defect == "timestamp":
        r["timestamp"] += 1
    elif defect == "gap":
        r["offset"] += 1000
    elif defect == "reorder":
        later = _one(recs, 150 + 97)
        r["value"], later["value"] = later["value"], r["value"]
        r["timestamp"], later["timestamp"] = later["timestamp"], r["timestamp"]
        r["headers"], later["headers"] = later["headers"], r["headers"]
    elif defect == "split":
        r["partition"] = (r["partition"] + 1) % 3
        r["offset"] = 10_000
    elif defect == "foreign":
        r["headers"][1][1] = "someone/else"
    problems = ch.check_records(recs, [RUN], "confluent-kafka")
    assert any(expect in p for p in problems), problems


def test_duplicates_allowed_only_when_asked() -> None:
    recs = write([RUN])
    d = copy.deepcopy(_one(recs, 10))
    d["offset"] = max(x["offset"] for x in recs if x["partition"] == d["partition"]) + 1
    recs.append(d)
    assert ch.check_records(recs, [RUN], "kafka-node", duplicates_allowed=False)
    # a retried duplicate at the end of its key's sequence breaks nothing else; the per-key
    # order check still demands first occurrences in produce order
    assert not [p for p in ch.check_records(recs, [RUN], "confluent-kafka",
                                            duplicates_allowed=True)
                if "headers" not in p]


def test_large_value_must_match_exactly() -> None:
    recs = write(LARGE)
    big = next(r for r in recs if "value_sha256" in r)
    big["value_sha256"] = "0" * 64
    assert any("large value" in p or "value differs" in p
               for p in ch.check_records(recs, LARGE, "aiokafka"))


def test_delivery_reports_must_name_the_offsets_read() -> None:
    recs = write([RUN])
    reports = [{"seq": int(r["value"].split(":")[0]), "partition": r["partition"],
                "offset": r["offset"]} for r in recs]
    assert ch.check_deliveries(reports, RUN, recs) == []
    reports[5]["offset"] += 1
    assert any("acknowledged at" in p for p in ch.check_deliveries(reports, RUN, recs))
    assert any("delivery reports" in p for p in ch.check_deliveries(reports[:-1], RUN, recs))


def test_group_resume_checks() -> None:
    recs = sorted(write([RUN]), key=lambda r: (r["partition"], r["offset"]))
    ends = {p: sum(1 for r in recs if r["partition"] == p) for p in range(3)}
    first = [r for r in recs if r["offset"] < 20]
    second = [r for r in recs if r["offset"] >= 20]
    committed = {p: min(20, ends[p]) for p in range(3)}
    assert ch.check_group_resume(first, second, ends, committed) == []
    assert ch.check_group_resume(first, second[1:], ends, committed)  # skipped one
    assert ch.check_group_resume(first, first[-1:] + second, ends, committed)  # repeated one
    assert ch.check_group_resume(first, second, ends, {**committed, 0: 19})  # commit behind


def test_matrix_lists_every_cell_and_the_reasons() -> None:
    text = render_matrix({("kcat", "admin"): ("PASS*", ""),
                          ("kafka-node", "lz4"): ("SKIP", "no lz4 codec")},
                         {"kcat": {"create": "no admin API"}})
    assert "kcat: create: no admin API" in text
    assert "kafka-node / lz4: SKIP: no lz4 codec" in text
    assert f"{len(cc.CLIENTS) * len(cc.MATRIX_SCENARIOS) - 2} not run" in text
