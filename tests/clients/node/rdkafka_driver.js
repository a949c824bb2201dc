'use strict'
// node-rdkafka 3.6.1 (librdkafka 2.12.0) driver: AdminClient.createTopic -> Producer with
// delivery reports -> KafkaConsumer assigned from the low watermark, consumed to the high one.
// Usage: node rdkafka_driver.js --bootstrap H:P --topic T --codec none|gzip|snappy|lz4|zstd
//   --count N --base-ts MS --out F [--produced F]
const Kafka = require('node-rdkafka')
const wl = require('./workload')

const ERR = Kafka.CODES.ERRORS

function createTopic (args) {
  const admin = Kafka.AdminClient.create({
    'client.id': 'kp-driver-rdkafka-admin',
    'metadata.broker.list': args.bootstrap
  })
  return new Promise((resolve, reject) => {
    admin.createTopic({ topic: args.topic, num_partitions: wl.PARTITIONS, replication_factor: 1 },
      30000, (err) => {
        admin.disconnect()
        if (err && err.code !== ERR.ERR_TOPIC_ALREADY_EXISTS) reject(new Error(`createTopic: ${err.message} (${err.code})`))
        else resolve()
      })
  })
}

function connected (client) {
  return new Promise((resolve, reject) => {
    client.connect({ timeout: 30000 }, (err) => (err ? reject(err) : resolve()))
  })
}

async function produce (args) {
  const producer = new Kafka.Producer({
    'client.id': 'kp-driver-rdkafka',
    'metadata.broker.list': args.bootstrap,
    dr_cb: true,
    'compression.codec': args.codec,
    'request.required.acks': -1,
    'linger.ms': 5,
    // all 10,000 messages fit in the local queue, so produce() never reports QUEUE_FULL
    'queue.buffering.max.messages': Math.max(100000, args.count * 2)
  })
  const reports = wl.lineWriter(args.produced)
  const errors = []
  let delivered = 0
  let allDelivered
  const done = new Promise((resolve) => { allDelivered = resolve })
  producer.on('delivery-report', (err, report) => {
    if (err) errors.push(`seq ${report && report.opaque}: ${err.message}`)
    else if (reports) reports.write(wl.deliveryLine(report.opaque, report.partition, report.offset))
    delivered++
    if (delivered === args.count) allDelivered()
  })
  producer.on('event.error', (err) => errors.push(`event.error: ${err.message}`))
  await connected(producer)
  producer.setPollInterval(20)
  for (let i = 0; i < args.count; i++) {
    const m = wl.message(i, args.src, args.baseTs)
    producer.produce(args.topic, null, Buffer.from(m.value), Buffer.from(m.key), m.timestamp, m.seq,
      m.headers.map(([k, v]) => ({ [k]: v })))
  }
  const timer = setTimeout(() => wl.fail(`timed out with ${delivered} of ${args.count} delivery reports; ${errors.slice(0, 5)}`), wl.timeLeftMs(args))
  await done
  clearTimeout(timer)
  await new Promise((resolve) => producer.disconnect(resolve))
  if (reports) reports.close()
  const deliveryErrors = errors.filter((e) => !e.startsWith('event.error'))
  if (deliveryErrors.length) wl.fail(`${deliveryErrors.length} delivery errors, first: ${deliveryErrors.slice(0, 5)}`)
  wl.log(`produced ${delivered}${errors.length ? `; transient errors: ${errors.slice(0, 3)}` : ''}`)
}

function watermarks (consumer, args, partition) {
  return new Promise((resolve, reject) => {
    consumer.queryWatermarkOffsets(args.topic, partition, 10000, (err, offsets) =>
      err ? reject(new Error(`queryWatermarkOffsets(${partition}): ${err.message}`)) : resolve(offsets))
  })
}

function consumeBatch (consumer, n) {
  return new Promise((resolve, reject) => {
    consumer.consume(n, (err, messages) => (err ? reject(err) : resolve(messages)))
  })
}

async function consume (args) {
  const consumer = new Kafka.KafkaConsumer({
    'client.id': 'kp-driver-rdkafka-consumer',
    'metadata.broker.list': args.bootstrap,
    'group.id': `${args.topic}-reader`,
    'enable.auto.commit': false
  }, { 'auto.offset.reset': 'earliest' })
  await connected(consumer)
  const ends = new Map()
  const assignment = []
  for (let p = 0; p < wl.PARTITIONS; p++) {
    const { lowOffset, highOffset } = await watermarks(consumer, args, p)
    ends.set(p, highOffset)
    assignment.push({ topic: args.topic, partition: p, offset: lowOffset })
  }
  consumer.assign(assignment)
  consumer.setDefaultConsumeTimeout(500)
  const out = wl.lineWriter(args.out)
  const done = new Map([...ends].map(([p, end]) => [p, end === 0]))
  let got = 0
  while (![...done.values()].every(Boolean)) {
    wl.timeLeftMs(args)
    for (const m of await consumeBatch(consumer, 1000)) {
      const headers = (m.headers || []).map((h) => Object.entries(h)[0])
      out.write(wl.recordLine(m.partition, m.offset, m.key, m.value, headers, m.timestamp))
      got++
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
    }
  }
  out.close()
  await new Promise((resolve) => consumer.disconnect(resolve))
  wl.log(`consumed ${got} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

async function main () {
  const args = wl.parseArgs('node-rdkafka')
  await createTopic(args)
  await produce(args)
  await consume(args)
}

main().then(() => process.exit(0), (err) => wl.fail(err && err.stack ? err.stack : String(err)))
