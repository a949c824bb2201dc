'use strict'
// kafkajs 2.2.4 for the compatibility suite. Admin: createTopics / fetchTopicMetadata /
// describeConfigs / deleteTopics. Producer: idempotent (kafkajs then retries without limit
// and the broker drops a retried batch it already has), one request in flight, acks -1.
// kafkajs has no manual assignment, so `consume` reads through a throw-away consumer group
// that never commits. snappy/lz4/zstd are the plug-in packages kafkajs documents.
const c = require('./common')
const { wl } = c

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1' // the default (Java-compatible murmur2) partitioner
const {
  Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, Partitioners, logLevel
} = c.clientRequire('kafkajs')
const LZ4Codec = c.clientRequire('kafkajs-lz4')
CompressionCodecs[CompressionTypes.Snappy] = c.clientRequire('kafkajs-snappy')
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = c.clientRequire('@kafkajs/zstd')()

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}
const CHUNK = 500
const BIG_FETCH = 4 * 1024 * 1024 // room for the 900 KB message in one fetch

function client (args) {
  return new Kafka({
    clientId: `compat-kafkajs-${args.scenario}`,
    brokers: args.bootstrap.split(','),
    logLevel: logLevel.WARN,
    connectionTimeout: 10000,
    requestTimeout: 30000,
    retry: { retries: 20, initialRetryTime: 200, maxRetryTime: 5000 }
  })
}

async function withAdmin (kafka, fn) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

async function admin (args) {
  const kafka = client(args)
  return withAdmin(kafka, async (adm) => {
    const created = await adm.createTopics({
      topics: [{ topic: args.topic, numPartitions: wl.PARTITIONS, replicationFactor: 3 }],
      waitForLeaders: true,
      timeout: 30000
    })
    if (!created) wl.fail(`createTopics: ${args.topic} already existed`)
    const partitions = await c.waitFor(args, 'metadata with 3 partitions x 3 replicas', async () => {
      const md = await adm.fetchTopicMetadata({ topics: [args.topic] })
      const parts = md.topics[0].partitions.map((p) => ({
        partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr
      }))
      return c.fullyReplicated(parts) && parts
    })
    const described = await adm.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic }],
      includeSynonyms: false
    })
    const res = described.resources[0]
    if (res.errorCode !== 0) wl.fail(`describeConfigs: error ${res.errorCode} ${res.errorMessage}`)
    const configs = Object.fromEntries(res.configEntries.map((e) => [e.configName, e.configValue]))
    if (!('cleanup.policy' in configs)) wl.fail(`describeConfigs lists no cleanup.policy: ${JSON.stringify(configs)}`)
    await adm.deleteTopics({ topics: [args.topic], timeout: 30000 })
    // listTopics asks for all topics, so it cannot auto-create the deleted one again.
    await c.waitFor(args, `${args.topic} gone from metadata`, async () => !(await adm.listTopics()).includes(args.topic))
    return c.adminResult(true, partitions, true, configs)
  })
}

async function produce (args) {
  const kafka = client(args)
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // idempotence wants unlimited retries (kafkajs warns otherwise); --timeout bounds the run
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 }
  })
  await producer.connect()
  const reports = c.syncWriter(args.produced)
  let acked = 0
  try {
    for (let start = 0; start < args.count; start += CHUNK) {
      wl.timeLeftMs(args)
      const byPartition = new Map()
      for (let i = start; i < Math.min(args.count, start + CHUNK); i++) {
        const m = c.message(args, i)
        const p = partitionOf(args, m.key)
        if (!byPartition.has(p)) byPartition.set(p, [])
        byPartition.get(p).push(m)
      }
      // One send() per partition, the partitions in parallel: see sendPartition.
      await Promise.all([...byPartition].map(async ([p, msgs]) => {
        const base = await sendPartition(producer, args, p, msgs)
        reports.write(msgs.map((m, k) => wl.deliveryLine(m.seq, p, base + BigInt(k))).join(''))
        acked += msgs.length
      }))
    }
  } finally {
    reports.close()
  }
  await producer.disconnect()
  wl.log(`kafkajs produced ${acked} (${args.codec})`)
}

