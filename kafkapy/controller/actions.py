"""Decisions of the pure controller, as plain data for the edge (`controller.py`) to apply.

ZooKeeper writes come first in an action list and are applied in order (each fenced by the
controller epoch zkVersion); control requests follow and are queued per broker. If a write is
rejected, the edge drops the requests that carry the partitions it covered.
"""
from __future__ import annotations

import attrs

from kafkapy.controller.requests import ControlRequestData
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk.data import BrokerRegistration, PartitionState, TopicAssignment


@attrs.frozen(slots=True)
class CreatePartitionStates:
    """Create `state` znodes of new partitions (expect NONODE -> created at zkVersion 0)."""

    states: dict[TopicPartition, PartitionState]


@attrs.frozen(slots=True)
class UpdatePartitionStates:
    """setData of `state` znodes; each state's `zk_version` is the *expected* version."""

    states: dict[TopicPartition, PartitionState]


@attrs.frozen(slots=True)
class DeleteTopicZNodes:
    """Final step of topic deletion: assignment, partitions, config, deletion request."""

    topic: str


@attrs.frozen(slots=True)
class DeleteZNode:
    """Delete an admin/request node (deletion request of a missing topic, preferred election)."""

    path: str


@attrs.frozen(slots=True)
class DeleteIsrChangeNotifications:
    names: tuple[str, ...]


@attrs.frozen(slots=True)
class SetTopicAssignment:
    """Rewrite `/brokers/topics/<t>` (reassignment: RS with adding/removing replicas)."""

    topic: str
    assignment: TopicAssignment


ZkWrite = (CreatePartitionStates | UpdatePartitionStates | DeleteTopicZNodes | DeleteZNode
           | DeleteIsrChangeNotifications | SetTopicAssignment)


@attrs.frozen(slots=True)
class AddBrokerChannel:
    """Start the send queue/connection to a (re)joined broker before requests to it."""

    registration: BrokerRegistration


@attrs.frozen(slots=True)
class RemoveBrokerChannel:
    broker_id: int


@attrs.frozen(slots=True)
class ControlRequest:
    """One control request for one broker. `report` asks the edge to feed the response back
    as an event (StopReplica with delete=true drives topic deletion)."""

    broker_id: int
    request: ControlRequestData
    report: bool = False


Action = ZkWrite | AddBrokerChannel | RemoveBrokerChannel | ControlRequest
