"""Broker and topic configuration with Kafka's names and defaults."""
from .broker import DYNAMIC_BROKER_CONFIGS, KafkaConfig, validate_dynamic_broker_configs
from .definitions import ConfigError, ConfigType
from .listeners import Endpoint, ZkConnect

__all__ = [
    "DYNAMIC_BROKER_CONFIGS", "ConfigError", "ConfigType", "Endpoint", "KafkaConfig",
    "ZkConnect", "validate_dynamic_broker_configs",
]
