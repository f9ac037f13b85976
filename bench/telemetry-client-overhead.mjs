#!/usr/bin/env node
// Benchmark: what telemetry costs on the client's HTTP path (issue 6), the same run.
// Two meshes on the same control plane and backend (bench/lib/serve-http.mjs), each with
// its own MeshAgent: one with no telemetry (nothing registered: the recorder is never made),
// one recording Istio's metrics into an OpenTelemetry SDK MeterProvider (with a Prometheus
// exporter attached, not scraped). undici.request, concurrency 32, rounds alternating; the
// figure is the median of the per-round throughput ratios, and client CPU per request.
//   node bench/telemetry-client-overhead.mjs [--requests 10000] [--rounds 7]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { createMesh, MeshAgent } from '@meshlet/http';

// The OpenTelemetry SDK is the application's dependency, not meshlet's: take the tests' copy.
const sdkRequire = createRequire(new URL('../test/package.json', import.meta.url));
const { MeterProvider } = sdkRequire('@opentelemetry/sdk-metrics');
const { PrometheusExporter } = sdkRequire('@opentelemetry/exporter-prometheus');

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { requests: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '7' } } });
const N = Number(values.requests);
const ROUNDS = Number(values.rounds);
const C = 32;

const child = spawn(process.execPath, [join(here, 'lib/serve-http.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const { address } = await new Promise((resolve) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
  });
});
const bootstrap = { xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }], node: { id: 'sidecar~127.0.0.1~bench-v1-abc.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } } };
const exporter = new PrometheusExporter({ preventServerStart: true });
const provider = new MeterProvider({ readers: [exporter] });
const plainMesh = createMesh({ bootstrap });
const meteredMesh = createMesh({ bootstrap, telemetry: { meterProvider: provider } });
const agents = { off: new MeshAgent({ mesh: plainMesh }), metrics: new MeshAgent({ mesh: meteredMesh }) };
const URL_ = 'http://bench.mesh.test/bench';
const cpu = { off: [], metrics: [] };
async function run(name, n) {
  let next = 0;
  const dispatcher = agents[name];
  const start = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: C }, async () => { while (next++ < n) await (await request(URL_, { dispatcher })).body.arrayBuffer(); }));
  const used = process.cpuUsage(c0);
  cpu[name].push((used.user + used.system) / n);
  return n / ((performance.now() - start) / 1000);
}
await run('off', 3000);
await run('metrics', 3000);
cpu.off.length = cpu.metrics.length = 0;
const rps = { off: [], metrics: [] };
const ratios = [];
for (let r = 0; r < ROUNDS; r++) {
  const got = {};
  for (const name of r % 2 === 0 ? ['off', 'metrics'] : ['metrics', 'off']) got[name] = await run(name, N);
  rps.off.push(got.off);
  rps.metrics.push(got.metrics);
  ratios.push(got.metrics / got.off);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const { resourceMetrics } = await exporter.collect();
const recorded = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'istio_requests_total');
const total = recorded?.dataPoints.reduce((n, p) => n + p.value, 0) ?? 0;
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${N} requests per round, concurrency ${C}, ${ROUNDS} rounds (istio_requests_total recorded: ${total})`);
for (const name of ['off', 'metrics']) console.log(`  ${name.padEnd(8)} ${Math.round(median(rps[name]))} req/s   ${median(cpu[name]).toFixed(1)} µs client CPU per request`);
console.log(`metrics / off throughput, per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`);
const cpuRatios = cpu.off.map((o, i) => cpu.metrics[i] / o);
console.log(`metrics / off client CPU per request, per round: ${cpuRatios.map((x) => x.toFixed(3)).join(' ')}; median ${median(cpuRatios).toFixed(3)}`);
console.log(`client CPU overhead of metrics: ${((median(cpuRatios) - 1) * 100).toFixed(1)} % (median of per-round ratios)`);
for (const a of Object.values(agents)) await a.close();
plainMesh.close();
meteredMesh.close();
await provider.shutdown();
child.kill('SIGTERM');
process.exit(0);
