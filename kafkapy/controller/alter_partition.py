"""AlterPartition (KIP-497) validation, as the ZooKeeper-mode controller does it. Pure.

A partition leader proposes a new ISR with the leader epoch and partition epoch (state
zkVersion) it knows. The controller accepts it only if the epochs match its own view, every
new ISR member is a live broker (of the stated broker epoch), and the recovery state moves
legally; the accepted state is then written conditionally on the partition epoch.
"""
from __future__ import annotations

import attrs

from kafkapy.controller.context import ControllerContext
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import LEADER_RECOVERY_RECOVERED, LEADER_RECOVERY_RECOVERING, PartitionState


@attrs.frozen(slots=True)
class IsrProposal:
    tp: TopicPartition
    leader_epoch: int
    isr: list[int]
    partition_epoch: int
    leader_recovery_state: int = LEADER_RECOVERY_RECOVERED
    isr_broker_epochs: list[int] | None = None  # v3 NewIsrWithEpochs


def check_requester(ctx: ControllerContext, broker_id: int, broker_epoch: int) -> ErrorCode:
    """Unknown broker or another incarnation's epoch -> STALE_BROKER_EPOCH (whole request)."""
    if broker_id not in ctx.live_brokers or ctx.broker_epoch(broker_id) != broker_epoch:
        return ErrorCode.STALE_BROKER_EPOCH
    return ErrorCode.NONE


def validate(ctx: ControllerContext, broker_id: int, proposal: IsrProposal,
             version: int) -> tuple[ErrorCode, PartitionState | None, bool]:
    """(error, state, needs_write). On success without a write the partition already has the
    proposed state; with a write, `state.zk_version` is the expected version."""
    current = ctx.states.get(proposal.tp)
    if current is None or proposal.tp not in ctx.assignments:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None, False
    if (proposal.partition_epoch > current.zk_version
            or proposal.leader_epoch > current.leader_epoch):
        return ErrorCode.NOT_CONTROLLER, current, False  # we are behind: likely not controller
    if proposal.leader_epoch < current.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH, current, False
    if broker_id != current.leader:
        return ErrorCode.INVALID_REQUEST, current, False  # only the leader may change the ISR
    if (list(proposal.isr) == list(current.isr)
            and proposal.leader_recovery_state == current.leader_recovery_state):
        return ErrorCode.NONE, current, False
    if proposal.partition_epoch < current.zk_version:
        return ErrorCode.INVALID_UPDATE_VERSION, current, False
    if proposal.leader_recovery_state == LEADER_RECOVERY_RECOVERING and len(proposal.isr) > 1:
        return ErrorCode.INVALID_REQUEST, current, False
    if (current.leader_recovery_state == LEADER_RECOVERY_RECOVERED
            and proposal.leader_recovery_state == LEADER_RECOVERY_RECOVERING):
        return ErrorCode.INVALID_REQUEST, current, False
    epochs = proposal.isr_broker_epochs or [-1] * len(proposal.isr)
    ineligible = [b for b, e in zip(proposal.isr, epochs)
                  if b not in ctx.live_broker_ids or (e != -1 and e != ctx.broker_epoch(b))]
    if ineligible:
        code = ErrorCode.INELIGIBLE_REPLICA if version >= 2 else ErrorCode.OPERATION_NOT_ATTEMPTED
        return code, current, False
    new = PartitionState(broker_id, current.leader_epoch, list(proposal.isr), ctx.epoch,
                         proposal.leader_recovery_state, current.zk_version)
    return ErrorCode.NONE, new, True
