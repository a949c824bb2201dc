"""Fetch for consumers and followers: long-poll until min_bytes or max_wait_ms.

Records go back as `FileRecords` slices of segment files, which the network layer sends with
os.sendfile. Fetch sessions (KIP-227) are declined by answering session id 0, which every
client accepts as "full fetches from now on". Fetch v0-3 (kafka-node) cannot read v2 batches:
their records are down-converted to magic 0/1 (kafkapy.protocol.legacy) and lose sendfile.
"""
from __future__ import annotations

from typing import Any

import trio

from kafkapy.cluster.replica_manager import FetchParams, FetchSpec
from kafkapy.log import TopicPartition
from kafkapy.protocol.api import ApiKey
from kafkapy.protocol.errors import ErrorCode, KafkaError
from kafkapy.protocol.legacy import OFFLOAD_BYTES, downconvert, fetch_magic
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
    if ctx.api_version <= 3 and results:
        await _down_convert(server, fetch_magic(ctx.api_version), specs, results, req.max_bytes)
    responses = []
    audit = getattr(server, "audit", None)
    for name, topic_id, entries in layout:
        parts = []
        for partition, ref in entries:
            if isinstance(ref, ErrorCode):
                parts.append(PartitionData(partition_index=partition, error_code=ref,
                                           high_watermark=-1, records=b""))
                continue
            r = results[ref]
            if audit is not None and replica_id < 0 and r.records:  # commit audit: served
                audit.on_fetch(ctx.client_id, ctx.client_host, name, partition, r.records,
                               r.next_offset)
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


async def _down_convert(server: Any, magic: int, specs: list[FetchSpec], results: list[Any],
                        max_bytes: int) -> None:
    """Fetch v0-3 consumers (kafka-node) cannot read v2 batches: convert the stored batches
    to magic 0/1 in place, within each partition's and the request's byte limits. A topic
    with message.downconversion.enable=false answers UNSUPPORTED_VERSION instead (Kafka); the
    setting comes from the log's config (kept current by topic config changes), not ZooKeeper."""
    log_manager = server.log_manager
    budget = max_bytes if max_bytes > 0 else 0x7FFFFFFF
    for spec, r in zip(specs, results):
        if r.records is None or len(r.records) == 0:
            continue
        plog = log_manager.get_log(spec.tp)
        config = plog.config if plog is not None else log_manager.config_for(spec.tp.topic)
        if not config.message_downconversion_enable:
            r.error, r.records = ErrorCode.UNSUPPORTED_VERSION, b""
            continue
        limit = min(spec.max_bytes, budget)
        r.next_offset = -1  # conversion may serve fewer records than were read
        try:
            if len(r.records) > OFFLOAD_BYTES:
                r.records = await trio.to_thread.run_sync(
                    _convert, r.records, magic, spec.fetch_offset, limit)
            else:
                r.records = _convert(r.records, magic, spec.fetch_offset, limit)
        except KafkaError as e:
            r.error, r.records = e.code, b""
        except (OSError, EOFError):
            r.records = b""  # segment deleted under us (retention): the consumer asks again
        budget = max(budget - len(r.records), 0)


def _convert(records: Any, magic: int, fetch_offset: int, limit: int) -> bytes:
    data = records.tobytes() if hasattr(records, "tobytes") else bytes(records)
    return downconvert(data, magic, fetch_offset, limit)


HANDLERS = {ApiKey.FETCH: handle_fetch}
