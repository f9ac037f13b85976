#!/usr/bin/env node
// Benchmark: the HTTP request path (issue 3). One local HTTP server and meshlet's control
// plane (bench/lib/serve-http.mjs: one Listener → one route → one EDS cluster whose only
// endpoint is that server), concurrency 32, each client in its own process, rounds rotating:
//   raw undici.request (plain Agent)           vs  undici.request through MeshAgent
//   raw undici.request with the mesh's Host    vs  undici.request through MeshAgent
//   global fetch                               vs  meshFetch
// The figures are the medians of the per-round ratios (bench/lib/ab-run.mjs).
//   node bench/http-path.mjs [--requests 10000] [--rounds 9] [--pin] [--kinds raw,mesh,...]
// (--kinds raw-host,raw-host-mx: what Istio's two metadata exchange headers cost raw undici
// and the server, which shares the machine)
import { parseArgs } from 'node:util';
import { runAB } from './lib/ab-run.mjs';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '9' }, pin: { type: 'boolean', default: false }, kinds: { type: 'string' } } });
const all = ['raw', 'raw-host', 'mesh', 'fetch', 'meshFetch'];
const kinds = values.kinds ? values.kinds.split(',') : all;
await runAB({
  server: './serve-http.mjs',
  kinds,
  labels: {
    raw: 'undici.request (Agent)',
    'raw-host': 'undici.request (Agent, Host header)',
    mesh: 'undici.request (MeshAgent)',
    fetch: 'global fetch',
    meshFetch: 'meshFetch',
    'raw-host-mx': 'undici.request (Agent, Host + Istio exchange headers)',
  },
  pairs: [
    ['mesh', 'raw'],
    ['mesh', 'raw-host'],
    ['meshFetch', 'fetch'],
    ['raw-host-mx', 'raw-host'],
  ].filter(([a, b]) => kinds.includes(a) && kinds.includes(b)),
  rounds: Number(values.rounds),
  requests: Number(values.requests),
  pin: values.pin,
});
process.exit(0);
