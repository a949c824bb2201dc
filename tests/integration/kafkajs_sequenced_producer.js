'use strict'
// kafkajs idempotent acks=-1 producer of keyed, sequenced messages, for the cluster tests.
// Usage: node kafkajs_sequenced_producer.js BOOTSTRAP TOPIC PARTITIONS KEYS RATE
// Key k goes to partition k % PARTITIONS; values are "k<key>:<per-key sequence>". Sends batches
// of 10 for one partition at a time (idempotence needs one request in flight), until stdin
// closes. stdout gets one JSON line per send: {"acked": [[value, partition, offset], ...]} (plus
// {"unanswered": [[value, partition], ...]}, see below) or {"failed": message, "values": [...]},
// then {"errors": {KafkaErrorType: count}} at the end:
// the errors kafkajs met and retried, read from its own error log lines.
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, logLevel } = require('kafkajs')
const { errorCodes } = require('kafkajs/src/protocol/error')

const [bootstrap, topic, partitionsArg, keysArg, rateArg] = process.argv.slice(2)
const PARTITIONS = Number(partitionsArg)
const KEYS = Number(keysArg)
const RATE = Number(rateArg)
const BATCH = 10

const seen = {}
function count (type) { seen[type] = (seen[type] || 0) + 1 }

// kafkajs logs every failed attempt of a send at ERROR level with the broker error's text.
function classify (entry) {
  const text = `${entry.log.message || ''} ${entry.log.error || ''}`
  for (const e of errorCodes) {
    if (e.code !== 0 && text.includes(e.message)) {
      count(`${e.type}${e.retriable ? '' : ' (not retriable)'}`)
      return
    }
  }
  if (/Connection (error|closed|timeout)|Closed connection|ECONNREFUSED|ECONNRESET|EPIPE/i.test(text)) {
    count('CONNECTION')
  } else if (entry.level === logLevel.ERROR) {
    count(`OTHER: ${text.slice(0, 120)}`)
  }
}

const kafka = new Kafka({
  clientId: 'kafkapy-cluster-kafkajs',
  brokers: bootstrap.split(','),
  logLevel: logLevel.WARN,
  logCreator: () => (entry) => classify(entry)
})

let stopping = false
process.stdin.on('end', () => { stopping = true })
process.stdin.resume()

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  out({ connected: true })
  const seq = new Array(KEYS).fill(0)
  const keysOf = [...Array(PARTITIONS).keys()].map((p) => [...Array(KEYS).keys()].filter((k) => k % PARTITIONS === p))
  const cursor = new Array(PARTITIONS).fill(0)
  let turn = 0
  const started = Date.now()
  let sent = 0
  while (!stopping) {
    const ahead = sent - ((Date.now() - started) / 1000) * RATE
    if (ahead > 0) { await sleep(Math.min(50, (ahead / RATE) * 1000)); continue }
    // One partition per send(): with several, kafkajs 2.2.4 mishandles a retry after one
    // broker's request failed (its answers are kept per broker, not per partition): it drops
    // messages (tulios/kafkajs#1303), re-sends acknowledged ones under a new sequence
    // (#1798), or reuses a sequence for other messages (OUT_OF_ORDER_SEQUENCE_NUMBER).
    const p = turn++ % PARTITIONS
    const messages = []
    for (let j = 0; j < BATCH; j++, sent++) {
      const k = keysOf[p][cursor[p]++ % keysOf[p].length]
      messages.push({ key: `k${k}`, value: `k${k}:${seq[k]++}`, partition: p })
    }
    try {
      const result = await producer.send({ topic, acks: -1, messages })
      const base = {}
      const twice = new Set()
      for (const r of result) {
        if (r.partition in base) twice.add(r.partition)
        else base[r.partition] = Number(r.baseOffset)
      }
      // Two answers for one partition: a retry re-sent a partition that had already been
      // acknowledged (its new leader had not answered yet), under the next sequence number,
      // so the broker stores it twice (tulios/kafkajs#1798).
      if (twice.size) out({ twice: messages.filter((m) => twice.has(m.partition)).map((m) => m.value) })
      const next = {}
      const answered = messages.filter((m) => m.partition in base)
      out({
        acked: answered.map((m) => {
          const off = base[m.partition] + (next[m.partition] || 0)
          next[m.partition] = (next[m.partition] || 0) + 1
          return [m.value, m.partition, off]
        })
      })
      // kafkajs 2.2.4 can resolve send() without a Produce response for a partition: when a
      // retry finds the partition's new leader among the brokers that already answered, it
      // is not sent again (tulios/kafkajs#1303). No broker acknowledged these.
      const unanswered = messages.filter((m) => !(m.partition in base))
      if (unanswered.length) out({ unanswered: unanswered.map((m) => [m.value, m.partition]) })
    } catch (e) {
      out({ failed: `${e.name}: ${e.message}`, values: messages.map((m) => m.value) })
    }
  }
  await producer.disconnect()
  out({ errors: seen })
}

main().catch((e) => { out({ fatal: `${e.name}: ${e.message}` }); process.exit(1) })
