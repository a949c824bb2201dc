'use strict'
// kafka-node 5.0.0 driver: the pre-0.11 protocol (ApiVersions v0, Produce v2 = magic 1,
// Fetch v2 = magic 1, Metadata v1, CreateTopics v1). createTopics -> producer.send in chunks
// (acks -1) with an explicit partition per message -> a ConsumerGroup from the
// earliest offset until the end offsets read after producing.
// kafka-node has no record headers (legacy formats have none) and only gzip and snappy
// (the optional native `snappy` module): --codec lz4|zstd exits 2 ("unsupported").
// Partition = (key index) % partitions, so every key stays in one partition (kafka-node's own
// keyed partitioner agrees with no other client, see client-protocol-needs.md §7).
// Usage: node kafka_node_driver.js --bootstrap H:P --topic T --codec none|gzip|snappy
//   --count N --base-ts MS --out F [--produced F] [--mode all|produce|consume]
const kafka = require('kafka-node')
const wl = require('./workload')

const ATTRIBUTES = { none: 0, gzip: 1, snappy: 2 }
const CHUNK = 1000

function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))))
}

function partitionOf (seq) {
  return (seq % wl.NUM_KEYS) % wl.PARTITIONS
}

async function newClient (args) {
  const client = new kafka.KafkaClient({ kafkaHost: args.bootstrap, clientId: 'kp-driver-kafka-node', requestTimeout: 30000 })
  await new Promise((resolve, reject) => {
    client.once('ready', resolve)
    client.once('error', reject)
  })
  return client
}

async function createTopic (client, args) {
  const result = await call((cb) => client.createTopics(
    [{ topic: args.topic, partitions: wl.PARTITIONS, replicationFactor: 1 }], cb))
  // An "already exists" entry is fine (mode consume after produce, or a re-run).
  for (const r of result || []) {
    if (r.error && !/already exists/i.test(String(r.error))) wl.fail(`createTopics: ${r.error}`)
  }
  // Wait until metadata names a leader for every partition.
  for (;;) {
    wl.timeLeftMs(args)
    await call((cb) => client.loadMetadataForTopics([args.topic], cb)).catch(() => null)
    await call((cb) => client.refreshMetadata([args.topic], cb)).catch(() => null)
    const parts = client.topicMetadata[args.topic]
    if (parts && Object.keys(parts).length === wl.PARTITIONS &&
        Object.values(parts).every((p) => p.leader >= 0)) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function produce (client, args) {
  const producer = new kafka.Producer(client, { requireAcks: -1, ackTimeoutMs: 30000 })
  await new Promise((resolve) => (producer.ready ? resolve() : producer.once('ready', resolve)))
  const reports = wl.lineWriter(args.produced)
  const attributes = ATTRIBUTES[args.codec]
  let produced = 0
  for (let start = 0; start < args.count; start += CHUNK) {
    wl.timeLeftMs(args)
    const chunk = []
    for (let i = start; i < Math.min(args.count, start + CHUNK); i++) chunk.push(wl.message(i, args.src, args.baseTs))
    // One payload per message (for its own timestamp); kafka-node merges payloads of the
    // same partition into one message set, in order.
    const payloads = chunk.map((m) => ({
      topic: args.topic,
      partition: partitionOf(m.seq),
      key: m.key,
      messages: m.value,
      timestamp: m.timestamp,
      attributes
    }))
    const result = await call((cb) => producer.send(payloads, cb))
    const next = new Map()
    for (const [p, offset] of Object.entries(result[args.topic] || {})) next.set(Number(p), Number(offset))
    for (const m of chunk) {
      const p = partitionOf(m.seq)
      if (!next.has(p)) wl.fail(`no produce result for partition ${p} (seq ${m.seq}): ${JSON.stringify(result)}`)
      if (reports) reports.write(wl.deliveryLine(m.seq, p, next.get(p)))
      next.set(p, next.get(p) + 1)
      produced++
    }
  }
  if (reports) reports.close()
  wl.log(`produced ${produced}`)
}

async function consume (client, args) {
  const latest = await call((cb) => new kafka.Offset(client).fetchLatestOffsets([args.topic], cb))
  const ends = new Map(Object.entries(latest[args.topic]).map(([p, o]) => [Number(p), Number(o)]))
  const out = wl.lineWriter(args.out)
  const done = new Map([...ends].map(([p, end]) => [p, end === 0]))
  const allDone = () => [...done.values()].every(Boolean)
  let got = 0
  // ConsumerGroup (JoinGroup/SyncGroup/Heartbeat v0, OffsetFetch v1) fetches with Fetch v2,
  // i.e. magic 1 with timestamps; the plain Consumer is hard-wired to Fetch v0 (magic 0,
  // no timestamps).
  const consumer = new kafka.ConsumerGroup({
    kafkaHost: args.bootstrap,
    groupId: `${args.topic}-group`,
    fromOffset: 'earliest',
    autoCommit: false,
    encoding: 'buffer',
    keyEncoding: 'buffer',
    fetchMaxWaitMs: 200,
    sessionTimeout: 15000
  }, [args.topic])
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after consuming ${got}`)), wl.timeLeftMs(args))
    const finish = () => { clearTimeout(timer); resolve() }
    if (allDone()) finish()
    consumer.on('error', (err) => { clearTimeout(timer); reject(err) })
    consumer.on('offsetOutOfRange', (err) => { clearTimeout(timer); reject(new Error(`offsetOutOfRange ${JSON.stringify(err)}`)) })
    consumer.on('message', (m) => {
      if (m.offset >= ends.get(m.partition)) return
      const ts = m.timestamp === undefined ? -1 : Number(m.timestamp)
      out.write(wl.recordLine(m.partition, m.offset, m.key, m.value, [], ts))
      got++
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
      if (allDone()) finish()
    })
  })
  await call((cb) => consumer.close(cb)).catch(() => null)
  out.close()
  wl.log(`consumed ${got} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

async function main () {
  const argv = process.argv.slice(2)
  let mode = 'all'
  const i = argv.indexOf('--mode')
  if (i >= 0) { mode = argv[i + 1]; argv.splice(i, 2) }
  const args = wl.parseArgs('kafka-node', argv)
  if (!(args.codec in ATTRIBUTES)) {
    process.stderr.write(`unsupported: kafka-node 5.0.0 has no ${args.codec} codec\n`)
    process.exit(2)
  }
  const client = await newClient(args)
  await createTopic(client, args)
  if (mode !== 'consume') await produce(client, args)
  if (mode !== 'produce') await consume(client, args)
  await call((cb) => client.close(cb)).catch(() => null)
}

main().then(() => process.exit(0), (err) => wl.fail(err && err.stack ? err.stack : String(err)))
