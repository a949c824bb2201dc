"""Real ZooKeeper servers for tests: Debian's `zookeeper` package run as a child JVM.

Import from tests (the repo root must be on sys.path):

    from tests.zk_fixture import ZooKeeperServer, zookeeper_server, unique_chroot

* `ZooKeeperServer(base_dir)` — standalone server on a free loopback port in `base_dir`;
  `start()` waits for `ruok` -> `imok` and for `srvr` to report a serving mode; `connect` is "127.0.0.1:<port>"; `stop()` ends the JVM
  by its pid. `four_letter(cmd)` runs a 4lw command (all are whitelisted).
* `ZooKeeperEnsemble(base_dir, size=3)` — the same as a quorum (QuorumPeerMain), with
  `stop_member(i)` / `start_member(i)` for failover tests; `connect` lists every member.
* `zookeeper_server` — session-scoped pytest fixture yielding a started `ZooKeeperServer`.
  Tests sharing it isolate themselves with `unique_chroot()` ("/t-<hex>").
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import attrs
import pytest

ZK_CLASSPATH = "/usr/share/java/zookeeper.jar"  # its manifest lists the runtime jars
_JVM_OPTS = ["-Xmx128m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dzookeeper.admin.enableServer=false", "-Djava.awt.headless=true"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def four_letter(port: int, cmd: str, timeout: float = 2.0) -> str:
    """Send a ZooKeeper four-letter command to 127.0.0.1:port and return the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode("ascii"))
        chunks = []
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def unique_chroot() -> str:
    return f"/t-{uuid.uuid4().hex[:12]}"


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _answers_imok(port: int) -> bool:
    try:
        return four_letter(port, "ruok", timeout=1.0) == "imok"
    except OSError:
        return False


def _serves_requests(port: int) -> bool:
    """`ruok` says imok before the server accepts sessions; `srvr` reports a Mode only then."""
    try:
        return "Mode:" in four_letter(port, "srvr", timeout=1.0)
    except OSError:
        return False


@attrs.define(slots=True)
class _Jvm:
    """One ZooKeeper JVM, started and stopped by pid."""

    main_class: str
    cfg: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["java", *_JVM_OPTS, "-cp", ZK_CLASSPATH, self.main_class, str(self.cfg)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


def _base_cfg(data_dir: Path, port: int) -> list[str]:
    return [
        "tickTime=500",
        f"dataDir={data_dir}",
        f"clientPort={port}",
        "clientPortAddress=127.0.0.1",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        "minSessionTimeout=1000",
        "maxSessionTimeout=60000",
        "maxClientCnxns=0",
        "preAllocSize=1024",
        "snapCount=10000",
    ]


@attrs.define(slots=True)
class ZooKeeperServer:
    """A standalone ZooKeeper on loopback; `connect` is valid after `start()`."""

    base_dir: Path
    port: int = 0
    jvm: _Jvm | None = None

    @property
    def connect(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.jvm.pid if self.jvm else None

    def start(self, timeout: float = 60.0) -> "ZooKeeperServer":
        data_dir = self.base_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # the free port can be taken between probe and bind
            if self.port == 0 or attempt > 0:
                self.port = free_port()
            cfg = self.base_dir / "zoo.cfg"
            cfg.write_text("\n".join(_base_cfg(data_dir, self.port)) + "\n")
            self.jvm = _Jvm("org.apache.zookeeper.server.ZooKeeperServerMain", cfg,
                            self.base_dir / "zookeeper.log")
            self.jvm.start()
            jvm = self.jvm
            try:
                _wait_until(lambda: (_answers_imok(self.port) and _serves_requests(self.port))
                            or not jvm.alive(), timeout,
                            f"ZooKeeper on port {self.port}")
            except TimeoutError:
                self.stop()
                raise
            if jvm.alive():
                return self
            self.stop()
        raise RuntimeError(f"ZooKeeper failed to start; see {self.base_dir / 'zookeeper.log'}")

    def four_letter(self, cmd: str) -> str:
        return four_letter(self.port, cmd)

    def stop(self) -> None:
        if self.jvm is not None:
            self.jvm.stop()

    def __enter__(self) -> "ZooKeeperServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@attrs.define(slots=True)
class ZooKeeperEnsemble:
    """A quorum of `size` ZooKeeper servers on loopback, for failover tests."""

    base_dir: Path
    size: int = 3
    client_ports: list[int] = attrs.field(factory=list)
    jvms: list[_Jvm] = attrs.field(factory=list)

    @property
    def connect(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def start(self, timeout: float = 90.0) -> "ZooKeeperEnsemble":
        self.client_ports = [free_port() for _ in range(self.size)]
        peers = [(free_port(), free_port()) for _ in range(self.size)]
        servers = [f"server.{i + 1}=127.0.0.1:{q}:{e}" for i, (q, e) in enumerate(peers)]
        for i in range(self.size):
            member = self.base_dir / f"zk{i + 1}"
            data_dir = member / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "myid").write_text(f"{i + 1}\n")
            lines = _base_cfg(data_dir, self.client_ports[i]) + [
                "initLimit=20", "syncLimit=10", *servers]
            cfg = member / "zoo.cfg"
            cfg.write_text("\n".join(lines) + "\n")
            jvm = _Jvm("org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg,
                       member / "zookeeper.log")
            self.jvms.append(jvm)
            jvm.start()
        try:
            for port in self.client_ports:
                _wait_until(lambda p=port: _serves_requests(p), timeout, f"quorum member {port}")
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop_member(self, index: int) -> None:
        self.jvms[index].stop()

    def start_member(self, index: int, timeout: float = 60.0) -> None:
        self.jvms[index].start()
        port = self.client_ports[index]
        _wait_until(lambda: _serves_requests(port), timeout, f"quorum member {port}")

    def stop(self) -> None:
        for jvm in self.jvms:
            jvm.stop()

    def __enter__(self) -> "ZooKeeperEnsemble":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One standalone ZooKeeper for the whole test session; use `unique_chroot()` per test."""
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
