#!/usr/bin/env node
// The demo (`npm run demo`): meshlet's control plane serves the xDS resources in
// examples/config; `meshlet dump` resolves targets through LDS → RDS → CDS → EDS the
// way a meshlet client will, shows a NACK for a broken resource; @grpc/grpc-js-xds, an
// independent xDS client, and @meshlet/grpc (examples/grpc-client.mjs) send real RPCs
// through the same config, routed by metadata and balanced; meshFetch routes HTTP calls.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';
import { startAdminServer } from '@meshlet/core';
import { createMesh, createMeshFetch } from '@meshlet/http';

const here = dirname(fileURLToPath(import.meta.url));
const meshletBin = join(here, 'node_modules/@meshlet/cli/bin/meshlet.js');
const step = (text) => console.log(`\n\x1b[1m▶ ${text}\x1b[0m`);

// 1. The control plane, serving a copy of examples/config (the demo edits it later).
const dir = mkdtempSync(join(tmpdir(), 'meshlet-demo-'));
const configDir = join(dir, 'config');
cpSync(join(here, 'config'), configDir, { recursive: true });
step(`meshlet control-plane --config ${configDir}`);
const cp = new ControlPlane({ configDir, configDebounceMs: 50 });
const { address } = await cp.start();
console.log(`  listening on ${address}`);

// HTTP backends for reviews v1, v2 and v3, on the ports its EDS names.
const httpServers = [];
for (const v of [1, 2, 3]) {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ version: `v${v}`, path: req.url }));
  });
  await new Promise((resolve) => server.listen(19080 + v, '127.0.0.1', resolve));
  httpServers.push(server);
}

// 2. Backends for the gRPC "echo" service, on the ports its EDS names.
const id = (b) => b;
const ECHO = { Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const servers = [];
for (const [name, port] of [['echo-a', 17071], ['echo-b', 17072], ['echo-canary', 17073]]) {
  const server = new grpc.Server();
  server.addService(ECHO, { Echo: (call, cb) => cb(null, Buffer.from(`${name} says ${call.request}`)) });
  await new Promise((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  servers.push(server);
}

// 3. A bootstrap, the file Istio's agent would write, pointing at our control plane.
const bootstrapFile = join(dir, 'bootstrap.json');
writeFileSync(
  bootstrapFile,
  JSON.stringify({
    xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'sidecar~127.0.0.1~demo.default~default.svc.cluster.local', locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } },
  }),
);
const env = { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile };

// The control plane runs in this process, so the child must not block it: spawn, not spawnSync.
function dump(target) {
  step(`GRPC_XDS_BOOTSTRAP=${bootstrapFile} meshlet dump ${target}`);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [meshletBin, 'dump', target], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// 4. Resolve the reviews service and summarise the chain.
let r = await dump('reviews.default.svc.cluster.local:9080');
if (r.status !== 0) {
  console.error(r.stderr);
  process.exit(1);
}
const chain = JSON.parse(r.stdout);
console.log(`  Listener ${chain.listenerName} → RouteConfiguration ${chain.routeConfiguration.name}`);
console.log(`  virtual host ${chain.virtualHost.name} (${chain.virtualHost.domains.join(', ')})`);
for (const route of chain.routes) {
  const m = route.match;
  const hdr = m.headers.map((h) => ` and header ${h.name} ${h.match.kind} ${JSON.stringify(h.match.value)}`).join('');
  const c = route.action.cluster;
  const to = c.kind === 'cluster' ? c.name : c.clusters.map((w) => `${w.name} ${Math.round((100 * w.weight) / c.totalWeight)}%`).join(', ');
  console.log(`  route ${route.name || '(unnamed)'}: ${m.path.kind} ${JSON.stringify(m.path.value)}${hdr} → ${to}`);
}
for (const [name, e] of Object.entries(chain.endpoints)) {
  const eps = e.priorities.flat().flatMap((l) => l.endpoints.map((ep) => `${ep.addresses[0].host}:${ep.addresses[0].port} ${ep.healthStatus}`));
  console.log(`  cluster ${name} [${chain.clusters[name].lbPolicy[0]?.name}] → ${eps.join(', ')}`);
}
console.log(`  (the full JSON: ${r.stdout.length} bytes)`);

// 5. A broken resource: NACKed with the field and reason, one line, non-zero exit.
r = await dump('ratings.default.svc.cluster.local:9080');
console.log(`  exit ${r.status}: ${r.stderr.trim()}`);
const nack = cp.nacks()[0];
if (nack) console.log(`  the control plane recorded the NACK: ${nack.errorDetail?.message}`);

// 6. An independent xDS client on the same config: @grpc/grpc-js-xds, real RPCs.
step('@grpc/grpc-js-xds: new Client("xds:///echo.default.svc.cluster.local:7070")');
process.env.GRPC_XDS_BOOTSTRAP = bootstrapFile;
const grpcXds = await import('@grpc/grpc-js-xds');
grpcXds.register();
const Client = grpc.makeGenericClientConstructor(ECHO, 'EchoService');
const client = new Client('xds:///echo.default.svc.cluster.local:7070', grpc.credentials.createInsecure());
function echo(text, headers = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) =>
    client.Echo(Buffer.from(text), md, { deadline: Date.now() + 10_000 }, (e, res) => (e ? reject(e) : resolve(String(res)))),
  );
}
for (let i = 1; i <= 4; i++) console.log(`  ${await echo(`hello ${i}`)}`);
console.log(`  ${await echo('canary 1', { 'x-canary': 'true' })}   (metadata x-canary: true)`);
client.close();

