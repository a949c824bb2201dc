"""Default replica placement (Kafka's AdminUtils, Appendix B of the reference). Pure.

Spreads leaders round-robin from a random start and shifts followers by a per-round offset so
that replicas of consecutive partitions do not pile onto the same brokers; with racks, brokers
are interleaved by rack and a rack is reused only when every rack already holds a replica.
"""
from __future__ import annotations

import random
from typing import Mapping

from kafkapy.protocol.errors import ErrorCode, KafkaError


def _replica_index(first: int, shift: int, j: int, n: int) -> int:
    return (first + 1 + (shift + j) % (n - 1)) % n


def rack_alternated_brokers(broker_racks: Mapping[int, str]) -> list[int]:
    """Brokers ordered r1b1, r2b1, r3b1, r1b2, ... (racks and brokers sorted)."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in broker_racks.items():
        by_rack.setdefault(rack, []).append(broker)
    queues = {rack: sorted(bs) for rack, bs in by_rack.items()}
    racks = sorted(queues)
    out: list[int] = []
    i = 0
    while len(out) < len(broker_racks):
        queue = queues[racks[i]]
        if queue:
            out.append(queue.pop(0))
        i = (i + 1) % len(racks)
    return out


def assign_replicas(brokers: Mapping[int, str | None], n_partitions: int, replication_factor: int,
                    start_partition_id: int = 0, fixed_start_index: int = -1,
                    rng: random.Random | None = None) -> dict[int, list[int]]:
    """partition id -> replicas for `n_partitions` partitions starting at `start_partition_id`.
    `brokers` maps live broker id -> rack (None when unset)."""
    if n_partitions <= 0:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         "Replication factor must be larger than 0.")
    if replication_factor > len(brokers):
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"Replication factor: {replication_factor} larger than available "
                         f"brokers: {len(brokers)}.")
    rng = rng or random.Random()
    racks = {b: r for b, r in brokers.items() if r is not None}
    if not racks:
        return _assign_plain(sorted(brokers), n_partitions, replication_factor,
                             start_partition_id, fixed_start_index, rng)
    if len(racks) != len(brokers):
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         "Not all brokers have rack information for replica rack aware assignment.")
    return _assign_rack_aware(racks, n_partitions, replication_factor, start_partition_id,
                              fixed_start_index, rng)


def _assign_plain(ids: list[int], n_partitions: int, rf: int, start_partition_id: int,
                  fixed_start: int, rng: random.Random) -> dict[int, list[int]]:
    n = len(ids)
    start = fixed_start if fixed_start >= 0 else rng.randrange(n)
    shift = fixed_start if fixed_start >= 0 else rng.randrange(n)
    partition = max(0, start_partition_id)
    out: dict[int, list[int]] = {}
    for _ in range(n_partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start) % n
        replicas = [ids[first]]
        for j in range(rf - 1):
            replicas.append(ids[_replica_index(first, shift, j, n)])
        out[partition] = replicas
        partition += 1
    return out


def _assign_rack_aware(racks: dict[int, str], n_partitions: int, rf: int,
                       start_partition_id: int, fixed_start: int,
                       rng: random.Random) -> dict[int, list[int]]:
    arranged = rack_alternated_brokers(racks)
    n = len(arranged)
    n_racks = len(set(racks.values()))
    start = fixed_start if fixed_start >= 0 else rng.randrange(n)
    shift = fixed_start if fixed_start >= 0 else rng.randrange(n)
    partition = max(0, start_partition_id)
    out: dict[int, list[int]] = {}
    for _ in range(n_partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start) % n
        leader = arranged[first]
        replicas = [leader]
        used_racks = {racks[leader]}
        used_brokers = {leader}
        k = 0
        for _ in range(rf - 1):
            while True:
                broker = arranged[_replica_index(first, shift * n_racks, k, n)]
                k += 1
                rack = racks[broker]
                if ((rack not in used_racks or len(used_racks) == n_racks)
                        and (broker not in used_brokers or len(used_brokers) == n)):
                    replicas.append(broker)
                    used_racks.add(rack)
                    used_brokers.add(broker)
                    break
        out[partition] = replicas
        partition += 1
    return out
