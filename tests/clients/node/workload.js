'use strict'
// The workload every client driver runs: a mirror of tests/clients/workload.py (read its
// docstring for the message layout and output files). Keep the two in step.
const fs = require('fs')

const FILLER = 'lorem ipsum dolor sit amet, consectetur adipiscing elit '.repeat(2)
const NUM_KEYS = 97
const PARTITIONS = 3
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

function message (i, src, baseTs) {
  return {
    seq: i,
    key: `key-${i % NUM_KEYS}`,
    value: `${i}:${FILLER}`,
    headers: [['seq', String(i)], ['src', src]],
    timestamp: baseTs + i
  }
}

function parseArgs (client, argv = process.argv.slice(2)) {
  const args = { codec: 'none', count: 10000, baseTs: null, produced: null, timeout: 240 }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const value = argv[i + 1]
    if (value === undefined) fail(`missing value for ${argv[i]}`)
    args[name] = ['count', 'baseTs', 'timeout'].includes(name) ? Number(value) : value
  }
  for (const req of ['bootstrap', 'topic', 'out']) if (!args[req]) fail(`--${req} is required`)
  if (!CODECS.includes(args.codec)) fail(`unknown codec ${args.codec}`)
  if (args.baseTs === null) args.baseTs = Date.now()
  args.src = `${client}/${args.codec}`
  args.deadline = Date.now() + args.timeout * 1000
  return args
}

function text (b) {
  if (b === null || b === undefined) return null
  return Buffer.isBuffer(b) ? b.toString('utf8') : String(b)
}

function recordLine (partition, offset, key, value, headers, timestamp) {
  return JSON.stringify({
    partition,
    offset: Number(offset),
    key: text(key),
    value: text(value),
    headers: headers.map(([k, v]) => [text(k), text(v)]),
    timestamp: Number(timestamp)
  }) + '\n'
}

function deliveryLine (seq, partition, offset) {
  return JSON.stringify({ seq, partition, offset: Number(offset) }) + '\n'
}

function timeLeftMs (args) {
  const left = args.deadline - Date.now()
  if (left <= 0) fail('timed out')
  return left
}

function fail (msg) {
  process.stderr.write(`driver error: ${msg}\n`)
  process.exit(1)
}

function log (msg) {
  process.stderr.write(`[driver ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

// Buffered line writer that is flushed and closed before the process exits.
function lineWriter (path) {
  if (!path) return null
  const chunks = []
  return {
    write: (line) => chunks.push(line),
    close: () => fs.writeFileSync(path, chunks.join(''))
  }
}

module.exports = {
  FILLER, NUM_KEYS, PARTITIONS, CODECS, message, parseArgs, recordLine, deliveryLine,
  timeLeftMs, fail, log, lineWriter
}
