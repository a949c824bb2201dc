'use strict'
// One consumer-group member for tests/clients/test_groups.py, for a Node client.
// Usage: NODE_PATH=tests/clients/node/node_modules node group_driver.js --client kafkajs|rdkafka
//   --bootstrap H:P --topic T --group G --client-id C --out FILE [--delay-ms N]
//   [--instance-id I] [--assignor range|cooperative-sticky] [--session-timeout-ms N]
// Appends "partition offset value" per record to FILE, then commits it synchronously; SIGTERM
// disconnects (LeaveGroup). Assignments go to FILE.log as "ASSIGNED p,p,...".
const fs = require('fs')

function parseArgs (argv) {
  const a = { delayMs: 0 }
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    a[k] = argv[i + 1]
  }
  a.delayMs = Number(a.delayMs || 0)
  a.sessionTimeoutMs = Number(a.sessionTimeoutMs || 6000)
  return a
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function runKafkajs (a, out, log, stopped) {
  const { Kafka, logLevel } = require('kafkajs')
  // GROUP_DRIVER_LOG=info|debug: kafkajs's own log, timestamped, to stderr (FILE.err in tests)
  const level = { info: logLevel.INFO, debug: logLevel.DEBUG }[process.env.GROUP_DRIVER_LOG] || logLevel.NOTHING
  const logCreator = () => ({ namespace, level: lvl, log }) =>
    process.stderr.write(`${new Date().toISOString()} ${lvl} ${namespace} ${log.message} ${JSON.stringify({ ...log, message: undefined, timestamp: undefined, logger: undefined })}\n`)
  const kafka = new Kafka({ clientId: a.clientId, brokers: a.bootstrap.split(','), logLevel: level, logCreator })
  const consumer = kafka.consumer({ groupId: a.group, sessionTimeout: a.sessionTimeoutMs, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y)
    log.write(`ASSIGNED ${parts.join(',')}\n`)
  })
  await consumer.connect()
  await consumer.subscribe({ topic: a.topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      out.write(`${partition} ${message.offset} ${message.value.toString()}\n`)
      await consumer.commitOffsets([{ topic: a.topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      if (a.delayMs) await sleep(a.delayMs)
    }
  })
  await stopped
  await consumer.disconnect()
}

async function runRdkafka (a, out, log, stopped) {
  const Kafka = require('node-rdkafka')
  // a commit can fail with ILLEGAL_GENERATION/REBALANCE_IN_PROGRESS between generations
  // (cooperative members keep consuming, as with Kafka): keep it and commit it again later
  const pending = new Map()
  const flush = (c, parts) => {
    const todo = [...pending].filter(([p]) => parts.has(p)).map(([p, o]) => ({ topic: a.topic, partition: p, offset: o }))
    if (!todo.length) return
    try {
      c.commitSync(todo)
      for (const t of todo) pending.delete(t.partition)
    } catch (e) {}
  }
  const conf = {
    'metadata.broker.list': a.bootstrap,
    'group.id': a.group,
    'client.id': a.clientId,
    'enable.auto.commit': false,
    'session.timeout.ms': a.sessionTimeoutMs,
    'heartbeat.interval.ms': 500,
    'partition.assignment.strategy': a.assignor || 'range',
    rebalance_cb: function (err, assignment) {
      if (err.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
        if (this.rebalanceProtocol() === 'COOPERATIVE') this.incrementalAssign(assignment)
        else this.assign(assignment)
        log.write(`ASSIGNED ${this.assignments().map((p) => p.partition).sort((x, y) => x - y).join(',')}\n`)
      } else if (err.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
        const revoked = new Set(assignment.map((p) => p.partition))
        flush(this, revoked)
        for (const p of revoked) pending.delete(p)
        if (this.rebalanceProtocol() === 'COOPERATIVE') this.incrementalUnassign(assignment)
        else this.unassign()
      }
    }
  }
  if (a.instanceId) conf['group.instance.id'] = a.instanceId
  const consumer = new Kafka.KafkaConsumer(conf, { 'auto.offset.reset': 'earliest' })
  await new Promise((resolve, reject) => consumer.connect({ timeout: 30000 }, (e) => (e ? reject(e) : resolve())))
  consumer.subscribe([a.topic])
  let stop = false
  stopped.then(() => { stop = true })
  while (!stop) {
    const msgs = await new Promise((resolve) => consumer.consume(1, (err, m) => resolve(err ? [] : m)))
    for (const m of msgs) {
      out.write(`${m.partition} ${m.offset} ${m.value.toString()}\n`)
      pending.set(m.partition, m.offset + 1)
      flush(consumer, new Set([m.partition]))
      if (a.delayMs) await sleep(a.delayMs)
    }
    if (pending.size) flush(consumer, new Set(consumer.assignments().map((p) => p.partition)))
    if (!msgs.length) await sleep(50)
  }
  await new Promise((resolve) => consumer.disconnect(() => resolve()))
}

async function main () {
  const a = parseArgs(process.argv)
  // synchronous writes: a record is on disk before its commit is sent (kill -9 safe)
  const sink = (path) => { const fd = fs.openSync(path, 'a'); return { write: (s) => fs.writeSync(fd, s) } }
  const out = sink(a.out)
  const log = sink(a.out + '.log')
  let onStop
  const stopped = new Promise((resolve) => { onStop = resolve })
  process.on('SIGTERM', () => onStop())
  if (a.client === 'kafkajs') await runKafkajs(a, out, log, stopped)
  else if (a.client === 'rdkafka') await runRdkafka(a, out, log, stopped)
  else throw new Error(`unknown client ${a.client}`)
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(1) })
