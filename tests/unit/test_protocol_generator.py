"""The generator itself: schema parsing details and committed output being current."""
from __future__ import annotations

from pathlib import Path

import protocol_oracle as po
import pytest

from kafkapy.protocol.messages import REQUESTS, RESPONSES

gen = po.gen
pytestmark = pytest.mark.unit


def test_committed_modules_match_generator_output() -> None:
    files = gen.generate(gen.DEFAULT_SCHEMAS)
    stale = [n for n, text in files.items() if (gen.DEFAULT_OUT / n).read_text() != text]
    assert not stale, f"run scripts/generate_protocol.py: {stale}"


def test_cli_writes_committed_bytes_and_check_flags_stale_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command-line entry point (what CI runs): --out writes exactly the committed
    files, --check passes on them and fails, naming each file, once one is edited or an
    unknown module appears."""
    assert gen.main(["--check"]) == 0
    out = tmp_path / "messages"
    assert gen.main(["--out", str(out)]) == 0
    committed = sorted(p.name for p in gen.DEFAULT_OUT.glob("*.py"))
    assert sorted(p.name for p in out.glob("*.py")) == committed
    for name in committed:
        assert (out / name).read_bytes() == (gen.DEFAULT_OUT / name).read_bytes(), name
    assert gen.main(["--check", "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "not_an_api.py").write_text("")
    assert gen.main(["--check", "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"out of date: {out / 'not_an_api.py'}\n"
    (out / "not_an_api.py").unlink()
    (out / "fetch.py").write_text((out / "fetch.py").read_text() + "# edited\n")
    assert gen.main(["--check", "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"out of date: {out / 'fetch.py'}\n"


def test_no_schema_prose_in_output() -> None:
    files = gen.generate(gen.DEFAULT_SCHEMAS)
    blob = "\n".join(files.values())
    assert "about" not in blob.lower()
    assert "Licensed to the Apache" not in blob


def test_strip_comments_keeps_slashes_inside_strings() -> None:
    text = '{"a": "http://x//y", // gone\n "b": 1 // also gone\n}'
    import json

    assert json.loads(gen.strip_comments(text)) == {"a": "http://x//y", "b": 1}


def test_versions_parse() -> None:
    V = gen.Versions.parse
    assert 3 in V("3+") and 2 not in V("3+") and 30000 in V("0+")
    assert 2 in V("0-2") and 3 not in V("0-2")
    assert 5 in V("5") and 6 not in V("5")
    assert 0 not in V("none") and 0 not in V(None)


def test_snake_and_defaults() -> None:
    assert gen.snake("PartitionIndex") == "partition_index"
    assert gen.snake("TopicId") == "topic_id"
    assert gen.snake("V3AndBelowTopics") == "v3_and_below_topics"
    assert gen.snake("isKRaftController") == "is_k_raft_controller"
    F = gen.Field
    none = gen.Versions.parse("none")

    def f(t: str, d: object) -> object:
        return gen.default_value(F("X", "x", t, gen.Versions.parse("0+"), none, none, None, d, False, False))

    assert f("int32", "0x7fffffff") == 2**31 - 1
    assert f("int64", "-1") == -1 and f("int32", -2) == -2
    assert f("bool", "true") is True and f("bool", False) is False
    assert f("string", "null") is None and f("string", None) == ""
    assert f("uuid", None) == b"\0" * 16 and f("float64", None) == 0.0


def test_request_and_response_version_ranges_agree() -> None:
    for key, req in REQUESTS.items():
        resp = RESPONSES[key]
        assert (req.MIN_VERSION, req.MAX_VERSION, req.FLEXIBLE_FROM) == (
            resp.MIN_VERSION, resp.MAX_VERSION, resp.FLEXIBLE_FROM)


def test_nested_classes_reachable_from_message_class() -> None:
    from kafkapy.protocol.messages import fetch, leader_and_isr

    assert fetch.FetchResponse.PartitionData is fetch.FetchResponse_PartitionData
    assert fetch.FetchResponse.FetchableTopicResponse.PartitionData is fetch.FetchResponse_PartitionData
    st = leader_and_isr.LeaderAndIsrRequest.LeaderAndIsrPartitionState
    assert st is leader_and_isr.LeaderAndIsrRequest_LeaderAndIsrPartitionState
    p = fetch.FetchResponse.PartitionData()
    assert p.records is None and p.aborted_transactions == [] and p.preferred_read_replica == -1
    assert p.current_leader == fetch.FetchResponse.LeaderIdAndEpoch(leader_id=-1, leader_epoch=-1)
    assert fetch.FetchRequest().topics == [] and fetch.FetchRequest().topics is not fetch.FetchRequest().topics
