"""Automatic preferred-leader rebalance check (Kafka's checkAndTriggerAutoLeaderRebalance). Pure.

For each preferred broker B: imbalance = #(partitions whose preferred replica is B but whose
leader is not B) / #(partitions whose preferred replica is B). Above the configured percentage,
the partitions whose preferred replica is live and in the ISR are moved back to it.
"""
from __future__ import annotations

from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition


def imbalanced_partitions(ctx: ControllerContext, percentage: int) -> list[TopicPartition]:
    by_preferred: dict[int, list[TopicPartition]] = {}
    for tp in ctx.all_partitions():
        replicas = ctx.replicas(tp)
        if replicas and not ctx.is_deleting(tp.topic) and tp in ctx.states:
            by_preferred.setdefault(replicas[0], []).append(tp)
    out: list[TopicPartition] = []
    for broker, tps in sorted(by_preferred.items()):
        not_led = [tp for tp in tps if ctx.states[tp].leader != broker]
        if not tps or len(not_led) / len(tps) <= percentage / 100:
            continue
        if broker not in ctx.live_broker_ids:
            continue
        out += [tp for tp in not_led if broker in ctx.states[tp].isr]
    return out
