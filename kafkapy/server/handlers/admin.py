"""CreateTopics, DeleteTopics, CreatePartitions.

In ZooKeeper mode these must reach the controller (else NOT_CONTROLLER, and the client
re-sends them there). Each answer waits, up to the request's timeout, until the controller's
decision is visible in this broker's metadata cache.
"""
from __future__ import annotations

import logging

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.create_partitions import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
)
from kafkapy.protocol.messages.create_topics import CreateTopicsRequest, CreateTopicsResponse
from kafkapy.protocol.messages.delete_topics import DeleteTopicsRequest, DeleteTopicsResponse
from kafkapy.server.context import RequestContext

log = logging.getLogger(__name__)

ZERO_UUID = b"\0" * 16
NOT_CONTROLLER_MSG = "This is not the correct controller for this cluster."


def _is_controller(server) -> bool:
    return server.controller is not None and server.controller.is_active


async def handle_create_topics(ctx: RequestContext, req: CreateTopicsRequest
                               ) -> CreateTopicsResponse:
    server = ctx.server
    results = []
    created: list[tuple[object, list[int]]] = []
    names = [t.name for t in req.topics]
    for topic in req.topics:
        result = CreateTopicsResponse.CreatableTopicResult(
            name=topic.name, topic_id=ZERO_UUID, error_code=ErrorCode.NONE, error_message=None)
        results.append(result)
        try:
            if not _is_controller(server):
                raise KafkaError(ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MSG)
            if names.count(topic.name) > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 f"Create topics request from client contains a duplicate "
                                 f"topic {topic.name}")
            configs = {}
            for c in topic.configs:
                if c.value is None:
                    raise KafkaError(ErrorCode.INVALID_CONFIG,
                                     f"Null value not supported for topic config {c.name}")
                configs[c.name] = c.value
            assignment = {a.partition_index: list(a.broker_ids) for a in topic.assignments}
            info = await server.admin.create_topic(topic.name, topic.num_partitions,
                                                   topic.replication_factor, assignment or None,
                                                   configs, req.validate_only)
        except KafkaError as e:
            result.error_code, result.error_message = e.code, e.message or None
            continue
        result.topic_id = info.topic_id if not req.validate_only else ZERO_UUID
        result.num_partitions = len(info.assignment)
        result.replication_factor = len(next(iter(info.assignment.values())))
        if ctx.api_version >= 5:
            result.configs = _describe_created(server, info.configs)
        if not req.validate_only:
            created.append((result, sorted(info.assignment)))
    for result, partitions in created:
        ok = await server.admin.wait_for_leaders(result.name, partitions, req.timeout_ms)
        if not ok and req.timeout_ms > 0:
            result.error_code = ErrorCode.REQUEST_TIMED_OUT
            result.error_message = "Timed out waiting for the topic's leaders to be elected."
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


def _describe_created(server, overrides: dict[str, str]) -> list:
    from kafkapy.config.topic import describe_topic_configs

    entries = describe_topic_configs(server.config, overrides)
    return [CreateTopicsResponse.CreatableTopicConfigs(
        name=e.name, value=None if e.is_sensitive else e.value, read_only=e.read_only,
        config_source=e.source, is_sensitive=e.is_sensitive) for e in entries]


async def handle_delete_topics(ctx: RequestContext, req: DeleteTopicsRequest
                               ) -> DeleteTopicsResponse:
    server = ctx.server
    cache = server.metadata_cache
    wanted: list[tuple[str | None, bytes]] = []
    if ctx.api_version >= 6:
        for t in req.topics:
            if t.name is not None:
                wanted.append((t.name, cache.topic_id(t.name)))
            else:
                wanted.append((cache.topic_name(bytes(t.topic_id)), bytes(t.topic_id)))
    else:
        wanted = [(name, cache.topic_id(name)) for name in req.topic_names]
    results = []
    pending = []
    for name, topic_id in wanted:
        result = DeleteTopicsResponse.DeletableTopicResult(name=name, topic_id=topic_id,
                                                           error_code=ErrorCode.NONE)
        results.append(result)
        try:
            if not _is_controller(server):
                raise KafkaError(ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MSG)
            if name is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, "unknown topic id")
            await server.admin.delete_topic(name)
            pending.append(result)
        except KafkaError as e:
            result.error_code, result.error_message = e.code, e.message or None
    for result in pending:
        if not await server.admin.wait_for_deletion(result.name, req.timeout_ms) \
                and req.timeout_ms > 0:
            result.error_code = ErrorCode.REQUEST_TIMED_OUT
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


async def handle_create_partitions(ctx: RequestContext, req: CreatePartitionsRequest
                                   ) -> CreatePartitionsResponse:
    server = ctx.server
    results = []
    pending = []
    for topic in req.topics:
        result = CreatePartitionsResponse.CreatePartitionsTopicResult(
            name=topic.name, error_code=ErrorCode.NONE, error_message=None)
        results.append(result)
        try:
            if not _is_controller(server):
                raise KafkaError(ErrorCode.NOT_CONTROLLER, NOT_CONTROLLER_MSG)
            assignments = None
            if topic.assignments is not None:
                assignments = [list(a.broker_ids) for a in topic.assignments]
            new = await server.admin.create_partitions(topic.name, topic.count, assignments,
                                                       req.validate_only)
            if not req.validate_only:
                pending.append((result, sorted(new)))
        except KafkaError as e:
            result.error_code, result.error_message = e.code, e.message or None
    for result, partitions in pending:
        if not await server.admin.wait_for_leaders(result.name, partitions, req.timeout_ms) \
                and req.timeout_ms > 0:
            result.error_code = ErrorCode.REQUEST_TIMED_OUT
    return CreatePartitionsResponse(throttle_time_ms=0, results=results)


HANDLERS = {
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.DELETE_TOPICS: handle_delete_topics,
    ApiKey.CREATE_PARTITIONS: handle_create_partitions,
}
