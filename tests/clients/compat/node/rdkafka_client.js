'use strict'
// node-rdkafka 3.x (bundled librdkafka) for the compatibility suite. Admin: AdminClient
// createTopic / deleteTopic, metadata through a client's getMetadata (node-rdkafka's
// AdminClient has no DescribeConfigs). Producer: enable.idempotence (librdkafka then keeps
// acks=all, at most 5 in flight with sequence numbers and unlimited retries, so a retry can
// neither duplicate nor reorder). consume: assign from the low watermarks; group: subscribe
// and commitSync per record.
const c = require('./common')
const { wl } = c

const Kafka = c.clientRequire('node-rdkafka')
const ERR = Kafka.CODES.ERRORS
const BIG = 4 * 1024 * 1024

function base (args, role) {
  const conf = {
    'client.id': `compat-rdkafka-${role}`,
    'metadata.broker.list': args.bootstrap,
    'socket.timeout.ms': 30000
  }
  if (args.valueSize) {
    // a user sending a 900 KB message raises the client's size limits above it
    conf['message.max.bytes'] = Math.max(1000000, args.valueSize + 65536)
    conf['fetch.message.max.bytes'] = BIG
  }
  return conf
}

async function connect (client) {
  await c.call((cb) => client.connect({ timeout: 30000 }, cb))
  return client
}

async function metadataPartitions (client, topic) {
  const md = await c.call((cb) => client.getMetadata({ topic, timeout: 10000 }, cb))
  const t = md.topics.find((x) => x.name === topic)
  if (!t) return []
  return t.partitions.map((p) => ({ partition: p.id, leader: p.leader, replicas: p.replicas, isr: p.isrs }))
}

async function admin (args) {
  const adminClient = Kafka.AdminClient.create(base(args, 'admin'))
  // getMetadata lives on the producer/consumer clients; this one never produces and never
  // auto-creates a topic by asking for it.
  const md = await connect(new Kafka.Producer({ ...base(args, 'metadata'), 'allow.auto.create.topics': false }))
  try {
    await c.call((cb) => adminClient.createTopic(
      { topic: args.topic, num_partitions: wl.PARTITIONS, replication_factor: 3 }, 30000, cb))
    const partitions = await c.waitFor(args, 'metadata with 3 partitions x 3 replicas', async () => {
      const parts = await metadataPartitions(md, args.topic)
      return c.fullyReplicated(parts) && parts
    })
    c.unsupported('describe-configs',
      'node-rdkafka 3.x AdminClient has createTopic, deleteTopic and createPartitions only (no DescribeConfigs)')
    await c.call((cb) => adminClient.deleteTopic(args.topic, 30000, cb))
    // metadata for all topics (no topic named), so the request cannot re-create it
    await c.waitFor(args, `${args.topic} gone from metadata`, async () => {
      const all = await c.call((cb) => md.getMetadata({ timeout: 10000 }, cb))
      return !all.topics.some((t) => t.name === args.topic)
    })
    return c.adminResult(true, partitions, true, null)
  } finally {
    adminClient.disconnect()
    await new Promise((resolve) => md.disconnect(resolve))
  }
}

async function produce (args) {
  const producer = new Kafka.Producer({
    ...base(args, 'producer'),
    dr_cb: true,
    'enable.idempotence': true,
    'request.required.acks': -1,
    'compression.codec': args.codec,
    'linger.ms': 5,
    'message.timeout.ms': Math.max(10000, args.timeout * 1000 - 5000),
    'queue.buffering.max.messages': Math.max(100000, args.count * 2)
  })
  const reports = c.syncWriter(args.produced)
  const errors = []
  let delivered = 0
  let allDelivered
  const done = new Promise((resolve) => { allDelivered = resolve })
  producer.on('delivery-report', (err, report) => {
    if (err) errors.push(`seq ${report && report.opaque}: ${err.message} (${err.code})`)
    else reports.write(wl.deliveryLine(report.opaque, report.partition, report.offset))
    delivered++
    if (delivered === args.count) allDelivered()
  })
  const transient = []
  producer.on('event.error', (err) => transient.push(`${err.message} (${err.code})`))
  await connect(producer)
  producer.setPollInterval(20)
  for (let i = 0; i < args.count; i++) {
    const m = c.message(args, i)
    producer.produce(args.topic, null, Buffer.from(m.value), Buffer.from(m.key), m.timestamp, m.seq,
      m.headers.map(([k, v]) => ({ [k]: v })))
  }
  const timer = setTimeout(() => wl.fail(
    `timed out with ${delivered} of ${args.count} delivery reports; ${errors.slice(0, 5)}`), wl.timeLeftMs(args))
  await done
  clearTimeout(timer)
  await new Promise((resolve) => producer.disconnect(resolve))
  reports.close()
  if (errors.length) wl.fail(`${errors.length} delivery errors, first: ${errors.slice(0, 5)}`)
  const note = transient.length ? `; transient errors: ${transient.slice(0, 3)}` : ''
  wl.log(`node-rdkafka produced ${delivered} (${args.codec})${note}`)
}

