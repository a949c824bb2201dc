"""Session fixtures shared by every test directory.

* `zookeeper` — one Debian ZooKeeper for the session (tests/zk_fixture.py).
* `broker` — one kafkapy broker for the session, num.partitions=3, at the ZooKeeper root.
  Tests sharing it use their own topic names.
* `broker_cluster` — a fresh `BrokerCluster` in its own ZooKeeper chroot for one test:
  `b = broker_cluster.start(overrides={...})`, then `b.kill9()`, `b.restart()`, `b.stop()`;
  everything it started is stopped by pid at teardown.

When a test that used a broker fails, the tail of every involved broker's output is attached
to the failure report.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `tests.*` helpers import as a package from the repo root
    sys.path.insert(0, str(REPO))

from tests.broker_fixture import BrokerCluster, BrokerProcess  # noqa: E402
from tests.zk_fixture import (  # noqa: E402,F401
    ZooKeeperEnsemble,
    ZooKeeperServer,
    unique_chroot,
    zookeeper_server,
)

#: The shared test broker's settings (on top of broker_fixture.TEST_DEFAULTS).
SHARED_BROKER_OVERRIDES = {"num.partitions": "3"}

_BROKERS_KEY = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def zookeeper(zookeeper_server: ZooKeeperServer) -> ZooKeeperServer:
    return zookeeper_server


@pytest.fixture(scope="session")
def _shared_cluster(zookeeper: ZooKeeperServer,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerCluster]:
    cluster = BrokerCluster(zookeeper.connect, tmp_path_factory.mktemp("shared-broker"),
                            overrides=SHARED_BROKER_OVERRIDES)
    try:
        cluster.start(broker_id=0)
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def broker(_shared_cluster: BrokerCluster, request: pytest.FixtureRequest) -> BrokerProcess:
    """The session's broker (function-scoped wrapper so a failure report can name it)."""
    b = _shared_cluster.brokers[0]
    request.node.stash.setdefault(_BROKERS_KEY, []).append(b)
    if not b.running():
        pytest.fail(f"the shared broker is not running (exit code {b.proc.returncode})\n"
                    f"{b.output_tail()}")
    return b


@pytest.fixture
def broker_cluster(zookeeper: ZooKeeperServer, tmp_path: Path,
                   request: pytest.FixtureRequest) -> Iterator[BrokerCluster]:
    cluster = _TrackedCluster(zookeeper.connect, tmp_path / "cluster", chroot=unique_chroot(),
                              tracker=request.node.stash.setdefault(_BROKERS_KEY, []))
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture(scope="session")
def zookeeper_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """A real 3-node ZooKeeper quorum for the multi-broker tests (started on first use)."""
    ensemble = ZooKeeperEnsemble(tmp_path_factory.mktemp("zk-ensemble"), size=3)
    ensemble.start()
    try:
        yield ensemble
    finally:
        ensemble.stop()


@pytest.fixture
def ensemble_cluster(zookeeper_ensemble: ZooKeeperEnsemble, tmp_path: Path,
                     request: pytest.FixtureRequest) -> Iterator[BrokerCluster]:
    """Like `broker_cluster`, but the brokers talk to the 3-node ensemble."""
    cluster = _TrackedCluster(zookeeper_ensemble.connect, tmp_path / "cluster",
                              chroot=unique_chroot(),
                              tracker=request.node.stash.setdefault(_BROKERS_KEY, []))
    try:
        yield cluster
    finally:
        cluster.stop_all()


class _TrackedCluster(BrokerCluster):
    """Remembers its brokers on the test item, for the failure report."""

    def __init__(self, *args, tracker: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._tracker = tracker

    def start(self, *args, **kwargs) -> BrokerProcess:
        try:
            b = super().start(*args, **kwargs)
        finally:
            for b2 in self.brokers.values():
                if b2 not in self._tracker:
                    self._tracker.append(b2)
        return b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in item.stash.get(_BROKERS_KEY, []):
            report.sections.append((f"broker {b.broker_id} output ({b.bootstrap})",
                                    b.output_tail()))
