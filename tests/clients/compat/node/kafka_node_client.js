'use strict'
// kafka-node 5.0.0 for the compatibility suite: the pre-0.11 protocol (Produce v2 with magic-1
// message sets, Fetch v2, Metadata v1, CreateTopics v1, DescribeConfigs v0, group APIs v0-v2).
// Magic 1 has no record headers, so kafka-node writes none and reads none. Its codecs are
// gzip and snappy only; it has no DeleteTopics request.
// Its keyed partitioner agrees with no other client (client-protocol-needs.md §7), so the
// driver names the partition itself: (key index) % partitions, every key in one partition.
// kafka-node never retries a produce request and has no idempotence: the driver sends each
// partition's part of a chunk as its own request (a response error fails the whole request,
// so a request spanning partitions could not be retried without duplicating the others),
// one request per partition in flight, and retries it after refreshing metadata. A retry
// after a lost acknowledgement can still duplicate (at-least-once, as with any
// non-idempotent Kafka producer); it cannot reorder, since nothing later is in flight.
const c = require('./common')
const { wl } = c

const kafka = c.clientRequire('kafka-node')
const ATTRIBUTES = { none: 0, gzip: 1, snappy: 2 }
const CHUNK = 500
const BIG = 4 * 1024 * 1024

function unsupportedCodec (codec) {
  return codec in ATTRIBUTES ? null : `kafka-node 5.0.0 has no ${codec} codec (gzip and snappy only)`
}

function partitionOf (seq) {
  return (seq % wl.NUM_KEYS) % wl.PARTITIONS
}

async function newClient (args) {
  const client = new kafka.KafkaClient({
    kafkaHost: args.bootstrap,
    clientId: `compat-kafka-node-${args.scenario}`,
    requestTimeout: 30000,
    connectTimeout: 10000
  })
  // A dead broker surfaces as 'error' events; unhandled they would crash the process.
  client.on('error', (err) => wl.log(`kafka-node client error: ${err.message || err}`))
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('kafka-node client not ready after 30 s')), 30000)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
  return client
}

async function topicPartitions (client, topic) {
  const [, md] = await c.call((cb) => client.loadMetadataForTopics([topic], cb))
  const parts = (md.metadata && md.metadata[topic]) || {}
  return Object.values(parts).map((p) => ({ partition: p.partition, leader: p.leader, replicas: p.replicas, isr: p.isr }))
}

async function admin (args) {
  const client = await newClient(args)
  try {
    const result = await c.call((cb) => client.createTopics(
      [{ topic: args.topic, partitions: wl.PARTITIONS, replicationFactor: 3 }], cb))
    for (const r of result || []) if (r.error) wl.fail(`createTopics: ${r.error}`)
    const partitions = await c.waitFor(args, 'metadata with 3 partitions x 3 replicas', async () => {
      const parts = await topicPartitions(client, args.topic)
      return c.fullyReplicated(parts) && parts
    })
    const described = await c.call((cb) => new kafka.Admin(client).describeConfigs({
      resources: [{ resourceType: 'topic', resourceName: args.topic, configNames: [] }],
      includeSynonyms: false
    }, cb))
    const configs = Object.fromEntries(described[0].configEntries.map((e) => [e.configName, e.configValue]))
    if (!('cleanup.policy' in configs)) wl.fail(`describeConfigs lists no cleanup.policy: ${JSON.stringify(described)}`)
    c.unsupported('delete', 'kafka-node 5.0.0 has no DeleteTopics request (KafkaClient and Admin offer createTopics only)')
    return c.adminResult(true, partitions, false, configs)
  } finally {
    await c.call((cb) => client.close(cb)).catch(() => null)
  }
}

/** Send one partition's messages as one request, retrying until acknowledged; returns the
 * offset of the first of them. */
async function sendPartition (client, producer, args, partition, msgs, attributes) {
  const payloads = msgs.map((m) => ({
    topic: args.topic,
    partition,
    key: m.key,
    messages: m.value,
    timestamp: m.timestamp,
    attributes
  }))
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await c.call((cb) => producer.send(payloads, cb))
      const base = result[args.topic] && result[args.topic][partition]
      if (base === undefined) throw new Error(`no offset for partition ${partition} in ${JSON.stringify(result)}`)
      return Number(base)
    } catch (err) {
      if (Date.now() + 500 > args.deadline) throw err
      wl.log(`produce to partition ${partition} failed (attempt ${attempt}: ${err.message || err}); ` +
        'refreshing metadata and retrying')
      await c.sleep(Math.min(2000, 200 * attempt))
      await c.call((cb) => client.refreshMetadata([args.topic], cb)).catch(() => null)
    }
  }
}

