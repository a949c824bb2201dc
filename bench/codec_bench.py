"""Codec micro-benchmarks: µs per operation on the broker's hot paths.

Messages as in client-protocol-needs.md section 10.3: Produce v9 request and Fetch v12
response with 1 topic x 10 partitions x 16 KiB records; plus the small Produce v9 response
and Fetch v12 request, and a Metadata v12 response with 100 topics x 10 partitions.
Run: .venv/bin/python bench/codec_bench.py
"""
from __future__ import annotations

import os
import sys
import timeit
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kafkapy.protocol.messages.fetch import FetchRequest, FetchResponse  # noqa: E402
from kafkapy.protocol.messages.metadata import MetadataResponse  # noqa: E402
from kafkapy.protocol.messages.produce import ProduceRequest, ProduceResponse  # noqa: E402

PARTS = 10
BLOB = os.urandom(16 * 1024)


def produce_request() -> ProduceRequest:
    P = ProduceRequest.PartitionProduceData
    return ProduceRequest(acks=-1, timeout_ms=30000, topic_data=[
        ProduceRequest.TopicProduceData(name="bench-topic", partition_data=[
            P(index=i, records=BLOB) for i in range(PARTS)])])


def produce_response() -> ProduceResponse:
    P = ProduceResponse.PartitionProduceResponse
    return ProduceResponse(responses=[ProduceResponse.TopicProduceResponse(
        name="bench-topic", partition_responses=[
            P(index=i, base_offset=1000 * i, log_append_time_ms=-1, log_start_offset=0)
            for i in range(PARTS)])])


def fetch_request() -> FetchRequest:
    P = FetchRequest.FetchPartition
    return FetchRequest(replica_id=-1, max_wait_ms=500, min_bytes=1, max_bytes=52428800,
                        session_epoch=-1, topics=[FetchRequest.FetchTopic(topic="bench-topic", partitions=[
                            P(partition=i, fetch_offset=1000, partition_max_bytes=1048576,
                              current_leader_epoch=0) for i in range(PARTS)])])


def fetch_response() -> FetchResponse:
    P = FetchResponse.PartitionData
    return FetchResponse(responses=[FetchResponse.FetchableTopicResponse(
        topic="bench-topic", partitions=[
            P(partition_index=i, high_watermark=5000, last_stable_offset=5000,
              log_start_offset=0, records=BLOB) for i in range(PARTS)])])


def metadata_response() -> MetadataResponse:
    B = MetadataResponse.MetadataResponseBroker
    T = MetadataResponse.MetadataResponseTopic
    P = MetadataResponse.MetadataResponsePartition
    return MetadataResponse(
        brokers=[B(node_id=i, host="127.0.0.1", port=9092 + i) for i in range(3)],
        cluster_id="bench-cluster", controller_id=0,
        topics=[T(name=f"topic-{t}", topic_id=os.urandom(16), partitions=[
            P(partition_index=p, leader_id=p % 3, leader_epoch=1, replica_nodes=[0, 1, 2],
              isr_nodes=[0, 1, 2]) for p in range(10)]) for t in range(100)])


def encode(obj: Any, v: int) -> list:
    out: list = []
    obj.encode(v, out)
    return out


def wire(obj: Any, v: int) -> memoryview:
    return memoryview(b"".join(encode(obj, v)))


def bench(label: str, fn: Callable[[], object]) -> None:
    t = timeit.Timer(fn)
    n, _ = t.autorange()
    n = max(1, n // 2)
    best = min(t.repeat(repeat=5, number=n)) / n
    print(f"{label:<48} {best * 1e6:10.1f} µs/op")


def main() -> None:
    pr, frs, prr, frq, md = (produce_request(), fetch_response(), produce_response(),
                             fetch_request(), metadata_response())
    pw, fw, mdw = wire(pr, 9), wire(frs, 12), wire(md, 12)
    prw, frqw = wire(prr, 9), wire(frq, 12)
    bench("decode Produce v9 request (10 x 16 KiB)", lambda: ProduceRequest.decode(pw, 0, 9))
    bench("encode Fetch v12 response (10 x 16 KiB)", lambda: encode(frs, 12))
    bench("encode Produce v9 request (10 x 16 KiB)", lambda: encode(pr, 9))
    bench("decode Fetch v12 response (10 x 16 KiB)", lambda: FetchResponse.decode(fw, 0, 12))
    bench("encode Produce v9 response (10 partitions)", lambda: encode(prr, 9))
    bench("decode Produce v9 response (10 partitions)", lambda: ProduceResponse.decode(prw, 0, 9))
    bench("decode Fetch v12 request (10 partitions)", lambda: FetchRequest.decode(frqw, 0, 12))
    bench("encode Metadata v12 response (1,000 partitions)", lambda: encode(md, 12))
    bench("decode Metadata v12 response (1,000 partitions)", lambda: MetadataResponse.decode(mdw, 0, 12))


if __name__ == "__main__":
    main()
