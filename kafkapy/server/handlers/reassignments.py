"""AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), v0.

Both are served by the active controller (admin clients send them there); any other broker
answers a top-level NOT_CONTROLLER and the client finds the controller again. Altering only
starts a reassignment (phase 1 written to ZooKeeper, new replicas told to fetch), as Kafka's
ZooKeeper controller does; completion shows up later in List and Metadata.
"""
from __future__ import annotations

from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition_reassignments import (
    AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse,
)
from kafkapy.protocol.messages.list_partition_reassignments import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
)
from kafkapy.server.context import RequestContext

NOT_CONTROLLER_MSG = "This is not the correct controller for this cluster."

_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "The partition does not exist.",
    ErrorCode.NO_REASSIGNMENT_IN_PROGRESS: "No reassignment is in progress for this partition.",
    ErrorCode.INVALID_REPLICA_ASSIGNMENT:
        "The replica list is empty, has duplicates, or names a broker that is not alive.",
}


def _active(ctx: RequestContext) -> bool:
    controller = ctx.server.controller
    return controller is not None and controller.is_active


async def handle_alter_partition_reassignments(
        ctx: RequestContext, req: AlterPartitionReassignmentsRequest
) -> AlterPartitionReassignmentsResponse:
    not_controller = AlterPartitionReassignmentsResponse(
        error_code=ErrorCode.NOT_CONTROLLER, error_message=NOT_CONTROLLER_MSG)
    if not _active(ctx):
        return not_controller
    targets: dict[TopicPartition, list[int] | None] = {}
    for topic in req.topics:  # a partition listed twice: the last entry wins, as in Kafka
        for p in topic.partitions:
            targets[TopicPartition(topic.name, p.partition_index)] = (
                None if p.replicas is None else list(p.replicas))
    results = await ctx.server.controller.alter_partition_reassignments(targets) if targets else {}
    if results is None:  # resigned before the event ran
        return not_controller
    by_topic: dict[str, list] = {}
    for tp, code in results.items():
        by_topic.setdefault(tp.topic, []).append(
            AlterPartitionReassignmentsResponse.ReassignablePartitionResponse(
                partition_index=tp.partition, error_code=int(code),
                error_message=None if code == ErrorCode.NONE else _MESSAGES.get(code)))
    return AlterPartitionReassignmentsResponse(
        error_code=ErrorCode.NONE, error_message=None,
        responses=[AlterPartitionReassignmentsResponse.ReassignableTopicResponse(
            name=t, partitions=parts) for t, parts in by_topic.items()])


async def handle_list_partition_reassignments(
        ctx: RequestContext, req: ListPartitionReassignmentsRequest
) -> ListPartitionReassignmentsResponse:
    not_controller = ListPartitionReassignmentsResponse(
        error_code=ErrorCode.NOT_CONTROLLER, error_message=NOT_CONTROLLER_MSG)
    if not _active(ctx):
        return not_controller
    ongoing = await ctx.server.controller.list_partition_reassignments()
    if ongoing is None:
        return not_controller
    if req.topics is not None:
        wanted = {TopicPartition(t.name, p) for t in req.topics for p in t.partition_indexes}
        ongoing = {tp: v for tp, v in ongoing.items() if tp in wanted}
    by_topic: dict[str, list] = {}
    for tp in sorted(ongoing, key=lambda tp: (tp.topic, tp.partition)):
        replicas, adding, removing = ongoing[tp]
        by_topic.setdefault(tp.topic, []).append(
            ListPartitionReassignmentsResponse.OngoingPartitionReassignment(
                partition_index=tp.partition, replicas=list(replicas),
                adding_replicas=list(adding), removing_replicas=list(removing)))
    return ListPartitionReassignmentsResponse(
        error_code=ErrorCode.NONE, error_message=None,
        topics=[ListPartitionReassignmentsResponse.OngoingTopicReassignment(name=t, partitions=ps)
                for t, ps in by_topic.items()])


HANDLERS = {
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: handle_alter_partition_reassignments,
    ApiKey.LIST_PARTITION_REASSIGNMENTS: handle_list_partition_reassignments,
}
