"""ElectLeaders (key 43, v0-2): preferred or unclean leader election on the active controller.

Admin clients send it to the controller; any other broker answers NOT_CONTROLLER (top level
from v1, and per listed partition, since v0 has no top-level code) so the client looks the
controller up again. As Kafka's DelayedElectLeader does, a successful election is only
reported once this broker's metadata cache shows the new leader, bounded by the request's
timeout (REQUEST_TIMED_OUT otherwise). With `topic_partitions = null` (all partitions)
partitions that needed no election are left out of the answer.
"""
from __future__ import annotations

from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.elect_leaders import ElectLeadersRequest, ElectLeadersResponse
from kafkapy.server.context import RequestContext

PREFERRED = 0
UNCLEAN = 1

_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.NOT_CONTROLLER: "This is not the correct controller for this cluster.",
    ErrorCode.ELECTION_NOT_NEEDED: "Leader election not needed for topic partition.",
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE:
        "Failed to elect leader: the preferred leader is not alive or not in the ISR.",
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE:
        "Failed to elect leader: no live replica is eligible to become leader.",
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "This server does not host this topic-partition.",
    ErrorCode.REQUEST_TIMED_OUT: "The new leader was not visible in the broker's metadata "
                                 "before the request timed out.",
    ErrorCode.INVALID_REQUEST: "Unknown election type.",
}


def _requested(req: ElectLeadersRequest) -> list[TopicPartition] | None:
    if req.topic_partitions is None:
        return None
    seen: dict[TopicPartition, None] = {}
    for t in req.topic_partitions:
        for p in t.partitions:
            seen.setdefault(TopicPartition(t.topic, p), None)
    return list(seen)


def _response(results: dict[TopicPartition, ErrorCode], top_level: ErrorCode
              ) -> ElectLeadersResponse:
    by_topic: dict[str, list] = {}
    for tp, code in results.items():
        by_topic.setdefault(tp.topic, []).append(ElectLeadersResponse.PartitionResult(
            partition_id=tp.partition, error_code=int(code),
            error_message=None if code == ErrorCode.NONE else _MESSAGES.get(code)))
    return ElectLeadersResponse(
        error_code=int(top_level),
        replica_election_results=[
            ElectLeadersResponse.ReplicaElectionResult(topic=t, partition_result=parts)
            for t, parts in by_topic.items()])


async def handle_elect_leaders(ctx: RequestContext,
                               req: ElectLeadersRequest) -> ElectLeadersResponse:
    server = ctx.server
    election_type = req.election_type if ctx.api_version >= 1 else PREFERRED
    requested = _requested(req)
    not_controller = _response(
        {tp: ErrorCode.NOT_CONTROLLER for tp in requested or ()}, ErrorCode.NOT_CONTROLLER)
    controller = server.controller
    if controller is None or not controller.is_active:
        return not_controller
    cache = server.metadata_cache
    epochs_before = {}
    for tp in requested if requested is not None else ():
        info = cache.get_partition(tp)
        epochs_before[tp] = info.leader_epoch if info is not None else -1
    results = await controller.elect_leaders(election_type, requested)
    if results is None:  # resigned (or never was active) by the time the event ran
        return not_controller
    if requested is None:
        results = {tp: c for tp, c in results.items() if c != ErrorCode.ELECTION_NOT_NEEDED}

    def visible(tp: TopicPartition) -> bool:
        info = cache.get_partition(tp)
        if info is None or info.leader < 0:
            return False
        if election_type == PREFERRED:
            return bool(info.replicas) and info.leader == info.replicas[0]
        return info.leader_epoch > epochs_before.get(tp, -1)

    elected = [tp for tp, code in results.items() if code == ErrorCode.NONE]
    if elected:
        await server.wait_for_metadata(lambda _c: all(visible(tp) for tp in elected),
                                       req.timeout_ms)
        for tp in elected:
            if not visible(tp):
                results[tp] = ErrorCode.REQUEST_TIMED_OUT
    return _response(results, ErrorCode.NONE)


HANDLERS = {ApiKey.ELECT_LEADERS: handle_elect_leaders}
