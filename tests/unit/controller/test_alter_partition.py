"""AlterPartition validation with plain data."""
from __future__ import annotations

import pytest

from kafkapy.controller.alter_partition import IsrProposal, check_requester, validate
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.protocol.errors import ErrorCode
from kafkapy.zk.data import LEADER_RECOVERY_RECOVERING, PartitionState
from tests.unit.controller.test_decisions import make_ctx

pytestmark = pytest.mark.unit
TP = TopicPartition("t", 0)


def ctx_with(isr=(1, 2), leader_epoch=4, zk_version=7, recovery=0):
    ctx = make_ctx(assignment={0: [1, 2, 3]}, states={0: (1, list(isr), leader_epoch, zk_version)})
    ctx.states[TP].leader_recovery_state = recovery
    return ctx


def test_requester_must_be_live_with_current_epoch() -> None:
    ctx = ctx_with()
    assert check_requester(ctx, 1, 101) == ErrorCode.NONE
    assert check_requester(ctx, 1, 100) == ErrorCode.STALE_BROKER_EPOCH
    assert check_requester(ctx, 9, -1) == ErrorCode.STALE_BROKER_EPOCH


def test_accepts_expansion_with_matching_epochs() -> None:
    code, state, write = validate(ctx_with(), 1, IsrProposal(TP, 4, [1, 2, 3], 7), 3)
    assert (code, write) == (ErrorCode.NONE, True)
    assert state == PartitionState(1, 4, [1, 2, 3], 5, zk_version=7)  # leader epoch unchanged


@pytest.mark.parametrize("proposal, version, expected", [
    (IsrProposal(TP, 3, [1], 7), 3, ErrorCode.FENCED_LEADER_EPOCH),
    (IsrProposal(TP, 5, [1], 7), 3, ErrorCode.NOT_CONTROLLER),
    (IsrProposal(TP, 4, [1], 8), 3, ErrorCode.NOT_CONTROLLER),
    (IsrProposal(TP, 4, [1], 6), 3, ErrorCode.INVALID_UPDATE_VERSION),
    (IsrProposal(TP, 4, [1, 4], 7), 3, ErrorCode.INELIGIBLE_REPLICA),
    (IsrProposal(TP, 4, [1, 4], 7), 1, ErrorCode.OPERATION_NOT_ATTEMPTED),
    (IsrProposal(TP, 4, [1, 2, 3], 7, isr_broker_epochs=[101, 102, 55]), 3,
     ErrorCode.INELIGIBLE_REPLICA),
    (IsrProposal(TP, 4, [1], 7, LEADER_RECOVERY_RECOVERING), 3, ErrorCode.INVALID_REQUEST),
    (IsrProposal(TopicPartition("u", 0), 4, [1], 7), 3, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
])
def test_rejections(proposal: IsrProposal, version: int, expected: ErrorCode) -> None:
    code, _, write = validate(ctx_with(), 1, proposal, version)
    assert (code, write) == (expected, False)


def test_only_the_leader_may_alter_the_isr() -> None:
    code, _, write = validate(ctx_with(), 2, IsrProposal(TP, 4, [2], 7), 3)
    assert (code, write) == (ErrorCode.INVALID_REQUEST, False)


def test_already_applied_is_success_without_write() -> None:
    code, state, write = validate(ctx_with(isr=(1,)), 1, IsrProposal(TP, 4, [1], 6), 3)
    assert (code, write) == (ErrorCode.NONE, False) and state.zk_version == 7


def test_shutting_down_broker_cannot_join_isr() -> None:
    ctx = ctx_with()
    ctx.shutting_down.add(3)
    code, _, _ = validate(ctx, 1, IsrProposal(TP, 4, [1, 2, 3], 7), 2)
    assert code == ErrorCode.INELIGIBLE_REPLICA
