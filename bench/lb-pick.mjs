#!/usr/bin/env node
// Micro-benchmark: ClusterLoadBalancer.pick() per policy over 100 hosts (equal and
// unequal weights; hash-based policies with a fresh request hash per pick), plus the
// build time of each picker and of a request hash. Prints ns/op and the machine;
// asserts nothing.
//   node bench/lb-pick.mjs [--hosts 100] [--iterations 1000000]
// Build first: node scripts/run.mjs build
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { buildClusterLoadBalancer, compileHashPolicies, headersFromRecord, seededRandom } from '@meshlet/core';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100' },
    iterations: { type: 'string', default: '1000000' },
  },
});
const n = Number(values.hosts);
const iterations = Number(values.iterations);

function endpoints(weighted) {
  const eps = [];
  for (let i = 0; i < n; i++) {
    eps.push({
      addresses: [{ host: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8080 }],
      hostname: '',
      healthStatus: 'HEALTHY',
      weight: weighted ? 1 + (i % 5) : 1,
      metadata: undefined,
    });
  }
  // Two localities of n/2 hosts.
  const half = Math.ceil(n / 2);
  const loc = (zone, list) => ({ locality: { region: 'r', zone, subZone: '' }, weight: 1, priority: 0, endpoints: list, metadata: undefined });
  return {
    clusterName: 'bench',
    priorities: [[loc('a', eps.slice(0, half)), loc('b', eps.slice(half))]],
    dropOverloads: [],
    overprovisioningFactor: 140,
    weightedPriorityHealth: false,
  };
}

function cluster(policy, localityWeighted = false) {
  return {
    name: 'bench',
    type: 'EDS',
    edsServiceName: undefined,
    lbPolicy: [policy],
    commonLbConfig: {
      healthyPanicThreshold: 50,
      localityWeightedLbConfig: localityWeighted,
      zoneAwareLbConfig: undefined,
      ignoreNewHostsUntilFirstHc: false,
      updateMergeWindow: 1000,
    },
  };
}

const POLICIES = [
  ['round_robin', { name: 'round_robin', config: {} }],
  ['least_request', { name: 'least_request', config: { choiceCount: 2, activeRequestBias: 1 } }],
  ['random', { name: 'random', config: {} }],
  ['ring_hash', { name: 'ring_hash', config: { minRingSize: 1024, maxRingSize: 8388608, hashFunction: 'XX_HASH' } }],
  ['maglev', { name: 'maglev', config: { tableSize: 65537 } }],
  ['pick_first', { name: 'pick_first', config: { shuffleAddressList: false } }],
];

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
console.log(`${n} hosts in 2 localities, ${iterations} picks per row`);

// Precomputed request hashes so the loop measures pick(), not hash generation.
const r = seededRandom(1);
const hashes = Array.from({ length: 4096 }, () => (BigInt(r.nextUint32()) << 32n) | BigInt(r.nextUint32()));
let sink = 0;

function run(label, lb, withHash, exclude) {
  const ctxs = withHash ? hashes.map((hash) => (exclude ? { hash, exclude } : { hash })) : [exclude ? { exclude } : {}];
  const mask = ctxs.length - 1;
  for (let i = 0; i < 20_000; i++) sink += lb.pick(ctxs[i & mask]).weight; // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += lb.pick(ctxs[i & mask]).weight;
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  console.log(`${label.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/op`);
}

for (const weighted of [false, true]) {
  for (const [name, policy] of POLICIES) {
    const t0 = process.hrtime.bigint();
    const lb = buildClusterLoadBalancer(cluster(policy), endpoints(weighted), { random: seededRandom(7) });
    const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const hashed = name === 'ring_hash' || name === 'maglev';
    run(`${name}${weighted ? ' (weights 1-5)' : ''} [build ${buildMs.toFixed(2)} ms]`, lb, hashed, undefined);
  }
}
{
  const lb = buildClusterLoadBalancer(cluster(POLICIES[0][1], true), endpoints(false), { random: seededRandom(7) });
  run('round_robin, locality weighted', lb, false, undefined);
  const ex = new Set([lb.hosts[0].key, lb.hosts[1].key]);
  run('round_robin, 2 hosts excluded', lb, false, ex);
}

// Request hash: one header policy and a cookie policy.
const hasher = compileHashPolicies([
  { kind: 'header', name: 'x-user', regexRewrite: undefined, terminal: false },
  { kind: 'cookie', name: 'sid', ttl: undefined, path: '/', terminal: false },
]);
const req = {
  method: 'GET',
  path: '/',
  authority: 'svc:80',
  scheme: 'http',
  headers: headersFromRecord({ 'x-user': 'alice@example.com', cookie: 'a=1; sid=0123456789abcdef' }),
};
{
  for (let i = 0; i < 20_000; i++) sink += Number(hasher(req) & 1n);
  const t0 = process.hrtime.bigint();
  const k = Math.min(iterations, 300_000);
  for (let i = 0; i < k; i++) sink += Number(hasher(req) & 1n);
  console.log(`${'request hash (header + cookie)'.padEnd(44)} ${(Number(process.hrtime.bigint() - t0) / k).toFixed(0).padStart(6)} ns/op`);
}
if (sink === 0) console.log('');
