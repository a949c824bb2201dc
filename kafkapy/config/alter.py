"""IncrementalAlterConfigs: SET / DELETE / APPEND / SUBTRACT applied to a resource's stored
configs, with the checks ZooKeeper-mode Kafka makes before it writes the znode.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from ..protocol.errors import ErrorCode, KafkaError
from .broker import validate_dynamic_broker_configs
from .broker_defs import BROKER_DEFS
from .definitions import ConfigDef, ConfigType
from .topic_defs import TOPIC_DEFS, validate_topic_configs


class AlterOp(enum.IntEnum):
    """IncrementalAlterConfigs operation numbers."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


_KINDS: dict[str, ConfigDef] = {"topic": TOPIC_DEFS, "broker": BROKER_DEFS}


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def apply_incremental(current: Mapping[str, str], ops: Iterable[tuple[str, int, str | None]],
                      kind: str, validate: bool = True) -> dict[str, str]:
    """Return the resource's new stored configs after `ops` [(name, op, value)].

    kind is "topic" or "broker". APPEND/SUBTRACT work only on LIST keys (else INVALID_REQUEST,
    as ZooKeeper-mode Kafka answers); a list absent from `current` starts from the key's
    default. With `validate`, the result is checked as AlterConfigs would check it
    (topics: INVALID_CONFIG; brokers: INVALID_REQUEST)."""
    defs = _KINDS.get(kind)
    if defs is None:
        raise ValueError(f"kind must be 'topic' or 'broker', not {kind!r}")
    ops = list(ops)
    names = [name for name, _, _ in ops]
    if len(set(names)) != len(names):
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
    nulls = [name for name, op, value in ops if value is None and op != AlterOp.DELETE]
    if nulls:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"Null value not supported for : {','.join(nulls)}")
    result = dict(current)
    for name, op, value in ops:
        if op == AlterOp.SET:
            result[name] = value  # type: ignore[assignment]
        elif op == AlterOp.DELETE:
            result.pop(name, None)
        elif op in (AlterOp.APPEND, AlterOp.SUBTRACT):
            key = defs.get(name)
            if key is None:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown {kind} config name: {name}")
            verb = "append" if op == AlterOp.APPEND else "subtract"
            if key.type is not ConfigType.LIST:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 f"Config value {verb} is not allowed for config key: {name}")
            old = _split(result[name] if name in result else key.default_string())
            if op == AlterOp.APPEND:
                new = old + [v for v in _split(value) if v not in old]
                new = list(dict.fromkeys(new))
            else:
                drop = set(_split(value))
                new = [v for v in old if v not in drop]
            result[name] = ",".join(new)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"Unknown alter config operation type {op} for {name}")
    if validate:
        if kind == "topic":
            validate_topic_configs(result)
        else:
            validate_dynamic_broker_configs(result)
    return result
