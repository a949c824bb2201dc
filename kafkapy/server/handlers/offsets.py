"""ListOffsets, DeleteRecords and OffsetForLeaderEpoch: questions about a leader's log offsets."""
from __future__ import annotations

from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.messages.delete_records import DeleteRecordsRequest, DeleteRecordsResponse
from kafkapy.protocol.messages.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from kafkapy.protocol.messages.offset_for_leader_epoch import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from kafkapy.server.context import RequestContext

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5


def _list_offset(server, tp: TopicPartition, timestamp: int, current_leader_epoch: int,
                 isolation_level: int, replica_id: int) -> tuple[int, int, int]:
    """Returns (timestamp, offset, leader_epoch) for one partition; raises KafkaError."""
    partition = server.replica_manager.leader_partition(tp, current_leader_epoch)
    plog = partition.log
    if replica_id >= 0:
        fetchable = plog.log_end_offset
    elif isolation_level == 1:
        fetchable = partition.last_stable_offset()
    else:
        fetchable = partition.high_watermark()
    cache = plog.leader_epoch_cache
    if timestamp == LATEST:
        return -1, fetchable, _epoch(cache, fetchable)
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        start = plog.log_start_offset
        return -1, start, _epoch(cache, start)
    if timestamp == LATEST_TIERED:
        return -1, -1, -1          # no tiered storage: Kafka answers "no offset"
    if timestamp < 0 and timestamp != MAX_TIMESTAMP:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"invalid timestamp {timestamp}")
    found = plog.fetch_offset_by_timestamp(timestamp)
    if found is None or found.offset >= fetchable:
        return -1, -1, -1
    return found.timestamp, found.offset, found.leader_epoch


def _epoch(cache, offset: int) -> int:
    epoch = cache.epoch_for_offset(offset)
    return -1 if epoch is None else epoch


async def handle_list_offsets(ctx: RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse:
    server = ctx.server
    topics = []
    for topic in req.topics:
        parts = []
        for p in topic.partitions:
            tp = TopicPartition(topic.name, p.partition_index)
            resp = ListOffsetsResponse.ListOffsetsPartitionResponse(
                partition_index=p.partition_index, error_code=ErrorCode.NONE)
            try:
                ts, offset, epoch = _list_offset(server, tp, p.timestamp, p.current_leader_epoch,
                                                 req.isolation_level, req.replica_id)
            except KafkaError as e:
                resp.error_code = e.code
                ts, offset, epoch = -1, -1, -1
            if ctx.api_version == 0:
                resp.old_style_offsets = [offset] if offset >= 0 and p.max_num_offsets > 0 else []
            resp.timestamp, resp.offset, resp.leader_epoch = ts, offset, epoch
            parts.append(resp)
        topics.append(ListOffsetsResponse.ListOffsetsTopicResponse(name=topic.name,
                                                                   partitions=parts))
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)


async def handle_delete_records(ctx: RequestContext,
                                req: DeleteRecordsRequest) -> DeleteRecordsResponse:
    server = ctx.server
    topics = []
    for topic in req.topics:
        parts = []
        for p in topic.partitions:
            tp = TopicPartition(topic.name, p.partition_index)
            result = DeleteRecordsResponse.DeleteRecordsPartitionResult(
                partition_index=p.partition_index, low_watermark=-1, error_code=ErrorCode.NONE)
            try:
                partition = server.replica_manager.leader_partition(tp)
                offset = partition.high_watermark() if p.offset == -1 else p.offset
                if offset < 0 or offset > partition.high_watermark():
                    raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                                     f"offset {p.offset} is beyond the high watermark")
                result.low_watermark = partition.log.delete_records_before(offset)
            except KafkaError as e:
                result.error_code = e.code
            parts.append(result)
        topics.append(DeleteRecordsResponse.DeleteRecordsTopicResult(name=topic.name,
                                                                     partitions=parts))
    return DeleteRecordsResponse(throttle_time_ms=0, topics=topics)


async def handle_offset_for_leader_epoch(ctx: RequestContext, req: OffsetForLeaderEpochRequest
                                         ) -> OffsetForLeaderEpochResponse:
    server = ctx.server
    topics = []
    for topic in req.topics:
        parts = []
        for p in topic.partitions:
            tp = TopicPartition(topic.topic, p.partition)
            result = OffsetForLeaderEpochResponse.EpochEndOffset(
                error_code=ErrorCode.NONE, partition=p.partition, leader_epoch=-1, end_offset=-1)
            try:
                partition = server.replica_manager.leader_partition(tp, p.current_leader_epoch)
                epoch, end = partition.log.leader_epoch_cache.end_offset_for(
                    p.leader_epoch, partition.log.log_end_offset)
                result.leader_epoch, result.end_offset = epoch, end
            except KafkaError as e:
                result.error_code = e.code
            parts.append(result)
        topics.append(OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
            topic=topic.topic, partitions=parts))
    return OffsetForLeaderEpochResponse(throttle_time_ms=0, topics=topics)


HANDLERS = {
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.DELETE_RECORDS: handle_delete_records,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
}
