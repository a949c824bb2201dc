"""JSON codecs for the znodes Kafka keeps in ZooKeeper (section 1 of the architecture reference).

Pure functions and attrs classes, no I/O. The encoders produce compact JSON with the same key
order as Kafka's own writers so that Kafka tooling (and a byte-for-byte test) reads our znodes
exactly as it reads a real cluster's; the decoders also accept the older versions Kafka wrote.
"""
from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any

import attrs

BROKER_REGISTRATION_VERSION = 5
CONTROLLER_VERSION = 2
TOPIC_ASSIGNMENT_VERSION = 3
PARTITION_STATE_VERSION = 1
PRODUCER_ID_BLOCK_SIZE = 1000
LEADER_RECOVERY_RECOVERED = 0
LEADER_RECOVERY_RECOVERING = 1
LOG_DIR_FAILURE_EVENT = 1

ZERO_UUID = b"\0" * 16
_METADATA_TOPIC_UUID = b"\0" * 15 + b"\1"


def _dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as Jackson writes it (no spaces, non-ASCII left as is)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _loads(data: bytes | None) -> Any:
    if data is None or len(data) == 0:
        return None
    return json.loads(bytes(data).decode("utf-8"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- UUIDs (Kafka's Uuid: 16 bytes <-> 22-char url-safe base64 without padding) -----------

def uuid_to_str(raw: bytes) -> str:
    if len(raw) != 16:
        raise ValueError(f"a Kafka UUID has 16 bytes, got {len(raw)}")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def uuid_from_str(text: str) -> bytes:
    if len(text) != 22:
        raise ValueError(f"a Kafka UUID string has 22 characters, got {text!r}")
    raw = base64.urlsafe_b64decode(text + "==")
    if len(raw) != 16:
        raise ValueError(f"bad Kafka UUID {text!r}")
    return raw


def random_uuid() -> bytes:
    """A fresh topic/cluster id; like Kafka, never the zero or metadata-topic id, never a
    string starting with '-' (that would look like a command-line flag)."""
    while True:
        raw = os.urandom(16)
        if raw in (ZERO_UUID, _METADATA_TOPIC_UUID):
            continue
        if not uuid_to_str(raw).startswith("-"):
            return raw


# --- broker registration /brokers/ids/<id> ------------------------------------------------

_ENDPOINT_RE = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*?)\]?:(-?[0-9]+)$")


@attrs.define(slots=True, frozen=True)
class EndPoint:
    listener: str
    host: str
    port: int
    security_protocol: str

    def connection_string(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.listener}://{host}:{self.port}"

    @classmethod
    def parse(cls, text: str, protocol_map: dict[str, str] | None = None) -> "EndPoint":
        match = _ENDPOINT_RE.match(text)
        if match is None:
            raise ValueError(f"unable to parse endpoint {text!r}")
        listener, host, port = match.group(1), match.group(2), int(match.group(3))
        protocol = (protocol_map or {}).get(listener, listener)
        return cls(listener, host, port, protocol)


@attrs.define(slots=True)
class BrokerRegistration:
    """Contents of `/brokers/ids/<id>`. `epoch` is the node's czxid (the broker epoch); it
    is not part of the JSON and is -1 until read back from ZooKeeper."""

    broker_id: int
    endpoints: list[EndPoint]
    rack: str | None = None
    jmx_port: int = -1
    timestamp_ms: int = attrs.field(factory=now_ms)
    features: dict[str, Any] = attrs.field(factory=dict)
    version: int = BROKER_REGISTRATION_VERSION
    epoch: int = -1

    def endpoint(self, listener: str = "PLAINTEXT") -> EndPoint | None:
        for ep in self.endpoints:
            if ep.listener == listener:
                return ep
        return None

    def encode(self) -> bytes:
        plain = next((ep for ep in self.endpoints if ep.security_protocol == "PLAINTEXT"), None)
        obj: dict[str, Any] = {
            "features": self.features,
            "listener_security_protocol_map": {
                ep.listener: ep.security_protocol for ep in self.endpoints},
            "endpoints": [ep.connection_string() for ep in self.endpoints],
            "jmx_port": self.jmx_port,
            "port": plain.port if plain else -1,
            "host": plain.host if plain else None,
            "version": BROKER_REGISTRATION_VERSION,
            "timestamp": str(self.timestamp_ms),
        }
        if self.rack is not None:
            obj["rack"] = self.rack
        return _dumps(obj)

    @classmethod
    def decode(cls, broker_id: int, data: bytes, epoch: int = -1) -> "BrokerRegistration":
        obj = _loads(data)
        version = int(obj["version"])
        protocol_map = obj.get("listener_security_protocol_map") or {}
        if version >= 2 and obj.get("endpoints") is not None:
            endpoints = [EndPoint.parse(e, protocol_map) for e in obj["endpoints"]]
        else:
            endpoints = [EndPoint("PLAINTEXT", obj["host"], int(obj["port"]), "PLAINTEXT")]
        return cls(
            broker_id=broker_id,
            endpoints=endpoints,
            rack=obj.get("rack"),
            jmx_port=int(obj.get("jmx_port", -1)),
            timestamp_ms=int(obj.get("timestamp", 0)),
            features=obj.get("features") or {},
            version=version,
            epoch=epoch,
        )


# --- topic assignment /brokers/topics/<t> -------------------------------------------------

def _int_keyed(mapping: dict[str, list[int]] | None) -> dict[int, list[int]]:
    return {int(k): [int(r) for r in v] for k, v in (mapping or {}).items()}


def _str_keyed(mapping: dict[int, list[int]]) -> dict[str, list[int]]:
    return {str(k): list(mapping[k]) for k in sorted(mapping)}


@attrs.define(slots=True)
class TopicAssignment:
    """Replica assignment of one topic. First replica of each partition = preferred leader."""

    partitions: dict[int, list[int]]
    topic_id: bytes | None = None
    adding_replicas: dict[int, list[int]] = attrs.field(factory=dict)
    removing_replicas: dict[int, list[int]] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        obj: dict[str, Any] = {
            "version": TOPIC_ASSIGNMENT_VERSION if self.topic_id is not None else 2,
            "partitions": _str_keyed(self.partitions),
            "adding_replicas": _str_keyed(self.adding_replicas),
            "removing_replicas": _str_keyed(self.removing_replicas),
        }
        if self.topic_id is not None:
            obj["topic_id"] = uuid_to_str(self.topic_id)
        return _dumps(obj)

    @classmethod
    def decode(cls, data: bytes) -> "TopicAssignment":
        obj = _loads(data)
        topic_id = obj.get("topic_id")
        return cls(
            partitions=_int_keyed(obj.get("partitions")),
            topic_id=uuid_from_str(topic_id) if topic_id else None,
            adding_replicas=_int_keyed(obj.get("adding_replicas")),
            removing_replicas=_int_keyed(obj.get("removing_replicas")),
        )


# --- partition state /brokers/topics/<t>/partitions/<p>/state ----------------------------

@attrs.define(slots=True)
class PartitionState:
    """Leader, ISR and fencing data of one partition. `zk_version` is the node's Stat.version
    (the partition epoch); it is not in the JSON and is -1 until read back."""

    leader: int
    leader_epoch: int
    isr: list[int]
    controller_epoch: int
    leader_recovery_state: int = LEADER_RECOVERY_RECOVERED
    zk_version: int = -1

    def encode(self) -> bytes:
        obj: dict[str, Any] = {
            "controller_epoch": self.controller_epoch,
            "leader": self.leader,
            "version": PARTITION_STATE_VERSION,
            "leader_epoch": self.leader_epoch,
            "isr": list(self.isr),
        }
        if self.leader_recovery_state == LEADER_RECOVERY_RECOVERING:
            obj["leader_recovery_state"] = LEADER_RECOVERY_RECOVERING
        return _dumps(obj)

    @classmethod
    def decode(cls, data: bytes, zk_version: int = -1) -> "PartitionState":
        obj = _loads(data)
        return cls(
            leader=int(obj["leader"]),
            leader_epoch=int(obj["leader_epoch"]),
            isr=[int(b) for b in obj["isr"]],
            controller_epoch=int(obj["controller_epoch"]),
            leader_recovery_state=int(obj.get("leader_recovery_state", 0)),
            zk_version=zk_version,
        )


# --- /controller and /controller_epoch ----------------------------------------------------

@attrs.define(slots=True, frozen=True)
class ControllerInfo:
    broker_id: int
    timestamp_ms: int = attrs.field(factory=now_ms)
    kraft_controller_epoch: int = -1

    def encode(self) -> bytes:
        return _dumps({
            "version": CONTROLLER_VERSION,
            "brokerid": self.broker_id,
            "timestamp": str(self.timestamp_ms),
            "kraftControllerEpoch": self.kraft_controller_epoch,
        })

    @classmethod
    def decode(cls, data: bytes) -> "ControllerInfo":
        obj = _loads(data)
        if isinstance(obj, int):  # very old brokers wrote the bare id
            return cls(obj, 0)
        return cls(
            broker_id=int(obj["brokerid"]),
            timestamp_ms=int(obj.get("timestamp", 0)),
            kraft_controller_epoch=int(obj.get("kraftControllerEpoch", -1)),
        )


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode("ascii")


def decode_controller_epoch(data: bytes) -> int:
    return int(bytes(data).decode("ascii").strip())


# --- /cluster/id --------------------------------------------------------------------------

def encode_cluster_id(cluster_id: str) -> bytes:
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes) -> str:
    return str(_loads(data)["id"])


