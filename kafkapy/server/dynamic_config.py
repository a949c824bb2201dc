"""Applies config changes announced under `/config/changes` (Kafka's ZkConfigManager).

Whoever changes `/config/topics/<t>` or `/config/brokers/<id>` also creates a sequential
`config_change_<n>` node naming the entity; every broker watches the children, applies the
notifications newer than the last one it saw, and so picks up new topic settings (retention,
segment size, flush policy...) without a restart.
"""
from __future__ import annotations

import logging
from typing import Any

import trio

from kafkapy.log import LogConfig
from kafkapy.zk import paths
from kafkapy.zk.data import decode_config_change
from kafkapy.zk.events import ZkSessionEvent, ZkWatchEvent
from kafkapy.zk.session import unbounded_event_channel

log = logging.getLogger(__name__)

PREFIX = "config_change_"


def sequence_of(child: str) -> int:
    return int(child[len(PREFIX):]) if child.startswith(PREFIX) else -1


class DynamicConfigManager:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.last_seen = -1
        self._changes_dir = paths.parent(paths.config_change_prefix_path())

    async def _read_children(self) -> list[str]:
        return await self.server.zk.get_children(self._changes_dir, watch=True)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = unbounded_event_channel()
        zk = self.server.zk
        zk.add_event_channel(send)
        try:
            children = await self._read_children()
            # Everything before startup is already in what the logs read from ZooKeeper.
            self.last_seen = max((sequence_of(c) for c in children), default=-1)
            task_status.started()
            async for event in receive:
                if isinstance(event, ZkWatchEvent) and event.path == self._changes_dir:
                    await self._process(await self._read_children())
                elif isinstance(event, ZkSessionEvent) and event.state == "CONNECTED":
                    await self._process(await self._read_children())  # watches re-armed
        finally:
            zk.remove_event_channel(send)

    async def _process(self, children: list[str]) -> None:
        for child in sorted(children, key=sequence_of):
            seq = sequence_of(child)
            if seq <= self.last_seen:
                continue
            self.last_seen = seq
            found = await self.server.zk.get_data(f"{self._changes_dir}/{child}")
            if found is None:
                continue
            try:
                entity_type, entity_name = decode_config_change(found[0])
            except ValueError as e:
                log.warning("ignoring malformed config change %s: %s", child, e)
                continue
            await self._apply(entity_type, entity_name)

    async def _apply(self, entity_type: str, entity_name: str) -> None:
        server = self.server
        if entity_type == "topics":
            config: LogConfig = await server.log_config_for(entity_name)
            server.replica_manager.update_log_configs(entity_name, config)
            log.info("applied new configs of topic %s", entity_name)
        elif entity_type == "brokers" and entity_name in ("<default>", str(server.broker_id)):
            default = await server.zk.get_entity_config("brokers", "<default>")
            own = await server.zk.get_entity_config("brokers", str(server.broker_id))
            server.config = server.static_config.with_dynamic(default, own)
            for topic in {tp.topic for tp in server.replica_manager.partitions}:
                server.replica_manager.update_log_configs(topic,
                                                          await server.log_config_for(topic))
            log.info("applied dynamic broker configs: %s", {**default, **own})
