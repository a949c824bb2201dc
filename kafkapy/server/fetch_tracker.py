"""Commit-audit plumbing of one broker: which client identity was served which offsets by
Fetch, published to ZooKeeper; commits judged against every broker's table; findings logged
(WARN) and kept in ZooKeeper for `kafkapy-consumer-groups --audit`.

ZooKeeper nodes (JSON, kafkapy-only):
* `/kafkapy/audit/served/<broker id>` - this broker's served table, rewritten at most once a
  second and only when it changed (persistent: survives the broker for later audits).
* `/kafkapy/audit/groups/<group>` - findings of the group, appended by its coordinator.

Cost on the Fetch path: for consumer fetches that returned records, one small pread per
returned batch header (to find the last offset) and a dict update per partition.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import time
from typing import Any

import trio

from kafkapy.coordinator.group.audit import CommitAudit, Finding, ServedTable, parse_findings

log = logging.getLogger("kafkapy.audit")

SERVED_ROOT = "/kafkapy/audit/served"
GROUPS_ROOT = "/kafkapy/audit/groups"
PUBLISH_INTERVAL_S = 1.0
MAX_PUBLISHED_BYTES = 900_000
_HEAD = struct.Struct(">qi")  # base offset (v2) / offset (v0/v1), length
_DELTA = struct.Struct(">i")
_WINDOW = 8192


def _pread(records: Any, pos: int, n: int) -> bytes:
    if getattr(records, "is_file_records", False):
        return os.pread(records.file.fileno(), n, records.position + pos)
    return bytes(records[pos:pos + n])


def served_end_offset(records: Any) -> int | None:
    """Next offset after the last record in a Fetch answer's records (whole batches), or
    None when there are none. Magic sits at byte 16 in every format; v2 batches carry
    lastOffsetDelta at byte 23, a v0/v1 (wrapper) message's offset is its last offset.
    Headers are read through an 8 KiB window, so many small batches cost few preads."""
    size = len(records) if records is not None else 0
    pos, end = 0, None
    buf, buf_at = b"", 0
    while pos + 27 <= size:
        if pos < buf_at or pos + 27 > buf_at + len(buf):
            buf, buf_at = _pread(records, pos, min(_WINDOW, size - pos)), pos
            if len(buf) < 27:
                break
        at = pos - buf_at
        base, length = _HEAD.unpack_from(buf, at)
        if length < 0 or pos + 12 + length > size:
            break  # a trailing partial batch is not served
        if buf[at + 16] >= 2:
            end = base + _DELTA.unpack_from(buf, at + 23)[0] + 1
        else:
            end = base + 1
        pos += 12 + length
    return end


class AuditService:
    """The broker's served table, its publisher, and the coordinator-side commit audit."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.served = ServedTable()
        self.audit = CommitAudit()
        self._published = -1
        self._remote: list[ServedTable] = []
        self._wake = trio.Event()
        self._too_large_warned = False

    # ---------------------------------------------------------------- fetch side

    def on_fetch(self, client_id: str | None, host: str | None, topic: str, partition: int,
                 records: Any, next_offset: int = -1) -> None:
        """Called by the Fetch handler for a consumer's partition answer. `next_offset` is
        the served end when the log read knew it; otherwise (converted data) it is read
        from the records' headers."""
        if records is None or len(records) == 0:
            return
        end: int | None = next_offset
        if end < 0:
            try:
                end = served_end_offset(records)
            except OSError:
                return  # segment deleted under us: the audit loses one sample
        if end is not None:
            self.served.record(client_id or "", host or "", (topic, partition), end)

    # ---------------------------------------------------------------- commit side

    def on_commit(self, group: str, member_id: str, client_id: str, host: str,
                  commits: dict[tuple[str, int], int],
                  previous: dict[tuple[str, int], int | None],
                  members: list[tuple[str, str]]) -> None:
        """Called by the OffsetCommit handler with the commits that succeeded."""
        now = int(time.time() * 1000)
        self.audit.note_members(group, members)
        tables = [self.served, *self._remote]
        found: list[Finding] = []
        for tp, offset in commits.items():
            found += self.audit.on_commit(group, member_id, client_id, host, tp, offset,
                                          previous.get(tp), tables, now)
        if found:
            self._report(found)
        self._wake.set()

    def _report(self, found: list[Finding]) -> None:
        for f in found:
            log.warning("%s", f.log_line())
        nursery = getattr(self.server, "audit_nursery", None)
        if nursery is not None:
            nursery.start_soon(self._store, found)

    async def _store(self, found: list[Finding]) -> None:
        zk = self.server.zk
        for group in {f.group for f in found}:
            path = f"{GROUPS_ROOT}/{group}"
            try:
                cur = await zk.get_data(path)
                old = parse_findings(cur[0]) if cur else []
                new = old + [f for f in found if f.group == group and f not in old]
                await zk.set_or_create(path, json.dumps([f.to_dict() for f in new[-200:]])
                                       .encode())
            except Exception:  # noqa: BLE001 - the WARN line is already in the log
                log.exception("could not store audit findings of group %s", group)

    async def _refresh_remote(self) -> None:
        zk = self.server.zk
        tables = []
        for child in await zk.get_children(SERVED_ROOT):
            if child == str(self.server.broker_id):
                continue
            got = await zk.get_data(f"{SERVED_ROOT}/{child}")
            if got is not None:
                try:
                    tables.append(ServedTable.from_json(got[0]))
                except (ValueError, KeyError, TypeError):
                    log.warning("unreadable served table of broker %s", child)
        self._remote = tables

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Publish the served table and re-check suspicious commits when due."""
        async with trio.open_nursery() as nursery:
            self.server.audit_nursery = nursery
            task_status.started()
            while True:
                with trio.move_on_after(PUBLISH_INTERVAL_S):
                    await self._wake.wait()
                self._wake = trio.Event()
                try:
                    await self._tick()
                except trio.Cancelled:
                    raise
                except Exception:  # noqa: BLE001 - ZooKeeper hiccup: try again next tick
                    log.exception("commit audit tick failed")

    async def _tick(self) -> None:
        if self.served.version != self._published:
            version = self.served.version
            raw = self.served.to_json()
            if len(raw) > MAX_PUBLISHED_BYTES:
                # a znode holds at most ~1 MB: other coordinators miss this broker's newer
                # serves, which can only produce beyond-served findings, so say so (once)
                if not self._too_large_warned:
                    log.warning("served table of %d bytes too large for ZooKeeper; not "
                                "published", len(raw))
                self._too_large_warned = True
            else:
                await self.server.zk.set_or_create(f"{SERVED_ROOT}/{self.server.broker_id}",
                                                   raw)
            self._published = version
        due = self.audit.next_due()
        if due is not None and due <= int(time.time() * 1000):
            await self._refresh_remote()
            found = self.audit.recheck(int(time.time() * 1000), [self.served, *self._remote])
            if found:
                self._report(found)
