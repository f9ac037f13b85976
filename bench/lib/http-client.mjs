// Child process (forked, IPC): one HTTP client kind, so each client's garbage, timers and JIT
// state stay out of the others' measurements. The parent (bench/lib/ab-run.mjs) sends
// {n, concurrency}; the child answers {rps, cpuPerRequest}.
//   argv: <kind> <json {address, port}>
import { createRequire } from 'node:module';
import { Agent, buildConnector, Pool, request } from 'undici';
import { run as runCalls, runFor as runCallsFor } from './drive.mjs';

const kind = process.argv[2];
// The clients without meshlet do not load it: its modules would sit in their heap, and every
// major collection would walk them.
const WITHOUT_MESHLET = new Set(['raw', 'raw-host', 'raw-host-sn', 'raw-origin', 'fetch']);
const { createMesh, createMeshFetch, MeshAgent } = WITHOUT_MESHLET.has(kind) ? {} : await import('@meshlet/http');
const { address, port } = JSON.parse(process.argv[3]);
const bootstrap = {
  xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }],
  node: { id: 'sidecar~127.0.0.1~bench-v1-abc.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } },
};
const RAW = `http://127.0.0.1:${port}/bench`;
const MESH = 'http://bench.mesh.test/bench';

function telemetryOptions() {
  if (kind === 'telemetry-inprocess') return { prometheus: true };
  // Without Istio's metadata exchange headers (what they cost undici on each request).
  if (kind === 'telemetry-inprocess-nomx') return { prometheus: true, metadataExchange: false };
  if (kind !== 'telemetry-sdk') return undefined;
  // The OpenTelemetry SDK is the application's dependency, not meshlet's: take the tests' copy.
  const sdk = createRequire(new URL('../../test/package.json', import.meta.url));
  const { MeterProvider } = sdk('@opentelemetry/sdk-metrics');
  const { PrometheusExporter } = sdk('@opentelemetry/exporter-prometheus');
  return { meterProvider: new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] }) };
}

function makeClient() {
  const body = async (res) => res.body.arrayBuffer();
  switch (kind) {
    case 'raw':
    // raw-imported: raw undici in a process that imported @meshlet/http and uses none of it,
    // for what meshlet's modules cost a client by being loaded (the heap every collection walks).
    case 'raw-imported': {
      const d = new Agent();
      return async () => body(await request(RAW, { dispatcher: d }));
    }
    case 'raw-host': {
      // Raw undici sending the Host header MeshAgent sends (the service's name, not the endpoint's address).
      const d = new Agent();
      return async () => body(await request(RAW, { dispatcher: d, headers: { host: 'bench.mesh.test' } }));
    }
    case 'raw-host-sn': {
      // Raw undici sending the Host header with the servername MeshAgent gives (without one,
      // undici derives it from the Host on every request).
      const d = new Agent();
      return async () => body(await request(RAW, { dispatcher: d, headers: { host: 'bench.mesh.test' }, servername: 'bench.mesh.test' }));
    }
    case 'raw-origin': {
      // Raw undici whose pool is named for the service (its Host line is made once per pool)
      // and whose connector dials the endpoint's address.
      const connect = buildConnector({});
      const d = new Pool('http://bench.mesh.test', { connect: (o, cb) => connect({ ...o, hostname: '127.0.0.1', host: '127.0.0.1', port: String(port) }, cb) });
      return async () => body(await request(MESH, { dispatcher: d }));
    }
    case 'raw-host-mx': {
      // The same, plus the two headers of Istio's metadata exchange MeshAgent sends when
      // telemetry is on (the bench node's values): what those headers cost undici alone.
      const d = new Agent();
      const mesh = createMesh({ bootstrap, telemetry: { prometheus: true } });
      const headers = { host: 'bench.mesh.test', 'x-envoy-peer-metadata-id': mesh.telemetry.exchange.id, 'x-envoy-peer-metadata': mesh.telemetry.exchange.value };
      mesh.close();
      return async () => body(await request(RAW, { dispatcher: d, headers }));
    }
    case 'fetch':
      return async () => (await fetch(RAW)).arrayBuffer();
    case 'meshFetch': {
      const f = createMeshFetch({ mesh: createMesh({ bootstrap }) });
      return async () => (await f(MESH)).arrayBuffer();
    }
    case 'plain':
    case 'policy':
    case 'retry':
    case 'pertry':
    case 'guard': {
      const d = new MeshAgent({ mesh: createMesh({ bootstrap }) });
      const url = `http://${kind}.mesh.test/x`;
      return async () => body(await request(url, { dispatcher: d }));
    }
    case 'telemetry-producer': {
      // Istio's metrics read by an SDK MeterProvider's Prometheus exporter (not scraped) from
      // the in-process aggregation, through MeshTelemetry.metricProducer(); the same provider
      // is the mesh's meterProvider, as an application would wire it.
      const sdk = createRequire(new URL('../../test/package.json', import.meta.url));
      const { MeterProvider } = sdk('@opentelemetry/sdk-metrics');
      const { PrometheusExporter } = sdk('@opentelemetry/exporter-prometheus');
      const mesh = createMesh({ bootstrap });
      const exporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [mesh.telemetry.metricProducer()] });
      mesh.telemetry.configure({ meterProvider: new MeterProvider({ readers: [exporter] }) });
      const d = new MeshAgent({ mesh });
      return async () => body(await request(MESH, { dispatcher: d }));
    }
    default: {
      // mesh, telemetry-off, telemetry-inprocess, telemetry-sdk
      const telemetry = telemetryOptions();
      const d = new MeshAgent({ mesh: createMesh(telemetry ? { bootstrap, telemetry } : { bootstrap }) });
      return async () => body(await request(MESH, { dispatcher: d }));
    }
  }
}

const call = makeClient();

const run = (n, concurrency) => runCalls(call, n, concurrency);
const runFor = (ms, concurrency) => runCallsFor(call, ms, concurrency);

// Standalone (bench/instructions.mjs, under valgrind): argv[4] = "<warm-up>,<measured>[,<concurrency>]"
// (concurrency 32 unless given); run them and exit, no IPC.
if (process.argv[4]) {
  const [warm, n, concurrency = 32] = process.argv[4].split(',').map(Number);
  await run(warm, concurrency);
  if (n > 0) await run(n, concurrency);
  process.exit(0);
}
// Warm up: connections, the mesh's first resolution, and enough calls for the JIT to settle
// (with 3,000, the first rounds still favoured the client with less code to optimize).
await run(20000, 32);
process.send({ ready: true });
process.on('disconnect', () => process.exit(0));
process.on('message', async (msg) => {
  if (msg.exit) process.exit(0);
  process.send(msg.ms !== undefined ? await runFor(msg.ms, msg.concurrency) : await run(msg.n, msg.concurrency));
});
