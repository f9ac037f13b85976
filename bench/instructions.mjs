#!/usr/bin/env node
// Benchmark: client instructions per request, counted by valgrind (cachegrind, no cache
// simulation). The throughput benchmarks (http-path, resilience-overhead,
// telemetry-client-overhead) measure what the goals name, but on a shared machine one client's
// throughput moves by ±30 % between rounds, more than the 3–5 % the goals allow; an
// instruction count does not depend on what else the machine runs.
//
// Each client kind (bench/lib/http-client.mjs) runs under valgrind twice against the same
// backend and control plane (running natively): warm-up + `small` requests, and warm-up +
// `large`; the difference divided by (large − small) is the client's instructions per request,
// with start-up, warm-up and JIT compilation cancelled out. V8 runs with --single-threaded, so
// compilation and garbage collection happen on the main thread in program order: with
// background threads, when optimized code lands varied from run to run by several percent of
// the count.
//   node bench/instructions.mjs [--set http|resilience|telemetry|grpc] [--kinds a,b] [--warm 10000]
//                               [--small 10000] [--large 40000] [--jobs 2] [--concurrency 32] [--repeat 1]
//                               [--functions 30]
// --functions N: also print, for each pair, the N functions (named native code: V8's builtins,
// runtime and garbage collector, Node, libc; JIT-compiled JavaScript is one "???" line) whose
// instructions per request differ most, from the first repeat. A kind may be `kind@<bench dir>`
// (the client script of another checkout, e.g. an older commit, to compare against).
// At --concurrency 1 each response is read in a turn of the event loop of its own, so the
// per-turn work is counted whole on every request and does not depend on how many responses
// the machine's load lets one turn read (at 32 it does: see BENCHMARKS.md).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from './lib/start-server.mjs';

const { values } = parseArgs({
  options: {
    set: { type: 'string', default: 'http' },
    kinds: { type: 'string' },
    warm: { type: 'string', default: '10000' },
    small: { type: 'string', default: '10000' },
    large: { type: 'string', default: '40000' },
    jobs: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '1' },
    functions: { type: 'string', default: '0' },
  },
});
const SETS = {
  http: { server: './lib/serve-http.mjs', kinds: ['raw', 'raw-host-sn', 'mesh'], pairs: [['mesh', 'raw'], ['mesh', 'raw-host-sn']] },
  resilience: { server: './lib/serve-policies.mjs', kinds: ['plain', 'policy'], pairs: [['policy', 'plain']] },
  // gRPC unary calls (bench/lib/grpc-unary-client.mjs) against three backends and the control
  // plane (bench/lib/grpc-serve-unary.mjs), as bench/grpc-unary.mjs runs them.
  grpc: {
    server: './lib/grpc-serve-unary.mjs',
    client: './lib/grpc-unary-client.mjs',
    kinds: ['direct', 'grpc-js-xds', 'meshlet'],
    pairs: [['meshlet', 'direct'], ['meshlet', 'grpc-js-xds'], ['grpc-js-xds', 'direct']],
  },
  telemetry: {
    server: './lib/serve-http.mjs',
    kinds: ['telemetry-off', 'telemetry-inprocess', 'telemetry-sdk', 'telemetry-producer'],
    pairs: [
      ['telemetry-inprocess', 'telemetry-off'],
      ['telemetry-sdk', 'telemetry-off'],
      ['telemetry-producer', 'telemetry-off'],
      ['telemetry-producer', 'telemetry-sdk'],
    ],
  },
};
const set = SETS[values.set];
if (!set) throw new Error(`--set must be one of ${Object.keys(SETS).join(', ')}, got "${values.set}"`);
const kinds = values.kinds ? values.kinds.split(',') : set.kinds;
const [warm, small, large, jobs, concurrency, repeat] = [values.warm, values.small, values.large, values.jobs, values.concurrency, values.repeat].map(Number);
if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error(`--repeat must be a positive integer, got "${values.repeat}"`);
if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`--concurrency must be a positive integer, got "${values.concurrency}"`);
if (!(large > small)) throw new Error('--large must be greater than --small');
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

const { child: srv, served: address } = await startServer([here(set.server)]);
const served = JSON.stringify(address);

const functions = Number(values.functions);
const outDir = functions > 0 ? mkdtempSync(join(tmpdir(), 'meshlet-instructions-')) : undefined;

