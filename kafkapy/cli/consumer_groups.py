"""`kafkapy-consumer-groups`: Kafka's kafka-consumer-groups.sh --list/--describe, plus
kafkapy's commit audit (`--describe --group G --audit`).

Speaks the Kafka protocol with kafkapy's own codec. The audit findings are not part of any
Kafka API: the group's coordinator keeps them in ZooKeeper (`/kafkapy/audit/groups/<group>`,
see kafkapy/server/fetch_tracker.py), so `--audit` asks a broker for its `zookeeper.connect`
(DescribeConfigs) and reads that node; `--zookeeper` overrides.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from datetime import datetime, timezone
from typing import Any

import trio

from kafkapy.coordinator.group.audit import Finding, parse_findings
from kafkapy.network.client import BrokerConnection
from kafkapy.network.errors import BrokerConnectionError
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.messages.describe_configs import DescribeConfigsRequest
from kafkapy.protocol.messages.describe_groups import DescribeGroupsRequest
from kafkapy.protocol.messages.find_coordinator import FindCoordinatorRequest
from kafkapy.protocol.messages.list_groups import ListGroupsRequest
from kafkapy.protocol.messages.list_offsets import ListOffsetsRequest
from kafkapy.protocol.messages.metadata import MetadataRequest
from kafkapy.protocol.messages.offset_fetch import OffsetFetchRequest

CLIENT_ID = "kafkapy-consumer-groups"
COLUMNS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
           "CONSUMER-ID", "HOST", "CLIENT-ID")
AUDIT_COLUMNS = ("GROUP", "TOPIC", "PARTITION", "FINDING", "OFFSET", "REFERENCE",
                 "CONSUMER-ID", "HOST", "CLIENT-ID", "TIME")


class CliError(Exception):
    pass


def parse_assignment(raw: bytes) -> list[tuple[str, int]]:
    """ConsumerProtocolAssignment (any version): int16 version, [topic, [int32]], ..."""
    if not raw or len(raw) < 6:
        return []
    pos, out = 2, []
    (n,) = struct.unpack_from(">i", raw, pos)
    pos += 4
    for _ in range(max(n, 0)):
        (ln,) = struct.unpack_from(">h", raw, pos)
        topic = raw[pos + 2:pos + 2 + ln].decode()
        pos += 2 + ln
        (k,) = struct.unpack_from(">i", raw, pos)
        pos += 4
        for _ in range(max(k, 0)):
            out.append((topic, struct.unpack_from(">i", raw, pos)[0]))
            pos += 4
    return out


class Admin:
    """Connections by broker id, opened lazily from the bootstrap's metadata."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.conns: dict[Any, BrokerConnection] = {}
        self.brokers: dict[int, tuple[str, int]] = {}

    async def conn(self, node: Any = "bootstrap") -> BrokerConnection:
        if node not in self.conns:
            if node == "bootstrap":
                host, _, port = self.bootstrap.rpartition(":")
            else:
                host, port = self.brokers[node]
            self.conns[node] = await BrokerConnection.connect(host, int(port), CLIENT_ID,
                                                              timeout=10)
        return self.conns[node]

    async def close(self) -> None:
        for c in self.conns.values():
            await c.aclose()

    async def metadata(self, topics: list[str] | None) -> Any:
        req = MetadataRequest(topics=None if topics is None else [
            MetadataRequest.MetadataRequestTopic(name=t) for t in topics])
        resp = await (await self.conn()).send(ApiKey.METADATA, 1, req, timeout=15)
        self.brokers = {b.node_id: (b.host, b.port) for b in resp.brokers}
        return resp

    async def coordinator(self, group: str) -> BrokerConnection:
        resp = await (await self.conn()).send(ApiKey.FIND_COORDINATOR, 1, FindCoordinatorRequest(
            key=group, key_type=0), timeout=15)
        if resp.error_code:
            raise CliError(f"FindCoordinator for {group}: error {resp.error_code}")
        self.brokers[resp.node_id] = (resp.host, resp.port)
        return await self.conn(resp.node_id)

    async def list_groups(self) -> list[str]:
        await self.metadata([])
        groups: set[str] = set()
        for node in sorted(self.brokers):
            resp = await (await self.conn(node)).send(ApiKey.LIST_GROUPS, 1,
                                                      ListGroupsRequest(), timeout=15)
            groups.update(g.group_id for g in resp.groups)
        return sorted(groups)

    async def describe(self, group: str) -> list[tuple]:
        coord = await self.coordinator(group)
        desc = (await coord.send(ApiKey.DESCRIBE_GROUPS, 1,
                                 DescribeGroupsRequest(groups=[group]), timeout=15)).groups[0]
        if desc.error_code:
            raise CliError(f"DescribeGroups {group}: error {desc.error_code}")
        owner: dict[tuple[str, int], Any] = {}
        for m in desc.members:
            for tp in parse_assignment(bytes(m.member_assignment)):
                owner[tp] = m
        offs = await coord.send(ApiKey.OFFSET_FETCH, 3, OffsetFetchRequest(
            group_id=group, topics=None), timeout=15)
        committed = {(t.name, p.partition_index): p.committed_offset
                     for t in offs.topics for p in t.partitions}
        tps = sorted(set(committed) | set(owner))
        ends = await self.log_end_offsets(tps)
        rows = []
        for tp in tps:
            cur = committed.get(tp, -1)
            end = ends.get(tp)
            m = owner.get(tp)
            rows.append((group, tp[0], tp[1], cur if cur >= 0 else "-",
                         end if end is not None else "-",
                         end - cur if end is not None and cur >= 0 else "-",
                         m.member_id if m else "-", m.client_host if m else "-",
                         m.client_id if m else "-"))
        return rows

    async def log_end_offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not tps:
            return {}
        md = await self.metadata(sorted({t for t, _ in tps}))
        by_leader: dict[int, dict[str, list[int]]] = {}
        for t in md.topics:
            for p in t.partitions:
                if (t.name, p.partition_index) in tps and p.leader_id >= 0:
                    by_leader.setdefault(p.leader_id, {}).setdefault(t.name, []).append(
                        p.partition_index)
        out = {}
        for leader, topics in by_leader.items():
            req = ListOffsetsRequest(replica_id=-1, topics=[
                ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=[
                    ListOffsetsRequest.ListOffsetsPartition(partition_index=p, timestamp=-1)
                    for p in ps]) for t, ps in topics.items()])
            resp = await (await self.conn(leader)).send(ApiKey.LIST_OFFSETS, 1, req, timeout=15)
            for t in resp.topics:
                for p in t.partitions:
                    if p.error_code == 0:
                        out[(t.name, p.partition_index)] = p.offset
        return out

    async def zookeeper_connect(self) -> str:
        md = await self.metadata([])
        node = next(iter(sorted(self.brokers)))
        req = DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=4, resource_name=str(node), configuration_keys=["zookeeper.connect"])])
        resp = await (await self.conn(node)).send(ApiKey.DESCRIBE_CONFIGS, 1, req, timeout=15)
        for r in resp.results:
            for c in r.configs:
                if c.name == "zookeeper.connect" and c.value:
                    return c.value
        raise CliError(f"broker {node} (cluster {md.cluster_id}) did not report "
                       "zookeeper.connect; pass --zookeeper")


