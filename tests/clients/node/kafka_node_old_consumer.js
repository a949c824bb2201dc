'use strict'
// kafka-node 5.0.0's old (pre-group-protocol) Consumer and Offset classes, for
// tests/clients/test_kafka_node_legacy.py. They commit with OffsetCommit v0 and read back with
// OffsetFetch v0, which Kafka in ZooKeeper mode keeps in /consumers/<group>/offsets/<t>/<p>;
// the Consumer reads with Fetch v0 (magic 0).
//
// --mode consume: one Consumer over partitions 0..N-1 of T in group G. It starts at the
//   committed offsets (OffsetFetch v0; nothing committed = 0), appends "partition offset value"
//   per message to FILE (synchronously, before any commit that covers it) and stops after at
//   least --count messages: pause, commit the positions (OffsetCommit v0), close, exit 0.
//   --commit explicit commits after every fetch response; --commit auto uses autoCommit
//   (every --interval-ms) and the forced commit of close(true).
// --mode offset: Offset.commit(G, --set p:o,...) (OffsetCommit v0), then Offset.fetchCommits
//   (which kafka-node sends as OffsetFetch v1: the group coordinator's store); prints
//   {"commit": <commit answer>, "fetchCommits": <fetch answer>} as JSON on stdout.
// Usage: node kafka_node_old_consumer.js --mode consume|offset --bootstrap H:P --topic T
//   --partitions N --group G [--out FILE --count N --commit auto|explicit --max-bytes B
//   --interval-ms MS] [--set p:o,p:o]
const fs = require('fs')
const kafka = require('kafka-node')
const { BrokerNotAvailableError } = require('kafka-node/lib/errors')

function parseArgs (argv) {
  const a = { mode: 'consume', commit: 'explicit', maxBytes: '1048576', intervalMs: '200' }
  for (let i = 2; i < argv.length; i += 2) {
    a[argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = argv[i + 1]
  }
  return a
}

function fail (msg) {
  process.stderr.write(`${msg}\n`)
  process.exit(1)
}

function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))))
}

async function newClient (a) {
  const client = new kafka.KafkaClient({ kafkaHost: a.bootstrap, clientId: 'kafka-node-old-consumer', requestTimeout: 30000 })
  await new Promise((resolve, reject) => {
    client.once('ready', resolve)
    client.once('error', reject)
  })
  return client
}

async function consume (a) {
  const client = await newClient(a)
  const fd = fs.openSync(a.out, 'a')
  const target = Number(a.count)
  const payloads = []
  for (let p = 0; p < Number(a.partitions); p++) payloads.push({ topic: a.topic, partition: p })
  const consumer = new kafka.Consumer(client, payloads, {
    groupId: a.group,
    autoCommit: a.commit === 'auto',
    autoCommitIntervalMs: Number(a.intervalMs),
    fetchMaxWaitMs: 200,
    fetchMaxBytes: Number(a.maxBytes),
    fromOffset: false
  })
  let seen = 0
  let stopping = false
  let committing = Promise.resolve()
  // OffsetCommit v0 through the Consumer: the positions after every message emitted so far
  const commit = () => {
    committing = committing.then(() => call((cb) => consumer.commit(true, cb))).then((res) => {
      for (const [topic, r] of Object.entries(res || {})) {
        if (r && r.errorCode) fail(`OffsetCommit v0 for ${topic}: error ${r.errorCode}`)
      }
    })
    return committing
  }
  consumer.on('error', (err) => fail(`consumer error: ${err && err.stack ? err.stack : err}`))
  consumer.on('offsetOutOfRange', (err) => fail(`offset out of range: ${JSON.stringify(err)}`))
  consumer.on('message', (m) => {
    fs.writeSync(fd, `${m.partition} ${m.offset} ${m.value}\n`)
    seen++
  })
  // registered after the Consumer's own 'done' listener, which advances the positions
  consumer.on('done', () => {
    if (stopping) return
    if (seen >= target) {
      stopping = true
      consumer.pause()
      // explicit: commit, then close; auto: close(true) commits the positions itself
      const committed = a.commit === 'auto' ? committing : commit()
      committed
        .then(() => call((cb) => consumer.close(a.commit === 'auto', cb)))
        .then(() => process.exit(0))
        .catch((e) => fail(`stopping: ${e && e.stack ? e.stack : e}`))
    } else if (a.commit === 'explicit') {
      commit().catch((e) => fail(`commit: ${e && e.stack ? e.stack : e}`))
    }
  })
}

async function offsets (a) {
  const client = await newClient(a)
  const offset = new kafka.Offset(client)
  const set = a.set.split(',').map((x) => x.split(':').map(Number))
  const commit = await call((cb) => offset.commit(a.group, set.map(([p, o]) => ({ topic: a.topic, partition: p, offset: o })), cb))
  // fetchCommits needs the group coordinator, which on a fresh cluster answers
  // COORDINATOR_NOT_AVAILABLE while __consumer_offsets is created (Kafka alike): retry that
  let fetched
  for (let attempt = 1; ; attempt++) {
    try {
      fetched = await call((cb) => offset.fetchCommits(a.group, set.map(([p]) => ({ topic: a.topic, partition: p })), cb))
      break
    } catch (e) {
      if (!(e instanceof BrokerNotAvailableError) || attempt >= 60) throw e
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
  process.stdout.write(JSON.stringify({ commit, fetchCommits: fetched }) + '\n')
  await call((cb) => client.close(cb))
  process.exit(0)
}

const a = parseArgs(process.argv)
const run = a.mode === 'offset' ? offsets : consume
run(a).catch((e) => fail(e && e.stack ? e.stack : String(e)))
