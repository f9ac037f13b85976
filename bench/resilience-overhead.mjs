#!/usr/bin/env node
// Benchmark: what a full resilience policy costs when nothing fails (issue 4). Two targets
// served by the same backend (bench/lib/serve-policies.mjs): plain.mesh.test (route →
// cluster, timeout off) and policy.mesh.test (the same with a retry policy, per-try and
// overall timeouts, circuit breakers and outlier detection). undici.request through MeshAgent,
// concurrency 32, each target's client in its own process, rounds alternating; the figures
// are the medians of the per-round ratios (bench/lib/ab-run.mjs).
//   node bench/resilience-overhead.mjs [--requests 10000] [--rounds 9] [--pin]
import { parseArgs } from 'node:util';
import { runAB } from './lib/ab-run.mjs';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '9' }, pin: { type: 'boolean', default: false } } });
await runAB({
  server: './serve-policies.mjs',
  kinds: ['plain', 'policy'],
  pairs: [['policy', 'plain']],
  rounds: Number(values.rounds),
  requests: Number(values.requests),
  pin: values.pin,
});
process.exit(0);
