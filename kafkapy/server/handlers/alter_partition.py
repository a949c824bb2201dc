"""AlterPartition (key 56): partition leaders propose ISR changes to the active controller.

Only the active controller answers; any other broker says NOT_CONTROLLER so the leader looks
up the controller again and retries.
"""
from __future__ import annotations

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition import AlterPartitionRequest, AlterPartitionResponse
from kafkapy.server.context import RequestContext


async def handle_alter_partition(ctx: RequestContext,
                                 req: AlterPartitionRequest) -> AlterPartitionResponse:
    controller = ctx.server.controller
    if controller is None or not controller.is_active:
        return AlterPartitionResponse(error_code=ErrorCode.NOT_CONTROLLER)
    return await controller.alter_partition(req, ctx.api_version)


HANDLERS = {ApiKey.ALTER_PARTITION: handle_alter_partition}
