"""Metadata: answered from the metadata cache, creating unknown topics when allowed."""
from __future__ import annotations

import logging

from kafkapy.cluster.replica_manager import INTERNAL_TOPICS
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.metadata import MetadataRequest, MetadataResponse
from kafkapy.server.context import RequestContext
from kafkapy.server.topic_names import validate_topic_name

log = logging.getLogger(__name__)

Broker = MetadataResponse.MetadataResponseBroker
Topic = MetadataResponse.MetadataResponseTopic
Partition = MetadataResponse.MetadataResponsePartition
ZERO_UUID = b"\0" * 16


def topic_metadata(server, name: str, version: int) -> Topic:
    cache = server.metadata_cache
    parts = []
    for index, info in sorted(cache.partitions(name).items()):
        alive = cache.get_broker(info.leader) is not None
        parts.append(Partition(
            error_code=ErrorCode.NONE if alive else ErrorCode.LEADER_NOT_AVAILABLE,
            partition_index=index, leader_id=info.leader if alive else -1,
            leader_epoch=info.leader_epoch, replica_nodes=list(info.replicas),
            isr_nodes=list(info.isr), offline_replicas=list(info.offline_replicas)))
    return Topic(error_code=ErrorCode.NONE, name=name, topic_id=cache.topic_id(name),
                 is_internal=name in INTERNAL_TOPICS, partitions=parts)


async def handle_metadata(ctx: RequestContext, req: MetadataRequest) -> MetadataResponse:
    server = ctx.server
    cache = server.metadata_cache
    version = ctx.api_version
    topics: list[Topic] = []
    if req.topics is None or (version == 0 and not req.topics):
        names = cache.topics()
        topics = [topic_metadata(server, n, version) for n in names]
    else:
        allow_auto = server.config.get("auto.create.topics.enable") and (
            version < 4 or req.allow_auto_topic_creation)
        for wanted in req.topics:
            name = wanted.name
            if name is None:
                topic_id = bytes(wanted.topic_id)
                name = cache.topic_name(topic_id)
                if name is None:
                    topics.append(Topic(error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None,
                                        topic_id=topic_id, partitions=[]))
                    continue
            if cache.contains_topic(name):
                topics.append(topic_metadata(server, name, version))
                continue
            topics.append(await _missing_topic(server, name, allow_auto))
    brokers = [Broker(node_id=b.id, host=b.host, port=b.port, rack=b.rack)
               for b in cache.alive_brokers()]
    return MetadataResponse(throttle_time_ms=0, brokers=brokers, cluster_id=server.cluster_id,
                            controller_id=cache.controller_id, topics=topics)


async def _missing_topic(server, name: str, allow_auto: bool) -> Topic:
    try:
        validate_topic_name(name)
    except KafkaError as e:
        return Topic(error_code=e.code, name=name, topic_id=ZERO_UUID, partitions=[])
    if not allow_auto:
        return Topic(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name,
                     topic_id=ZERO_UUID, partitions=[])
    try:
        if name in INTERNAL_TOPICS:
            await server.ensure_internal_topic(name)
        else:
            await server.auto_create_topic(name)
    except KafkaError as e:
        if e.code != ErrorCode.TOPIC_ALREADY_EXISTS:
            log.warning("auto-creating topic %s failed: %s", name, e)
            return Topic(error_code=e.code, name=name, topic_id=ZERO_UUID, partitions=[])
    # Like Kafka: the first answer says the leader is not there yet; clients retry.
    return Topic(error_code=ErrorCode.LEADER_NOT_AVAILABLE, name=name, topic_id=ZERO_UUID,
                 partitions=[])


HANDLERS = {ApiKey.METADATA: handle_metadata}
