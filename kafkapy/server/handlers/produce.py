"""Produce: validate acks, append each partition's batch to its leader log, answer in order.

The records stay the memoryview the codec sliced out of the request frame: the log validates
batch headers and CRCs in C and patches offsets in place, so no record is ever decoded here.
The exception is Produce v0-2 (kafka-node): its magic 0/1 message sets are up-converted to
one v2 batch first (kafkapy.protocol.legacy), a cost only legacy producers pay.

With acks=all the appends happen here, in request order, and the wait for the ISR is returned
as a `DeferredResponse`: the connection may read and append the client's next Produce
requests while this one waits, and writes the responses in request order
(kafkapy.network.pipeline). Nothing after the appends touches the request frame.
"""
from __future__ import annotations

import trio

from kafkapy.log import TopicPartition
from kafkapy.network.errors import CloseConnection
from kafkapy.network.pipeline import DeferredResponse
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.legacy import OFFLOAD_BYTES, upconvert
from kafkapy.protocol.messages.produce import ProduceRequest, ProduceResponse
from kafkapy.server.context import RequestContext

TopicResponse = ProduceResponse.TopicProduceResponse
PartResponse = ProduceResponse.PartitionProduceResponse


async def handle_produce(ctx: RequestContext, req: ProduceRequest
                         ) -> ProduceResponse | DeferredResponse | None:
    server = ctx.server
    errors: dict[TopicPartition, tuple[ErrorCode, str | None]] = {}
    to_append: dict[TopicPartition, memoryview] = {}
    order: list[tuple[str, list[int]]] = []
    acks = req.acks
    for topic in req.topic_data:
        indexes = []
        for pdata in topic.partition_data:
            tp = TopicPartition(topic.name, pdata.index)
            indexes.append(pdata.index)
            if acks not in (0, 1, -1):
                errors[tp] = (ErrorCode.INVALID_REQUIRED_ACKS, None)
            elif req.transactional_id is not None:
                errors[tp] = (ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                              "transactions are not supported by this broker yet")
            elif pdata.records is None or len(pdata.records) == 0:
                errors[tp] = (ErrorCode.INVALID_RECORD, "produce request without record batches")
            elif tp in to_append:
                errors[tp] = (ErrorCode.INVALID_REQUEST, "partition listed twice")
            elif ctx.api_version <= 2:
                # Legacy producers (kafka-node): magic 0/1 only, stored as one v2 batch.
                try:
                    records = pdata.records
                    if len(records) > OFFLOAD_BYTES:  # pure Python: keep the loop responsive
                        batch = await trio.to_thread.run_sync(upconvert, records)
                    else:
                        batch = upconvert(records)
                    to_append[tp] = memoryview(bytearray(batch))
                except KafkaError as e:
                    errors[tp] = (e.code, e.message or None)
            else:
                to_append[tp] = pdata.records
        order.append((topic.name, indexes))
    results: dict = {}
    if to_append:
        # Invalid acks never get here: every partition of such a request has an error.
        pending = server.replica_manager.append_to_leader_logs(to_append, acks, req.timeout_ms)
        if pending.needs_wait:  # acks=all: answer once the ISR has the batches

            async def complete() -> ProduceResponse:
                return _response(order, errors, await pending.wait())

            return DeferredResponse(complete)
        results = pending.results
    if acks == 0:
        # Kafka closes the connection when an acks=0 produce fails: the client cannot be told.
        failed = [tp for tp, r in results.items() if r.error != ErrorCode.NONE] + list(errors)
        if failed:
            raise CloseConnection(f"acks=0 produce to {failed[0]} failed")
        return None
    return _response(order, errors, results)


def _response(order: list[tuple[str, list[int]]],
              errors: dict[TopicPartition, tuple[ErrorCode, str | None]],
              results: dict) -> ProduceResponse:
    responses = []
    for name, indexes in order:
        parts = []
        for index in indexes:
            tp = TopicPartition(name, index)
            if tp in errors:
                code, message = errors[tp]
                parts.append(PartResponse(index=index, error_code=code, base_offset=-1,
                                          error_message=message))
                continue
            r = results[tp]
            parts.append(PartResponse(index=index, error_code=r.error, base_offset=r.base_offset,
                                      log_append_time_ms=r.log_append_time,
                                      log_start_offset=r.log_start_offset,
                                      error_message=r.error_message))
        responses.append(TopicResponse(name=name, partition_responses=parts))
    return ProduceResponse(responses=responses, throttle_time_ms=0)


HANDLERS = {ApiKey.PRODUCE: handle_produce}
