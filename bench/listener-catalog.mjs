#!/usr/bin/env node
// Benchmark: the listener catalog (MeshOptions.listenerCatalog, on by default for HTTP targets)
// against a control plane with N Listeners, as an Istio mesh pushes every outbound Listener to
// every client: the time from the first target until the catalog has the server's list (a host
// with no Listener fails as not in the mesh), and the client's live heap then. Each run is a
// fresh client process; the figure is the median of --runs.
//   node bench/listener-catalog.mjs [--listeners 2000] [--runs 3]
import { fork } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { listeners: { type: 'string', default: '2000' }, runs: { type: 'string', default: '3' }, role: { type: 'string' }, address: { type: 'string' } },
});
const N = Number(values.listeners);
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

/** What Istio's proxyless generator sends per outbound service: an api_listener with RDS. */
function listener(i) {
  const host = `svc-${i}.ns-${i % 40}.svc.cluster.local:${8000 + (i % 7)}`;
  return {
    name: host,
    api_listener: {
      api_listener: {
        '@type': HCM,
        stat_prefix: host,
        rds: { route_config_name: host, config_source: { ads: {}, resource_api_version: 'V3' } },
        common_http_protocol_options: { max_stream_duration: '0s' },
        http_filters: [
          { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
        ],
      },
    },
  };
}

if (values.role === 'server') {
  const { ControlPlane } = await import('@meshlet/control-plane');
  const { TYPE_URLS } = await import('@meshlet/xds-client');
  const cp = new ControlPlane();
  cp.setResources(TYPE_URLS.listener, Array.from({ length: N }, (_, i) => listener(i)));
  const { address } = await cp.start();
  process.send({ address });
  process.on('disconnect', () => process.exit(0));
} else if (values.role === 'client') {
  const { createMesh } = await import('@meshlet/core');
  const bootstrap = { xds_servers: [{ server_uri: values.address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }], node: { id: 'sidecar~127.0.0.1~bench.default~default.svc.cluster.local' } };
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  const started = performance.now();
  const mesh = createMesh({ bootstrap });
  const absent = mesh.target('absent.example:80');
  await absent.ready().then(
    () => { throw new Error('absent.example:80 resolved'); },
    (err) => { if (err.code !== 'MESHLET_XDS_RESOURCE_DOES_NOT_EXIST') throw err; },
  );
  const ms = performance.now() - started;
  globalThis.gc();
  const heap = process.memoryUsage().heapUsed - before;
  process.send({ ms, heap });
  mesh.close();
  process.exit(0);
} else {
  const here = fileURLToPath(import.meta.url);
  const server = fork(here, ['--role', 'server', '--listeners', String(N)]);
  const { address } = await new Promise((resolve) => server.once('message', resolve));
  const runs = [];
  for (let i = 0; i < Number(values.runs); i++) {
    const client = fork(here, ['--role', 'client', '--address', address], { execArgv: ['--expose-gc'] });
    runs.push(await new Promise((resolve, reject) => { client.once('message', resolve); client.once('exit', (c) => c !== 0 && reject(new Error(`client exited ${c}`))); }));
  }
  server.kill();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  console.log(`listener catalog of ${N} Listeners, median of ${runs.length} fresh clients:`);
  console.log(`  until the catalog lists them: ${median(runs.map((r) => r.ms)).toFixed(0)} ms (runs: ${runs.map((r) => r.ms.toFixed(0)).join(', ')})`);
  console.log(`  live heap added: ${(median(runs.map((r) => r.heap)) / 2 ** 20).toFixed(2)} MiB (runs: ${runs.map((r) => (r.heap / 2 ** 20).toFixed(2)).join(', ')})`);
}
