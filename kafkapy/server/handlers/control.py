"""The controller's requests to brokers (LeaderAndIsr, UpdateMetadata, StopReplica) and a
broker's ControlledShutdown request to the controller.

Every request is fenced: a stale controller epoch or a broker epoch from an earlier
incarnation of this broker is refused, so a zombie controller cannot move leadership.
"""
from __future__ import annotations

import logging

from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.controlled_shutdown import (
    ControlledShutdownRequest,
    ControlledShutdownResponse,
)
from kafkapy.protocol.messages.leader_and_isr import LeaderAndIsrRequest, LeaderAndIsrResponse
from kafkapy.protocol.messages.stop_replica import StopReplicaRequest, StopReplicaResponse
from kafkapy.protocol.messages.update_metadata import (
    UpdateMetadataRequest,
    UpdateMetadataResponse,
)
from kafkapy.server.context import RequestContext

log = logging.getLogger(__name__)


def stale_broker_epoch(current_epoch: int, request_epoch: int) -> bool:
    """A control request addressed to an earlier incarnation of this broker (-1 in the
    request, from versions without the field, is accepted as in Kafka)."""
    return request_epoch != -1 and request_epoch < current_epoch


async def _stale_broker_epoch(server, request_epoch: int) -> bool:
    """Like Kafka, judge a control request only once this broker is registered.

    The listener runs before the broker registers in ZooKeeper, and a broker restarted within
    its predecessor's session timeout waits there until the old registration expires. A
    controller that still believes in the predecessor keeps sending it requests; judged
    against "no epoch yet" they would pass, and a stale UpdateMetadata left a partial cache
    (a topic answered without some of its partitions, which kafkajs then silently never
    produced to) and a stale LeaderAndIsr would act on the old incarnation's word. Waiting
    for the registration also keeps the controller's first requests to the new incarnation
    (which carry its new epoch) from being refused if they overtake our own registration.
    """
    if request_epoch != -1 and not server.registered.is_set():
        await server.registered.wait()
    return stale_broker_epoch(server.broker_epoch, request_epoch)


def _topic_states_v2(req, version: int):
    """LeaderAndIsr/UpdateMetadata before v2/v5 list partitions flat; regroup them by topic."""
    if getattr(req, "topic_states", None) or not getattr(req, "ungrouped_partition_states", None):
        return req.topic_states

    class _Topic:
        __slots__ = ("topic_name", "topic_id", "partition_states")

    grouped: dict[str, _Topic] = {}
    for ps in req.ungrouped_partition_states:
        t = grouped.get(ps.topic_name)
        if t is None:
            t = grouped[ps.topic_name] = _Topic()
            t.topic_name, t.topic_id, t.partition_states = ps.topic_name, b"\0" * 16, []
        t.partition_states.append(ps)
    return list(grouped.values())


async def handle_leader_and_isr(ctx: RequestContext,
                                req: LeaderAndIsrRequest) -> LeaderAndIsrResponse:
    server = ctx.server
    version = ctx.api_version
    if await _stale_broker_epoch(server, req.broker_epoch):
        return LeaderAndIsrResponse(error_code=ErrorCode.STALE_BROKER_EPOCH)
    topic_states = _topic_states_v2(req, version)
    try:
        errors = await server.replica_manager.become_leader_or_follower(req.controller_epoch,
                                                                        topic_states)
    except KafkaError as e:
        log.warning("rejected LeaderAndIsr from controller %d: %s", req.controller_id, e)
        return LeaderAndIsrResponse(error_code=e.code)
    ids = {ts.topic_name: (bytes(ts.topic_id) if getattr(ts, "topic_id", None) else b"\0" * 16)
           for ts in topic_states}
    if version >= 5:
        by_topic: dict[str, list] = {}
        for tp, code in errors.items():
            by_topic.setdefault(tp.topic, []).append(
                LeaderAndIsrResponse.LeaderAndIsrPartitionError(partition_index=tp.partition,
                                                                error_code=code))
        topics = [LeaderAndIsrResponse.LeaderAndIsrTopicError(topic_id=ids[t], partition_errors=p)
                  for t, p in by_topic.items()]
        return LeaderAndIsrResponse(error_code=ErrorCode.NONE, topics=topics)
    flat = [LeaderAndIsrResponse.LeaderAndIsrPartitionError(
        topic_name=tp.topic, partition_index=tp.partition, error_code=code)
        for tp, code in errors.items()]
    return LeaderAndIsrResponse(error_code=ErrorCode.NONE, partition_errors=flat)


