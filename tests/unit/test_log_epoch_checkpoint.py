"""LeaderEpochFileCache rules and the text checkpoint formats."""
from __future__ import annotations

import pytest

from kafkapy.log import LeaderEpochFileCache, LogConfig, TopicPartition
from kafkapy.log.checkpoint import (
    CheckpointError,
    read_offset_checkpoint,
    read_properties,
    write_offset_checkpoint,
    write_properties,
)
from kafkapy.protocol.errors import KafkaError

pytestmark = pytest.mark.unit


def test_epoch_cache_assign_and_end_offsets(tmp_path):
    leo = [100]
    path = str(tmp_path / "leader-epoch-checkpoint")
    c = LeaderEpochFileCache(path, lambda: leo[0])
    assert c.end_offset_for(0) == (-1, -1)
    assert c.assign(0, 0) and c.assign(3, 40) and c.assign(5, 70)
    assert not c.assign(5, 80)  # same epoch, later offset: no change
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n3\n0 0\n3 40\n5 70\n"
    assert c.end_offset_for(5) == (5, 100)   # latest epoch -> LEO
    assert c.end_offset_for(3) == (3, 70)
    assert c.end_offset_for(4) == (3, 70)    # unknown epoch -> largest smaller, next start
    assert c.end_offset_for(-1) == (-1, -1)
    assert c.end_offset_for(9) == (-1, -1)
    c2 = LeaderEpochFileCache(path, lambda: 0)
    assert c2.entries == [(0, 0), (3, 40), (5, 70)]
    # a non-monotonic assignment removes the entries it conflicts with
    c2.assign(4, 50)
    assert c2.entries == [(0, 0), (3, 40), (4, 50)]


def test_epoch_cache_truncation(tmp_path):
    c = LeaderEpochFileCache(str(tmp_path / "e"), lambda: 0)
    for e, o in [(1, 0), (2, 10), (4, 30)]:
        c.assign(e, o)
    c.truncate_from_end(30)
    assert c.entries == [(1, 0), (2, 10)]
    c.truncate_from_start(15)
    assert c.entries == [(2, 15)]
    c.assign(6, 40)
    c.truncate_from_start(40)
    assert c.entries == [(6, 40)]
    assert LeaderEpochFileCache(str(tmp_path / "e"), lambda: 0).entries == [(6, 40)]


def test_offset_checkpoint_format_and_errors(tmp_path):
    p = str(tmp_path / "replication-offset-checkpoint")
    write_offset_checkpoint(p, {TopicPartition("my-topic", 0): 1234, TopicPartition("my-topic", 1): 99})
    assert open(p).read() == "0\n2\nmy-topic 0 1234\nmy-topic 1 99\n"
    assert read_offset_checkpoint(p) == {TopicPartition("my-topic", 0): 1234,
                                         TopicPartition("my-topic", 1): 99}
    assert read_offset_checkpoint(str(tmp_path / "missing")) == {}
    open(p, "w").write("0\n3\nmy-topic 0 1\n")
    with pytest.raises(CheckpointError):
        read_offset_checkpoint(p)
    assert not (tmp_path / "replication-offset-checkpoint.tmp").exists()


def test_properties_and_topic_partition(tmp_path):
    p = str(tmp_path / "meta.properties")
    write_properties(p, {"version": "0", "broker.id": "1", "cluster.id": "abc"})
    assert read_properties(p) == {"version": "0", "broker.id": "1", "cluster.id": "abc"}
    tp = TopicPartition.from_dir_name("my-dashed-topic-12")
    assert tp == TopicPartition("my-dashed-topic", 12) and tp.dir_name == "my-dashed-topic-12"
    with pytest.raises(ValueError):
        TopicPartition.from_dir_name("nodash")


def test_log_config_from_props():
    c = LogConfig.from_props({"segment.bytes": "2048", "message.timestamp.type": "LogAppendTime",
                              "unclean.leader.election.enable": "true", "cleanup.policy": "compact,delete"})
    assert c.segment_bytes == 2048 and c.log_append_time and c.unclean_leader_election_enable
    assert c.delete_enabled and c.retention_ms == 604800000
    d = LogConfig.from_props({"retention.ms": "5"}, base=c)
    assert d.segment_bytes == 2048 and d.retention_ms == 5
    with pytest.raises(KafkaError):
        LogConfig.from_props({"segment.bytes": "abc"})
    with pytest.raises(KafkaError):
        LogConfig.from_props({"message.timestamp.type": "Foo"})
