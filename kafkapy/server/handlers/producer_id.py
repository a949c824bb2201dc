"""InitProducerId for idempotent producers: a fresh producer id at epoch 0.

Producer ids come from blocks of 1000 reserved in ZooKeeper (`/latest_producer_id_block`),
so no two brokers ever hand out the same id. Transactional ids need the transaction
coordinator, which this broker does not have yet: they get a clear, non-retriable error
instead of a coordinator that pretends.
"""
from __future__ import annotations

from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.init_producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from kafkapy.server.context import RequestContext


async def handle_init_producer_id(ctx: RequestContext,
                                  req: InitProducerIdRequest) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        return InitProducerIdResponse(
            throttle_time_ms=0, error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            producer_id=-1, producer_epoch=-1)
    try:
        producer_id = await ctx.server.producer_id_manager.generate_producer_id()
    except KafkaError as e:
        return InitProducerIdResponse(throttle_time_ms=0, error_code=e.code, producer_id=-1,
                                      producer_epoch=-1)
    return InitProducerIdResponse(throttle_time_ms=0, error_code=ErrorCode.NONE,
                                  producer_id=producer_id, producer_epoch=0)


HANDLERS = {ApiKey.INIT_PRODUCER_ID: handle_init_producer_id}
