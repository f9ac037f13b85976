#!/usr/bin/env node
// Benchmark: what MeshAgent itself costs per request, with the network taken out. The
// endpoint pools are stand-ins that answer at once, so the figure is MeshAgent.dispatch:
// origin lookup, header view, route(), pick(), header mutations, the request's policies.
// Two targets (bench/lib/serve-policies.mjs): `plain` (a route to a cluster, timeout off)
// and `policy` (retry policy, per-try and route timeouts, breakers, outlier detection), and
// `plain+telemetry`: the plain route on a mesh recording Istio's metrics in process
// (`telemetry: { prometheus: true }`, with Istio's metadata exchange headers).
//   node bench/mesh-agent-overhead.mjs [plain|policy|plain+telemetry] [--alloc]
// With --alloc, the figure is the heap each dispatch allocates instead of its time: the
// script runs itself again with a young generation large enough that no scavenge runs
// during a measured batch, so the heap's growth over the batch is what it allocated; an
// allocation sampling profile (including what the young-generation collector frees) then
// charges it to functions (as inlined: a callee's objects may show under its caller).
import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { startServer } from './lib/start-server.mjs';
import { Dispatcher } from 'undici';
import { createMesh, MeshAgent } from '@meshlet/http';

const args = process.argv.slice(2);
const alloc = args.includes('--alloc');
if (alloc && typeof globalThis.gc !== 'function') {
  const flags = ['--expose-gc', '--max-semi-space-size=256', '--min-semi-space-size=256'];
  const r = spawnSync(process.execPath, [...flags, new URL(import.meta.url).pathname, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const {
  child,
  served: { address },
} = await startServer([new URL('./lib/serve-policies.mjs', import.meta.url).pathname]);
const bootstrap = {
  xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }],
  node: { id: 'sidecar~127.0.0.1~bench-v1-abc.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } },
};
const mesh = createMesh({ bootstrap });
const telemetryMesh = createMesh({ bootstrap, telemetry: { prometheus: true } });

const RESPONSE_HEADERS = ['content-type', 'text/plain', 'content-length', '2', 'date', new Date().toUTCString(), 'connection', 'keep-alive'].map((x) => Buffer.from(x));
const BODY = Buffer.from('ok');
/** A pool that answers every request at once, synchronously. */
class InstantPool extends Dispatcher {
  dispatch(_opts, h) {
    h.onConnect?.(() => {});
    h.onHeaders?.(200, RESPONSE_HEADERS, () => {}, 'OK');
    h.onData?.(BODY);
    h.onComplete?.(null);
    return true;
  }
  close() {
    return Promise.resolve();
  }
}
const agent = new MeshAgent({ mesh, poolFactory: () => new InstantPool() });
const telemetryAgent = new MeshAgent({ mesh: telemetryMesh, poolFactory: () => new InstantPool() });
await mesh.target('plain.mesh.test:80').ready();
await mesh.target('policy.mesh.test:80').ready();
await telemetryMesh.target('plain.mesh.test:80').ready();
const handler = { onConnect() {}, onHeaders: () => true, onData: () => true, onComplete() {}, onError(e) { throw e; } };
const headers = { 'user-agent': 'bench', accept: '*/*' };
const targets = {
  plain: [agent, { origin: 'http://plain.mesh.test', path: '/bench', method: 'GET', headers }],
  policy: [agent, { origin: 'http://policy.mesh.test', path: '/bench', method: 'GET', headers }],
  'plain+telemetry': [telemetryAgent, { origin: 'http://plain.mesh.test', path: '/bench', method: 'GET', headers }],
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const only = args.find((a) => !a.startsWith('--'));
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}`);
// Rounds interleave the targets, so a change in the machine's load lands on all of them.
const chosen = Object.entries(targets).filter(([name]) => !only || name === only);
for (const [, [agent, opts]] of chosen) for (let i = 0; i < 200_000; i++) agent.dispatch(opts, handler);
if (alloc) {
  const n = 20_000;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  for (const [name, [agent, opts]] of chosen) {
    const each = [];
    for (let r = 0; r < 5; r++) {
      globalThis.gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i++) agent.dispatch(opts, handler);
      each.push((process.memoryUsage().heapUsed - before) / n);
    }
    console.log(`MeshAgent.dispatch, ${name}: ${Math.round(median(each))} bytes allocated per dispatch, median of 5 batches of ${n} (${each.map(Math.round).join(', ')})`);
    await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    for (let i = 0; i < n; i++) agent.dispatch(opts, handler);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const byFunction = new Map();
    const walk = (node) => {
      const f = node.callFrame;
      const key = `${f.functionName || '(anonymous)'} (${f.url.split('/').pop()}:${f.lineNumber + 1})`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
      for (const c of node.children) walk(c);
    };
    walk(profile.head);
    for (const [key, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).filter(([, b]) => b / n >= 16)) {
      console.log(`  ${String(Math.round(bytes / n)).padStart(6)} B  ${key}`);
    }
  }
  mesh.close();
  telemetryMesh.close();
  child.kill();
  process.exit(0);
}
const rounds = new Map(chosen.map(([name]) => [name, []]));
for (let r = 0; r < 7; r++) {
  for (const [name, [agent, opts]] of chosen) {
    const n = 200_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) agent.dispatch(opts, handler);
    rounds.get(name).push(Number(process.hrtime.bigint() - t) / n);
  }
}
for (const [name, xs] of rounds) {
  console.log(`MeshAgent.dispatch, ${name}: ${Math.round(median(xs))} ns/op median of ${xs.length} rounds (${xs.map((x) => Math.round(x)).join(', ')})`);
}
const plain = rounds.get('plain');
if (plain) {
  for (const [name, xs] of rounds) {
    if (name === 'plain') continue;
    // Per round, against the plain route measured next to it.
    console.log(`  ${name} − plain: ${Math.round(median(xs.map((x, i) => x - plain[i])))} ns/op (median of per-round differences)`);
  }
}
mesh.close();
telemetryMesh.close();
child.kill();
process.exit(0);
