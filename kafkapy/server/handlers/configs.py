"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and brokers.

Overrides live in ZooKeeper (`/config/topics/<t>`, `/config/brokers/<id|<default>>`) with a
`config_change_` notification, exactly as Kafka's ZooKeeper mode keeps them; every broker
applies them when it sees the notification.
"""
from __future__ import annotations

import logging

from kafkapy.config import topic as topic_config
from kafkapy.config.broker import validate_dynamic_broker_configs
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.alter_configs import AlterConfigsRequest, AlterConfigsResponse
from kafkapy.protocol.messages.describe_configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from kafkapy.protocol.messages.incremental_alter_configs import (
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)
from kafkapy.server.context import RequestContext

log = logging.getLogger(__name__)

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
DEFAULT_BROKER = "<default>"


async def _topic_overrides(server, name: str) -> dict[str, str]:
    if not server.metadata_cache.contains_topic(name) and not await server.admin.topic_exists(name):
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                         f"Topic {name} does not exist")
    return await server.zk.get_entity_config("topics", name)


def _broker_entity(server, name: str) -> str:
    """'' names the cluster-wide default; otherwise it must be this broker's id."""
    if name == "":
        return DEFAULT_BROKER
    if name != str(server.broker_id):
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Unexpected broker id, expected {server.broker_id} or empty string, "
                         f"but received {name}")
    return name


async def handle_describe_configs(ctx: RequestContext, req: DescribeConfigsRequest
                                  ) -> DescribeConfigsResponse:
    server = ctx.server
    results = []
    for res in req.resources:
        result = DescribeConfigsResponse.DescribeConfigsResult(
            error_code=ErrorCode.NONE, error_message=None, resource_type=res.resource_type,
            resource_name=res.resource_name, configs=[])
        results.append(result)
        keys = None if res.configuration_keys is None else list(res.configuration_keys)
        try:
            if res.resource_type == TOPIC:
                overrides = await _topic_overrides(server, res.resource_name)
                entries = topic_config.describe_topic_configs(server.config, overrides, keys)
            elif res.resource_type == BROKER:
                entity = _broker_entity(server, res.resource_name)
                if entity == DEFAULT_BROKER:
                    dynamic = await server.zk.get_entity_config("brokers", DEFAULT_BROKER)
                    entries = [e for e in topic_config.describe_broker_configs(
                        server.config, keys) if e.name in dynamic]
                else:
                    entries = topic_config.describe_broker_configs(server.config, keys)
            else:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 f"unsupported resource type {res.resource_type}")
        except KafkaError as e:
            result.error_code, result.error_message = e.code, e.message or None
            continue
        for e in entries:
            entry = DescribeConfigsResponse.DescribeConfigsResourceResult(
                name=e.name, value=None if e.is_sensitive else e.value, read_only=e.read_only,
                is_default=e.source == 5, config_source=e.source, is_sensitive=e.is_sensitive,
                config_type=e.config_type, documentation=None)
            if req.include_synonyms:
                entry.synonyms = [DescribeConfigsResponse.DescribeConfigsSynonym(
                    name=n, value=v, source=s) for n, v, s in e.synonyms]
            result.configs.append(entry)
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


async def _alter(server, resource_type: int, name: str, new_values_for, validate_only: bool
                 ) -> None:
    """Validate and write one resource's new override set."""
    if resource_type == TOPIC:
        current = await _topic_overrides(server, name)
        updated = new_values_for(current, "topic")
        topic_config.validate_topic_configs(updated)
        if not validate_only:
            await server.zk.set_entity_config("topics", name, updated)
            log.info("updated configs of topic %s: %s", name, updated)
    elif resource_type == BROKER:
        entity = _broker_entity(server, name)
        current = await server.zk.get_entity_config("brokers", entity)
        updated = new_values_for(current, "broker")
        validate_dynamic_broker_configs(updated)
        if not validate_only:
            await server.zk.set_entity_config("brokers", entity, updated)
            log.info("updated dynamic configs of broker %s: %s", entity, updated)
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unsupported resource type {resource_type}")


async def handle_alter_configs(ctx: RequestContext, req: AlterConfigsRequest
                               ) -> AlterConfigsResponse:
    responses = []
    for res in req.resources:
        resp = AlterConfigsResponse.AlterConfigsResourceResponse(
            error_code=ErrorCode.NONE, error_message=None, resource_type=res.resource_type,
            resource_name=res.resource_name)
        responses.append(resp)
        values = {c.name: c.value for c in res.configs}
        try:
            if any(v is None for v in values.values()):
                raise KafkaError(ErrorCode.INVALID_REQUEST, "null config values are not allowed")
            await _alter(ctx.server, res.resource_type, res.resource_name,
                         lambda current, kind: dict(values), req.validate_only)
        except KafkaError as e:
            resp.error_code, resp.error_message = e.code, e.message or None
    return AlterConfigsResponse(throttle_time_ms=0, responses=responses)


async def handle_incremental_alter_configs(ctx: RequestContext,
                                           req: IncrementalAlterConfigsRequest
                                           ) -> IncrementalAlterConfigsResponse:
    responses = []
    seen: set[tuple[int, str]] = set()
    for res in req.resources:
        resp = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse(
            error_code=ErrorCode.NONE, error_message=None, resource_type=res.resource_type,
            resource_name=res.resource_name)
        responses.append(resp)
        ops = [(c.name, c.config_operation, c.value) for c in res.configs]
        try:
            key = (res.resource_type, res.resource_name)
            if key in seen:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "resource listed twice")
            seen.add(key)
            await _alter(ctx.server, res.resource_type, res.resource_name,
                         lambda current, kind: topic_config.apply_incremental(current, ops, kind),
                         req.validate_only)
        except KafkaError as e:
            resp.error_code, resp.error_message = e.code, e.message or None
    return IncrementalAlterConfigsResponse(throttle_time_ms=0, responses=responses)


HANDLERS = {
    ApiKey.DESCRIBE_CONFIGS: handle_describe_configs,
    ApiKey.ALTER_CONFIGS: handle_alter_configs,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: handle_incremental_alter_configs,
}
