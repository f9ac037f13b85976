#!/usr/bin/env node
// Benchmark: two client kinds, each in its own process, run at the same time against the same
// backend for a fixed span per round, and compared by the requests each completed and the
// client CPU each spent per request. The other benchmarks run clients one after the other, so
// a change in the machine's load between two clients' turns lands on one of them (±30 % per
// round here); run together, both see the same load. The throughput ratio is biased towards 1
// (the clients wait for the shared backend, so the one needing more CPU takes some from the
// other instead of going slower by its whole difference): read the CPU-per-request ratio.
//   HTTP (bench/lib/http-client.mjs kinds; backend serve-http.mjs or serve-policies.mjs):
//     node bench/paired.mjs --kinds mesh,raw [--server http|policies]
//   gRPC unary (bench/lib/grpc-unary-client.mjs kinds direct, grpc-js-xds, meshlet; the three
//   backends and control plane of grpc-serve-unary.mjs):
//     node bench/paired.mjs --protocol grpc --kinds meshlet,direct
//   both: [--rounds 11] [--ms 3000] [--concurrency 32] [--pin server|split] [--both-orders]
//         ["--client-args=<node flags for both clients, e.g. --cpu-prof --cpu-prof-dir=/tmp/p>"]
//   --both-orders: run the pair, then again with the kinds swapped, and report the mean of the
//   two (A/B from the first run, the inverse of B/A from the second). The client launched and
//   warmed up first reads 3 – 6 % dearer on this machine, whichever it is (BENCHMARKS.md), so a
//   figure from one order is biased; the mean of both is not.
//   A kind written `kind@<dir>` runs that kind from the bench/ directory <dir> of another
//   checkout (built), against this one's backend: two commits side by side, e.g.
//     node bench/paired.mjs --kinds mesh,mesh@/work/old/bench
// Pinning (Linux taskset), for a 2-CPU machine:
//   --pin server: the backend alone on CPU 0, both clients on CPU 1. The clients then compete
//     for one core, which the scheduler shares between them evenly, so each one's throughput
//     follows its own CPU per request (the ratio loses most of its bias towards 1), and the
//     A/A CPU ratio stays closer to 1 than unpinned. The better form for gRPC (BENCHMARKS.md).
//   --pin split: the first client on CPU 0, the second on CPU 1, the backend unpinned. Worse
//     than none: wherever the backend runs, it takes that core from one client only.
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launch, startServer } from './lib/start-server.mjs';

