#!/usr/bin/env node
// Benchmark: what telemetry costs, measured in the same run against no telemetry.
//   1. The recorder alone (startCall → route → attempt → bytes → end), in ns per call:
//      nothing registered (startCall returns undefined), the in-process Prometheus
//      aggregation, an OpenTelemetry SDK MeterProvider, and the SDK MeterProvider plus a
//      TracerProvider.
//   2. The HTTP path of a node:http server in a child process: plain, and wrapped with
//      withServerTelemetry with nothing listening, with the in-process Prometheus
//      aggregation, and with an SDK MeterProvider; an undici Pool at concurrency 32 drives
//      rotating rounds over the four ports.
//   3. The client side: meshFetch through MeshAgent with telemetry off, the in-process
//      Prometheus aggregation, and an SDK MeterProvider (bench/telemetry-client-overhead.mjs
//      measures the same with each variant in its own process, the steadier figure).
//   node bench/telemetry-overhead.mjs [--rounds 6] [--requests 20000]
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { MeshTelemetry } from '@meshlet/core';
import { withServerTelemetry } from '@meshlet/http';
import { startServer } from './lib/start-server.mjs';

// The OpenTelemetry SDK is an application's dependency, not meshlet's: take the copy the
// tests install.
const sdkRequire = createRequire(new URL('../test/package.json', import.meta.url));
const { metrics, trace } = sdkRequire('@opentelemetry/api');
const { MeterProvider } = sdkRequire('@opentelemetry/sdk-metrics');
const { PrometheusExporter } = sdkRequire('@opentelemetry/exporter-prometheus');
const { BasicTracerProvider, SimpleSpanProcessor } = sdkRequire('@opentelemetry/sdk-trace-base');

const arg = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

const NODE = {
  id: 'sidecar~127.0.0.1~bench-1.default~default.svc.cluster.local',
  cluster: '',
  locality: { region: '', zone: '', sub_zone: '' },
  metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'bench', LABELS: { app: 'bench', version: 'v1' } },
};

if (process.argv[2] === '--serve') {
  // The server side: the same handler on four ports: plain; wrapped with nothing listening;
  // wrapped with the in-process Prometheus aggregation only; wrapped with an SDK MeterProvider.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const sdk = new MeterProvider({ readers: [exporter] });
  const noop = { getMeter: () => metrics.getMeterProvider().getMeter('none') };
  metrics.disable();
  const handler = (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  };
  const service = 'bench.default.svc.cluster.local';
  const variants = {
    plain: handler,
    off: withServerTelemetry(handler, { telemetry: new MeshTelemetry({ node: NODE, meterProvider: noop, tracerProvider: trace.getTracerProvider() }), service }),
    prometheus: withServerTelemetry(handler, { telemetry: new MeshTelemetry({ node: NODE, meterProvider: noop, prometheus: true }), service }),
    sdk: withServerTelemetry(handler, { telemetry: new MeshTelemetry({ node: NODE, meterProvider: sdk }), service }),
  };
  const ports = {};
  for (const [name, listener] of Object.entries(variants)) {
    const server = createServer(listener);
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    ports[name] = server.address().port;
  }
  process.stdout.write(JSON.stringify(ports) + '\n');
} else {
  await main();
}

