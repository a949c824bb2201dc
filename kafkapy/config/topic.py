"""Topic-level configuration: one import point for validation, effective values,
DescribeConfigs entries and incremental alters (the pieces live in topic_defs, describe, alter).
"""
from __future__ import annotations

from .alter import AlterOp, apply_incremental
from .describe import (
    ConfigEntry,
    ConfigSource,
    ConfigSynonym,
    describe_broker_configs,
    describe_topic_configs,
)
from .topic_defs import (
    TOPIC_DEFS,
    TOPIC_SYNONYMS,
    broker_default_for,
    broker_synonyms,
    effective_topic_props,
    parse_topic_configs,
    topic_config_type,
    validate_topic_configs,
)

__all__ = [
    "TOPIC_DEFS", "TOPIC_SYNONYMS", "AlterOp", "ConfigEntry", "ConfigSource", "ConfigSynonym",
    "apply_incremental", "broker_default_for", "broker_synonyms", "describe_broker_configs",
    "describe_topic_configs", "effective_topic_props", "parse_topic_configs",
    "topic_config_type", "validate_topic_configs",
]
