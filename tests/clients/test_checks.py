"""The real-client checks must catch what they claim to: feed them synthetic consumed records
with one defect each and expect a failure that names it."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

import test_produce_consume as tpc
import workload as wl

pytestmark = pytest.mark.unit

BASE_TS = 1_700_000_000_000


def good_records(client: str = "confluent-kafka", codec: str = "gzip") -> list[dict]:
    """What a correct run looks like: murmur-free stand-in partitioner, offsets per partition."""
    next_offset = [0] * wl.PARTITIONS
    out = []
    for i in range(tpc.COUNT):
        m = wl.message(i, f"{client}/{codec}", BASE_TS)
        p = zlib.crc32(m.key.encode()) % wl.PARTITIONS
        out.append({"partition": p, "offset": next_offset[p], "key": m.key, "value": m.value,
                    "headers": [list(h) for h in m.headers], "timestamp": m.timestamp})
        next_offset[p] += 1
    return out


def check(records: list[dict]) -> None:
    tpc.check_records("confluent-kafka", "gzip", records, BASE_TS, (0, 0))


def test_good_run_passes() -> None:
    check(good_records())


def _fails_with(records: list[dict], needle: str) -> None:
    with pytest.raises(pytest.fail.Exception) as e:
        check(records)
    assert needle in str(e.value)


def test_missing_message() -> None:
    recs = good_records()
    del recs[5000]
    _fails_with(recs, "never consumed")


def test_duplicate_message() -> None:
    recs = good_records()
    recs.append(dict(recs[10]))
    _fails_with(recs, "more than once")


def test_offset_gap() -> None:
    recs = good_records()
    for r in recs:
        if r["partition"] == 1 and r["offset"] >= 100:
            r["offset"] += 1
    _fails_with(recs, "partition 1: offsets not")


def test_key_order_broken() -> None:
    recs = good_records()
    a, b = [i for i, r in enumerate(recs) if r["key"] == "key-3"][:2]
    # swap contents but keep the partition/offset slots, so only per-key order is wrong
    for field in ("value", "headers", "timestamp"):
        recs[a][field], recs[b][field] = recs[b][field], recs[a][field]
    _fails_with(recs, "per-key order broken")


def test_key_in_two_partitions() -> None:
    recs = good_records()
    victim = next(r for r in recs if r["key"] == "key-7")
    victim["partition"] = (victim["partition"] + 1) % wl.PARTITIONS
    _fails_with(recs, "more than one partition")


@pytest.mark.parametrize("field,value,needle", [
    ("headers", [["seq", "1"]], "headers"),
    ("timestamp", 0, "timestamp"),
    ("key", "key-x", "key"),
])
def test_content_damage(field: str, value, needle: str) -> None:
    recs = good_records()
    recs[1][field] = value
    _fails_with(recs, needle)


def test_delivery_report_mismatch(tmp_path: Path) -> None:
    recs = good_records()
    by_seq = tpc.check_records("confluent-kafka", "gzip", recs, BASE_TS, (0, 0))
    lines = [wl.delivery_line(int(r["value"].split(":")[0]), r["partition"], r["offset"])
             for r in recs]
    lines[3] = wl.delivery_line(3, recs[3]["partition"], recs[3]["offset"] + 1)
    produced = tmp_path / "produced.jsonl"
    produced.write_text("".join(lines))
    with pytest.raises(pytest.fail.Exception, match="acknowledged at"):
        tpc.check_deliveries(produced, by_seq)


def test_batch_codecs_reads_v2_headers(tmp_path: Path) -> None:
    part = tmp_path / "topic-a-0"
    part.mkdir()
    batches = b""
    for codec in (4, 4, 0):
        body = b"\0" * 40
        # baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes
        header = struct.pack(">qiibIh", 0, 4 + 1 + 4 + 2 + len(body), 0, 2, 0, codec)
        batches += header + body
    (part / "00000000000000000000.log").write_bytes(batches)
    other = tmp_path / "topic-a-extra-0"  # another topic sharing the name prefix
    other.mkdir()
    (other / "00000000000000000000.log").write_bytes(batches[:63].replace(
        struct.pack(">h", 4), struct.pack(">h", 1), 1))
    assert dict(tpc.batch_codecs(tmp_path, "topic-a")) == {4: 2, 0: 1}
