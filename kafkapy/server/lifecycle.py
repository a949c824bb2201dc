"""Pieces of the broker life cycle that need configuration or the controller.

`controlled_shutdown` is Kafka's: ask the controller (over the wire, even when it is this
very broker) to move leadership off this broker, retry a few times, then stop anyway.
"""
from __future__ import annotations

import logging
from typing import Any

import trio

from kafkapy.config.broker import KafkaConfig
from kafkapy.log import LogConfig, LogManager
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode

log = logging.getLogger(__name__)


def log_manager_from_config(cfg: KafkaConfig, broker_id: int, cluster_id: str) -> LogManager:
    """Open (and recover) every log under `log.dirs` with the broker's topic defaults."""
    from kafkapy.config.topic import effective_topic_props

    defaults = LogConfig.from_props(effective_topic_props(cfg, {}))
    return LogManager(
        list(cfg.log_dirs), broker_id, defaults,
        cluster_id=cluster_id,
        retention_check_interval_ms=cfg.get("log.retention.check.interval.ms"),
        flush_check_interval_ms=cfg.get("log.flush.scheduler.interval.ms"),
        recovery_point_checkpoint_interval_ms=cfg.get("log.flush.offset.checkpoint.interval.ms"),
        log_start_checkpoint_interval_ms=cfg.get(
            "log.flush.start.offset.checkpoint.interval.ms"),
        hw_checkpoint_interval_ms=cfg.get("replica.high.watermark.checkpoint.interval.ms"),
        producer_id_expiration_ms=cfg.get("producer.id.expiration.ms"),
    )


async def generate_broker_id(zk, reserved_max_id: int) -> int:
    """Kafka's broker.id generation: bump `/brokers/seqid`; id = its new zkVersion + reserved max."""
    from kafkapy.zk import paths

    def bump() -> int:
        return zk.kazoo.set(paths.BROKER_SEQID, b"").version

    return await zk.session.call(bump) + reserved_max_id


def resolve_broker_id(cfg: KafkaConfig) -> int | None:
    """broker.id from the config, else from meta.properties; None = generate one."""
    if cfg.broker_id >= 0:
        return cfg.broker_id
    stored = LogManager.read_meta_properties(cfg.log_dirs).get("broker.id")
    return int(stored) if stored is not None else None


async def controlled_shutdown(server: Any) -> bool:
    """Returns True once the controller reports no partitions left led by this broker."""
    from kafkapy.network.client import BrokerConnection
    from kafkapy.protocol.messages.controlled_shutdown import ControlledShutdownRequest

    cfg = server.config
    retries = cfg.get("controlled.shutdown.max.retries")
    backoff = cfg.get("controlled.shutdown.retry.backoff.ms") / 1000
    for attempt in range(1, retries + 1):
        controller = server.metadata_cache.get_broker(server.metadata_cache.controller_id)
        if controller is None:
            log.info("controlled shutdown: no controller known, stopping without it")
            return False
        try:
            with trio.fail_after(cfg.get("controller.socket.timeout.ms") / 1000):
                conn = await BrokerConnection.connect(controller.host, controller.port,
                                                      f"broker-{server.broker_id}-shutdown")
                try:
                    resp = await conn.send(ApiKey.CONTROLLED_SHUTDOWN, 3,
                                           ControlledShutdownRequest(
                                               broker_id=server.broker_id,
                                               broker_epoch=server.broker_epoch))
                finally:
                    await conn.aclose()
        except (OSError, trio.TooSlowError, ConnectionError) as e:
            log.warning("controlled shutdown attempt %d failed: %s", attempt, e)
        else:
            if resp.error_code == ErrorCode.NONE and not resp.remaining_partitions:
                log.info("controlled shutdown succeeded")
                return True
            log.info("controlled shutdown attempt %d: error %s, %d partitions remaining",
                     attempt, ErrorCode(resp.error_code).name, len(resp.remaining_partitions))
        await trio.sleep(backoff)
    log.warning("controlled shutdown failed after %d attempts; stopping anyway", retries)
    return False
