"""AlterPartition at the controller edge: validate (pure, `alter_partition.py`), write the
accepted ISRs conditionally on their partition epochs (fenced), build the response and the
UpdateMetadata actions. Called only from the controller's event task.
"""
from __future__ import annotations

from typing import Any

import attrs

from kafkapy.controller import alter_partition as AP
from kafkapy.controller.actions import Action
from kafkapy.controller.context import ControllerContext
from kafkapy.controller.state_machines import Planner
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.protocol.messages.alter_partition import (AlterPartitionRequest,
                                                       AlterPartitionResponse,
                                                       AlterPartitionResponse_PartitionData,
                                                       AlterPartitionResponse_TopicData)
from kafkapy.zk.client import KafkaZkClient


async def process_alter_partition(ctx: ControllerContext, zk: KafkaZkClient,
                                  req: AlterPartitionRequest, version: int
                                  ) -> tuple[AlterPartitionResponse, list[Action]]:
    code = AP.check_requester(ctx, req.broker_id, req.broker_epoch)
    if code != ErrorCode.NONE:
        return AlterPartitionResponse(error_code=code), []
    names = {tid: name for name, tid in ctx.topic_ids.items()}
    outcomes: dict[int, tuple[int, Any]] = {}  # id(partition data) -> (error, state)
    writes: dict[tuple[str, int], Any] = {}
    keys: dict[int, tuple[str, int]] = {}
    for topic in req.topics:
        name = topic.topic_name if version < 2 else names.get(bytes(topic.topic_id))
        for part in topic.partitions:
            if name is None:
                outcomes[id(part)] = (ErrorCode.UNKNOWN_TOPIC_ID, None)
                continue
            tp = TopicPartition(name, part.partition_index)
            isr = ([b.broker_id for b in part.new_isr_with_epochs] if version >= 3
                   else list(part.new_isr))
            epochs = [b.broker_epoch for b in part.new_isr_with_epochs] if version >= 3 else None
            error, state, needs_write = AP.validate(ctx, req.broker_id, AP.IsrProposal(
                tp, part.leader_epoch, isr, part.partition_epoch, part.leader_recovery_state,
                epochs), version)
            outcomes[id(part)] = (error, state)
            if needs_write:
                writes[(name, part.partition_index)] = state
                keys[id(part)] = (name, part.partition_index)
    written = await zk.update_partition_states(ctx.epoch_zk_version, writes) if writes else {}
    planner = Planner(ctx)
    for part_id, key in keys.items():
        result = written[key]
        tp = TopicPartition(*key)
        if result.ok:
            before = list(ctx.states[tp].isr) if tp in ctx.states else []
            ctx.states[tp] = attrs.evolve(writes[key], zk_version=result.version)
            outcomes[part_id] = (ErrorCode.NONE, ctx.states[tp])
            planner.batch.add_update_metadata(ctx.live_or_shutting_down_ids, [tp])
            after = ctx.states[tp].isr
            joined = [b for b in after if b not in before]
            left = [b for b in before if b not in after]
            planner.note(f"AlterPartition from leader {req.broker_id}: {tp} ISR {before} -> "
                         f"{after}" + (f" ({joined} caught up)" if joined else "")
                         + (f" ({left} lagging, out of sync)" if left else ""))
        else:
            fresh = await zk.get_partition_states([key])
            if key in fresh:
                ctx.states[tp] = fresh[key]
            outcomes[part_id] = (ErrorCode.INVALID_UPDATE_VERSION, None)
    topics_out = []
    for topic in req.topics:
        parts_out = []
        for part in topic.partitions:
            error, state = outcomes[id(part)]
            if error == ErrorCode.NONE and state is not None:
                parts_out.append(AlterPartitionResponse_PartitionData(
                    partition_index=part.partition_index, error_code=0, leader_id=state.leader,
                    leader_epoch=state.leader_epoch, isr=list(state.isr),
                    leader_recovery_state=state.leader_recovery_state,
                    partition_epoch=state.zk_version))
            else:
                parts_out.append(AlterPartitionResponse_PartitionData(
                    partition_index=part.partition_index, error_code=int(error)))
        topics_out.append(AlterPartitionResponse_TopicData(
            topic_name=topic.topic_name, topic_id=topic.topic_id, partitions=parts_out))
    return AlterPartitionResponse(error_code=0, topics=topics_out), planner.finish()
