// @meshlet/grpc routing (gRFC A28) through the real control plane to real grpc-js backends:
// path and header routing with gRPC's metadata rules, weighted clusters, cluster_header,
// calls that cannot be routed (statuses with Envoy flags), and lazy connections: a cluster
// the route table names but no call reaches is never connected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';
import { count, startConnectionCounter, startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'routing.grpc.test:8080';
const A = 'outbound|8080|a|routing.grpc.test';
const B = 'outbound|8080|b|routing.grpc.test';
const LAZY = 'outbound|8080|lazy|routing.grpc.test';
const ECHO = '/meshlet.test.EchoService/';

describe('@meshlet/grpc routing', () => {
  let env: GrpcMeshEnv;
  let a1: EchoBackend, a2: EchoBackend, b1: EchoBackend;
  let untouched: Awaited<ReturnType<typeof startConnectionCounter>>;
  let client: EchoCaller;

  beforeAll(async () => {
    [a1, a2, b1] = await Promise.all([startEchoBackend('a1'), startEchoBackend('a2'), startEchoBackend('b1')]);
    untouched = await startConnectionCounter();
    env = await startGrpcMesh({
      [TYPE_URLS.listener]: [listener(TARGET, 'rc-routing')],
      [TYPE_URLS.routeConfiguration]: [
        routeConfig('rc-routing', [
          {
            domains: [TARGET],
            routes: [
              // A28: a -bin header is never seen by a matcher, even when the call sends it.
              { prefix: '', headers: [{ name: 'x-route-bin', present_match: true }], cluster: B },
              { prefix: '', headers: [{ name: 'x-subset', string_match: { exact: 'b' } }], cluster: B },
              { prefix: '', headers: [{ name: 'x-multi', string_match: { exact: 'one,two' } }], cluster: B },
              // A28: content-type is application/grpc whatever the metadata says.
              { prefix: '', headers: [{ name: 'content-type', string_match: { exact: 'application/grpc' } }, { name: 'x-ct', present_match: true }], cluster: B },
              { prefix: '', headers: [{ name: 'x-split', present_match: true }], weighted: [[A, 3], [B, 1]] },
              { prefix: '', headers: [{ name: 'x-pick', present_match: true }], extra: { cluster_header: 'x-pick' } },
              { prefix: '/meshlet.test.LazyService/', cluster: LAZY },
              { path: `${ECHO}Echo`, headers: [{ name: 'x-missing-cluster', present_match: true }], cluster: 'outbound|1|nowhere|x' },
              { prefix: ECHO, cluster: A },
            ],
          },
        ]),
      ],
      [TYPE_URLS.cluster]: [edsCluster(A), edsCluster(B), edsCluster(LAZY)],
      [TYPE_URLS.clusterLoadAssignment]: [
        endpoints(A, [
          ['127.0.0.1', a1.port],
          ['127.0.0.1', a2.port],
        ]),
        endpoints(B, [['127.0.0.1', b1.port]]),
        endpoints(LAZY, [['127.0.0.1', untouched.port]]),
      ],
    }, { resourceDoesNotExistTimeoutMs: 300 });
    client = env.client(TARGET);
  });

  afterAll(async () => {
    await env?.close();
    await Promise.all([a1, a2, b1, untouched].map((b) => b?.close()));
  });

  it('routes by path and balances round robin over the ready endpoints', async () => {
    // Round robin picks among READY subchannels: once both have answered, every pair of
    // calls hits both.
    const seen = new Set<string>();
    for (let i = 0; i < 50 && seen.size < 2; i++) seen.add((await client.names(1))[0]!);
    expect(seen).toEqual(new Set(['a1', 'a2']));
    expect(count(await client.names(6))).toEqual({ a1: 3, a2: 3 });
  });

  it('matches headers on metadata with gRPC rules (-bin absent, content-type, joined values)', async () => {
    expect((await client.call('h', { metadata: { 'x-subset': 'b' } })).reply).toBe('b1:h');
    expect((await client.call('h', { metadata: { 'x-subset': 'c' } })).reply).toMatch(/^a[12]:h$/);
    expect((await client.call('bin', { metadata: { 'x-route-bin': Buffer.from([1, 2]) } })).reply).toMatch(/^a[12]:bin$/);
    expect((await client.call('ct', { metadata: { 'x-ct': '1' } })).reply).toBe('b1:ct');
    const md = new grpc.Metadata();
    md.add('x-multi', 'one');
    md.add('x-multi', 'two');
    const raw = client.client as grpc.Client & {
      Echo: (r: Buffer, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void;
    };
    const reply = await new Promise<string>((resolve, reject) => raw.Echo(Buffer.from('multi'), md, (e, r) => (e ? reject(e) : resolve(r!.toString()))));
    expect(reply).toBe('b1:multi');
  });

  it('splits weighted clusters per call (A28)', async () => {
    const names = await client.names(400, { metadata: { 'x-split': '1' } });
    const c = count(names);
    const toB = c['b1'] ?? 0;
    // 25 % expected; with 400 draws the share stays well within 15–35 %.
    expect(toB).toBeGreaterThan(60);
    expect(toB).toBeLessThan(140);
    expect((c['a1'] ?? 0) + (c['a2'] ?? 0) + toB).toBe(400);
  });

  it('takes the cluster from a header (cluster_header)', async () => {
    expect((await client.call('ch', { metadata: { 'x-pick': B } })).reply).toBe('b1:ch');
    expect((await client.call('ch', { metadata: { 'x-pick': A } })).reply).toMatch(/^a[12]:ch$/);
    const unknown = await client.call('ch', { metadata: { 'x-pick': 'no-such-cluster' } });
    expect(unknown.code).toBe(grpc.status.UNAVAILABLE);
    expect(unknown.details).toMatch(/^NC MESHLET_NO_CLUSTER: cluster "no-such-cluster"/);
  });

  it('fails a call with no route with UNAVAILABLE and the NR flag', async () => {
    const other = env.client(TARGET);
    const raw = other.client as grpc.Client;
    const status = await new Promise<grpc.ServiceError>((resolve) =>
      raw.makeUnaryRequest('/other.Service/Method', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('x'), (err) => resolve(err!)),
    );
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.details).toMatch(/^NR MESHLET_NO_ROUTE: no route for \/other\.Service\/Method on routing\.grpc\.test:8080 in virtual host "vh0"/);
  });

  it('fails a call routed to a cluster the configuration lacks with NC', async () => {
    const r = await client.call('nc', { metadata: { 'x-missing-cluster': '1' } });
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('NC MESHLET_NO_CLUSTER: cluster "outbound|1|nowhere|x"');
  });

  it('never connects to a cluster that no call was routed to', async () => {
    await client.names(20);
    // The route table names LAZY and its endpoint listens; no call went there.
    expect(untouched.connections).toBe(0);
    expect(a1.calls + a2.calls).toBeGreaterThan(0);
  });
});
