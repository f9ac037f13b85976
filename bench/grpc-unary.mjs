#!/usr/bin/env node
// Benchmark: unary gRPC calls at concurrency 32 against three local grpc-js backends
// (one child process, with the control plane: one Listener → one route → one EDS cluster
// of the three, ROUND_ROBIN), the same run, three clients:
//   direct       a plain grpc-js channel, `ipv4:` target of the three, round_robin
//   grpc-js-xds  @grpc/grpc-js-xds, xds:/// target, config from @meshlet/control-plane
//   meshlet      @meshlet/grpc, xds:/// target, the same config
// Each client lives in its own child process and is warmed up once. Rounds run the
// clients one after another (odd rounds in reverse order); ratios are taken within a
// round and the figure is the median of the per-round ratios (the machine's speed drifts
// between rounds more than the clients differ).
//   node bench/grpc-unary.mjs [--calls 20000] [--concurrency 32] [--rounds 5]
//                             [--clients direct,grpc-js-xds,meshlet]
import { fork } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from './lib/start-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    clients: { type: 'string', default: 'direct,grpc-js-xds,meshlet' },
  },
});
const N = Number(values.calls);
const C = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const kinds = values.clients.split(',');

const { child: server, served } = await startServer([join(here, 'lib/grpc-serve-unary.mjs')]);

// One long-lived child per client; a round sends it {n, concurrency} and waits for its figures.
const clients = {};
for (const kind of kinds) {
  const proc = fork(join(here, 'lib/grpc-unary-client.mjs'), [kind, JSON.stringify(served)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  let waiting;
  proc.on('message', (m) => (waiting ? (waiting(m), (waiting = undefined)) : replies.push(m)));
  proc.on('exit', (code) => {
    if (code !== 0) {
      console.error(`${kind} client exited with ${code}`);
      server.kill('SIGTERM');
      process.exit(1);
    }
  });
  const next = () => (replies.length ? Promise.resolve(replies.shift()) : new Promise((r) => (waiting = r)));
  clients[kind] = { proc, next };
}
// Children warm up one at a time, so no warm-up competes with another for the cores.
for (const kind of kinds) {
  const first = await clients[kind].next();
  if (!first.ready) throw new Error(`${kind}: ${JSON.stringify(first)}`);
}

const results = Object.fromEntries(kinds.map((k) => [k, []]));
const cpu = Object.fromEntries(kinds.map((k) => [k, []]));
let errors = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
    clients[kind].proc.send({ n: N, concurrency: C });
    const res = await clients[kind].next();
    results[kind].push(res.rps);
    cpu[kind].push(res.cpuPerRequest);
    errors += res.errors;
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${N} unary calls per round, concurrency ${C}, ${ROUNDS} rounds, 3 backends, median calls/s:`);
for (const kind of kinds) {
  const v = median(results[kind]);
  console.log(`  ${kind.padEnd(12)} ${String(Math.round(v)).padStart(6)} calls/s   ${median(cpu[kind]).toFixed(1)} µs client CPU per call`);
}
const fmt = (xs) => xs.map((x) => x.toFixed(3)).join(' ');
for (const [a, b] of [['meshlet', 'grpc-js-xds'], ['meshlet', 'direct'], ['grpc-js-xds', 'direct']]) {
  if (!results[a] || !results[b]) continue;
  const ratios = results[a].map((v, i) => v / results[b][i]);
  console.log(`${a} / ${b}, per round: ${fmt(ratios)}; median ${median(ratios).toFixed(3)}`);
}
if (errors) console.log(`failed calls: ${errors}`);
for (const { proc } of Object.values(clients)) {
  proc.removeAllListeners('exit');
  proc.send({ exit: true });
}
server.kill('SIGTERM');
process.exit(errors ? 1 : 0);