function consumerConf (args, groupId) {
  return {
    ...base(args, 'consumer'),
    'group.id': groupId,
    'enable.auto.commit': false,
    'session.timeout.ms': 10000,
    'heartbeat.interval.ms': 1000,
    'fetch.wait.max.ms': 200
  }
}

function headersOf (m) {
  return (m.headers || []).map((h) => Object.entries(h)[0])
}

async function watermarks (consumer, topic) {
  const ends = new Map()
  const lows = new Map()
  for (let p = 0; p < wl.PARTITIONS; p++) {
    const { lowOffset, highOffset } = await c.call((cb) => consumer.queryWatermarkOffsets(topic, p, 10000, cb))
    lows.set(p, lowOffset)
    ends.set(p, highOffset)
  }
  return { lows, ends }
}

async function consume (args) {
  const consumer = await connect(new Kafka.KafkaConsumer(
    consumerConf(args, `compat-read-${args.topic}-${process.pid}`), { 'auto.offset.reset': 'earliest' }))
  const { lows, ends } = await watermarks(consumer, args.topic)
  consumer.assign([...lows].map(([partition, offset]) => ({ topic: args.topic, partition, offset })))
  consumer.setDefaultConsumeTimeout(500)
  const done = new Map([...ends].map(([p, end]) => [p, end <= lows.get(p)]))
  const lines = []
  while (![...done.values()].every(Boolean)) {
    wl.timeLeftMs(args)
    for (const m of await c.call((cb) => consumer.consume(1000, cb))) {
      if (m.offset >= ends.get(m.partition)) continue
      lines.push(c.recordLine(m.partition, m.offset, m.key, m.value, headersOf(m), m.timestamp))
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
    }
  }
  const out = c.syncWriter(args.out)
  out.write(lines.join(''))
  out.close()
  await new Promise((resolve) => consumer.disconnect(resolve))
  wl.log(`node-rdkafka consumed ${lines.length} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

function commitSync (consumer, args, offsets) {
  // The only member of its group: a commit fails only on a transient coordinator error.
  for (;;) {
    try {
      consumer.commitSync(offsets)
      return
    } catch (err) {
      if (Date.now() + 200 > args.deadline) throw err
      wl.log(`commit of ${JSON.stringify(offsets)} failed (${err.message}); retrying`)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200) // commitSync blocks anyway
    }
  }
}

async function group (args) {
  const consumer = await connect(new Kafka.KafkaConsumer(consumerConf(args, args.group),
    { 'auto.offset.reset': 'earliest' }))
  const { lows, ends } = await watermarks(consumer, args.topic)
  const parts = [...ends.keys()].map((partition) => ({ topic: args.topic, partition }))
  const committed = await c.call((cb) => consumer.committed(parts, 10000, cb))
  // where this member starts: the committed offset, else the beginning (auto.offset.reset)
  const startCommitted = new Map([...lows].map(([p]) => {
    const cm = committed.find((t) => t.partition === p)
    return [p, cm !== undefined ? cm.offset : -1]
  }))
  const position = new Map([...lows].map(([p, low]) => [p, startCommitted.get(p) >= 0 ? startCommitted.get(p) : low]))
  // Without --max the run ends at the end offsets; a partition that starts there is done.
  const done = new Map([...ends].map(([p, end]) => [p, args.max === null && position.get(p) >= end]))
  const out = c.syncWriter(args.out, 'a')
  consumer.subscribe([args.topic])
  consumer.setDefaultConsumeTimeout(500)
  let got = 0
  const finished = () => (args.max !== null ? got >= args.max : [...done.values()].every(Boolean))
  while (!finished()) {
    wl.timeLeftMs(args)
    for (const m of await c.call((cb) => consumer.consume(100, cb))) {
      if (finished()) break // the rest of this batch is neither recorded nor committed
      if (args.max === null && m.offset >= ends.get(m.partition)) continue
      out.write(c.recordLine(m.partition, m.offset, m.key, m.value, headersOf(m), m.timestamp))
      commitSync(consumer, args, [{ topic: args.topic, partition: m.partition, offset: m.offset + 1 }])
      position.set(m.partition, m.offset + 1)
      got++
      if (args.max === null && m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
    }
  }
  // Before leaving, commit the position of every partition (as a Java consumer's commitSync()
  // would), so a partition this member never reached is committed at its start. Only a
  // member that consumed has joined (and has anything new to commit).
  const todo = [...position].filter(([p, o]) => o !== startCommitted.get(p))
  if (got > 0 && todo.length) {
    commitSync(consumer, args, todo.map(([partition, offset]) => ({ topic: args.topic, partition, offset })))
  }
  out.close()
  await new Promise((resolve) => consumer.disconnect(resolve)) // close: LeaveGroup, no auto commit
  wl.log(`node-rdkafka group ${args.group}: consumed and committed ${got}; positions ${c.positions(position)}`)
}

module.exports = { admin, produce, consume, group }
