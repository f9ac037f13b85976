#!/usr/bin/env node
// Benchmark: what MeshAgent itself costs per request, with the network taken out. The
// endpoint pools are stand-ins that answer at once, so the figure is MeshAgent.dispatch:
// origin lookup, header view, route(), pick(), header mutations, the request's policies.
// Two targets (bench/lib/serve-policies.mjs): `plain` (a route to a cluster, timeout off)
// and `policy` (retry policy, per-try and route timeouts, breakers, outlier detection), and
// `plain+telemetry`: the plain route on a mesh recording Istio's metrics in process
// (`telemetry: { prometheus: true }`, with Istio's metadata exchange headers).
//   node bench/mesh-agent-overhead.mjs [plain|policy|plain+telemetry]
import { cpus } from 'node:os';
import { startServer } from './lib/start-server.mjs';
import { Dispatcher } from 'undici';
import { createMesh, MeshAgent } from '@meshlet/http';

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
const only = process.argv[2];
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}`);
// Rounds interleave the targets, so a change in the machine's load lands on all of them.
const chosen = Object.entries(targets).filter(([name]) => !only || name === only);
for (const [, [agent, opts]] of chosen) for (let i = 0; i < 200_000; i++) agent.dispatch(opts, handler);
const rounds = new Map(chosen.map(([name]) => [name, []]));
for (let r = 0; r < 7; r++) {
  for (const [name, [agent, opts]] of chosen) {
    const n = 200_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) agent.dispatch(opts, handler);
    rounds.get(name).push(Number(process.hrtime.bigint() - t) / n);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
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