const { values } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'http' },
    kinds: { type: 'string' },
    server: { type: 'string' },
    rounds: { type: 'string', default: '11' },
    ms: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
    pin: { type: 'string' },
    'client-args': { type: 'string' },
    'both-orders': { type: 'boolean', default: false },
  },
});
const PROTOCOLS = {
  http: { kinds: 'mesh,raw', client: './lib/http-client.mjs', servers: { http: './lib/serve-http.mjs', policies: './lib/serve-policies.mjs' } },
  grpc: { kinds: 'meshlet,direct', client: './lib/grpc-unary-client.mjs', servers: { unary: './lib/grpc-serve-unary.mjs' } },
};
const protocol = PROTOCOLS[values.protocol];
if (!protocol) throw new Error(`--protocol must be one of ${Object.keys(PROTOCOLS).join(', ')}`);
const kinds = (values.kinds ?? protocol.kinds).split(',');
if (kinds.length !== 2) throw new Error(`--kinds takes two kinds, got "${values.kinds}"`);
if (values['both-orders']) {
  // This script twice, the second time with the kinds swapped.
  const passOn = [];
  for (const [k, v] of Object.entries(values)) {
    if (k === 'both-orders' || k === 'kinds' || v === undefined) continue;
    passOn.push(`--${k}=${v}`);
  }
  const ratios = [];
  for (const order of [kinds, [...kinds].reverse()]) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...passOn, `--kinds=${order.join(',')}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(r.stdout);
    if (r.status !== 0) process.exit(r.status ?? 1);
    const read = (what) => Number(new RegExp(`${what} ([\\d.]+)`).exec(r.stdout)?.[1]);
    ratios.push({ throughput: read(': throughput'), cpu: read(': client CPU per request') });
  }
  const [a, b] = ratios;
  const mean = (x, y) => ((x + 1 / y) / 2).toFixed(3);
  console.log(`${kinds[0]} / ${kinds[1]}, both orders: throughput ${mean(a.throughput, b.throughput)} (${a.throughput.toFixed(3)}; 1 / ${b.throughput.toFixed(3)}), client CPU per request ${mean(a.cpu, b.cpu)} (${a.cpu.toFixed(3)}; 1 / ${b.cpu.toFixed(3)})`);
  process.exit(0);
}
// The first backend listed is the protocol's default.
const server = protocol.servers[values.server ?? Object.keys(protocol.servers)[0]];
if (!server) throw new Error(`--server (${values.protocol}) must be one of ${Object.keys(protocol.servers).join(', ')}`);
// CPUs for [backend, first client, second client]; undefined leaves one to the scheduler.
const PINS = { split: [undefined, 0, 1], server: [0, 1, 1] };
const pins = values.pin === undefined ? [] : PINS[values.pin];
if (!pins) throw new Error(`--pin must be one of ${Object.keys(PINS).join(', ')}`);
const [rounds, ms, concurrency] = [values.rounds, values.ms, values.concurrency].map(Number);
const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { child: srv, served } = await startServer([here(server)], { pinCpu: pins[0] });
const children = [];
for (const [i, kind] of kinds.entries()) {
  const at = kind.indexOf('@');
  const script = at < 0 ? here(protocol.client) : join(kind.slice(at + 1), protocol.client);
  const nodeArgs = values['client-args'] ? values['client-args'].split(' ').filter(Boolean) : [];
  const c = launch(pins[i + 1], [...nodeArgs, script, at < 0 ? kind : kind.slice(0, at), JSON.stringify(served)], ['ignore', 'inherit', 'inherit', 'ipc']);
  c.on('exit', (code) => {
    console.error(`${kind} client exited with ${code}`);
    srv.kill('SIGTERM');
    process.exit(1);
  });
  // Warmed up one at a time, so no warm-up competes with another for the cores.
  await new Promise((resolve) => c.once('message', resolve));
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
let errors = 0;
for (let r = 0; r < rounds; r++) {
  // Odd rounds ask the second client first (its calls then start a moment before the first's).
  const [a, b] = r % 2 ? (await Promise.all([ask(children[1]), ask(children[0])])).reverse() : await Promise.all(children.map(ask));
  each[0].push(a);
  each[1].push(b);
  ratios.push(a.rps / b.rps);
  cpuRatios.push(a.cpuPerRequest / b.cpuPerRequest);
  errors += (a.errors ?? 0) + (b.errors ?? 0);
}
for (const c of children) {
  c.removeAllListeners('exit');
  c.send({ exit: true });
}
srv.kill('SIGTERM');

const pinned = values.pin === 'split' ? '; clients pinned to CPU 0 and CPU 1, backend unpinned' : values.pin === 'server' ? '; backend pinned to CPU 0, both clients to CPU 1' : '';
const fmt = (xs) => xs.map((x) => x.toFixed(3)).join(' ');
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${values.protocol}: ${kinds[0]} and ${kinds[1]} at the same time, ${ms} ms per round, concurrency ${concurrency} each, ${rounds} rounds${pinned}`);
kinds.forEach((k, i) => {
  console.log(`  ${k.padEnd(24)} ${Math.round(median(each[i].map((x) => x.rps))).toString().padStart(6)} req/s   ${median(each[i].map((x) => x.cpuPerRequest)).toFixed(1)} µs client CPU per request (user ${median(each[i].map((x) => x.userPerRequest)).toFixed(1)}, system ${median(each[i].map((x) => x.systemPerRequest)).toFixed(1)})`);
});
console.log(`${kinds[0]} / ${kinds[1]}: throughput ${median(ratios).toFixed(3)} (per round ${fmt(ratios)})`);
console.log(`${kinds[0]} / ${kinds[1]}: client CPU per request ${median(cpuRatios).toFixed(3)} (per round ${fmt(cpuRatios)})`);
if (errors) console.log(`failed calls: ${errors}`);
process.exit(errors ? 1 : 0);
