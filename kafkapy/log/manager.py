"""LogManager: every partition log under `log.dirs`, their checkpoints, and the
background retention / flush / checkpoint work.

Constructed from plain values (not from a config module) so tests and tools can
build one directly.  Loading happens in the constructor: lock each dir, check
meta.properties, recover every partition directory.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from typing import IO, TYPE_CHECKING, Callable, Iterable, Mapping

import trio

from kafkapy.log.checkpoint import (
    CheckpointError,
    random_uuid_hex,
    read_offset_checkpoint,
    read_properties,
    write_atomic,
    write_offset_checkpoint,
    write_properties,
)
from kafkapy.log.config import LogConfig
from kafkapy.log.log import UnifiedLog, now_ms
from kafkapy.log.retention import delete_old_segments
from kafkapy.log.topic_partition import TopicPartition

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
HW_CHECKPOINT = "replication-offset-checkpoint"
CLEAN_SHUTDOWN = ".kafka_cleanshutdown"
LOCK_FILE = ".lock"
META = "meta.properties"
DELETE_SUFFIX = "-delete"

if TYPE_CHECKING:
    from kafkapy.log.cleaner import CleanerConfig
    from kafkapy.log.cleaner_manager import LogCleaner

logger = logging.getLogger(__name__)


class LogDirError(Exception):
    """A log directory cannot be used (locked by another process, foreign metadata)."""


class LogManager:
    """Owns the logs of this broker; all methods run on the trio thread."""

    def __init__(self, log_dirs: Iterable[str], broker_id: int, default_config: LogConfig, *,
                 cluster_id: str | None = None,
                 topic_configs: Mapping[str, LogConfig] | None = None,
                 retention_check_interval_ms: int = 300000,
                 flush_check_interval_ms: int = 1000,
                 recovery_point_checkpoint_interval_ms: int = 60000,
                 log_start_checkpoint_interval_ms: int = 60000,
                 hw_checkpoint_interval_ms: int = 5000,
                 producer_id_expiration_ms: int = 86400000,
                 producer_id_expiration_check_interval_ms: int = 600000,
                 broker_epoch: int = -1) -> None:
        self.log_dirs = [os.path.abspath(d) for d in log_dirs]
        if not self.log_dirs:
            raise LogDirError("log.dirs is empty")
        self.broker_id = broker_id
        self.default_config = default_config
        self.topic_configs: dict[str, LogConfig] = dict(topic_configs or {})
        self.retention_check_interval_ms = retention_check_interval_ms
        self.flush_check_interval_ms = flush_check_interval_ms
        self.recovery_point_checkpoint_interval_ms = recovery_point_checkpoint_interval_ms
        self.log_start_checkpoint_interval_ms = log_start_checkpoint_interval_ms
        self.hw_checkpoint_interval_ms = hw_checkpoint_interval_ms
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self.producer_id_expiration_check_interval_ms = producer_id_expiration_check_interval_ms
        self.broker_epoch = broker_epoch
        self.logs: dict[TopicPartition, UnifiedLog] = {}
        self.log_dir_of: dict[TopicPartition, str] = {}
        self._locks: list[IO[bytes]] = []
        self._pending_dir_deletes: list[tuple[int, str]] = []
        self._shut_down = False
        self.cleaner: "LogCleaner | None" = None  # set by enable_cleaner
        for d in self.log_dirs:
            os.makedirs(d, exist_ok=True)
            self._lock_dir(d)
        self.check_meta_properties(cluster_id)
        for d in self.log_dirs:
            self._load_dir(d)

    # ---- dirs, lock, meta.properties ---------------------------------------------
    def _lock_dir(self, d: str) -> None:
        f = open(os.path.join(d, LOCK_FILE), "a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            self._release_locks()
            raise LogDirError(f"Failed to acquire lock on file .lock in {d}. A Kafka instance in "
                              "another process or thread is using this directory.") from None
        self._locks.append(f)

    def _release_locks(self) -> None:
        for f in self._locks:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            finally:
                f.close()
        self._locks = []

    def check_meta_properties(self, cluster_id: str | None) -> None:
        """Verify each dir's meta.properties matches this broker (and cluster, when
        known) and write it where missing.  Mismatches raise LogDirError."""
        for d in self.log_dirs:
            path = os.path.join(d, META)
            props = read_properties(path)
            if props is not None:
                stored_id = props.get("broker.id")
                if stored_id is not None and int(stored_id) != self.broker_id:
                    raise LogDirError(
                        f"Configured broker.id {self.broker_id} doesn't match stored broker.id "
                        f"{stored_id} in meta.properties of {d}")
                stored_cluster = props.get("cluster.id")
                if cluster_id is not None and stored_cluster and stored_cluster != cluster_id:
                    raise LogDirError(
                        f"The Cluster ID {cluster_id} doesn't match stored clusterId "
                        f"{stored_cluster} in meta.properties of {d}. The broker is trying to "
                        "join the wrong cluster.")
                if props.get("version", "0") != "0":
                    raise LogDirError(f"{path}: unsupported meta.properties version {props['version']}")
            if props is None or (cluster_id is not None and not props.get("cluster.id")):
                new = {"version": "0", "broker.id": str(self.broker_id)}
                if cluster_id is not None:
                    new["cluster.id"] = cluster_id
                write_properties(path, new)

    @staticmethod
    def read_meta_properties(log_dirs: Iterable[str]) -> dict[str, str]:
        """The meta.properties of the first dir that has one (e.g. to learn broker.id)."""
        for d in log_dirs:
            props = read_properties(os.path.join(d, META))
            if props is not None:
                return props
        return {}

    # ---- loading -----------------------------------------------------------------
    def _read_checkpoint(self, d: str, name: str) -> dict[TopicPartition, int]:
        try:
            return read_offset_checkpoint(os.path.join(d, name))
        except CheckpointError:
            return {}  # treated as missing: full recovery is always safe

    def _load_dir(self, d: str) -> None:
        clean_path = os.path.join(d, CLEAN_SHUTDOWN)
        clean = os.path.exists(clean_path)
        recovery = self._read_checkpoint(d, RECOVERY_POINT_CHECKPOINT)
        starts = self._read_checkpoint(d, LOG_START_CHECKPOINT)
        hws = self._read_checkpoint(d, HW_CHECKPOINT)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not os.path.isdir(path):
                continue
            if name.endswith(DELETE_SUFFIX):
                self._pending_dir_deletes.append((0, path))
                continue
            if name.endswith(("-future", "-stray")):
                continue
            try:
                tp = TopicPartition.from_dir_name(name)
            except ValueError:
                continue
            if tp in self.logs:
                raise LogDirError(f"duplicate log directories for {tp}: {self.log_dir_of[tp]} and {d}")
            log = UnifiedLog(path, tp, self.config_for(tp.topic),
                             recovery_point=recovery.get(tp, 0), log_start_offset=starts.get(tp, 0),
                             high_watermark=hws.get(tp, 0), had_clean_shutdown=clean)
            self._register(tp, log, d)
        if clean:
            os.unlink(clean_path)
        self._delete_dirs(now_ms(), force=True)

    def _register(self, tp: TopicPartition, log: UnifiedLog, d: str) -> None:
        log.checkpoint_listener = lambda _log, d=d: self._on_offsets_moved(_log, d)
        self.logs[tp] = log
        self.log_dir_of[tp] = d

    def _on_offsets_moved(self, log: UnifiedLog, d: str) -> None:
        """Truncation or a new log start: persist the offsets, and pull the cleaner's
        first dirty offset back to the log end (Kafka's maybeTruncateCheckpoint)."""
        self._write_offsets_checkpoints(d)
        if self.cleaner is not None:
            self.cleaner.on_log_truncated(log.tp, log.log_end_offset)

    # ---- access ------------------------------------------------------------------
    def config_for(self, topic: str) -> LogConfig:
        return self.topic_configs.get(topic, self.default_config)

    def get_log(self, tp: TopicPartition) -> UnifiedLog | None:
        return self.logs.get(tp)

    def all_logs(self) -> list[UnifiedLog]:
        return list(self.logs.values())

    def get_or_create_log(self, tp: TopicPartition, topic_id: bytes | None = None,
                          log_config: LogConfig | None = None) -> UnifiedLog:
        """The log of `tp`, created in the dir with the fewest partitions if absent."""
        log = self.logs.get(tp)
        if log is not None:
            if topic_id is not None and log.topic_id is None:
                log.assign_topic_id(topic_id)
            return log
        if log_config is not None:
            self.topic_configs[tp.topic] = log_config
        counts = {d: 0 for d in self.log_dirs}
        for d in self.log_dir_of.values():
            counts[d] += 1
        d = min(self.log_dirs, key=lambda x: counts[x])
        log = UnifiedLog(os.path.join(d, tp.dir_name), tp, self.config_for(tp.topic),
                         topic_id=topic_id, had_clean_shutdown=True)
        self._register(tp, log, d)
        return log

    def update_topic_config(self, topic: str, config: LogConfig) -> None:
        """Topic config change: applies to every existing and future log of `topic`."""
        self.topic_configs[topic] = config
        for tp, log in self.logs.items():
            if tp.topic == topic:
                log.update_config(config)

    def update_default_config(self, config: LogConfig) -> None:
        self.default_config = config
        for tp, log in self.logs.items():
            if tp.topic not in self.topic_configs:
                log.update_config(config)

    def delete_log(self, tp: TopicPartition) -> bool:
        """Rename `<t>-<p>` to `<t>-<p>.<uuid>-delete`; files removed in the background."""
        log = self.logs.pop(tp, None)
        if log is None:
            return False
        d = self.log_dir_of.pop(tp)
        if self.cleaner is not None:
            self.cleaner.forget(tp, d)
        log.close_files_without_flush()
        target = os.path.join(d, f"{tp.dir_name}.{random_uuid_hex()}{DELETE_SUFFIX}")
        os.replace(log.dir, target)
        self._pending_dir_deletes.append((now_ms() + log.config.file_delete_delay_ms, target))
        self.write_checkpoints(d)
        return True

    def _delete_dirs(self, now: int, force: bool = False) -> None:
        keep = []
        for deadline, path in self._pending_dir_deletes:
            if force or deadline <= now:
                shutil.rmtree(path, ignore_errors=True)
            else:
                keep.append((deadline, path))
        self._pending_dir_deletes = keep

    # ---- checkpoints -------------------------------------------------------------
    def _logs_in(self, d: str) -> dict[TopicPartition, UnifiedLog]:
        return {tp: log for tp, log in self.logs.items() if self.log_dir_of[tp] == d}

    def write_recovery_point_checkpoint(self, d: str) -> None:
        write_offset_checkpoint(os.path.join(d, RECOVERY_POINT_CHECKPOINT),
                                {tp: log.recovery_point for tp, log in self._logs_in(d).items()})

    def write_log_start_checkpoint(self, d: str) -> None:
        write_offset_checkpoint(os.path.join(d, LOG_START_CHECKPOINT),
                                {tp: log.log_start_offset for tp, log in self._logs_in(d).items()
                                 if log.log_start_offset > log.segments[0].base_offset})

    def _write_offsets_checkpoints(self, d: str) -> None:
        self.write_recovery_point_checkpoint(d)
        self.write_log_start_checkpoint(d)

    def write_hw_checkpoint(self, d: str) -> None:
        write_offset_checkpoint(os.path.join(d, HW_CHECKPOINT),
                                {tp: log.high_watermark for tp, log in self._logs_in(d).items()})

    def write_checkpoints(self, d: str | None = None) -> None:
        for x in ([d] if d is not None else self.log_dirs):
            self.write_recovery_point_checkpoint(x)
            self.write_log_start_checkpoint(x)
            self.write_hw_checkpoint(x)

    # ---- background work ---------------------------------------------------------
    def run_retention(self, now: int) -> int:
        deleted = 0
        for d in self.log_dirs:
            n = sum(delete_old_segments(log, now) for log in self._logs_in(d).values())
            if n:
                self.write_log_start_checkpoint(d)
            deleted += n
        return deleted

    def run_flush_checks(self, now: int) -> None:
        """flush.ms: fsync logs whose last flush is older than their setting."""
        for log in self.logs.values():
            if log.config.flush_ms < 2**62 and now - log.last_flush_ms >= log.config.flush_ms:
                log.flush(now=now)

    def delete_pending_files(self, now: int) -> None:
        for log in self.logs.values():
            log.delete_pending(now)
        self._delete_dirs(now)

    def _each_dir(self, write: Callable[[str], None]) -> Callable[[int], None]:
        return lambda _t: [write(d) for d in self.log_dirs]

    def _expire_producers(self, now: int) -> None:
        for log in self.logs.values():
            log.producer_state.remove_expired(now, self.producer_id_expiration_ms)

    def enable_cleaner(self, config: "CleanerConfig") -> "LogCleaner":
        """Attach the log cleaner (compaction of cleanup.policy=compact logs); `run`
        starts it when log.cleaner.enable is true."""
        from kafkapy.log.cleaner_manager import LogCleaner

        self.cleaner = LogCleaner(self, config)
        return self.cleaner

    async def run(self) -> None:
        """The log cleaner (when enabled) and the periodic tasks, until cancelled."""
        if self.cleaner is None:
            await self._run_periodic()
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.cleaner.run)
            await self._run_periodic()

    async def _run_periodic(self) -> None:
        """Retention, flush.ms, checkpoints and delayed deletes until cancelled.

        A failing task is logged and retried at its next interval, as Kafka's
        scheduler does, so one bad log cannot stop checkpointing for the others."""
        tasks: dict[str, tuple[int, Callable[[int], object]]] = {
            "retention": (self.retention_check_interval_ms, self.run_retention),
            "flush": (self.flush_check_interval_ms, self.run_flush_checks),
            "recovery-point-checkpoint": (self.recovery_point_checkpoint_interval_ms,
                                          self._each_dir(self.write_recovery_point_checkpoint)),
            "log-start-checkpoint": (self.log_start_checkpoint_interval_ms,
                                     self._each_dir(self.write_log_start_checkpoint)),
            "hw-checkpoint": (self.hw_checkpoint_interval_ms, self._each_dir(self.write_hw_checkpoint)),
            "producer-expiration": (self.producer_id_expiration_check_interval_ms,
                                    self._expire_producers),
            "delete-files": (1000, self.delete_pending_files),
        }
        t = now_ms()
        due = {name: t + interval for name, (interval, _) in tasks.items()}
        while True:
            t = now_ms()
            for name, (interval, fn) in tasks.items():
                if t >= due[name]:
                    try:
                        fn(t)
                    except Exception:
                        logger.exception("log manager task %s failed", name)
                    due[name] = t + interval
            await trio.sleep(max(0.0, (min(due.values()) - now_ms()) / 1000))

    def shutdown(self) -> None:
        """Flush and close every log, write checkpoints and `.kafka_cleanshutdown`."""
        if self._shut_down:
            return
        if self.cleaner is not None:
            self.cleaner.shutdown()
        for log in self.logs.values():
            log.close()
        self.write_checkpoints()
        marker = json.dumps({"version": 0, "brokerEpoch": self.broker_epoch}).encode()
        for d in self.log_dirs:
            write_atomic(os.path.join(d, CLEAN_SHUTDOWN), marker)
        self._delete_dirs(now_ms(), force=True)
        self._release_locks()
        self._shut_down = True
