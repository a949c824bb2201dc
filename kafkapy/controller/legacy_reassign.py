"""Legacy reassignment through `/admin/reassign_partitions` (still honoured by Kafka 3.7).

The node lists target replicas per partition; the controller starts those reassignments and,
as each completes, rewrites the node without it (deleting it when empty), every write fenced
by the controller epoch. The reassignment itself is the same as the API path
(`reassignment.py`).
"""
from __future__ import annotations

import logging

from kafkapy.controller import events as E
from kafkapy.controller import reassignment
from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk import data, paths
from kafkapy.zk import events as zev
from kafkapy.zk.client import KafkaZkClient

log = logging.getLogger(__name__)


async def read_request(zk: KafkaZkClient, ctx: ControllerContext) -> E.Reassign | None:
    """Targets from the node (watched) not yet started; invalid entries are logged and
    dropped from the node."""
    wanted = {TopicPartition(t, p): r for (t, p), r in (await zk.get_reassignment(watch=True)).items()}
    fresh = {tp: r for tp, r in wanted.items() if ctx.zk_reassignments.get(tp) != r}
    if not fresh:
        return None
    errors, accepted = reassignment.validate(ctx, dict(fresh))
    for tp, code in errors.items():
        log.warning("ignoring reassignment of %s to %s from %s: %s", tp, fresh[tp],
                    paths.REASSIGN_PARTITIONS, code.name)
        ctx.zk_reassignments.pop(tp, None)
    ctx.zk_reassignments.update(accepted)
    if errors:
        await write_remaining(zk, ctx, {tp: r for tp, r in wanted.items() if tp not in errors})
    return E.Reassign(accepted) if accepted else None


async def prune(zk: KafkaZkClient, ctx: ControllerContext) -> None:
    """Drop completed partitions from the node."""
    done = [tp for tp in ctx.zk_reassignments if not reassignment.is_reassigning(ctx, tp)]
    if not done:
        return
    for tp in done:
        del ctx.zk_reassignments[tp]
    await write_remaining(zk, ctx, dict(ctx.zk_reassignments))


async def write_remaining(zk: KafkaZkClient, ctx: ControllerContext,
                          remaining: dict[TopicPartition, list[int]]) -> None:
    if remaining:
        payload = data.encode_reassignment({(tp.topic, tp.partition): r for tp, r in remaining.items()})
        op: zev.ZkOp = zev.SetDataOp(paths.REASSIGN_PARTITIONS, payload)
    else:
        op = zev.DeleteOp(paths.REASSIGN_PARTITIONS)
    await zk.fenced_multi(ctx.epoch_zk_version, [op])
