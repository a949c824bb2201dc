'use strict'
// kafkajs 2.2.4 driver: admin createTopics -> producer.send in chunks (acks -1) -> a consumer
// group from the beginning until every partition reaches the end offset read after producing.
// snappy/lz4/zstd come from the plug-in packages kafkajs documents (kafkajs-snappy,
// kafkajs-lz4, @kafkajs/zstd). Usage: node kafkajs_driver.js --bootstrap H:P --topic T
//   --codec none|gzip|snappy|lz4|zstd --count N --base-ts MS --out F [--produced F]
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1' // the default (Java murmur2) partitioner is what we want
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const LZ4Codec = require('kafkajs-lz4')
const wl = require('./workload')

CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = require('@kafkajs/zstd')()

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}
const CHUNK = 1000

async function createTopic (kafka, args) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    // false = it already existed; errors throw.
    await admin.createTopics({
      topics: [{ topic: args.topic, numPartitions: wl.PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000
    })
  } finally {
    await admin.disconnect()
  }
}

async function produce (kafka, args) {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  // The same partitioner the producer uses, to map each message to its delivery report.
  const partitionOf = Partitioners.DefaultPartitioner()
  const partitionMetadata = [...Array(wl.PARTITIONS).keys()].map((id) => ({ partitionId: id, leader: 0 }))
  const reports = wl.lineWriter(args.produced)
  let produced = 0
  for (let start = 0; start < args.count; start += CHUNK) {
    wl.timeLeftMs(args)
    const chunk = []
    for (let i = start; i < Math.min(args.count, start + CHUNK); i++) chunk.push(wl.message(i, args.src, args.baseTs))
    const result = await producer.send({
      topic: args.topic,
      acks: -1,
      compression: COMPRESSION[args.codec],
      messages: chunk.map((m) => ({
        key: m.key,
        value: m.value,
        headers: Object.fromEntries(m.headers),
        timestamp: String(m.timestamp)
      }))
    })
    const next = new Map()
    for (const r of result) {
      if (r.errorCode !== 0) wl.fail(`produce error ${r.errorCode} on partition ${r.partition}`)
      next.set(r.partition, BigInt(r.baseOffset))
    }
    for (const m of chunk) {
      const p = partitionOf({ topic: args.topic, partitionMetadata, message: { key: m.key } })
      if (!next.has(p)) wl.fail(`no produce result for partition ${p} (seq ${m.seq})`)
      if (reports) reports.write(wl.deliveryLine(m.seq, p, next.get(p)))
      next.set(p, next.get(p) + 1n)
      produced++
    }
  }
  if (reports) reports.close()
  await producer.disconnect()
  wl.log(`produced ${produced}`)
}

async function endOffsets (kafka, args) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(args.topic)
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]))
  } finally {
    await admin.disconnect()
  }
}

async function consume (kafka, args) {
  const ends = await endOffsets(kafka, args)
  const consumer = kafka.consumer({ groupId: `${args.topic}-group`, maxWaitTimeInMs: 500 })
  const out = wl.lineWriter(args.out)
  const done = new Map([...ends].map(([p, end]) => [p, end === 0n]))
  let got = 0
  let finish
  const finished = new Promise((resolve) => { finish = resolve })
  const allDone = () => [...done.values()].every(Boolean)
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const headers = Object.entries(message.headers || {})
      out.write(wl.recordLine(partition, message.offset, message.key, message.value, headers, message.timestamp))
      got++
      if (BigInt(message.offset) + 1n >= ends.get(partition)) done.set(partition, true)
      if (allDone()) finish()
    }
  })
  if (allDone()) finish()
  const timer = setTimeout(() => wl.fail(`timed out after consuming ${got}`), wl.timeLeftMs(args))
  await finished
  clearTimeout(timer)
  await consumer.disconnect()
  out.close()
  wl.log(`consumed ${got} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

async function main () {
  const args = wl.parseArgs('kafkajs')
  const kafka = new Kafka({
    clientId: 'kp-driver-kafkajs',
    brokers: args.bootstrap.split(','),
    logLevel: logLevel.WARN,
    retry: { retries: 10 }
  })
  await createTopic(kafka, args)
  await produce(kafka, args)
  await consume(kafka, args)
}

main().then(() => process.exit(0), (err) => wl.fail(err && err.stack ? err.stack : String(err)))
