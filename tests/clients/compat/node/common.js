'use strict'
// What the three Node clients of the compatibility suite share: the driver command line of
// the suite's contract (tests/clients/compat/README or test_compat.py), the workload message
// of tests/clients/node/workload.js (mirror of workload.py) stretched to --value-size, and
// the output files. Outputs that a test watches while the driver runs (delivery reports,
// group records) are written synchronously, line by line.
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const NODE_DIR = path.resolve(__dirname, '..', '..', 'node')
const wl = require(path.join(NODE_DIR, 'workload.js'))

// The client packages live in tests/clients/node/node_modules; resolve them from there so the
// driver runs with or without NODE_PATH.
const clientRequire = createRequire(path.join(NODE_DIR, 'package.json'))

const CLIENTS = ['kafkajs', 'node-rdkafka', 'kafka-node']
const SCENARIOS = ['admin', 'produce', 'consume', 'group']
const NUMERIC = new Set(['count', 'valueSize', 'baseTs', 'max', 'timeout'])
// Values at least this long are written as length + sha256 (the 900 KB case stays small on disk).
const BIG_VALUE = 4096

function parseArgs (argv = process.argv.slice(2)) {
  const args = {
    client: null, scenario: null, bootstrap: null, topic: null, codec: 'none', count: 2000,
    valueSize: null, baseTs: null, group: null, max: null, src: null, out: null,
    produced: null, timeout: 120
  }
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) wl.fail(`unexpected argument ${argv[i]}`)
    const name = argv[i].slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const value = argv[i + 1]
    if (!(name in args)) wl.fail(`unknown option ${argv[i]}`)
    if (value === undefined) wl.fail(`missing value for ${argv[i]}`)
    args[name] = NUMERIC.has(name) ? Number(value) : value
    if (NUMERIC.has(name) && !Number.isFinite(args[name])) wl.fail(`${argv[i]} needs a number, got ${value}`)
  }
  for (const req of ['client', 'scenario', 'bootstrap', 'topic']) if (!args[req]) wl.fail(`--${req} is required`)
  if (!CLIENTS.includes(args.client)) wl.fail(`unknown client ${args.client} (one of ${CLIENTS.join(', ')})`)
  if (!SCENARIOS.includes(args.scenario)) wl.fail(`unknown scenario ${args.scenario} (one of ${SCENARIOS.join(', ')})`)
  if (!wl.CODECS.includes(args.codec)) wl.fail(`unknown codec ${args.codec}`)
  if (['admin', 'consume', 'group'].includes(args.scenario) && !args.out) wl.fail(`--out is required for ${args.scenario}`)
  if (args.scenario === 'group' && !args.group) wl.fail('--group is required for group')
  if (args.baseTs === null) args.baseTs = Date.now()
  if (args.src === null) args.src = `${args.client}/${args.codec}`
  args.deadline = Date.now() + args.timeout * 1000
  return args
}

/** Message i of the workload; with --value-size its value is "{i}:" + filler cut to exactly
 * that many bytes (the filler is ASCII, so bytes = characters). */
function message (args, i) {
  const m = wl.message(i, args.src, args.baseTs)
  if (args.valueSize !== null) m.value = paddedValue(i, args.valueSize)
  return m
}

function paddedValue (i, size) {
  const prefix = `${i}:`
  if (prefix.length >= size) return prefix.slice(0, size)
  const reps = Math.ceil((size - prefix.length) / wl.FILLER.length)
  return (prefix + wl.FILLER.repeat(reps)).slice(0, size)
}

function toBuffer (b) {
  if (b === null || b === undefined) return null
  return Buffer.isBuffer(b) ? b : Buffer.from(String(b))
}

/** One consumed record as a JSON line (workload.py's format); big values as length + sha256. */
function recordLine (partition, offset, key, value, headers, timestamp) {
  const v = toBuffer(value)
  if (v === null || v.length < BIG_VALUE) return wl.recordLine(partition, offset, key, value, headers, timestamp)
  const k = toBuffer(key)
  return JSON.stringify({
    partition,
    offset: Number(offset),
    key: k === null ? null : k.toString('utf8'),
    value_len: v.length,
    value_sha256: crypto.createHash('sha256').update(v).digest('hex'),
    headers: headers.map(([hk, hv]) => [String(hk), toBuffer(hv).toString('utf8')]),
    timestamp: Number(timestamp)
  }) + '\n'
}

/** A file written line by line with writeSync: a line is on disk when write() returns
 * (group records before their commit; delivery reports the test watches during failover). */
function syncWriter (file, flags = 'w') {
  if (!file) return { write () {}, close () {} }
  const fd = fs.openSync(file, flags)
  return {
    write: (line) => fs.writeSync(fd, line),
    close: () => fs.closeSync(fd)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll `check` (async, returns a truthy value when done) until the driver's deadline. */
async function waitFor (args, what, check, intervalMs = 200) {
  let last
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() + intervalMs > args.deadline) wl.fail(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`)
    await sleep(intervalMs)
  }
}

/** Promise of a node-style callback call. */
function call (fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))))
}

/** "p:offset p:offset ..." of a partition -> offset map, for logs. */
function positions (map) {
  return [...map].map(([p, o]) => `${p}:${o}`).join(' ')
}

function unsupported (op, reason) {
  process.stderr.write(`UNSUPPORTED ${op}: ${reason}\n`)
}

/** The admin scenario's --out object. */
function adminResult (created, partitions, deleted, configs) {
  const out = { created, partitions: {}, deleted }
  for (const p of [...partitions].sort((a, b) => a.partition - b.partition)) {
    out.partitions[String(p.partition)] = { leader: p.leader, replicas: p.replicas, isr: p.isr }
  }
  if (configs) out.configs = configs
  return out
}

/** True when metadata shows `wl.PARTITIONS` partitions, each with 3 replicas and a leader. */
function fullyReplicated (partitions, replicas = 3) {
  return partitions.length === wl.PARTITIONS &&
    partitions.every((p) => p.leader >= 0 && p.replicas.length === replicas)
}

module.exports = {
  wl, clientRequire, parseArgs, message, paddedValue, recordLine, syncWriter, sleep, waitFor,
  call, unsupported, adminResult, fullyReplicated, positions, BIG_VALUE
}
