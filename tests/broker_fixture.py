"""Start, probe and stop kafkapy broker processes for tests and benchmarks.

Readiness is checked with two tiny requests encoded here by hand with `struct` (ApiVersions
v0 and Metadata v1), so the fixture keeps working — and reports clearly — even when the
generated codec under test is broken.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import attrs

REPO = Path(__file__).resolve().parent.parent

API_VERSIONS = 18
METADATA = 3

#: Overrides every test broker gets: single-broker-friendly internal topics, no rebalance delay.
TEST_DEFAULTS: dict[str, str] = {
    "offsets.topic.replication.factor": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "true",
}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- hand-encoded probe requests -------------------------------------------------------------

def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _request(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    # Request header v1: api_key, api_version, correlation_id, client_id (nullable string).
    msg = struct.pack(">hhi", api_key, version, correlation_id) + _string("kafkapy-fixture") + body
    return struct.pack(">i", len(msg)) + msg


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("broker closed the connection mid-response")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _roundtrip(sock: socket.socket, api_key: int, version: int, correlation_id: int,
               body: bytes) -> memoryview:
    sock.sendall(_request(api_key, version, correlation_id, body))
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    resp = memoryview(_recv_exact(sock, size))
    (cid,) = struct.unpack_from(">i", resp, 0)
    if cid != correlation_id:
        raise ProbeError(f"correlation id {cid} in response, expected {correlation_id}")
    return resp[4:]


class ProbeError(Exception):
    """The broker answered, but not with what a Kafka broker would."""


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = bytes(self.buf[self.pos:self.pos + n]).decode()
        self.pos += n
        return s


def api_versions_v0(sock: socket.socket, correlation_id: int = 1) -> dict[int, tuple[int, int]]:
    """ApiVersions v0 -> {api_key: (min, max)}; raises ProbeError on a non-zero error code."""
    r = _Reader(_roundtrip(sock, API_VERSIONS, 0, correlation_id, b""))
    error = r.take(">h")
    if error:
        raise ProbeError(f"ApiVersions v0 error code {error}")
    out = {}
    for _ in range(r.take(">i")):
        key, lo, hi = r.take(">hhh")
        out[key] = (lo, hi)
    return out


@attrs.define
class MetadataV1:
    brokers: dict[int, tuple[str, int]]
    controller_id: int
    topics: dict[str, dict[int, int]]  # topic -> partition -> leader (only error-free ones)


def metadata_v1(sock: socket.socket, topics: list[str] | None = (),
                correlation_id: int = 2) -> MetadataV1:
    """Metadata v1. `topics=()` asks for no topics (never auto-creates); None asks for all."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
    r = _Reader(_roundtrip(sock, METADATA, 1, correlation_id, body))
    brokers = {}
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        host = r.string()
        port = r.take(">i")
        r.string()  # rack
        brokers[node_id] = (host, port)
    controller_id = r.take(">i")
    out_topics: dict[str, dict[int, int]] = {}
    for _ in range(r.take(">i")):
        terr = r.take(">h")
        name = r.string()
        r.take(">?")  # is_internal
        parts = {}
        for _ in range(r.take(">i")):
            perr, index, leader = r.take(">hii")
            for _array in ("replicas", "isr"):
                for _ in range(r.take(">i")):
                    r.take(">i")
            if perr == 0:
                parts[index] = leader
        if terr == 0:
            out_topics[name] = parts
    return MetadataV1(brokers, controller_id, out_topics)


