"""`KafkaConfig`: the broker's configuration from server.properties, `--override`s and the
dynamic broker configs stored in ZooKeeper (`/config/brokers/<default>` and `/<id>`).

Kafka only warns about unknown keys; kafkapy refuses them, because a misspelt key silently
falling back to a default is the worst kind of surprise. Our own settings use the `kafkapy.`
prefix, and a few Kafka keys kafkapy does not implement are accepted and ignored.
"""
from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

import attrs

from ..protocol.errors import ErrorCode, KafkaError
from .broker_defs import BROKER_DEFS, IGNORED_KEYS, KAFKAPY_PREFIX, REMOVED_KEYS
from .definitions import ConfigError, ConfigType, to_string
from .listeners import Endpoint, ZkConnect, parse_listeners, parse_protocol_map, \
    parse_zookeeper_connect
from .properties import load_properties

log = logging.getLogger("kafkapy.config")

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000

# Keys a running broker may change through /config/brokers (Kafka's DynamicBrokerConfig minus
# the listener and TLS/SASL reconfiguration kafkapy does not offer).
DYNAMIC_BROKER_CONFIGS: frozenset[str] = frozenset({
    # broker defaults of topic configs (DynamicLogConfig)
    "log.segment.bytes", "log.roll.ms", "log.roll.jitter.ms", "log.index.size.max.bytes",
    "log.flush.interval.messages", "log.flush.interval.ms", "log.retention.bytes",
    "log.retention.ms", "message.max.bytes", "log.index.interval.bytes",
    "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms", "log.segment.delete.delay.ms",
    "log.cleaner.min.cleanable.ratio", "log.cleanup.policy", "unclean.leader.election.enable",
    "min.insync.replicas", "compression.type", "log.preallocate", "log.message.timestamp.type",
    "log.message.timestamp.difference.max.ms", "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms", "log.message.downconversion.enable",
    "log.local.retention.ms", "log.local.retention.bytes",
    # log cleaner
    "log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size", "log.cleaner.io.max.bytes.per.second", "log.cleaner.backoff.ms",
    # thread pools
    "num.io.threads", "num.network.threads", "num.replica.fetchers",
    "num.recovery.threads.per.data.dir", "background.threads",
    # socket server limits, metrics, producer state
    "max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides",
    "max.connection.creation.rate", "metric.reporters", "producer.id.expiration.ms",
    "transaction.partition.verification.enable",
    # replication throttles (DynamicConfig.Broker)
    "leader.replication.throttled.rate", "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",
})


def _stringify(name: str, raw: Any) -> str:
    return raw if isinstance(raw, str) else (to_string(BROKER_DEFS.type_of(name), raw) or "")


def _unknown_key_message(name: str, raw: Any) -> str:
    if name in REMOVED_KEYS:
        return f"Unsupported configuration '{name}' (value '{raw}'): {REMOVED_KEYS[name]}"
    hint = ""
    close = difflib.get_close_matches(name, list(BROKER_DEFS.names()), n=1, cutoff=0.8)
    if close:
        hint = f" Did you mean '{close[0]}'?"
    return (f"Unknown configuration '{name}' (value '{raw}'): not a Kafka broker config "
            f"known to kafkapy; kafkapy's own settings use the prefix '{KAFKAPY_PREFIX}'.{hint}")