const NO_HEADERS = 'kafka-node 5.0.0 writes and reads only magic 0/1 message sets, which have no record headers'

async function produce (args) {
  c.unsupported('headers', NO_HEADERS)
  c.unsupported('idempotence', 'kafka-node 5.0.0 has no idempotent producer: one request in flight ' +
    'per partition, retried (a retry after a lost acknowledgement may duplicate, never reorder)')
  const client = await newClient(args)
  const producer = new kafka.Producer(client, { requireAcks: -1, ackTimeoutMs: 30000 })
  producer.on('error', (err) => wl.log(`kafka-node producer error: ${err.message || err}`))
  if (!producer.ready) await new Promise((resolve) => producer.once('ready', resolve))
  const reports = c.syncWriter(args.produced)
  const attributes = ATTRIBUTES[args.codec]
  let acked = 0
  for (let start = 0; start < args.count; start += CHUNK) {
    wl.timeLeftMs(args)
    const byPartition = new Map()
    for (let i = start; i < Math.min(args.count, start + CHUNK); i++) {
      const p = partitionOf(i)
      if (!byPartition.has(p)) byPartition.set(p, [])
      byPartition.get(p).push(c.message(args, i))
    }
    // partitions in parallel (each its own request), one request in flight per partition
    await Promise.all([...byPartition].map(async ([p, msgs]) => {
      const base = await sendPartition(client, producer, args, p, msgs, attributes)
      reports.write(msgs.map((m, k) => wl.deliveryLine(m.seq, p, base + k)).join(''))
      acked += msgs.length
    }))
  }
  reports.close()
  await c.call((cb) => client.close(cb)).catch(() => null)
  wl.log(`kafka-node produced ${acked} (${args.codec})`)
}

async function endOffsets (client, topic) {
  const latest = await c.call((cb) => new kafka.Offset(client).fetchLatestOffsets([topic], cb))
  return new Map(Object.entries(latest[topic]).map(([p, o]) => [Number(p), Number(o)]))
}

async function earliestOffsets (client, topic) {
  const earliest = await c.call((cb) => new kafka.Offset(client).fetchEarliestOffsets([topic], cb))
  return new Map(Object.entries(earliest[topic]).map(([p, o]) => [Number(p), Number(o)]))
}

/** A ConsumerGroup member (Fetch v2: magic 1 with timestamps; kafka-node's plain Consumer is
 * hard-wired to Fetch v0, without timestamps). `onRecord` returns false to stop; then the
 * member pauses, waits for `settle(consumer)` (still in the group) and leaves the group. */
async function runGroup (args, groupId, isDone, onRecord, settle) {
  const consumer = new kafka.ConsumerGroup({
    kafkaHost: args.bootstrap,
    clientId: `compat-kafka-node-${args.scenario}`,
    groupId,
    fromOffset: 'earliest',
    outOfRangeOffset: 'none',
    autoCommit: false,
    commitOffsetsOnFirstJoin: false,
    encoding: 'buffer',
    keyEncoding: 'buffer',
    fetchMaxWaitMs: 200,
    fetchMaxBytes: args.valueSize ? BIG : 1024 * 1024,
    sessionTimeout: 10000
  }, [args.topic])
  let stopping = false
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out')), wl.timeLeftMs(args))
      const finish = () => { stopping = true; consumer.pause(); clearTimeout(timer); resolve() }
      if (isDone()) finish()
      consumer.on('error', (err) => { clearTimeout(timer); reject(err) })
      consumer.on('offsetOutOfRange', (err) => {
        clearTimeout(timer)
        reject(new Error(`offsetOutOfRange ${JSON.stringify(err)}`))
      })
      consumer.on('message', (m) => {
        if (stopping) return // already-fetched records after the stop: not recorded, not committed
        if (!onRecord(consumer, m) || isDone()) finish()
      })
    })
    if (settle) await settle(consumer)
  } finally {
    await c.call((cb) => consumer.close(false, cb)).catch((err) => wl.log(`close: ${err.message}`)) // LeaveGroup, no commit
  }
}

function timestampOf (m) {
  return m.timestamp === undefined ? -1 : Number(m.timestamp)
}

