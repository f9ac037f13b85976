#!/usr/bin/env node
// The demo (`npm run demo`): meshlet's control plane serves the xDS resources in
// examples/config; `meshlet dump` resolves targets through LDS → RDS → CDS → EDS the
// way a meshlet client will, shows a NACK for a broken resource, and
// @grpc/grpc-js-xds, an independent xDS client, sends real RPCs through the same config.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';

const here = dirname(fileURLToPath(import.meta.url));
const meshletBin = join(here, 'node_modules/@meshlet/cli/bin/meshlet.js');
const step = (text) => console.log(`\n\x1b[1m▶ ${text}\x1b[0m`);

// 1. The control plane, serving examples/config.
step('meshlet control-plane --config examples/config');
const cp = new ControlPlane({ configDir: join(here, 'config') });
const { address } = await cp.start();
console.log(`  listening on ${address}`);

// 2. Backends for the gRPC "echo" service, on the ports its EDS names.
const id = (b) => b;
const ECHO = { Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const servers = [];
for (const [name, port] of [['echo-a', 17071], ['echo-b', 17072]]) {
  const server = new grpc.Server();
  server.addService(ECHO, { Echo: (call, cb) => cb(null, Buffer.from(`${name} says ${call.request}`)) });
  await new Promise((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  servers.push(server);
}

// 3. A bootstrap, the file Istio's agent would write, pointing at our control plane.
const dir = mkdtempSync(join(tmpdir(), 'meshlet-demo-'));
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
for (let i = 1; i <= 4; i++) {
  const reply = await new Promise((resolve, reject) =>
    client.Echo(Buffer.from(`hello ${i}`), { deadline: Date.now() + 10_000 }, (e, res) => (e ? reject(e) : resolve(String(res)))),
  );
  console.log(`  ${reply}`);
}
client.close();

step('done');
await cp.stop();
for (const s of servers) s.forceShutdown();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