async def handle_update_metadata(ctx: RequestContext,
                                 req: UpdateMetadataRequest) -> UpdateMetadataResponse:
    server = ctx.server
    if await _stale_broker_epoch(server, req.broker_epoch):
        return UpdateMetadataResponse(error_code=ErrorCode.STALE_BROKER_EPOCH)
    cache = server.metadata_cache
    if req.controller_epoch < cache.controller_epoch:
        return UpdateMetadataResponse(error_code=ErrorCode.STALE_CONTROLLER_EPOCH)
    if ctx.api_version < 5:
        req.topic_states = _topic_states_v2(req, ctx.api_version)
    deleted = cache.update(req)
    server.on_metadata_updated(deleted)
    return UpdateMetadataResponse(error_code=ErrorCode.NONE)


async def handle_stop_replica(ctx: RequestContext, req: StopReplicaRequest) -> StopReplicaResponse:
    server = ctx.server
    if await _stale_broker_epoch(server, req.broker_epoch):
        return StopReplicaResponse(error_code=ErrorCode.STALE_BROKER_EPOCH)
    rm = server.replica_manager
    try:
        rm.check_controller_epoch(req.controller_epoch)
    except KafkaError as e:
        return StopReplicaResponse(error_code=e.code)
    work: list[tuple[TopicPartition, int, bool]] = []
    if ctx.api_version >= 3:
        for ts in req.topic_states:
            for ps in ts.partition_states:
                work.append((TopicPartition(ts.topic_name, ps.partition_index), ps.leader_epoch,
                             ps.delete_partition))
    elif ctx.api_version >= 1:
        for t in req.topics:
            for p in t.partition_indexes:
                work.append((TopicPartition(t.name, p), -1, req.delete_partitions))
    else:
        for p in req.ungrouped_partitions:
            work.append((TopicPartition(p.topic_name, p.partition_index), -1,
                         req.delete_partitions))
    errors = []
    for tp, epoch, delete in work:
        code = rm.stop_replica(tp, epoch, delete)
        log.info("stopped replica %s (delete=%s): %s", tp, delete, code.name)
        errors.append(StopReplicaResponse.StopReplicaPartitionError(
            topic_name=tp.topic, partition_index=tp.partition, error_code=code))
    return StopReplicaResponse(error_code=ErrorCode.NONE, partition_errors=errors)


async def handle_controlled_shutdown(ctx: RequestContext, req: ControlledShutdownRequest
                                     ) -> ControlledShutdownResponse:
    server = ctx.server
    controller = server.controller
    if controller is None or not controller.is_active:
        return ControlledShutdownResponse(error_code=ErrorCode.NOT_CONTROLLER)
    code, remaining = await controller.controlled_shutdown(req.broker_id, req.broker_epoch)
    parts = [ControlledShutdownResponse.RemainingPartition(topic_name=tp.topic,
                                                           partition_index=tp.partition)
             for tp in remaining]
    return ControlledShutdownResponse(error_code=code, remaining_partitions=parts)


HANDLERS = {
    ApiKey.LEADER_AND_ISR: handle_leader_and_isr,
    ApiKey.UPDATE_METADATA: handle_update_metadata,
    ApiKey.STOP_REPLICA: handle_stop_replica,
    ApiKey.CONTROLLED_SHUTDOWN: handle_controlled_shutdown,
}