async function main() {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, node ${process.version}`);
  recorderCost();
  await httpPath();
  await meshAgentPath();
  process.exit(0);
}

/**
 * The client side: meshFetch through three meshes on one control plane and backend
 * (bench/lib/serve-http.mjs), telemetry off / in-process Prometheus / SDK MeterProvider,
 * rotating rounds, each figure the median of its per-round ratio to "off" (the machine
 * drifts between rounds more than the variants differ).
 */
async function meshAgentPath() {
  const { createMesh, createMeshFetch } = await import('@meshlet/http');
  const {
    child,
    served: { address },
  } = await startServer([new URL('./lib/serve-http.mjs', import.meta.url).pathname]);
  const noop = { getMeter: () => metrics.getMeterProvider().getMeter('none') };
  const sdk = new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] });
  const bootstrap = { xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }], node: NODE };
  const variants = {
    off: { meterProvider: noop },
    prometheus: { meterProvider: noop, prometheus: true },
    sdk: { meterProvider: sdk },
  };
  const meshes = {};
  const fetches = {};
  for (const [name, telemetry] of Object.entries(variants)) {
    meshes[name] = createMesh({ bootstrap, telemetry });
    fetches[name] = createMeshFetch({ mesh: meshes[name] });
  }
  const requests = arg('--requests', 20_000);
  const rounds = arg('--rounds', 6);
  const concurrency = 32;
  const run = async (f, n) => {
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < n) await (await f('http://bench.mesh.test/bench')).arrayBuffer();
      }),
    );
    return n / ((performance.now() - start) / 1000);
  };
  for (const f of Object.values(fetches)) await run(f, 2000);
  const recording = (meshes.prometheus.telemetry.prometheusText() ?? '').includes('reporter="source"');
  const names = Object.keys(variants);
  const perRound = Object.fromEntries(names.map((n) => [n, []]));
  const ratios = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const got = {};
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      got[name] = await run(fetches[name], requests);
      perRound[name].push(got[name]);
    }
    for (const n of names) ratios[n].push(got[n] / got.off);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`meshFetch through MeshAgent, concurrency ${concurrency}, ${rounds} rotating rounds of ${requests} requests:`);
  if (!recording) console.log('  (this build of MeshAgent does not record calls yet: the three variants do the same work)');
  for (const n of names) {
    const slower = n === 'off' ? '' : `  (${((1 - median(ratios[n])) * 100).toFixed(1)} % below off, median of per-round ratios)`;
    console.log(`  telemetry ${n.padEnd(10)} ${String(Math.round(median(perRound[n]))).padStart(6)} req/s median (${perRound[n].map(Math.round).join(', ')})${slower}`);
  }
  for (const n of names) {
    await fetches[n].agent.close();
    meshes[n].close();
  }
  child.kill('SIGTERM');
}

function recorderCost() {
  const cluster = { name: 'outbound|80||reviews.default.svc.cluster.local', metadata: undefined };
  const host = { key: '10.0.0.1:80', endpoint: { metadata: { filterMetadata: { istio: { workload: 'reviews-v1;default;reviews;v1;Kubernetes' } }, typedFilterMetadata: {} } } };
  const info = { reporter: 'source', protocol: 'http', method: 'GET', path: '/reviews/1', authority: 'reviews:80' };
  const result = { status: 200 };
  const oneCall = (t) => {
    const r = t.startCall(info);
    if (!r) return;
    r.route(cluster);
    r.attempt(host);
    r.injectTraceHeaders(() => {});
    r.requestBytes(0);
    r.responseBytes(120);
    r.end(result);
  };
  const measure = (name, t) => {
    for (let i = 0; i < 50_000; i++) oneCall(t);
    const rounds = [];
    for (let k = 0; k < 5; k++) {
      const n = 100_000;
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) oneCall(t);
      rounds.push(Number(process.hrtime.bigint() - start) / n);
    }
    rounds.sort((a, b) => a - b);
    console.log(`recorder, ${name}: ${Math.round(rounds[2])} ns/call median of 5 (${rounds.map(Math.round).join(', ')})`);
  };
  measure('nothing registered', new MeshTelemetry({ node: NODE }));
  measure('in-process Prometheus aggregation', new MeshTelemetry({ node: NODE, prometheus: true }));
  const meterProvider = new MeterProvider({ readers: [new PrometheusExporter({ preventServerStart: true })] });
  measure('OpenTelemetry SDK MeterProvider', new MeshTelemetry({ node: NODE, meterProvider }));
  measure('SDK MeterProvider, size histograms disabled', new MeshTelemetry({ node: NODE, meterProvider, disabledMetrics: ['istio_request_bytes', 'istio_response_bytes'] }));
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({ export: (_s, cb) => cb({ code: 0 }), shutdown: async () => {} })] });
  measure('SDK MeterProvider + TracerProvider', new MeshTelemetry({ node: NODE, meterProvider, tracerProvider }));
  trace.disable();
}

async function httpPath() {
  const { Pool } = await import('undici');
  const { child, served: ports } = await startServer([new URL(import.meta.url).pathname, '--serve']);
  const rounds = arg('--rounds', 6);
  const requests = arg('--requests', 20_000);
  const concurrency = 32;
  const names = Object.keys(ports);
  const pools = Object.fromEntries(names.map((n) => [n, new Pool(`http://127.0.0.1:${ports[n]}`, { connections: concurrency })]));
  const run = async (pool, n) => {
    let next = 0;
    const worker = async () => {
      while (next++ < n) {
        const res = await pool.request({ path: '/bench', method: 'GET' });
        await res.body.dump();
      }
    };
    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return n / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  for (const n of names) await run(pools[n], 5_000);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so no variant always runs first.
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      results[name].push(await run(pools[name], requests));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const plain = median(results.plain);
  const label = {
    plain: 'plain node:http',
    off: 'withServerTelemetry, nothing listening',
    prometheus: 'withServerTelemetry, in-process Prometheus',
    sdk: 'withServerTelemetry, SDK MeterProvider',
  };
  console.log(`node:http server in a child process, undici Pool at concurrency ${concurrency}, ${rounds} rotating rounds of ${requests} requests:`);
  for (const n of names) {
    const m = median(results[n]);
    const vs = n === 'plain' ? '' : `  (${(((plain - m) / plain) * 100).toFixed(1)} % below plain)`;
    console.log(`  ${label[n].padEnd(44)} ${String(Math.round(m)).padStart(6)} req/s median (${results[n].map(Math.round).join(', ')})${vs}`);
  }
  for (const p of Object.values(pools)) await p.close();
  child.kill();
}