def check_known(props: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first key that is neither a broker key, an ignored Kafka key
    nor prefixed with `kafkapy.`."""
    for name, raw in props.items():
        if name in BROKER_DEFS or name in IGNORED_KEYS or name.startswith(KAFKAPY_PREFIX):
            continue
        raise ConfigError(_unknown_key_message(name, raw))


@attrs.frozen(slots=True, eq=False)
class KafkaConfig:
    """Validated broker configuration. `get(name)` returns any key's typed value (None when
    unset without default); common values have typed attributes, and `cfg.num_partitions`
    style attribute access works for every defined key (dots become underscores)."""

    static_props: dict[str, str]
    dynamic_default: dict[str, str]
    dynamic_broker: dict[str, str]
    values: dict[str, Any]
    listeners: tuple[Endpoint, ...]
    advertised_listeners: tuple[Endpoint, ...]
    zk: ZkConnect
    log_dirs: tuple[str, ...]
    listener_security_protocol_map: dict[str, str]
    inter_broker_listener_name: str

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> KafkaConfig:
        """Build from a mapping of Kafka keys to strings (or typed values)."""
        check_known(props)
        static = {k: _stringify(k, v) for k, v in props.items()}
        return cls._build(static, {}, {})

    @classmethod
    def from_file(cls, path: str, overrides: list[str] | None = None) -> KafkaConfig:
        """server.properties plus `k=v` overrides (later wins), like kafka-server-start.sh."""
        props = load_properties(path)
        props.update(parse_overrides(overrides or []))
        return cls.from_props(props)

    @classmethod
    def _build(cls, static: dict[str, str], dyn_default: dict[str, str],
               dyn_broker: dict[str, str]) -> KafkaConfig:
        merged: dict[str, Any] = {**static, **dyn_default, **dyn_broker}
        if merged.get("process.roles", "").strip():
            raise ConfigError(
                f"Unsupported configuration 'process.roles' (value '{merged['process.roles']}'):"
                " kafkapy runs in ZooKeeper mode only; remove process.roles and set "
                "zookeeper.connect")
        typed = {k: v for k, v in merged.items() if k in BROKER_DEFS}
        values = BROKER_DEFS.parse(typed)
        for name, raw in merged.items():
            if name not in BROKER_DEFS:
                values[name] = raw
        _check_broker_id(values)
        zk = parse_zookeeper_connect(values["zookeeper.connect"])
        pmap = parse_protocol_map(values["listener.security.protocol.map"])
        listeners = parse_listeners(values["listeners"], pmap)
        adv_text = values["advertised.listeners"]
        advertised = (parse_listeners(adv_text, pmap, "advertised.listeners", False)
                      if adv_text else list(listeners))
        if "inter.broker.listener.name" in merged and "security.inter.broker.protocol" in merged:
            raise ConfigError("Only one of inter.broker.listener.name and "
                              "security.inter.broker.protocol should be set")
        ibl = _inter_broker_listener(values, listeners, advertised)
        dirs_text = values["log.dirs"] if values["log.dirs"] is not None else values["log.dir"]
        log_dirs = tuple(d for d in (p.strip() for p in dirs_text.split(",")) if d)
        if not log_dirs:
            raise ConfigError("At least one log directory must be defined via log.dirs or log.dir")
        cfg = cls(static, dict(dyn_default), dict(dyn_broker), values, tuple(listeners),
                  tuple(advertised), zk, log_dirs, pmap, ibl)
        cfg._check_derived()
        return cfg

    def _check_derived(self) -> None:
        v = self.values
        if self.log_roll_ms < 1:
            raise ConfigError(f"log.roll.ms must be at least 1, got {self.log_roll_ms}")
        if self.log_roll_jitter_ms < 0:
            raise ConfigError(f"log.roll.jitter.ms must be at least 0, got {self.log_roll_jitter_ms}")
        if self.log_retention_ms != -1 and self.log_retention_ms < 1:
            raise ConfigError("log.retention.ms must be unlimited (-1) or at least 1, got "
                              f"{self.log_retention_ms} (from log.retention.ms/minutes/hours)")
        if v["replica.fetch.wait.max.ms"] > v["replica.socket.timeout.ms"]:
            raise ConfigError("replica.socket.timeout.ms should always be at least "
                              "replica.fetch.wait.max.ms to prevent unnecessary socket timeouts")
        if v["replica.fetch.wait.max.ms"] > v["replica.lag.time.max.ms"]:
            raise ConfigError("replica.fetch.wait.max.ms should always be less than or equal to "
                              "replica.lag.time.max.ms to prevent frequent changes in ISR")
        acks = v["offsets.commit.required.acks"]
        if not -1 <= acks <= v["offsets.topic.replication.factor"]:
            raise ConfigError("offsets.commit.required.acks must be greater or equal -1 and less "
                              "or equal to offsets.topic.replication.factor")
        threads = v["log.cleaner.threads"]
        if threads > 0 and v["log.cleaner.dedupe.buffer.size"] / threads <= 1024 * 1024:
            raise ConfigError("log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner "
                              "thread")

    # ---- access ---------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """Typed value of any broker key (KeyError for names that are not broker keys)."""
        if name in self.values:
            return self.values[name]
        if name in BROKER_DEFS:
            return BROKER_DEFS[name].default
        raise KeyError(name)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        name = attr.replace("_", ".")
        if name in BROKER_DEFS:
            return self.get(name)
        raise AttributeError(f"KafkaConfig has no attribute {attr!r} (no broker key {name!r})")

    def originals(self) -> dict[str, str]:
        """server.properties + overrides as given (Kafka's static broker configs)."""
        return dict(self.static_props)

    @property
    def broker_id(self) -> int:
        return self.values["broker.id"]

    @property
    def zookeeper_connect(self) -> str:
        """The full connect string including the chroot, as the user wrote it."""
        return self.zk.connect_string

    @property
    def zookeeper_hosts(self) -> str:
        return self.zk.hosts

    @property
    def zookeeper_chroot(self) -> str:
        """"" or "/path": Kafka creates this path before using it."""
        return self.zk.chroot

    @property
    def zookeeper_session_timeout_ms(self) -> int:
        return self.values["zookeeper.session.timeout.ms"]

    @property
    def zookeeper_connection_timeout_ms(self) -> int:
        value = self.values["zookeeper.connection.timeout.ms"]
        return self.zookeeper_session_timeout_ms if value is None else value

    @property
    def log_retention_ms(self) -> int:
        """log.retention.ms > .minutes > .hours; any negative value means -1 (forever)."""
        v = self.values
        if v["log.retention.ms"] is not None:
            ms = v["log.retention.ms"]
        elif v["log.retention.minutes"] is not None:
            ms = v["log.retention.minutes"] * MS_PER_MINUTE
        else:
            ms = v["log.retention.hours"] * MS_PER_HOUR
        return -1 if ms < 0 else ms

    @property
    def log_roll_ms(self) -> int:
        v = self.values
        return v["log.roll.ms"] if v["log.roll.ms"] is not None else v["log.roll.hours"] * MS_PER_HOUR

    @property
    def log_roll_jitter_ms(self) -> int:
        v = self.values
        if v["log.roll.jitter.ms"] is not None:
            return v["log.roll.jitter.ms"]
        return v["log.roll.jitter.hours"] * MS_PER_HOUR

    @property
    def log_flush_interval_ms(self) -> int:
        v = self.values
        if v["log.flush.interval.ms"] is not None:
            return v["log.flush.interval.ms"]
        return v["log.flush.scheduler.interval.ms"]

    @property
    def offsets_retention_ms(self) -> int:
        return self.values["offsets.retention.minutes"] * MS_PER_MINUTE

    @property
    def inter_broker_endpoint(self) -> Endpoint:
        """The advertised endpoint other brokers (and the controller) use to reach this one."""
        for ep in self.advertised_listeners:
            if ep.listener_name == self.inter_broker_listener_name:
                return ep
        raise AssertionError("validated at construction")

    def with_broker_id(self, broker_id: int) -> KafkaConfig:
        """This config once broker.id=-1 has been resolved (meta.properties or ZooKeeper's
        /brokers/seqid); the static props keep what the user wrote."""
        return attrs.evolve(self, values={**self.values, "broker.id": broker_id})

    # ---- dynamic configs -------------------------------------------------------------------
    def with_dynamic(self, default: Mapping[str, str] | None = None,
                     per_broker: Mapping[str, str] | None = None) -> KafkaConfig:
        """This config with ZooKeeper's dynamic broker configs on top (per-broker > cluster
        default > static). Entries that are not dynamic or not valid are skipped with a
        warning, as Kafka does, so a bad znode cannot stop a broker from starting."""
        dyn_default = _usable_dynamic(default or {}, "<default>")
        dyn_broker = _usable_dynamic(per_broker or {}, str(self.broker_id))
        try:
            cfg = self._build(self.static_props, dyn_default, dyn_broker)
        except ConfigError as exc:
            log.warning("Ignoring dynamic broker configs that make the configuration invalid: %s",
                        exc)
            cfg = self._build(self.static_props, {}, {})
        return cfg.with_broker_id(self.broker_id)


def _usable_dynamic(props: Mapping[str, str], entity: str) -> dict[str, str]:
    usable: dict[str, str] = {}
    for name, raw in props.items():
        if raw is None:
            continue
        if name not in DYNAMIC_BROKER_CONFIGS:
            log.warning("Ignoring dynamic config %s=%s for broker %s: not dynamically "
                        "updatable in kafkapy", name, raw, entity)
            continue
        try:
            BROKER_DEFS[name].parse(raw)
        except ConfigError as exc:
            log.warning("Ignoring dynamic config for broker %s: %s", entity, exc)
            continue
        usable[name] = raw if isinstance(raw, str) else _stringify(name, raw)
    return usable


def validate_dynamic_broker_configs(props: Mapping[str, str | None], per_broker: bool = True,
                                    current: KafkaConfig | None = None) -> None:
    """Check an AlterConfigs / IncrementalAlterConfigs result for a broker resource (the full
    new set of dynamic configs). Raises KafkaError(INVALID_REQUEST, ...) as ZooKeeper-mode
    Kafka does for configs that cannot change at runtime or have bad values."""
    names = [n for n, v in props.items() if v is not None]
    unknown = sorted(n for n in names if n not in BROKER_DEFS)
    if unknown:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Unknown broker configs: Set({', '.join(unknown)})")
    static_only = sorted(n for n in names if n not in DYNAMIC_BROKER_CONFIGS)
    if static_only:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Cannot update these configs dynamically: Set({', '.join(static_only)})")
    for name in names:
        try:
            BROKER_DEFS[name].parse(props[name])
        except ConfigError as exc:
            raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    if current is not None:
        clean = {n: _stringify(n, props[n]) for n in names}
        dyn_default = clean if not per_broker else current.dynamic_default
        dyn_broker = clean if per_broker else current.dynamic_broker
        try:
            KafkaConfig._build(current.static_props, dyn_default, dyn_broker)
        except ConfigError as exc:
            raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from exc


def _check_broker_id(values: dict[str, Any]) -> None:
    bid, max_id = values["broker.id"], values["reserved.broker.max.id"]
    if values["broker.id.generation.enable"]:
        if not -1 <= bid <= max_id:
            raise ConfigError(f"Invalid value '{bid}' for configuration 'broker.id': must be "
                              f"-1 (generated from ZooKeeper) or between 0 and "
                              f"reserved.broker.max.id ({max_id})")
    elif bid < 0:
        raise ConfigError(f"Invalid value '{bid}' for configuration 'broker.id': must be at "
                          "least 0 when broker.id.generation.enable is false")


def _inter_broker_listener(values: dict[str, Any], listeners: list[Endpoint],
                           advertised: list[Endpoint]) -> str:
    name = values["inter.broker.listener.name"]
    if name is None:
        name = values["security.inter.broker.protocol"]
    name = name.upper()
    for ep in advertised:
        if ep.host == "0.0.0.0":
            raise ConfigError("advertised.listeners cannot use the nonroutable meta-address "
                              "0.0.0.0 (it defaults to listeners); set advertised.listeners "
                              "to a routable IP address or host name")
    adv_names = [ep.listener_name for ep in advertised]
    if name not in adv_names:
        raise ConfigError(
            f"inter.broker.listener.name must be a listener name defined in "
            f"advertised.listeners; '{name}' is not one of {', '.join(adv_names)}")
    listener_names = {ep.listener_name for ep in listeners}
    missing = [n for n in adv_names if n not in listener_names]
    if missing:
        raise ConfigError(f"advertised.listeners names {', '.join(missing)} are not among "
                          f"the listeners ({', '.join(sorted(listener_names))})")
    return name


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """`k=v` strings -> dict; the value may itself contain '='."""
    out: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Invalid override '{item}': expected key=value")
        out[key.strip()] = value
    return out


def type_of(name: str) -> ConfigType:
    """ConfigType of a broker key (UNKNOWN for kafkapy.* and ignored keys)."""
    return BROKER_DEFS.type_of(name)
