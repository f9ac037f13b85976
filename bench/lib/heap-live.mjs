#!/usr/bin/env node
// Live heap of each benchmark client after its warm-up and a forced full collection: the
// gRPC unary clients (grpc-unary-client.mjs: direct, grpc-js-xds, meshlet) against
// grpc-serve-unary.mjs, and the HTTP clients (http-client.mjs: raw, mesh) against
// serve-http.mjs. Each client runs standalone under heap-hook.mjs, `--repeat` times; the
// figure is the median heapUsed. A major collection marks what is live, so this is what
// every major GC of a long-running process has to walk.
//   node bench/lib/heap-live.mjs [--grpc direct,grpc-js-xds,meshlet] [--http raw,mesh]
//                                [--calls 5000] [--repeat 3] [--snapshots <dir>] [--settle <ms>]
// --settle: each gRPC client waits that long, idle, after its calls and before the collections
// (MESHLET_HEAP_SETTLE_MS, read by grpc-unary-client.mjs), as a long-running process sits
// between xDS updates: meshlet lets its protobuf reflection go after 10 s without one.
// With --snapshots, the last run of each kind also writes <dir>/<set>-<kind>.heapsnapshot,
// for bench/lib/heap-breakdown.mjs.
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from './start-server.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values } = parseArgs({
  options: {
    grpc: { type: 'string', default: 'direct,grpc-js-xds,meshlet' },
    http: { type: 'string', default: 'raw,mesh' },
    calls: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '3' },
    snapshots: { type: 'string' },
    settle: { type: 'string', default: '0' },
  },
});
const calls = Number(values.calls);
const SETS = [
  { name: 'grpc', server: 'grpc-serve-unary.mjs', client: 'grpc-unary-client.mjs', kinds: values.grpc ? values.grpc.split(',') : [] },
  { name: 'http', server: 'serve-http.mjs', client: 'http-client.mjs', kinds: values.http ? values.http.split(',') : [] },
];

function measure(client, kind, served, snapshot) {
  const args = ['--expose-gc', '--import', join(here, 'heap-hook.mjs'), join(here, client), kind, JSON.stringify(served), `${calls},${calls}`];
  const env = { ...process.env, MESHLET_HEAP_SETTLE_MS: values.settle, ...(snapshot ? { MESHLET_HEAP_SNAPSHOT: snapshot } : {}) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      const line = err.split('\n').find((l) => l.startsWith('heap-live '));
      if (code !== 0 || !line) reject(new Error(`${client} ${kind} exited with ${code}: ${err}`));
      else resolve(JSON.parse(line.slice('heap-live '.length)));
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 2 ** 20).toFixed(2).padStart(6);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`live heap after ${calls} warm-up + ${calls} calls${Number(values.settle) > 0 ? `, ${values.settle} ms idle` : ''} and full GCs, median of ${values.repeat} runs (MiB):`);
for (const set of SETS) {
  if (set.kinds.length === 0) continue;
  const { child: server, served } = await startServer([join(here, set.server)]);
  try {
    for (const kind of set.kinds) {
      const runs = [];
      for (let i = 0; i < Number(values.repeat); i++) {
        const last = i === Number(values.repeat) - 1;
        const snapshot = last && values.snapshots ? join(values.snapshots, `${set.name}-${kind}.heapsnapshot`) : undefined;
        runs.push(await measure(set.client, kind, served, snapshot));
      }
      console.log(`  ${set.name.padEnd(4)} ${kind.padEnd(12)} heapUsed ${mb(median(runs.map((r) => r.heapUsed)))}   (runs: ${runs.map((r) => mb(r.heapUsed).trim()).join(' ')})`);
    }
  } finally {
    server.kill('SIGTERM');
  }
}