// 7. The same service through @meshlet/grpc. grpc-js-xds owns the `xds` scheme in this
// process, so the meshlet client is an app of its own, as it would be in real life.
step('@meshlet/grpc: register(); new Client("xds:///echo.default.svc.cluster.local:7070")   [examples/grpc-client.mjs]');
const grpcApp = await new Promise((resolve) => {
  const p = spawn(process.execPath, [join(here, 'grpc-client.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  createInterface({ input: p.stdout }).on('line', (line) => console.log(`  ${line}`));
  p.stderr.on('data', (d) => (stderr += d));
  p.on('close', (status) => resolve({ status, stderr }));
});
if (grpcApp.status !== 0) {
  console.error(grpcApp.stderr);
  process.exit(1);
}

// 8. meshFetch: the same config routes plain fetch calls.
step('meshFetch("http://reviews.default.svc.cluster.local:9080/reviews/1")');
// Istio's metrics aggregated in process, for the admin endpoint below (an app with an
// OpenTelemetry SDK gets them there instead: examples/telemetry.mjs).
const mesh = createMesh({ bootstrap: JSON.parse(readFileSync(bootstrapFile, 'utf8')), telemetry: { prometheus: true } });
const meshFetch = createMeshFetch({ mesh });
const URL_REVIEWS = 'http://reviews.default.svc.cluster.local:9080/reviews/1';
async function tally(n, init) {
  const counts = {};
  for (let i = 0; i < n; i++) {
    const { version } = await (await meshFetch(URL_REVIEWS, init)).json();
    counts[version] = (counts[version] ?? 0) + 1;
  }
  return Object.entries(counts).sort().map(([v, c]) => `${v} ${c}`).join(', ');
}
console.log(`  100 calls, weighted route (v1 80 %, v3 20 %): ${await tally(100)}`);
console.log(`  10 calls with "end-user: jason": ${await tally(10, { headers: { 'end-user': 'jason' } })}`);

step('edit reviews.yaml while it runs: v1 0 %, v3 100 %');
const reviewsFile = join(configDir, 'reviews.yaml');
const reloaded = new Promise((resolve) => cp.once('reload', resolve));
writeFileSync(reviewsFile, readFileSync(reviewsFile, 'utf8').replace('weight: 80', 'weight: 0').replace('weight: 20', 'weight: 100'));
await reloaded;
await new Promise((r) => setTimeout(r, 200)); // the push reaches the client
console.log(`  100 calls: ${await tally(100)}`);

step('startAdminServer({ mesh }): GET /stats/prometheus and /clusters');
const admin = await startAdminServer({ mesh });
const prom = await (await fetch(`${admin.url}/stats/prometheus`)).text();
for (const line of prom.split('\n').filter((l) => l.startsWith('istio_requests_total{'))) {
  const label = (n) => /[{,]NAME="([^"]*)"/.exec(line.replace('NAME', n))?.[1] ?? new RegExp(`[{,]${n}="([^"]*)"`).exec(line)?.[1];
  console.log(`  istio_requests_total{reporter="${label('reporter')}", destination_service="${label('destination_service')}", response_code="${label('response_code')}", response_flags="${label('response_flags')}"} ${line.split(' ').pop()}`);
}
const clusters = await (await fetch(`${admin.url}/clusters`)).json();
for (const t of clusters.targets ?? []) {
  for (const c of t.clusters ?? []) {
    const hosts = (c.hosts ?? []).map((h) => `${h.address} ${h.health_status}`).join(', ');
    console.log(`  /clusters: ${c.name} [${c.policy}]: ${hosts}`);
  }
}
await admin.close();
await meshFetch.agent.close();
mesh.close();

step('done');
await cp.stop();
for (const s of servers) s.forceShutdown();
for (const s of httpServers) s.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
