#!/usr/bin/env node
// Benchmark: what telemetry costs on the client's HTTP path (issue 6). MeshAgent on the same
// backend and control plane (bench/lib/serve-http.mjs), each variant in its own process:
//   off         no telemetry (nothing registered: the recorder is never made)
//   inprocess   Istio's metrics aggregated in process (`telemetry: { prometheus: true }`,
//               what the admin endpoint's /stats/prometheus serves)
//   sdk         Istio's metrics into an OpenTelemetry SDK MeterProvider (sdk-metrics with a
//               Prometheus exporter attached, not scraped)
//   producer    the same SDK reader taking Istio's metrics from the in-process aggregation
//               (`metricProducers: [mesh.telemetry.metricProducer()]`): no API instruments
//   inprocess-nomx  the in-process aggregation without Istio's metadata exchange headers
//               (`metadataExchange: false`): what recording costs apart from the two headers
// undici.request, concurrency 32, rounds rotating; the figures are the medians of the
// per-round ratios (bench/lib/ab-run.mjs).
//   node bench/telemetry-client-overhead.mjs [--requests 10000] [--rounds 9] [--pin] [--kinds a,b,...]
import { parseArgs } from 'node:util';
import { runAB } from './lib/ab-run.mjs';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '9' }, pin: { type: 'boolean', default: false }, kinds: { type: 'string' } },
});
const ALL = ['telemetry-off', 'telemetry-inprocess', 'telemetry-sdk', 'telemetry-producer', 'telemetry-inprocess-nomx'];
const kinds = values.kinds ? values.kinds.split(',') : ALL;
for (const k of kinds) if (!ALL.includes(k)) throw new Error(`--kinds: "${k}" is not one of ${ALL.join(', ')}`);
await runAB({
  server: './serve-http.mjs',
  kinds,
  labels: {
    'telemetry-off': 'off',
    'telemetry-inprocess': 'in-process aggregation',
    'telemetry-sdk': 'OpenTelemetry SDK MeterProvider',
    'telemetry-producer': 'SDK reader + meshlet MetricProducer',
    'telemetry-inprocess-nomx': 'in-process aggregation, no metadata exchange',
  },
  pairs: [
    ['telemetry-inprocess', 'telemetry-off'],
    ['telemetry-sdk', 'telemetry-off'],
    ['telemetry-producer', 'telemetry-off'],
    ['telemetry-inprocess-nomx', 'telemetry-off'],
  ].filter(([a, b]) => kinds.includes(a) && kinds.includes(b)),
  rounds: Number(values.rounds),
  requests: Number(values.requests),
  pin: values.pin,
});
process.exit(0);
