"""Controller events (Kafka's ControllerEvent family) as attrs data.

The pure `decisions.on_event` handles the cluster events below; `Startup`, `Reelect`,
`ControllerChange`, `Expire` and the reply-carrying API events are handled by the edge
(`controller.py`), which reads ZooKeeper and then hands the pure core fully-read data.
"""
from __future__ import annotations

import attrs

from kafkapy.log.topic_partition import TopicPartition
from kafkapy.zk.data import BrokerRegistration, PartitionState, TopicAssignment


@attrs.frozen(slots=True)
class Startup:
    """Controller module started: register watches and run the first election."""


@attrs.frozen(slots=True)
class Reelect:
    """`/controller` vanished or changed: resign if it is no longer ours, then elect."""


@attrs.frozen(slots=True)
class ControllerChange:
    """`/controller` data changed (another broker won)."""


@attrs.frozen(slots=True)
class Expire:
    """ZooKeeper session lost: stop acting as controller at once."""


@attrs.frozen(slots=True)
class Failover:
    """This broker just won; the context has been loaded from ZooKeeper (§3.4)."""


@attrs.frozen(slots=True)
class BrokerChange:
    """Children of `/brokers/ids` changed; `current` = every registered broker now (with
    epochs), from which joins, deaths and bounces (larger czxid) are derived."""

    current: dict[int, BrokerRegistration]


@attrs.frozen(slots=True)
class BrokerModification:
    """A broker's registration data changed (endpoints/rack) without a new epoch."""

    broker_id: int
    registration: BrokerRegistration


@attrs.frozen(slots=True)
class TopicChange:
    """Children of `/brokers/topics` changed; `assignments` = every topic now."""

    assignments: dict[str, TopicAssignment]
    configs: dict[str, dict[str, str]] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class PartitionModifications:
    """A topic's assignment node changed (partitions added)."""

    topic: str
    assignment: TopicAssignment


@attrs.frozen(slots=True)
class TopicDeletion:
    """Children of `/admin/delete_topics`: every topic currently marked for deletion."""

    topics: frozenset[str]


@attrs.frozen(slots=True)
class ReplicaDeletionResult:
    """Outcome of a StopReplica(delete=true) sent to `broker_id`."""

    broker_id: int
    succeeded: tuple[TopicPartition, ...]
    failed: tuple[TopicPartition, ...] = ()


@attrs.frozen(slots=True)
class IsrChangeNotification:
    """Leaders changed ISRs directly in ZooKeeper; `states` were re-read after the notice."""

    names: tuple[str, ...]
    states: dict[TopicPartition, PartitionState]


@attrs.frozen(slots=True)
class ControlledShutdown:
    broker_id: int
    broker_epoch: int


@attrs.frozen(slots=True)
class PreferredReplicaElection:
    """Preferred-leader election for `partitions` (admin node, ElectLeaders or rebalance)."""

    partitions: tuple[TopicPartition, ...]
    from_admin_node: bool = False


@attrs.frozen(slots=True)
class UncleanElection:
    """Admin-requested unclean election (ElectLeaders type 1) for leaderless partitions."""

    partitions: tuple[TopicPartition, ...]


@attrs.frozen(slots=True)
class Reassign:
    """Validated reassignment targets (AlterPartitionReassignments; cancels resolved to ORS)."""

    targets: dict[TopicPartition, list[int]]


@attrs.frozen(slots=True)
class ReassignmentCheck:
    """ISRs of these partitions grew: finish reassignments whose targets are all in sync."""

    partitions: tuple[TopicPartition, ...]


@attrs.frozen(slots=True)
class RetryElection:
    """A planned state write was rejected (BADVERSION); states were reloaded: elect again."""

    partitions: tuple[TopicPartition, ...]