# --- /config/<type>/<name> and /config/changes -------------------------------------------

def encode_entity_config(config: dict[str, str]) -> bytes:
    return _dumps({"version": 1, "config": {k: str(v) for k, v in config.items()}})


def decode_entity_config(data: bytes | None) -> dict[str, str]:
    obj = _loads(data)
    if not obj:
        return {}
    return {str(k): str(v) for k, v in (obj.get("config") or {}).items()}


def encode_config_change(entity_type: str, entity_name: str) -> bytes:
    """Notification v2: entity_path is "<type>/<name>" (e.g. "topics/t", "brokers/<default>")."""
    return _dumps({"version": 2, "entity_path": f"{entity_type}/{entity_name}"})


def decode_config_change(data: bytes) -> tuple[str, str]:
    """Returns (entity_type, entity_name) for v1 and v2 notifications."""
    obj = _loads(data)
    if int(obj["version"]) == 1:
        return str(obj["entity_type"]), str(obj["entity_name"])
    entity_type, _, entity_name = str(obj["entity_path"]).partition("/")
    return entity_type, entity_name


# --- /latest_producer_id_block ------------------------------------------------------------

@attrs.define(slots=True, frozen=True)
class ProducerIdBlock:
    broker: int
    block_start: int
    block_end: int

    def encode(self) -> bytes:
        return _dumps({
            "version": 1,
            "broker": self.broker,
            "block_start": str(self.block_start),
            "block_end": str(self.block_end),
        })

    @classmethod
    def decode(cls, data: bytes) -> "ProducerIdBlock":
        obj = _loads(data)
        return cls(int(obj["broker"]), int(obj["block_start"]), int(obj["block_end"]))

    def next_block(self, broker: int) -> "ProducerIdBlock":
        start = self.block_end + 1
        return ProducerIdBlock(broker, start, start + PRODUCER_ID_BLOCK_SIZE - 1)


