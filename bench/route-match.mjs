#!/usr/bin/env node
// Micro-benchmark: route() over a compiled table of N routes (one virtual host,
// Istio-like prefix routes, every tenth with a header matcher), for a request that
// matches the first, the middle and the last route, and one that matches none.
// --shared-prefix puts every route under /api/v1/ (one deep trie branch).
// Prints ns per route() call and the machine; asserts nothing.
//   node bench/route-match.mjs [--routes 10000] [--iterations 200000] [--shared-prefix]
// Build first: node scripts/run.mjs build
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { compileRouteTable, headersFromRecord, seededRandom } from '@meshlet/core';
import { routeConfigurationResourceType, TYPE_URLS } from '@meshlet/xds-client';
import { anyFromProto3Json } from '@meshlet/xds-client/proto-json';

const { values } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    iterations: { type: 'string', default: '200000' },
    'shared-prefix': { type: 'boolean', default: false },
  },
});
const n = Number(values.routes);
const iterations = Number(values.iterations);
const base = values['shared-prefix'] ? '/api/v1' : '';

const routes = [];
for (let i = 0; i < n; i++) {
  const match = { prefix: `${base}/svc-${i}/` };
  if (i % 10 === 5) match.headers = [{ name: 'x-version', string_match: { exact: 'v2' } }];
  routes.push({ name: `r${i}`, match, route: { cluster: `cluster-${i}`, timeout: '5s' } });
}
const decoded = routeConfigurationResourceType.decode(
  { serverFeatures: [] },
  anyFromProto3Json({
    '@type': TYPE_URLS.routeConfiguration,
    name: 'bench',
    virtual_hosts: [{ name: 'vh', domains: ['bench.svc', 'bench.svc:80'], routes }],
  }),
);
if (decoded.error) throw new Error(decoded.error);

let t0 = process.hrtime.bigint();
const table = compileRouteTable(decoded.value);
const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;

const random = seededRandom(1);
const req = (path) => ({
  method: 'GET',
  path,
  authority: 'bench.svc',
  scheme: 'http',
  headers: headersFromRecord({ 'x-version': 'v1', accept: '*/*' }),
});
const cases = [
  ['early (route 0)', req(`${base}/svc-0/items?id=1`)],
  [`middle (route ${n >> 1})`, req(`${base}/svc-${n >> 1}/items?id=1`)],
  [`late (route ${n - 1})`, req(`${base}/svc-${n - 1}/items?id=1`)],
  ['no match', req(`${base}/nothing/here`)],
];

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`route table: ${n} routes${base ? ` under ${base}/` : ''}, compiled in ${compileMs.toFixed(1)} ms`);
let sink = 0;
for (const [label, r] of cases) {
  // Fewer iterations for the slow cases keep the run short; warm up first.
  const expected = table.route(r, random).kind;
  const iters = label.startsWith('early') ? iterations : Math.max(1000, Math.floor(iterations / 20));
  for (let i = 0; i < Math.min(iters, 5000); i++) sink += table.route(r, random).kind.length;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) sink += table.route(r, random).kind.length;
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  console.log(`${label.padEnd(20)} ${expected.padEnd(9)} ${ns.toFixed(0).padStart(9)} ns/op  (${iters} iterations)`);
}
if (sink === 0) console.log('');