def probe(host: str, port: int, broker_id: int, timeout: float = 2.0) -> str | None:
    """None when the broker is ready (answers ApiVersions v0 and lists itself in Metadata v1);
    otherwise a short reason, for the timeout message."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            versions = api_versions_v0(sock)
            if METADATA not in versions:
                return "ApiVersions does not list Metadata"
            md = metadata_v1(sock)
            if broker_id not in md.brokers:
                return f"Metadata lists brokers {sorted(md.brokers)}, not {broker_id} yet"
            return None
    except (OSError, ProbeError, struct.error, UnicodeDecodeError) as e:
        return f"{type(e).__name__}: {e}"


# --- processes -------------------------------------------------------------------------------

class BrokerStartError(RuntimeError):
    pass


@attrs.define(eq=False)
class BrokerProcess:
    """One kafkapy broker: fixed id, port and log dir across restarts (crash tests need that)."""

    broker_id: int
    port: int
    zk_connect: str
    workdir: Path
    overrides: dict[str, str] = attrs.field(factory=dict)
    host: str = "127.0.0.1"
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def output_path(self) -> Path:
        return self.workdir / "broker.out"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def properties(self) -> dict[str, str]:
        props = {
            "broker.id": str(self.broker_id),
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.log_dir),
            "zookeeper.connect": self.zk_connect,
        }
        props.update(TEST_DEFAULTS)
        props.update(self.overrides)
        return props

    def start(self, timeout: float = 60.0, wait: bool = True) -> "BrokerProcess":
        if self.running():
            raise BrokerStartError(f"broker {self.broker_id} already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        props_file = self.workdir / "server.properties"
        props_file.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        self.starts += 1
        out = open(self.output_path, "ab")
        out.write(f"\n===== start #{self.starts} of broker {self.broker_id} =====\n".encode())
        out.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            # Own session: a Ctrl-C on pytest must not hit the broker before the fixture stops it.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kafkapy.cli.server_start", str(props_file)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(self.workdir), env=env, start_new_session=True)
        finally:
            out.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        reason = "not probed yet"
        while time.monotonic() < deadline:
            if not self.running():
                raise BrokerStartError(
                    f"broker {self.broker_id} exited with code {self.proc.returncode} "
                    f"before it was ready\n{self.output_tail()}")
            reason = probe(self.host, self.port, self.broker_id)
            if reason is None:
                return
            time.sleep(0.1)  # poll interval of a condition wait, bounded by the deadline
        raise BrokerStartError(
            f"broker {self.broker_id} not ready after {timeout}s on {self.bootstrap}: "
            f"{reason}\n{self.output_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (controlled shutdown), then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill9(self) -> None:
        """Crash the broker: no shutdown hooks, no flush."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout: float = 60.0, **overrides: str) -> "BrokerProcess":
        self.stop()
        self.overrides.update(overrides)
        return self.start(timeout)

    def output_tail(self, max_bytes: int = 20000) -> str:
        try:
            data = self.output_path.read_bytes()
        except FileNotFoundError:
            return "(no broker output)"
        tail = data[-max_bytes:].decode(errors="replace")
        return f"--- last {len(tail)} chars of {self.output_path} ---\n{tail}"

    def cpu_ms(self) -> float:
        return cpu_ms_of(self.pid)


def cpu_ms_of(pid: int) -> float:
    """utime + stime of a process from /proc/<pid>/stat, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


class BrokerCluster:
    """Brokers sharing one ZooKeeper namespace (a chroot, so clusters in one ZooKeeper never see
    each other's topics). `start()` hands out broker ids 0, 1, 2... unless given one."""

    def __init__(self, zk_connect: str, workdir: Path, chroot: str = "",
                 overrides: Mapping[str, str] | None = None) -> None:
        self.zk_hosts = zk_connect
        self.chroot = chroot
        self.workdir = workdir
        self.overrides = dict(overrides or {})
        self.brokers: dict[int, BrokerProcess] = {}
        if chroot:
            _ensure_zk_path(zk_connect, chroot)

    @property
    def zk_connect(self) -> str:
        return self.zk_hosts + self.chroot

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def start(self, broker_id: int | None = None, overrides: Mapping[str, str] | None = None,
              timeout: float = 60.0, wait: bool = True) -> BrokerProcess:
        if broker_id is None:
            broker_id = max(self.brokers, default=-1) + 1
        if broker_id in self.brokers:
            return self.brokers[broker_id].start(timeout, wait)
        merged = dict(self.overrides)
        merged.update(overrides or {})
        b = BrokerProcess(broker_id=broker_id, port=free_port(), zk_connect=self.zk_connect,
                          workdir=self.workdir / f"broker-{broker_id}", overrides=merged)
        self.brokers[broker_id] = b
        return b.start(timeout, wait)

    def stop_all(self, timeout: float = 30.0) -> None:
        for b in self.brokers.values():
            b.stop(timeout)

    def outputs(self) -> str:
        return "\n".join(b.output_tail() for b in self.brokers.values())


def _ensure_zk_path(zk_hosts: str, path: str) -> None:
    # kazoo connects with the chroot in the host string but does not create it (nor does every
    # broker); create it up front so the brokers see an existing namespace.
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=zk_hosts, timeout=10)
    zk.start(timeout=15)
    try:
        zk.ensure_path(path)
    finally:
        zk.stop()
        zk.close()