def first_producer_id_block(broker: int) -> ProducerIdBlock:
    return ProducerIdBlock(broker, 0, PRODUCER_ID_BLOCK_SIZE - 1)


# --- admin nodes and notifications --------------------------------------------------------

def encode_reassignment(moves: dict[tuple[str, int], list[int]]) -> bytes:
    return _dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": list(r)} for (t, p), r in moves.items()]})


def decode_reassignment(data: bytes) -> dict[tuple[str, int], list[int]]:
    obj = _loads(data) or {}
    return {(str(e["topic"]), int(e["partition"])): [int(r) for r in e["replicas"]]
            for e in obj.get("partitions", [])}


def encode_partition_list(partitions: list[tuple[str, int]]) -> bytes:
    """Used by /admin/preferred_replica_election and isr_change notifications."""
    return _dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p} for t, p in partitions]})


def decode_partition_list(data: bytes) -> list[tuple[str, int]]:
    obj = _loads(data) or {}
    return [(str(e["topic"]), int(e["partition"])) for e in obj.get("partitions", [])]


encode_preferred_replica_election = encode_partition_list
decode_preferred_replica_election = decode_partition_list
encode_isr_change = encode_partition_list
decode_isr_change = decode_partition_list


def encode_log_dir_event(broker: int, event: int = LOG_DIR_FAILURE_EVENT) -> bytes:
    return _dumps({"version": 1, "broker": broker, "event": event})


def decode_log_dir_event(data: bytes) -> tuple[int, int]:
    obj = _loads(data)
    return int(obj["broker"]), int(obj["event"])


def encode_consumer_offset(offset: int) -> bytes:
    return str(offset).encode("ascii")


def decode_consumer_offset(data: bytes) -> int:
    return int(bytes(data).decode("ascii").strip())