async function consume (args) {
  c.unsupported('headers', NO_HEADERS)
  const client = await newClient(args)
  const ends = await endOffsets(client, args.topic)
  await c.call((cb) => client.close(cb)).catch(() => null)
  const done = new Map([...ends].map(([p, end]) => [p, end === 0]))
  const next = new Map([...ends.keys()].map((p) => [p, 0]))
  const redelivered = []
  const lines = []
  await runGroup(args, `compat-read-${args.topic}-${process.pid}-${Date.now()}`,
    () => [...done.values()].every(Boolean),
    (consumer, m) => {
      if (m.offset >= ends.get(m.partition)) return true
      // This reader never commits: if kafka-node delivers an offset again (a restarted
      // fetch from the group's start), it is written once, and the re-delivery is named.
      if (m.offset < next.get(m.partition)) {
        redelivered.push(`${m.partition}@${m.offset}`)
        return true
      }
      next.set(m.partition, m.offset + 1)
      lines.push(c.recordLine(m.partition, m.offset, m.key, m.value, [], timestampOf(m)))
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
      return true
    })
  const out = c.syncWriter(args.out)
  out.write(lines.join(''))
  out.close()
  if (redelivered.length) {
    wl.log(`kafka-node delivered ${redelivered.length} records a second time ` +
      `(first ${redelivered.slice(0, 3)}, last ${redelivered.slice(-1)}); written once`)
  }
  wl.log(`kafka-node consumed ${lines.length} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

async function group (args) {
  c.unsupported('headers', NO_HEADERS)
  const client = await newClient(args)
  const ends = await endOffsets(client, args.topic)
  const lows = await earliestOffsets(client, args.topic)
  const committed = await c.call((cb) => new kafka.Offset(client).fetchCommitsV1(
    args.group, [...ends.keys()].map((partition) => ({ topic: args.topic, partition })), cb))
  await c.call((cb) => client.close(cb)).catch(() => null)
  // where this member starts: the committed offset, else the beginning (fromOffset earliest)
  const startCommitted = new Map([...lows].map(([p]) => [p, Number(committed[args.topic][p])]))
  const position = new Map([...lows].map(([p, low]) => [p, startCommitted.get(p) >= 0 ? startCommitted.get(p) : low]))
  // Without --max the run ends at the end offsets; a partition that starts there is done.
  const done = new Map([...ends].map(([p, end]) => [p, args.max === null && position.get(p) >= end]))
  const out = c.syncWriter(args.out, 'a')
  let got = 0
  // Commits go one at a time, in record order, each after its record's line is on disk.
  let commits = Promise.resolve()
  let commitError = null
  const commit = (consumer, offsets) => {
    commits = commits.then(() => commitOne(consumer, args, offsets)).catch((err) => { commitError = commitError || err })
  }
  await runGroup(args, args.group,
    () => (args.max !== null ? got >= args.max : [...done.values()].every(Boolean)),
    (consumer, m) => {
      if (args.max === null && m.offset >= ends.get(m.partition)) return true
      out.write(c.recordLine(m.partition, m.offset, m.key, m.value, [], timestampOf(m)))
      commit(consumer, [[m.partition, m.offset + 1]])
      position.set(m.partition, m.offset + 1)
      got++
      if (args.max !== null) return got < args.max
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
      return true
    },
    (consumer) => {
      // Before leaving, commit the position of every partition (as a Java consumer's
      // commitSync() would), so a partition this member never reached is committed at its
      // start. Only a member that consumed has joined (and has anything new to commit).
      const todo = [...position].filter(([p, o]) => o !== startCommitted.get(p))
      if (got > 0 && todo.length) commit(consumer, todo)
      return commits
    })
  out.close()
  if (commitError) throw commitError
  wl.log(`kafka-node group ${args.group}: consumed and committed ${got}; positions ${c.positions(position)}`)
}

/** Commit [[partition, offset], ...] for the member, retrying a transient failure. */
async function commitOne (consumer, args, offsets) {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await c.call((cb) => consumer.sendOffsetCommitRequest(
        offsets.map(([partition, offset]) => ({ topic: args.topic, partition, offset, metadata: 'm' })), cb))
      const code = res && res[args.topic] && res[args.topic].errorCode
      if (code) throw new Error(`OffsetCommit error code ${code}`)
      if (typeof res === 'string') throw new Error(`not committed: ${res}`) // "Nothing to be committed": not in the group
      return
    } catch (err) {
      if (err instanceof TypeError || Date.now() + 500 > args.deadline) throw err
      wl.log(`commit of ${JSON.stringify(offsets)} failed (attempt ${attempt}: ${err.message}); retrying`)
      await c.sleep(200)
    }
  }
}

module.exports = { admin, produce, consume, group, unsupportedCodec }
