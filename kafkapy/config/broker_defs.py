"""The broker's keys: Kafka 3.7 names, types, defaults and validators (KafkaConfig's ConfigDef).

Kept apart from `broker.py` so the table reads as one list. It includes keys kafkapy does not
act on yet, because a user's real server.properties contains them and they must be accepted
(and show up in DescribeConfigs) with Kafka's defaults.
"""
from __future__ import annotations

from .definitions import (
    DOUBLE_MAX,
    INT_MAX,
    LONG_MAX,
    REQUIRED,
    ConfigDef,
    ConfigType,
    OneOf,
    Predicate,
    Range,
)

B, S, I, SH, L, D, LI, C, P = (
    ConfigType.BOOLEAN, ConfigType.STRING, ConfigType.INT, ConfigType.SHORT, ConfigType.LONG,
    ConfigType.DOUBLE, ConfigType.LIST, ConfigType.CLASS, ConfigType.PASSWORD)


def at_least(n: float) -> Range:
    return Range(min=n)


def between(lo: float, hi: float) -> Range:
    return Range(min=lo, max=hi)


COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
CLEANUP_POLICIES = ("compact", "delete")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_LISTENER_SECURITY_PROTOCOL_MAP = (
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL")
LATEST_IBP = "3.7-IV4"
LATEST_MESSAGE_FORMAT = "3.0-IV1"


def _check_version(value: str) -> str | None:
    """Metadata versions look like 0.10.2, 2.8, 2.8-IV1, 3.7-IV4."""
    import re

    if re.fullmatch(r"[0-9]+\.[0-9]+(\.[0-9]+)?(-IV[0-9]+)?", value):
        return None
    return "expected a Kafka version such as 3.7 or 3.7-IV4"


VERSION = Predicate(_check_version, "a Kafka version such as 3.7 or 3.7-IV4")

BROKER_DEFS = ConfigDef()
_d = BROKER_DEFS.define

# ZooKeeper
_d("zookeeper.connect", S, REQUIRED)
_d("zookeeper.session.timeout.ms", I, 18000)
_d("zookeeper.connection.timeout.ms", I, None)
_d("zookeeper.set.acl", B, False)
_d("zookeeper.max.in.flight.requests", I, 10, at_least(1))
_d("zookeeper.ssl.client.enable", B, False)
_d("zookeeper.clientCnxnSocket", S, None)
_d("zookeeper.ssl.protocol", S, "TLSv1.2")
_d("zookeeper.ssl.endpoint.identification.algorithm", S, "HTTPS")
_d("zookeeper.ssl.crl.enable", B, False)
_d("zookeeper.ssl.ocsp.enable", B, False)

# General / identity
_d("broker.id.generation.enable", B, True)
_d("reserved.broker.max.id", I, 1000, at_least(0))
_d("broker.id", I, -1)
_d("message.max.bytes", I, 1048588, at_least(0))
_d("num.network.threads", I, 3, at_least(1))
_d("num.io.threads", I, 8, at_least(1))
_d("num.replica.alter.log.dirs.threads", I, None)
_d("background.threads", I, 10, at_least(1))
_d("queued.max.requests", I, 500, at_least(1))
_d("queued.max.request.bytes", L, -1)
_d("request.timeout.ms", I, 30000)
_d("socket.connection.setup.timeout.ms", L, 10000)
_d("socket.connection.setup.timeout.max.ms", L, 30000)
_d("process.roles", LI, "", OneOf(("broker", "controller")))
_d("node.id", I, -1)
_d("authorizer.class.name", S, "")
_d("broker.rack", S, None)

# Socket server
_d("listeners", S, "PLAINTEXT://:9092")
_d("advertised.listeners", S, None)
_d("listener.security.protocol.map", S, DEFAULT_LISTENER_SECURITY_PROTOCOL_MAP)
_d("control.plane.listener.name", S, None)
_d("socket.send.buffer.bytes", I, 102400)
_d("socket.receive.buffer.bytes", I, 102400)
_d("socket.request.max.bytes", I, 104857600, at_least(1))
_d("socket.listen.backlog.size", I, 50, at_least(1))
_d("max.connections.per.ip", I, INT_MAX, at_least(0))
_d("max.connections.per.ip.overrides", S, "")
_d("max.connections", I, INT_MAX, at_least(0))
_d("max.connection.creation.rate", I, INT_MAX, at_least(0))
_d("connections.max.idle.ms", L, 600000)
_d("connections.max.reauth.ms", L, 0)
_d("failed.authentication.delay.ms", I, 100, at_least(0))

# Log
_d("num.partitions", I, 1, at_least(1))
_d("log.dir", S, "/tmp/kafka-logs")
_d("log.dirs", S, None)
_d("log.segment.bytes", I, 1073741824, at_least(14))
_d("log.roll.ms", L, None)
_d("log.roll.hours", I, 168, at_least(1))
_d("log.roll.jitter.ms", L, None)
_d("log.roll.jitter.hours", I, 0, at_least(0))
_d("log.retention.ms", L, None)
_d("log.retention.minutes", I, None)
_d("log.retention.hours", I, 168)
_d("log.retention.bytes", L, -1)
_d("log.retention.check.interval.ms", L, 300000, at_least(1))
_d("log.cleanup.policy", LI, "delete", OneOf(CLEANUP_POLICIES))
_d("log.cleaner.threads", I, 1, at_least(0))
_d("log.cleaner.io.max.bytes.per.second", D, DOUBLE_MAX)
_d("log.cleaner.dedupe.buffer.size", L, 134217728)
_d("log.cleaner.io.buffer.size", I, 524288, at_least(0))
_d("log.cleaner.io.buffer.load.factor", D, 0.9)
_d("log.cleaner.backoff.ms", L, 15000, at_least(0))
_d("log.cleaner.min.cleanable.ratio", D, 0.5, between(0, 1))
_d("log.cleaner.enable", B, True)
_d("log.cleaner.delete.retention.ms", L, 86400000, at_least(0))
_d("log.cleaner.min.compaction.lag.ms", L, 0, at_least(0))
_d("log.cleaner.max.compaction.lag.ms", L, LONG_MAX, at_least(1))
_d("log.index.size.max.bytes", I, 10485760, at_least(4))
_d("log.index.interval.bytes", I, 4096, at_least(0))
_d("log.flush.interval.messages", L, LONG_MAX, at_least(1))
_d("log.segment.delete.delay.ms", L, 60000, at_least(0))
_d("log.flush.scheduler.interval.ms", L, LONG_MAX)
_d("log.flush.interval.ms", L, None)
_d("log.flush.offset.checkpoint.interval.ms", I, 60000, at_least(0))
_d("log.flush.start.offset.checkpoint.interval.ms", I, 60000, at_least(0))
_d("log.preallocate", B, False)
_d("num.recovery.threads.per.data.dir", I, 1, at_least(1))
_d("auto.create.topics.enable", B, True)
_d("min.insync.replicas", I, 1, at_least(1))
_d("log.message.format.version", S, LATEST_MESSAGE_FORMAT, VERSION)
_d("log.message.timestamp.type", S, "CreateTime", OneOf(TIMESTAMP_TYPES))
_d("log.message.timestamp.difference.max.ms", L, LONG_MAX, at_least(0))
_d("log.message.timestamp.before.max.ms", L, LONG_MAX, at_least(0))
_d("log.message.timestamp.after.max.ms", L, LONG_MAX, at_least(0))
_d("log.message.downconversion.enable", B, True)
_d("log.local.retention.ms", L, -2, at_least(-2))
_d("log.local.retention.bytes", L, -2, at_least(-2))
_d("create.topic.policy.class.name", C, None)
_d("alter.config.policy.class.name", C, None)

# Replication
_d("controller.socket.timeout.ms", I, 30000)
_d("default.replication.factor", I, 1)
_d("replica.lag.time.max.ms", L, 30000)
_d("replica.socket.timeout.ms", I, 30000)
_d("replica.socket.receive.buffer.bytes", I, 65536)
_d("replica.fetch.max.bytes", I, 1048576, at_least(0))
_d("replica.fetch.wait.max.ms", I, 500)
_d("replica.fetch.backoff.ms", I, 1000, at_least(0))
_d("replica.fetch.min.bytes", I, 1)
_d("replica.fetch.response.max.bytes", I, 10485760, at_least(0))
_d("num.replica.fetchers", I, 1)
_d("replica.high.watermark.checkpoint.interval.ms", L, 5000)
_d("fetch.purgatory.purge.interval.requests", I, 1000)
_d("producer.purgatory.purge.interval.requests", I, 1000)
_d("delete.records.purgatory.purge.interval.requests", I, 1)
_d("auto.leader.rebalance.enable", B, True)
_d("leader.imbalance.per.broker.percentage", I, 10)
_d("leader.imbalance.check.interval.seconds", L, 300, at_least(1))
_d("unclean.leader.election.enable", B, False)
_d("security.inter.broker.protocol", S, "PLAINTEXT", OneOf(SECURITY_PROTOCOLS))
_d("inter.broker.protocol.version", S, LATEST_IBP, VERSION)
_d("inter.broker.listener.name", S, None)
_d("replica.selector.class", S, None)
_d("controlled.shutdown.max.retries", I, 3)
_d("controlled.shutdown.retry.backoff.ms", L, 5000)
_d("controlled.shutdown.enable", B, True)

# Groups and offsets
_d("group.min.session.timeout.ms", I, 6000)
_d("group.max.session.timeout.ms", I, 1800000)
_d("group.initial.rebalance.delay.ms", I, 3000)
_d("group.max.size", I, INT_MAX, at_least(1))
_d("offset.metadata.max.bytes", I, 4096)
_d("offsets.load.buffer.size", I, 5242880, at_least(1))
_d("offsets.topic.replication.factor", SH, 3, at_least(1))
_d("offsets.topic.num.partitions", I, 50, at_least(1))
_d("offsets.topic.segment.bytes", I, 104857600, at_least(1))
_d("offsets.topic.compression.codec", I, 0)
_d("offsets.retention.minutes", I, 10080, at_least(1))
_d("offsets.retention.check.interval.ms", L, 600000, at_least(1))
_d("offsets.commit.timeout.ms", I, 5000, at_least(1))
_d("offsets.commit.required.acks", SH, -1)
_d("delete.topic.enable", B, True)
_d("compression.type", S, "producer", OneOf(COMPRESSION_TYPES))

# Transactions and producer ids
_d("transactional.id.expiration.ms", I, 604800000, at_least(1))
_d("transaction.max.timeout.ms", I, 900000, at_least(1))
_d("transaction.state.log.min.isr", I, 2, at_least(1))
_d("transaction.state.log.load.buffer.size", I, 5242880, at_least(1))
_d("transaction.state.log.replication.factor", SH, 3, at_least(1))
_d("transaction.state.log.num.partitions", I, 50, at_least(1))
_d("transaction.state.log.segment.bytes", I, 104857600, at_least(1))
_d("transaction.abort.timed.out.transaction.cleanup.interval.ms", I, 10000, at_least(1))
_d("transaction.remove.expired.transaction.cleanup.interval.ms", I, 3600000, at_least(1))
_d("transaction.partition.verification.enable", B, True)
_d("producer.id.expiration.ms", I, 86400000, at_least(1))

# Fetch, quotas, metrics
_d("max.incremental.fetch.session.cache.slots", I, 1000, at_least(0))
_d("fetch.max.bytes", I, 57671680, at_least(1024))
_d("max.request.partition.size.limit", I, 2000, at_least(1))
_d("metric.reporters", LI, "")
_d("metrics.num.samples", I, 2, at_least(1))
_d("metrics.sample.window.ms", L, 30000, at_least(1))
_d("metrics.recording.level", S, "INFO")
_d("auto.include.jmx.reporter", B, True)
_d("kafka.metrics.reporters", LI, "")
_d("kafka.metrics.polling.interval.secs", I, 10, at_least(1))
_d("quota.window.num", I, 11, at_least(1))
_d("quota.window.size.seconds", I, 1, at_least(1))
_d("replication.quota.window.num", I, 11, at_least(1))
_d("replication.quota.window.size.seconds", I, 1, at_least(1))
# Dynamic-only broker keys (kafka-configs.sh --entity-type brokers); accepted statically too.
_d("leader.replication.throttled.rate", L, LONG_MAX, at_least(0))
_d("follower.replication.throttled.rate", L, LONG_MAX, at_least(0))
_d("replica.alter.log.dirs.io.max.bytes.per.second", L, LONG_MAX, at_least(0))

# Security keys a PLAINTEXT-only broker accepts with their defaults (they configure nothing).
_d("sasl.enabled.mechanisms", LI, "GSSAPI")
_d("sasl.mechanism.inter.broker.protocol", S, "GSSAPI")
_d("sasl.jaas.config", P, None)
_d("sasl.kerberos.service.name", S, None)
_d("ssl.protocol", S, "TLSv1.3")
_d("ssl.enabled.protocols", LI, "TLSv1.2,TLSv1.3")
_d("ssl.keystore.type", S, "JKS")
_d("ssl.keystore.location", S, None)
_d("ssl.keystore.password", P, None)
_d("ssl.key.password", P, None)
_d("ssl.truststore.type", S, "JKS")
_d("ssl.truststore.location", S, None)
_d("ssl.truststore.password", P, None)
_d("ssl.client.auth", S, "none", OneOf(("required", "requested", "none")))
_d("ssl.endpoint.identification.algorithm", S, "https")
_d("ssl.cipher.suites", LI, "")
_d("allow.everyone.if.no.acl.found", B, False)
_d("super.users", S, None)

# Keys Kafka removed in 3.0: a clear hint beats a bare "unknown key".
REMOVED_KEYS: dict[str, str] = {
    "port": "removed in Kafka 3.0; use listeners=PLAINTEXT://host:port",
    "host.name": "removed in Kafka 3.0; use listeners=PLAINTEXT://host:port",
    "advertised.port": "removed in Kafka 3.0; use advertised.listeners",
    "advertised.host.name": "removed in Kafka 3.0; use advertised.listeners",
    "quota.producer.default": "removed in Kafka 3.0; use kafka-configs.sh client quotas",
    "quota.consumer.default": "removed in Kafka 3.0; use kafka-configs.sh client quotas",
}

# Known Kafka keys that kafkapy accepts in server.properties and ignores (no typed definition:
# they configure features kafkapy leaves out, e.g. KRaft-only or ZooKeeper TLS keystores).
IGNORED_KEYS: frozenset[str] = frozenset({
    "zookeeper.sync.time.ms",
    "zookeeper.ssl.keystore.location", "zookeeper.ssl.keystore.password",
    "zookeeper.ssl.keystore.type", "zookeeper.ssl.truststore.location",
    "zookeeper.ssl.truststore.password", "zookeeper.ssl.truststore.type",
    "zookeeper.ssl.enabled.protocols", "zookeeper.ssl.cipher.suites",
    "zookeeper.metadata.migration.enable", "controller.quorum.voters",
    "controller.listener.names", "early.start.listeners", "password.encoder.secret",
    "password.encoder.old.secret", "delegation.token.secret.key", "principal.builder.class",
    "client.quota.callback.class",
})

KAFKAPY_PREFIX = "kafkapy."
