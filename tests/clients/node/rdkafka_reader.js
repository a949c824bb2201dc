'use strict'
// Read-only node-rdkafka run for tests/clients/test_mixed_clients.py: assign every partition
// of an existing topic from its low watermark and write each record up to the high watermark
// as a JSON line (workload.recordLine). rdkafka_driver.js always produces first.
// Usage: node rdkafka_reader.js --bootstrap H:P --topic T --out F [--timeout S]
const Kafka = require('node-rdkafka')
const wl = require('./workload')

function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))))
}

async function main () {
  const args = wl.parseArgs('node-rdkafka')
  const consumer = new Kafka.KafkaConsumer({
    'client.id': 'kp-reader-rdkafka',
    'metadata.broker.list': args.bootstrap,
    'group.id': `${args.topic}-rdkafka-reader`,
    'enable.auto.commit': false
  }, { 'auto.offset.reset': 'earliest' })
  await call((cb) => consumer.connect({ timeout: 30000 }, cb))
  const ends = new Map()
  const assignment = []
  for (let p = 0; p < wl.PARTITIONS; p++) {
    const { lowOffset, highOffset } = await call((cb) => consumer.queryWatermarkOffsets(args.topic, p, 10000, cb))
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
    for (const m of await call((cb) => consumer.consume(1000, cb))) {
      const headers = (m.headers || []).map((h) => Object.entries(h)[0])
      out.write(wl.recordLine(m.partition, m.offset, m.key, m.value, headers, m.timestamp))
      got++
      if (m.offset + 1 >= ends.get(m.partition)) done.set(m.partition, true)
    }
  }
  out.close()
  await new Promise((resolve) => consumer.disconnect(resolve))
  wl.log(`read ${got} (end offsets ${[...ends].map(([p, o]) => `${p}:${o}`).join(' ')})`)
}

main().then(() => process.exit(0), (err) => wl.fail(err && err.stack ? err.stack : String(err)))
