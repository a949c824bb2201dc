"""DescribeConfigs entries for topics and brokers, with Kafka's sources and synonyms.

Admin tools (kafka-configs.sh --describe, AdminClient.describeConfigs) show where each value
comes from; reproducing Kafka's precedence walk (topic override, dynamic per-broker, dynamic
cluster default, static server.properties, built-in default) keeps their output identical.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import attrs

from .broker import DYNAMIC_BROKER_CONFIGS
from .broker_defs import BROKER_DEFS
from .definitions import ConfigType, to_string
from .topic_defs import TOPIC_DEFS, TOPIC_SYNONYMS, broker_synonyms, effective_topic_props

if TYPE_CHECKING:
    from .broker import KafkaConfig


class ConfigSource(enum.IntEnum):
    """Kafka's DescribeConfigsResponse.ConfigSource numbers."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6


class ConfigSynonym(NamedTuple):
    name: str
    value: str | None
    source: int


@attrs.frozen(slots=True)
class ConfigEntry:
    """One DescribeConfigs result entry (field names follow the response schema)."""

    name: str
    value: str | None
    read_only: bool
    source: int
    is_sensitive: bool
    synonyms: list[ConfigSynonym]
    config_type: int
    documentation: str | None = None


_BROKER_DEFAULTS: dict[str, str] = BROKER_DEFS.default_strings()


def _config_synonyms(cfg: KafkaConfig, name: str, synonyms: Iterable[str],
                     sensitive: bool) -> list[ConfigSynonym]:
    """Every place a broker value could come from, highest precedence first; entries before
    `name` itself are dropped, as Kafka does (so describing log.retention.hours does not
    list log.retention.ms)."""
    names = list(synonyms)
    layers = (
        (cfg.dynamic_broker, ConfigSource.DYNAMIC_BROKER_CONFIG),
        (cfg.dynamic_default, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        (cfg.static_props, ConfigSource.STATIC_BROKER_CONFIG),
        (_BROKER_DEFAULTS, ConfigSource.DEFAULT_CONFIG),
    )
    found: list[ConfigSynonym] = []
    for layer, source in layers:
        for syn in names:
            if syn in layer:
                found.append(ConfigSynonym(syn, None if sensitive else layer[syn], int(source)))
    while found and found[0].name != name:
        found.pop(0)
    return found


def _wanted(name: str, keys: Iterable[str] | None) -> bool:
    return keys is None or name in keys


def describe_topic_configs(broker_cfg: KafkaConfig, overrides: dict[str, str],
                           keys: Iterable[str] | None = None, include_synonyms: bool = True,
                           include_documentation: bool = False) -> list[ConfigEntry]:
    """Entries for a topic with `overrides` (its /config/topics znode). `keys` None or empty
    means all; unknown names are skipped, as Kafka does."""
    keys = set(keys) if keys else None
    props = effective_topic_props(broker_cfg, overrides)
    entries: list[ConfigEntry] = []
    for name, key in TOPIC_DEFS.keys.items():
        if not _wanted(name, keys):
            continue
        value = props[name]
        synonyms: list[ConfigSynonym] = []
        if name in TOPIC_SYNONYMS:
            first = TOPIC_SYNONYMS[name][0]
            synonyms = _config_synonyms(broker_cfg, first, broker_synonyms(first), False)
        if name in overrides:
            synonyms.insert(0, ConfigSynonym(name, value, int(ConfigSource.DYNAMIC_TOPIC_CONFIG)))
        source = synonyms[0].source if synonyms else int(ConfigSource.DEFAULT_CONFIG)
        entries.append(ConfigEntry(
            name=name, value=value, read_only=False, source=source, is_sensitive=False,
            synonyms=synonyms if include_synonyms else [], config_type=int(key.type),
            documentation=(key.doc or None) if include_documentation else None))
    return entries


def describe_broker_configs(broker_cfg: KafkaConfig, keys: Iterable[str] | None = None,
                            per_broker: bool = True, include_synonyms: bool = True,
                            include_documentation: bool = False) -> list[ConfigEntry]:
    """Entries for broker resource "<id>" (`per_broker`) or "" (the cluster default, which
    lists only the dynamic default configs)."""
    keys = set(keys) if keys else None
    if per_broker:
        names = list(BROKER_DEFS.names())
        names += [n for n in broker_cfg.static_props if n not in BROKER_DEFS]
    else:
        names = list(broker_cfg.dynamic_default)
    entries: list[ConfigEntry] = []
    for name in names:
        if not _wanted(name, keys):
            continue
        key = BROKER_DEFS.get(name)
        ctype = key.type if key else ConfigType.UNKNOWN
        sensitive = ctype in (ConfigType.PASSWORD, ConfigType.UNKNOWN)
        if sensitive:
            value = None
        elif not per_broker:
            value = broker_cfg.dynamic_default[name]
        else:
            value = to_string(ctype, broker_cfg.get(name))
        synonyms = _config_synonyms(broker_cfg, name, broker_synonyms(name), sensitive)
        if not per_broker:
            synonyms = [s for s in synonyms
                        if s.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]
        source = synonyms[0].source if synonyms else int(ConfigSource.DEFAULT_CONFIG)
        entries.append(ConfigEntry(
            name=name, value=value, read_only=name not in DYNAMIC_BROKER_CONFIGS,
            source=source, is_sensitive=sensitive,
            synonyms=synonyms if include_synonyms else [], config_type=int(ctype),
            documentation=(key.doc or None) if include_documentation and key else None))
    return entries
