"""The compat suite's cluster and its client x scenario matrix.

* `compat_cluster` (module scope): three kafkapy brokers on the session's 3-node ZooKeeper
  ensemble, in their own chroot. A test that kills a broker restarts it; the fixture checks
  before every test that all three run (`compat_brokers`).
* Every `test_compat[scenario-client]` result lands in one table, printed at the end of the
  run as the client x scenario matrix (PASS / FAIL / SKIP / ERROR, "-" = not run, "PASS*" =
  passed without the operations the client lacks, listed under the table) and written to
  <rootdir>/.run/compat-matrix.txt.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compat_matrix import render_matrix  # noqa: E402
from tests.broker_fixture import BrokerCluster, BrokerProcess  # noqa: E402
from tests.zk_fixture import ZooKeeperEnsemble, unique_chroot  # noqa: E402


#: 3 brokers on a loaded 2-core machine: quick failure detection, leadership only moves when a
#: test moves it; internal topics replicated 3 times like the data.
CLUSTER_OVERRIDES = {
    "zookeeper.session.timeout.ms": "6000",
    "replica.lag.time.max.ms": "3000",
    "controlled.shutdown.retry.backoff.ms": "500",
    "auto.leader.rebalance.enable": "false",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    "num.partitions": "3",
    "default.replication.factor": "3",
}

#: (client, scenario) -> (status, note); filled by the report hook below.
RESULTS: dict[tuple[str, str], tuple[str, str]] = {}
#: client -> {operation it lacks: reason}, as the cells that passed without it reported.
LACKS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def compat_cluster(zookeeper_ensemble: ZooKeeperEnsemble,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerCluster]:
    cluster = BrokerCluster(zookeeper_ensemble.connect, tmp_path_factory.mktemp("compat"),
                            chroot=unique_chroot(), overrides=CLUSTER_OVERRIDES)
    try:
        started = [cluster.start(broker_id=i, wait=False) for i in range(3)]
        for b in started:
            b.wait_ready(90)
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def compat_brokers(compat_cluster: BrokerCluster, request: pytest.FixtureRequest
                   ) -> dict[int, BrokerProcess]:
    """The cluster's brokers, all running (a broker a failover test left down is restarted)."""
    for b in compat_cluster.brokers.values():
        if not b.running():
            b.start(90)
    return compat_cluster.brokers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "client" not in params or "scenario" not in params:
        return
    cell = (params["client"], params["scenario"])
    if rep.failed and "compat_brokers" in getattr(item, "funcargs", {}):
        for b in item.funcargs["compat_brokers"].values():
            rep.sections.append((f"broker {b.broker_id} output", b.output_tail(6000)))
    notes = "; ".join(v for k, v in item.user_properties if k == "compat_note")
    lacks = [v for k, v in item.user_properties if k == "compat_lacks"]
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        if rep.skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            RESULTS[cell] = ("SKIP", reason.removeprefix("Skipped: "))
        elif rep.failed:
            RESULTS[cell] = ("FAIL" if rep.when == "call" else "ERROR",
                             _first_line(rep.longreprtext))
        else:
            RESULTS[cell] = ("PASS*" if lacks else "PASS", notes)
            for op, reason in lacks:
                LACKS.setdefault(cell[0], {})[op] = reason


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("E "):
            return line[1:].strip()[:200]
    return text.strip().splitlines()[-1][:200] if text.strip() else ""


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not RESULTS:
        return
    text = render_matrix(RESULTS, LACKS)
    terminalreporter.write_sep("=", "client compatibility matrix (client x scenario)")
    terminalreporter.write(text)
    out = Path(config.rootpath) / ".run" / "compat-matrix.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    terminalreporter.write_line(f"(written to {out})")