def read_findings(zk_connect: str, group: str) -> list[Finding]:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError

    zk = KazooClient(hosts=zk_connect, timeout=10, read_only=True)
    zk.start(timeout=10)
    try:
        try:
            raw, _ = zk.get(f"/kafkapy/audit/groups/{group}")
        except NoNodeError:
            return []
        return parse_findings(raw)
    finally:
        zk.stop()
        zk.close()


def finding_row(f: Finding) -> tuple:
    when = datetime.fromtimestamp(f.time_ms / 1000, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    return (f.group, f.topic, f.partition, f.kind.upper().replace("_", "-"), f.offset,
            "-" if f.reference is None else f.reference, f.member_id or "-", f.host,
            f.client_id, when)


def table(header: tuple, rows: list[tuple]) -> str:
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


async def run(args: argparse.Namespace) -> int:
    admin = Admin(args.bootstrap_server)
    try:
        if args.list:
            for g in await admin.list_groups():
                print(g)
            return 0
        groups = args.group or (await admin.list_groups() if args.all_groups else [])
        if not groups:
            raise CliError("--describe needs --group G (or --all-groups)")
        status = 0
        for g in groups:
            rows = await admin.describe(g)
            if args.json:
                out: dict[str, Any] = {"group": g, "partitions": [
                    dict(zip(COLUMNS, r)) for r in rows]}
            else:
                print()
                print(table(COLUMNS, rows))
            if args.audit:
                zk = args.zookeeper or await admin.zookeeper_connect()
                found = await trio.to_thread.run_sync(read_findings, zk, g)
                status = status or (2 if found else 0)
                if args.json:
                    out["audit"] = [f.to_dict() for f in found]
                else:
                    print(f"\nCOMMIT AUDIT of group '{g}': {len(found)} finding(s)")
                    if found:
                        print(table(AUDIT_COLUMNS, [finding_row(f) for f in found]))
            if args.json:
                print(json.dumps(out))
        return status
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kafkapy-consumer-groups", description=__doc__.split(
        "\n")[0])
    p.add_argument("--bootstrap-server", required=True, help="HOST:PORT of any broker")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true")
    mode.add_argument("--describe", action="store_true")
    p.add_argument("--group", action="append", help="group to describe (repeatable)")
    p.add_argument("--all-groups", action="store_true")
    p.add_argument("--audit", action="store_true",
                   help="kafkapy only: list commits beyond served offsets or moving backwards "
                        "(exit status 2 when there are findings)")
    p.add_argument("--zookeeper", help="ZooKeeper connect string for --audit (default: the "
                                       "broker's zookeeper.connect)")
    p.add_argument("--json", action="store_true", help="one JSON object per group")
    args = p.parse_args(argv)
    try:
        return trio.run(run, args)
    except (CliError, OSError, BrokerConnectionError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
