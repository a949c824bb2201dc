"""On-disk Kafka log: segments, indexes, checkpoints, UnifiedLog and LogManager."""
from kafkapy.log.config import LogConfig
from kafkapy.log.epoch_cache import LeaderEpochFileCache
from kafkapy.log.manager import LogDirError, LogManager
from kafkapy.log.list_offsets import TimestampOffset
from kafkapy.log.log import UnexpectedAppendOffsetError, UnifiedLog
from kafkapy.log.producer_state import ProducerStateManager
from kafkapy.log.records import FetchDataInfo, FileRecords, LogAppendInfo
from kafkapy.log.topic_partition import TopicPartition
from kafkapy.log.txn_index import AbortedTxn

__all__ = [
    "AbortedTxn",
    "FetchDataInfo",
    "FileRecords",
    "LeaderEpochFileCache",
    "LogAppendInfo",
    "LogConfig",
    "LogDirError",
    "LogManager",
    "ProducerStateManager",
    "TimestampOffset",
    "TopicPartition",
    "UnexpectedAppendOffsetError",
    "UnifiedLog",
]
