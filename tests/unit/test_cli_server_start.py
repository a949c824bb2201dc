"""kafkapy-server-start and scripts/kafka-server-start.sh: arguments, config errors, logging."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from kafkapy.cli import server_start
from kafkapy.config.definitions import ConfigError

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka-server-start.sh"


def run_module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kafkapy.cli.server_start", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def write_props(tmp_path: Path, text: str) -> str:
    path = tmp_path / "server.properties"
    path.write_text(text)
    return str(path)


def test_no_arguments_prints_usage_and_exits_2():
    proc = run_module()
    assert proc.returncode == 2
    assert "usage: kafkapy-server-start" in proc.stderr
    assert "server.properties" in proc.stderr


def test_malformed_override_exits_2(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\n")
    proc = run_module(path, "--override", "num.partitions")
    assert proc.returncode == 2
    assert "--override expects KEY=VALUE, got 'num.partitions'" in proc.stderr


def test_config_error_exits_1_with_one_line(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\nlog.segmnt.bytes=1\n")
    proc = run_module(path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kafkapy: configuration error: Unknown configuration "
                               "'log.segmnt.bytes'")
    assert proc.stdout == ""


def test_override_errors_and_missing_file_exit_1(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\n")
    proc = run_module(path, "--override", "num.partitions=zero")
    assert proc.returncode == 1
    assert "Invalid value 'zero' for configuration 'num.partitions'" in proc.stderr
    proc = run_module(str(tmp_path / "missing.properties"))
    assert proc.returncode == 1
    assert "Cannot read config file" in proc.stderr


def test_bad_log_level_is_a_config_error(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\n")
    proc = run_module(path, env={"KAFKAPY_LOG_LEVEL": "LOUD"})
    assert proc.returncode == 1
    assert "Invalid KAFKAPY_LOG_LEVEL 'LOUD'" in proc.stderr


def test_main_builds_config_and_runs_server(tmp_path, monkeypatch):
    seen = {}

    def fake_run_server(config):
        seen["config"] = config
        logging.getLogger("kafkapy.server.test").info("started")
        return 7

    fake = types.ModuleType("kafkapy.server.broker")
    fake.run_server = fake_run_server
    monkeypatch.setitem(sys.modules, "kafkapy.server.broker", fake)
    monkeypatch.setenv("KAFKAPY_LOG_LEVEL", "warn")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    path = write_props(tmp_path, "zookeeper.connect=zk:2181/kf\nbroker.id=2\n")
    try:
        code = server_start.main([path, "--override", "num.partitions=3",
                                  "--override=log.dirs=/tmp/x,/tmp/y"])
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], root.level = saved
    assert code == 7
    cfg = seen["config"]
    assert (cfg.broker_id, cfg.num_partitions, cfg.log_dirs) == (2, 3, ("/tmp/x", "/tmp/y"))
    assert cfg.zookeeper_chroot == "/kf"


def test_server_crash_is_logged_and_exits_1(tmp_path, monkeypatch, capsys):
    def boom(config):
        raise OSError("address already in use")

    fake = types.ModuleType("kafkapy.server.broker")
    fake.run_server = boom
    monkeypatch.setitem(sys.modules, "kafkapy.server.broker", fake)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        code = server_start.main([write_props(tmp_path, "zookeeper.connect=zk:2181\n")])
    finally:
        root.handlers[:], root.level = saved
    assert code == 1
    assert "Exiting kafkapy due to fatal exception" in capsys.readouterr().out


def test_kafka_log_format():
    record = logging.LogRecord("kafkapy.server", logging.WARNING, __file__, 1,
                               "partition %s offline", ("t-0",), None)
    record.created = time.mktime((2026, 11, 25, 12, 0, 0, 0, 0, -1))
    record.msecs = 123
    line = server_start.KafkaLogFormatter().format(record)
    assert line == "[2026-11-25 12:00:00,123] WARN partition t-0 offline (kafkapy.server)"


@pytest.mark.parametrize("value,level", [
    (None, logging.INFO), ("debug", logging.DEBUG), ("TRACE", logging.DEBUG),
    ("WARN", logging.WARNING), ("error", logging.ERROR), ("FATAL", logging.CRITICAL)])
def test_log_levels(value, level):
    assert server_start.parse_level(value) == level


def test_unknown_log_level():
    with pytest.raises(ConfigError):
        server_start.parse_level("chatty")


def test_shell_wrapper_usage():
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "USAGE:" in proc.stderr and "[-daemon] server.properties" in proc.stderr


def test_shell_wrapper_passes_config_errors_through(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\nport=9092\n")
    proc = subprocess.run(["bash", str(SCRIPT), path], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    assert "'port'" in proc.stderr and "removed in Kafka 3.0" in proc.stderr


def test_shell_wrapper_daemon_mode_writes_log_and_prints_pid(tmp_path):
    path = write_props(tmp_path, "zookeeper.connect=localhost:2181\nbogus.key=1\n")
    env = {**os.environ, "LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.run(["bash", str(SCRIPT), "-daemon", path], capture_output=True,
                          text=True, timeout=30, env=env)
    assert proc.returncode == 0
    pid = int(proc.stdout.strip())
    out = tmp_path / "logs" / "kafkapy-server.out"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "bogus.key" not in out.read_text():
        time.sleep(0.1)
    assert "Unknown configuration 'bogus.key'" in out.read_text()
    assert pid > 0


def test_shell_wrapper_without_launcher(tmp_path):
    """A copy of the script outside the repo, no venv and an empty PATH: a clear message."""
    scripts = tmp_path / "repo" / "scripts"
    scripts.mkdir(parents=True)
    copy = scripts / "kafka-server-start.sh"
    copy.write_text(SCRIPT.read_text())
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(copy), "server.properties"], capture_output=True,
                          text=True, timeout=30, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "cannot find the 'kafkapy-server-start' command" in proc.stderr
