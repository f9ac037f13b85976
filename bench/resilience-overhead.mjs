#!/usr/bin/env node
// Benchmark: what a full resilience policy costs when nothing fails. Two targets served
// by the same backend: plain.mesh.test (route → cluster, timeout off) and policy.mesh.test
// (the same with a retry policy, per-try and overall timeouts, circuit breakers and outlier
// detection). undici.request through MeshAgent, concurrency 32, rounds alternating; the
// figure is the median of the per-round ratios, and client CPU per request.
//   node bench/resilience-overhead.mjs [--requests 20000] [--rounds 9]
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { createMesh, MeshAgent } from '@meshlet/http';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '9' } } });
const N = Number(values.requests);
const ROUNDS = Number(values.rounds);
const C = 32;

const child = spawn(process.execPath, [join(here, 'lib/serve-policies.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const { address } = await new Promise((resolve) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
  });
});
const mesh = createMesh({ bootstrap: { xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }], node: { id: 'bench' } } });
const agent = new MeshAgent({ mesh });
const clients = {
  plain: async () => (await request('http://plain.mesh.test/x', { dispatcher: agent })).body.arrayBuffer(),
  policy: async () => (await request('http://policy.mesh.test/x', { dispatcher: agent })).body.arrayBuffer(),
};
const cpu = { plain: [], policy: [] };
async function run(name, n) {
  let next = 0;
  const fn = clients[name];
  const start = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: C }, async () => { while (next++ < n) await fn(); }));
  const used = process.cpuUsage(c0);
  cpu[name].push((used.user + used.system) / n);
  return n / ((performance.now() - start) / 1000);
}
await run('plain', 3000);
await run('policy', 3000);
cpu.plain.length = 0;
cpu.policy.length = 0;
const ratios = [];
const rps = { plain: [], policy: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? ['plain', 'policy'] : ['policy', 'plain'];
  const got = {};
  for (const name of order) got[name] = await run(name, N);
  rps.plain.push(got.plain);
  rps.policy.push(got.policy);
  ratios.push(got.policy / got.plain);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${N} requests per round, concurrency ${C}, ${ROUNDS} rounds`);
for (const name of ['plain', 'policy']) console.log(`  ${name.padEnd(7)} ${Math.round(median(rps[name]))} req/s   ${median(cpu[name]).toFixed(1)} µs client CPU per request`);
console.log(`policy / plain throughput, per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`);
// Client CPU per request, paired within each round (the machine's speed drifts between rounds
// more than the two targets differ): the median of the per-round ratios.
const cpuRatios = cpu.plain.map((p, i) => cpu.policy[i] / p);
console.log(`policy / plain client CPU per request, per round: ${cpuRatios.map((x) => x.toFixed(3)).join(' ')}; median ${median(cpuRatios).toFixed(3)}`);
console.log(`client CPU overhead of the policy: ${(100 * (median(cpuRatios) - 1)).toFixed(1)} % (median of per-round ratios)`);
await agent.close();
mesh.close();
child.kill('SIGTERM');
process.exit(0);
