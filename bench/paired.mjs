#!/usr/bin/env node
// Benchmark: two HTTP client kinds (bench/lib/http-client.mjs), each in its own process, run
// at the same time against the same backend for a fixed span per round, and compared by the
// requests each completed. The other benchmarks run clients one after the other, so a change
// in the machine's load between two clients' turns lands on one of them (±30 % per round
// here); run together, both see the same load. With both clients busy, the scheduler gives
// them about equal CPU time, so the ratio measures their CPU per request.
//   node bench/paired.mjs --kinds mesh,raw [--server http|policies] [--rounds 11] [--ms 3000] [--concurrency 32]
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launch, startServer } from './lib/start-server.mjs';

const { values } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'mesh,raw' },
    server: { type: 'string', default: 'http' },
    rounds: { type: 'string', default: '11' },
    ms: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
  },
});
const kinds = values.kinds.split(',');
if (kinds.length !== 2) throw new Error(`--kinds takes two kinds, got "${values.kinds}"`);
const SERVERS = { http: './lib/serve-http.mjs', policies: './lib/serve-policies.mjs' };
if (!SERVERS[values.server]) throw new Error(`--server must be one of ${Object.keys(SERVERS).join(', ')}`);
const [rounds, ms, concurrency] = [values.rounds, values.ms, values.concurrency].map(Number);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { child: srv, served } = await startServer([here(SERVERS[values.server])]);
const children = [];
for (const kind of kinds) {
  const c = launch(undefined, [here('./lib/http-client.mjs'), kind, JSON.stringify(served)], ['ignore', 'inherit', 'inherit', 'ipc']);
  await new Promise((resolve) => c.once('message', resolve)); // warmed up
  children.push(c);
}
const ask = (c) =>
  new Promise((resolve) => {
    c.once('message', resolve);
    c.send({ ms, concurrency });
  });
const ratios = [];
const cpuRatios = [];
const each = [[], []];
for (let r = 0; r < rounds; r++) {
  const [a, b] = await Promise.all(children.map(ask));
  each[0].push(a);
  each[1].push(b);
  ratios.push(a.rps / b.rps);
  cpuRatios.push(a.cpuPerRequest / b.cpuPerRequest);
}
for (const c of children) c.send({ exit: true });
srv.kill('SIGTERM');

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${kinds[0]} and ${kinds[1]} at the same time, ${ms} ms per round, concurrency ${concurrency} each, ${rounds} rounds`);
kinds.forEach((k, i) => {
  console.log(`  ${k.padEnd(24)} ${Math.round(median(each[i].map((x) => x.rps))).toString().padStart(6)} req/s   ${median(each[i].map((x) => x.cpuPerRequest)).toFixed(1)} µs client CPU per request (user ${median(each[i].map((x) => x.userPerRequest)).toFixed(1)}, system ${median(each[i].map((x) => x.systemPerRequest)).toFixed(1)})`);
});
console.log(`${kinds[0]} / ${kinds[1]}: throughput ${median(ratios).toFixed(3)} (per round ${ratios.map((x) => x.toFixed(3)).join(' ')}); client CPU per request ${median(cpuRatios).toFixed(3)}`);
process.exit(0);