/** Send one partition's messages (in order) and return the offset of the first.
 * kafkajs 2.2.4 can resolve a send() without having sent a partition at all, and says so only
 * by leaving it out of the result:
 *  - a send() spanning partitions led by different brokers keeps the responses per broker;
 *    when a retry finds a failed partition's new leader among the brokers that already
 *    answered, it never sends that partition again (kafkajs issue #1303). That happens with
 *    a correct broker whenever leadership moves, hence one partition per send().
 *  - a partition missing from the metadata kafkajs holds gets no request at all
 *    (Cluster.findLeaderForPartitions skips it). A broker must never list a topic without
 *    some of its partitions; kafkapy once did (a broker restarted within its old ZooKeeper
 *    session applied the controller's stale partial UpdateMetadata), so this is a failure
 *    here, never retried away. */
async function sendPartition (producer, args, partition, msgs) {
  const result = await producer.send({
    topic: args.topic,
    acks: -1,
    timeout: 30000,
    compression: COMPRESSION[args.codec],
    messages: msgs.map((m) => ({
      partition,
      key: m.key,
      value: m.value,
      headers: Object.fromEntries(m.headers),
      timestamp: String(m.timestamp)
    }))
  })
  if (result.length !== 1 || result[0].partition !== partition || result[0].errorCode !== 0) {
    wl.fail(`send to partition ${partition} (seq ${msgs[0].seq}..) answered ${JSON.stringify(result)}` +
      (result.length === 0 ? ': kafkajs sent nothing (the partition is missing from its metadata)' : ''))
  }
  return BigInt(result[0].baseOffset)
}

const defaultPartitioner = Partitioners.DefaultPartitioner()
const PARTITION_METADATA = [...Array(wl.PARTITIONS).keys()].map((id) => ({ partitionId: id, leader: 0 }))
/** The partition kafkajs's default (Java-compatible murmur2) partitioner gives the key; for a
 * keyed message it depends only on the key and the partition count. */
function partitionOf (args, key) {
  return defaultPartitioner({ topic: args.topic, partitionMetadata: PARTITION_METADATA, message: { key } })
}

async function endOffsets (adm, topic) {
  const offsets = await adm.fetchTopicOffsets(topic)
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]))
}

/** Consume with a consumer group until every partition is done; `onRecord` returns false to
 * stop; `beforeLeave` runs while the member is still in the group. */
async function runGroup (args, kafka, groupId, done, onRecord, beforeLeave) {
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 200,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxBytesPerPartition: args.valueSize ? BIG_FETCH : undefined,
    maxBytes: args.valueSize ? 2 * BIG_FETCH : undefined
  })
  let stopping = false
  let finish
  let failed
  const finished = new Promise((resolve, reject) => { finish = resolve; failed = reject })
  const allDone = () => [...done.values()].every(Boolean)
  consumer.on(consumer.events.CRASH,
    (e) => failed(new Error(`consumer crashed: ${e.payload.error && e.payload.error.stack}`)))
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (stopping) return
      if (!(await onRecord(consumer, partition, message))) stopping = true
      if (stopping || allDone()) {
        stopping = true
        consumer.pause([{ topic: args.topic }])
        finish()
      }
    }
  })
  if (allDone()) { stopping = true; finish() }
  const timer = setTimeout(() => failed(new Error('timed out')), wl.timeLeftMs(args))
  try {
    await finished
    if (beforeLeave) await beforeLeave(consumer)
  } finally {
    clearTimeout(timer)
    await consumer.disconnect() // LeaveGroup; autoCommit false: commits nothing on the way out
  }
}

function headersOf (message) {
  return Object.entries(message.headers || {}).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v])
}

