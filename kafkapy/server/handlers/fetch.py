"""Fetch for consumers and followers: long-poll until min_bytes or max_wait_ms.

Records go back as `FileRecords` slices of segment files, which the network layer sends with
os.sendfile. Fetch sessions (KIP-227) are declined by answering session id 0, which every
client accepts as "full fetches from now on".
"""
from __future__ import annotations

from kafkapy.cluster.replica_manager import FetchParams, FetchSpec
from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.fetch import FetchRequest, FetchResponse
from kafkapy.server.context import RequestContext

TopicResponse = FetchResponse.FetchableTopicResponse
PartitionData = FetchResponse.PartitionData
EpochEndOffset = FetchResponse.EpochEndOffset

ZERO_UUID = b"\0" * 16


async def handle_fetch(ctx: RequestContext, req: FetchRequest) -> FetchResponse:
    server = ctx.server
    if ctx.api_version >= 7 and req.session_id != 0:
        # This broker never creates fetch sessions, so a session id is one it does not know.
        return FetchResponse(throttle_time_ms=0, session_id=0, responses=[],
                             error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
    cache = server.metadata_cache
    uses_ids = ctx.api_version >= 13
    replica_id = req.replica_id
    if ctx.api_version >= 15 and req.replica_state is not None:
        replica_id = req.replica_state.replica_id
    params = FetchParams(replica_id=replica_id, max_wait_ms=req.max_wait_ms,
                         min_bytes=req.min_bytes, max_bytes=req.max_bytes,
                         isolation_level=req.isolation_level)
    specs: list[FetchSpec] = []
    # (topic name or None, topic id, [(partition, spec index or error)])
    layout: list[tuple[str | None, bytes, list[tuple[int, int | ErrorCode]]]] = []
    for topic in req.topics:
        if uses_ids:
            topic_id = bytes(topic.topic_id)
            name = cache.topic_name(topic_id)
        else:
            name, topic_id = topic.topic, ZERO_UUID
        entries: list[tuple[int, int | ErrorCode]] = []
        for p in topic.partitions:
            if name is None:
                entries.append((p.partition, ErrorCode.UNKNOWN_TOPIC_ID))
                continue
            entries.append((p.partition, len(specs)))
            specs.append(FetchSpec(TopicPartition(name, p.partition), p.fetch_offset,
                                   p.partition_max_bytes, p.current_leader_epoch,
                                   p.last_fetched_epoch, p.log_start_offset))
        layout.append((name, topic_id, entries))
    results = await server.replica_manager.fetch_messages(params, specs) if specs else []
    responses = []
    for name, topic_id, entries in layout:
        parts = []
        for partition, ref in entries:
            if isinstance(ref, ErrorCode):
                parts.append(PartitionData(partition_index=partition, error_code=ref,
                                           high_watermark=-1, records=b""))
                continue
            r = results[ref]
            pd = PartitionData(partition_index=partition, error_code=r.error,
                               high_watermark=r.high_watermark,
                               last_stable_offset=r.last_stable_offset,
                               log_start_offset=r.log_start_offset,
                               aborted_transactions=[] if params.isolation_level == 1 else None,
                               records=r.records if r.records is not None else b"")
            if r.diverging_epoch is not None:
                pd.diverging_epoch = EpochEndOffset(epoch=r.diverging_epoch[0],
                                                    end_offset=r.diverging_epoch[1])
            parts.append(pd)
        responses.append(TopicResponse(topic=name or "", topic_id=topic_id, partitions=parts))
    return FetchResponse(throttle_time_ms=0, error_code=ErrorCode.NONE, session_id=0,
                         responses=responses)


HANDLERS = {ApiKey.FETCH: handle_fetch}
