#!/usr/bin/env node
// Benchmark: the HTTP request path. One local HTTP server (in a child process, with the
// control plane), concurrency 32, the same run:
//   raw undici.request (plain Agent)  vs  undici.request through MeshAgent
//   global fetch                       vs  meshFetch
// Rounds alternate the clients; each pair (MeshAgent vs Agent, meshFetch vs fetch) is
// compared within the same round, and the figure is the median of the per-round ratios
// (the machine's speed drifts between rounds more than the clients differ).
//   node bench/http-path.mjs [--requests 20000] [--concurrency 32] [--rounds 5]
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { createMesh, createMeshFetch } from '@meshlet/http';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { requests: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '32' }, rounds: { type: 'string', default: '5' } },
});
const N = Number(values.requests);
const C = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

const child = spawn(process.execPath, [join(here, 'lib/serve-http.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const { address, port } = await new Promise((resolve) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
  });
});

const raw = new Agent({ keepAliveTimeout: 60_000 });
const mesh = createMesh({ bootstrap: { xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }], node: { id: 'bench' } } });
const meshFetch = createMeshFetch({ mesh });
const RAW_URL = `http://127.0.0.1:${port}/bench`;
const MESH_URL = 'http://bench.mesh.test/bench';

const clients = {
  'undici.request (Agent)': async () => {
    const res = await request(RAW_URL, { dispatcher: raw });
    await res.body.arrayBuffer();
  },
  'undici.request (MeshAgent)': async () => {
    const res = await request(MESH_URL, { dispatcher: meshFetch.agent });
    await res.body.arrayBuffer();
  },
  'global fetch': async () => {
    const res = await fetch(RAW_URL);
    await res.arrayBuffer();
  },
  meshFetch: async () => {
    const res = await meshFetch(MESH_URL);
    await res.arrayBuffer();
  },
};

const cpu = {};
async function run(fn, n, name) {
  let next = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next++ < n) await fn();
    }),
  );
  const used = process.cpuUsage(cpuStart);
  if (name) (cpu[name] ??= []).push((used.user + used.system) / n);
  return n / ((performance.now() - start) / 1000);
}

// Warm up every client (connections, JIT, the mesh's first resolution).
for (const fn of Object.values(clients)) await run(fn, 2000);
const results = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
// Odd rounds run the clients in reverse order, so drift within a round cancels out.
const entries = Object.entries(clients);
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of r % 2 === 0 ? entries : [...entries].reverse()) results[name].push(await run(fn, N, name));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${N} requests per round, concurrency ${C}, ${ROUNDS} rounds, median req/s:`);
// Client CPU per request is steadier than throughput (the server shares the two cores).
for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(28)} ${String(Math.round(v)).padStart(6)} req/s   ${median(cpu[k]).toFixed(1)} µs client CPU per request`);
const ratios = (a, b) => results[a].map((v, i) => v / results[b][i]);
const fmt = (xs) => xs.map((x) => x.toFixed(3)).join(' ');
const agentRatios = ratios('undici.request (MeshAgent)', 'undici.request (Agent)');
const fetchRatios = ratios('meshFetch', 'global fetch');
console.log(`MeshAgent / raw undici, per round: ${fmt(agentRatios)}; median ${median(agentRatios).toFixed(3)}`);
console.log(`meshFetch / global fetch, per round: ${fmt(fetchRatios)}; median ${median(fetchRatios).toFixed(3)}`);
// Client CPU per request, paired within each round: the steadier figure on a shared machine.
const cpuRatios = (a, b) => cpu[a].map((v, i) => v / cpu[b][i]);
const agentCpu = cpuRatios('undici.request (MeshAgent)', 'undici.request (Agent)');
const fetchCpu = cpuRatios('meshFetch', 'global fetch');
console.log(`client CPU per request, MeshAgent / raw undici, per round: ${fmt(agentCpu)}; median ${median(agentCpu).toFixed(3)}`);
console.log(`client CPU per request, meshFetch / global fetch, per round: ${fmt(fetchCpu)}; median ${median(fetchCpu).toFixed(3)}`);
await meshFetch.agent.close();
mesh.close();
await raw.close();
child.kill('SIGTERM');
process.exit(0);
