#!/usr/bin/env node
// Benchmark: a gRPC client on a large route table. One Listener → one RouteConfiguration
// with one virtual host of N routes, each to its own EDS cluster of 10 endpoints (the
// scenario of bench/xds-ingest.mjs, bench/lib/scale-config.mjs: loopback addresses, only
// the catch-all route's cluster has a real backend), served by @meshlet/control-plane in
// another process. The client process starts, loads and registers its xDS library,
// creates a channel to xds:///scale.meshlet.test:8080 and sends one RPC (wait for
// ready); the figures are the time to that RPC's success and the RSS then.
//   node bench/grpc-scale.mjs [--runs 3] [--10k] [--reference]
//     --runs N     meshlet runs per scale (the median is reported; 0: none)
//     --10k        also 10,000 routes (meshlet)
//     --reference  also @grpc/grpc-js-xds at 1,000 routes, once (about two minutes: it
//                  connects to every endpoint of every cluster before its first RPC)
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    '10k': { type: 'boolean', default: false },
    reference: { type: 'boolean', default: false },
  },
});

function child(args) {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLine = new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    proc.on('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before reporting`)));
  });
  return { proc, firstLine };
}

async function scenario(routes, kind) {
  const server = child([join(here, 'lib/serve-scale.mjs'), String(routes), '10']);
  const { address } = await server.firstLine;
  try {
    return await child([join(here, 'lib/grpc-first-rpc.mjs'), kind, address]).firstLine;
  } finally {
    server.proc.kill('SIGTERM');
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runs = Number(values.runs);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
for (const routes of values['10k'] ? [1000, 10000] : [1000]) {
  const rs = [];
  for (let i = 0; i < runs; i++) {
    const r = await scenario(routes, 'meshlet');
    console.log(`@meshlet/grpc ${routes} routes × 10 endpoints: ${r.ms} ms to first RPC (${r.clientMs} ms from new Client), RSS ${r.rssMB} MB`);
    rs.push(r);
  }
  if (rs.length === 0) continue; // --runs 0: the reference alone
  const range = (k) => `${Math.min(...rs.map((r) => r[k]))} – ${Math.max(...rs.map((r) => r[k]))}`;
  console.log(`@meshlet/grpc ${routes} routes, median of ${runs}: ${median(rs.map((r) => r.ms))} ms (${range('ms')}), RSS ${median(rs.map((r) => r.rssMB))} MB (${range('rssMB')})`);
}
if (values.reference) {
  const r = await scenario(1000, 'grpc-js-xds');
  console.log(`@grpc/grpc-js-xds 1000 routes × 10 endpoints: ${r.ms} ms to first RPC (${r.clientMs} ms from new Client), RSS ${r.rssMB} MB`);
}
process.exit(0);
