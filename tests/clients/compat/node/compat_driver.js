'use strict'
// The Node side of the client compatibility suite (tests/clients/compat): one scenario of one
// client per run, with the command line every compat driver shares:
//   node compat_driver.js --client kafkajs|node-rdkafka|kafka-node
//     --scenario admin|produce|consume|group --bootstrap H:P[,H:P] --topic T
//     [--codec none|gzip|snappy|lz4|zstd] [--count N] [--value-size BYTES] [--base-ts MS]
//     [--group G] [--max N] [--src NAME] [--out FILE] [--produced FILE] [--timeout SECONDS]
// Exit 0 when the scenario did everything the client can; an operation the client lacks is
// named on stderr as "UNSUPPORTED <op>: <reason>"; exit 2 when the whole scenario (codec) is
// one the client lacks; any other failure exits 1 with "driver error: ..." on stderr.
const c = require('./common')

const MODULES = {
  kafkajs: './kafkajs_client',
  'node-rdkafka': './rdkafka_client',
  'kafka-node': './kafka_node_client'
}

async function main () {
  const args = c.parseArgs()
  const client = require(MODULES[args.client])
  const why = client.unsupportedCodec && client.unsupportedCodec(args.codec)
  if (why && args.scenario === 'produce') {
    c.unsupported(`codec ${args.codec}`, why)
    process.exit(2)
  }
  const result = await client[args.scenario](args)
  if (args.scenario === 'admin') require('fs').writeFileSync(args.out, JSON.stringify(result) + '\n')
}

main().then(() => process.exit(0), (err) => c.wl.fail(err && err.stack ? err.stack : String(err)))