async function consume (args) {
  const kafka = client(args)
  const ends = await withAdmin(kafka, (adm) => endOffsets(adm, args.topic))
  const done = new Map([...ends].map(([p, end]) => [p, end === 0n]))
  const out = c.syncWriter(args.out)
  const lines = []
  let got = 0
  const next = new Map([...ends.keys()].map((p) => [p, 0n]))
  const redelivered = []
  const group = `compat-read-${args.topic}-${process.pid}-${Date.now()}`
  await runGroup(args, kafka, group, done, async (consumer, partition, m) => {
    const offset = BigInt(m.offset)
    if (offset >= ends.get(partition)) return true
    // This reader never commits: an offset delivered again (the group restarted from its
    // start after a rebalance) is written once, and the re-delivery is named.
    if (offset < next.get(partition)) {
      redelivered.push(`${partition}@${offset}`)
      return true
    }
    next.set(partition, offset + 1n)
    lines.push(c.recordLine(partition, m.offset, m.key, m.value, headersOf(m), m.timestamp))
    got++
    if (offset + 1n >= ends.get(partition)) done.set(partition, true)
    return true
  })
  out.write(lines.join(''))
  out.close()
  if (redelivered.length) {
    wl.log(`kafkajs delivered ${redelivered.length} records a second time (first ${redelivered.slice(0, 3)}); written once`)
  }
  wl.log(`kafkajs consumed ${got} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

async function group (args) {
  const kafka = client(args)
  const { offsets, committed } = await withAdmin(kafka, async (adm) => {
    const offsets = await adm.fetchTopicOffsets(args.topic)
    const fetched = await adm.fetchOffsets({ groupId: args.group, topics: [args.topic] })
    const committed = new Map()
    for (const t of fetched) for (const p of t.partitions) committed.set(p.partition, BigInt(p.offset))
    return { offsets, committed }
  })
  const startCommitted = new Map(offsets.map((o) => [o.partition,
    committed.has(o.partition) ? committed.get(o.partition) : -1n]))
  // where this member starts: the committed offset, else the beginning (fromBeginning)
  const start = new Map(offsets.map((o) => {
    const cm = startCommitted.get(o.partition)
    return [o.partition, cm >= 0n ? cm : BigInt(o.low)]
  }))
  const ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]))
  // Without --max the run ends at the end offsets; a partition that starts there is done.
  const done = new Map([...ends].map(([p, end]) => [p, args.max === null && start.get(p) >= end]))
  const position = new Map(start)
  const out = c.syncWriter(args.out, 'a')
  let got = 0
  await runGroup(args, kafka, args.group, done, async (consumer, partition, m) => {
    const offset = BigInt(m.offset)
    if (args.max === null && offset >= ends.get(partition)) return true
    out.write(c.recordLine(partition, m.offset, m.key, m.value, headersOf(m), m.timestamp))
    // synchronous commit of this record, after its line is on disk
    await consumer.commitOffsets([{ topic: args.topic, partition, offset: (offset + 1n).toString() }])
    position.set(partition, offset + 1n)
    got++
    if (args.max !== null) return got < args.max
    if (offset + 1n >= ends.get(partition)) done.set(partition, true)
    return true
  }, async (consumer) => {
    // Before leaving, commit the position of every partition (as a Java consumer's
    // commitSync() would), so a partition this member never reached is committed at its
    // start. Only a member that consumed has joined (and has anything new to commit).
    const todo = [...position].filter(([p, o]) => o !== startCommitted.get(p))
    if (got > 0 && todo.length) {
      await consumer.commitOffsets(todo.map(([partition, o]) => ({ topic: args.topic, partition, offset: o.toString() })))
    }
  })
  out.close()
  wl.log(`kafkajs group ${args.group}: consumed and committed ${got}; positions ${c.positions(position)}`)
}

module.exports = { admin, produce, consume, group }
