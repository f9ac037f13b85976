#!/usr/bin/env node
// Benchmark: ingest of one route table naming N clusters of 10 endpoints each, from
// @meshlet/control-plane over loopback; time from subscription to the whole chain
// resolved, and the client process's RSS. Same run: @grpc/grpc-js-xds on 1,000
// clusters as the reference (time to its first RPC).
//   node bench/xds-ingest.mjs [--clusters 10000] [--reference-clusters 1000] [--runs 3]
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '10000' },
    'reference-clusters': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '3' },
    'skip-reference': { type: 'boolean', default: false },
  },
});

function child(script, args) {
  const proc = spawn(process.execPath, [join(here, 'lib', script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLine = new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    proc.on('exit', (code) => reject(new Error(`${script} exited with ${code} before reporting`)));
  });
  return { proc, firstLine };
}

async function scenario(n, clientScript) {
  const server = child('serve-scale.mjs', [String(n), '10']);
  const { address } = await server.firstLine;
  try {
    const c = child(clientScript, [address]);
    return await c.firstLine;
  } finally {
    server.proc.kill('SIGTERM');
  }
}

const runs = Number(values.runs);
const n = Number(values.clusters);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
const meshlet = [];
for (let i = 0; i < runs; i++) {
  const r = await scenario(n, 'meshlet-ingest.mjs');
  console.log(`meshlet ${n} clusters × 10 endpoints: ${r.ms} ms to resolved, RSS ${r.rssMB} MB (${r.clusters} clusters, ${r.endpoints} endpoints)`);
  meshlet.push(r);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`meshlet median: ${median(meshlet.map((r) => r.ms))} ms, RSS ${median(meshlet.map((r) => r.rssMB))} MB`);
if (!values['skip-reference']) {
  const rn = Number(values['reference-clusters']);
  const r = await scenario(rn, 'grpcjsxds-ingest.mjs');
  console.log(`@grpc/grpc-js-xds ${rn} clusters × 10 endpoints: ${r.ms} ms to first RPC, RSS ${r.rssMB} MB`);
  const m = await scenario(rn, 'meshlet-ingest.mjs');
  console.log(`meshlet ${rn} clusters × 10 endpoints: ${m.ms} ms to resolved, RSS ${m.rssMB} MB`);
}
process.exit(0);