/** cachegrind's output file for one run (when --functions asks for them). */
const outFile = (kind, n, rep) => (outDir ? join(outDir, `${kind.replace(/[^\w-]/g, '_')}-${n}-${rep}.out`) : '/dev/null');

/** Instructions by function name in a cachegrind output file. */
function byFunction(file) {
  const m = new Map();
  let fn = '?';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) fn = line.slice(3);
    else if (line.charCodeAt(0) >= 48 && line.charCodeAt(0) <= 57) m.set(fn, (m.get(fn) ?? 0) + Number(line.split(' ')[1] ?? 0));
  }
  return m;
}

/** Instructions executed by one client process doing warm-up + n requests. */
function count(kind, n, rep) {
  const at = kind.indexOf('@');
  const script = at < 0 ? here(set.client ?? './lib/http-client.mjs') : join(kind.slice(at + 1), (set.client ?? './lib/http-client.mjs').replace('./', ''));
  return new Promise((resolve, reject) => {
    const args = ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${outFile(kind, n, rep)}`, process.execPath, '--single-threaded', script, at < 0 ? kind : kind.slice(0, at), served, `${warm},${n},${concurrency}`];
    const p = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => {
      const m = /I\s+refs:\s+([\d,]+)/.exec(err);
      if (code !== 0 || !m) reject(new Error(`valgrind ${kind} ${n} exited ${code}:\n${err.slice(-2000)}`));
      else resolve(Number(m[1].replaceAll(',', '')));
    });
  });
}

// Runs the jobs `jobs` at a time (each is single-threaded under valgrind). With --repeat, each
// kind is measured that many times, the repeats interleaved across kinds, and its figure is
// the median of the repeats.
const tasks = [];
for (let rep = 0; rep < repeat; rep++) for (const kind of kinds) for (const n of [small, large]) tasks.push({ kind, n, rep });
const counts = {};
let next = 0;
await Promise.all(
  Array.from({ length: jobs }, async () => {
    while (next < tasks.length) {
      const { kind, n, rep } = tasks[next++];
      ((counts[kind] ??= [])[rep] ??= {})[n] = await count(kind, n, rep);
    }
  }),
);
srv.kill('SIGTERM');

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`valgrind cachegrind; warm-up ${warm} requests; per request = (I(${large}) − I(${small})) / ${large - small}; concurrency ${concurrency}${repeat > 1 ? `; median of ${repeat} repeats` : ''}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1];
const perRequest = {};
for (const kind of kinds) {
  const each = counts[kind].map((c) => (c[large] - c[small]) / (large - small));
  perRequest[kind] = median(each);
  const spread = repeat > 1 ? `  (${each.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')})` : '';
  console.log(`  ${kind.padEnd(22)} ${Math.round(perRequest[kind]).toLocaleString('en-US').padStart(9)} instructions per request${spread}`);
}
// The pairs the set names, or the two kinds given.
const pairs = values.kinds && kinds.length === 2 ? [kinds] : set.pairs;
for (const [a, b] of pairs) {
  if (perRequest[a] !== undefined && perRequest[b] !== undefined) {
    const r = perRequest[a] / perRequest[b];
    console.log(`${a} / ${b}: ${r.toFixed(3)} (throughput bound by client CPU ≈ ${(1 / r).toFixed(3)}×)`);
    if (functions > 0) {
      // Per function: (I(large) − I(small)) / (large − small), first repeat, a minus b.
      const per = (kind) => {
        const s = byFunction(outFile(kind, small, 0));
        const l = byFunction(outFile(kind, large, 0));
        const m = new Map();
        for (const k of new Set([...s.keys(), ...l.keys()])) m.set(k, ((l.get(k) ?? 0) - (s.get(k) ?? 0)) / (large - small));
        return m;
      };
      const pa = per(a);
      const pb = per(b);
      const rows = [...new Set([...pa.keys(), ...pb.keys()])].map((k) => [k, pa.get(k) ?? 0, pb.get(k) ?? 0]);
      rows.sort((x, y) => Math.abs(y[1] - y[2]) - Math.abs(x[1] - x[2]));
      console.log(`  instructions per request by function (${a} − ${b}, ${a}, ${b}):`);
      for (const [k, x, y] of rows.slice(0, functions)) {
        console.log(`  ${Math.round(x - y).toString().padStart(7)} ${Math.round(x).toString().padStart(8)} ${Math.round(y).toString().padStart(8)}  ${k.slice(0, 100)}`);
      }
    }
  }
}
if (outDir) rmSync(outDir, { recursive: true, force: true });
process.exit(0);
