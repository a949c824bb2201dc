"""ZooKeeper path builders for Kafka's ZK layout (section 1 of the architecture reference).

Every path is relative to the chroot of `zookeeper.connect`; kazoo applies the chroot, so these
builders never include it. Keeping them in one place is what keeps brokers, the controller and
admin tools agreeing on the exact layout that real Kafka tooling expects.
"""
from __future__ import annotations

CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
BROKERS = "/brokers"
BROKER_IDS = "/brokers/ids"
BROKER_SEQID = "/brokers/seqid"
BROKER_TOPICS = "/brokers/topics"
CLUSTER_ID = "/cluster/id"
CONFIG = "/config"
CONFIG_CHANGES = "/config/changes"
CONFIG_CHANGE_PREFIX = "config_change_"
ADMIN = "/admin"
DELETE_TOPICS = "/admin/delete_topics"
REASSIGN_PARTITIONS = "/admin/reassign_partitions"
PREFERRED_REPLICA_ELECTION = "/admin/preferred_replica_election"
ISR_CHANGE_NOTIFICATION = "/isr_change_notification"
ISR_CHANGE_PREFIX = "isr_change_"
LOG_DIR_EVENT_NOTIFICATION = "/log_dir_event_notification"
LOG_DIR_EVENT_PREFIX = "log_dir_event_"
LATEST_PRODUCER_ID_BLOCK = "/latest_producer_id_block"
CONSUMERS = "/consumers"
FEATURE = "/feature"

CONFIG_ENTITY_TYPES: tuple[str, ...] = ("topics", "clients", "users", "brokers", "ips")

# Created (recursively, empty) by every broker at startup, as Kafka does.
PERSISTENT_ZK_PATHS: tuple[str, ...] = (
    CONSUMERS,
    BROKER_IDS,
    BROKER_TOPICS,
    CONFIG_CHANGES,
    DELETE_TOPICS,
    BROKER_SEQID,
    ISR_CHANGE_NOTIFICATION,
    LATEST_PRODUCER_ID_BLOCK,
    LOG_DIR_EVENT_NOTIFICATION,
) + tuple(f"{CONFIG}/{t}" for t in CONFIG_ENTITY_TYPES)


def broker_path(broker_id: int) -> str:
    return f"{BROKER_IDS}/{broker_id}"


def topic_path(topic: str) -> str:
    return f"{BROKER_TOPICS}/{topic}"


def topic_partitions_path(topic: str) -> str:
    return f"{BROKER_TOPICS}/{topic}/partitions"


def topic_partition_path(topic: str, partition: int) -> str:
    return f"{BROKER_TOPICS}/{topic}/partitions/{partition}"


def partition_state_path(topic: str, partition: int) -> str:
    return f"{BROKER_TOPICS}/{topic}/partitions/{partition}/state"


def config_entity_path(entity_type: str, entity_name: str) -> str:
    """`/config/<type>/<name>`; `entity_type` is the plural ZK name ("topics", "brokers", ...)."""
    return f"{CONFIG}/{entity_type}/{entity_name}"


def topic_config_path(topic: str) -> str:
    return config_entity_path("topics", topic)


def broker_config_path(broker: int | str) -> str:
    """Dynamic broker config; pass "<default>" for the cluster-wide default node."""
    return config_entity_path("brokers", str(broker))


def config_change_prefix_path() -> str:
    return f"{CONFIG_CHANGES}/{CONFIG_CHANGE_PREFIX}"


def delete_topic_path(topic: str) -> str:
    return f"{DELETE_TOPICS}/{topic}"


def isr_change_prefix_path() -> str:
    return f"{ISR_CHANGE_NOTIFICATION}/{ISR_CHANGE_PREFIX}"


def isr_change_path(sequence_name: str) -> str:
    return f"{ISR_CHANGE_NOTIFICATION}/{sequence_name}"


def log_dir_event_path(sequence_name: str) -> str:
    return f"{LOG_DIR_EVENT_NOTIFICATION}/{sequence_name}"


def consumer_offset_path(group: str, topic: str, partition: int) -> str:
    return f"{CONSUMERS}/{group}/offsets/{topic}/{partition}"


def parent(path: str) -> str:
    """Parent of an absolute ZK path ("/" for top-level nodes)."""
    head = path.rsplit("/", 1)[0]
    return head or "/"
