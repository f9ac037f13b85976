// Config changes and control plane restarts under load never fail a call (DESIGN.md: an
// update never drops a request in flight; a control plane that goes away leaves the last
// good config in force). Several loops of calls run against real backends while the route,
// the clusters and the endpoints change, and while the control plane stops and comes back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type CallResult, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'updates.grpc.test:8080';
const A = 'outbound|8080|a|updates.grpc.test';
const B = 'outbound|8080|b|updates.grpc.test';
const ECHO = '/meshlet.test.EchoService/';

/** `loops` callers in parallel until stopped; every result is kept. */
function runLoad(client: EchoCaller, loops: number): { results: CallResult[]; stop(): Promise<void> } {
  const results: CallResult[] = [];
  let running = true;
  const workers = Array.from({ length: loops }, async (_, w) => {
    for (let i = 0; running; i++) results.push(await client.call(`w${w}-${i}`, { metadata: { 'x-delay-ms': '2' } }));
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Call until a reply comes from `backend` (every call must succeed on the way). */
async function untilReply(client: EchoCaller, metadata: Record<string, string>, backend: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await client.call(`probe${i}`, { metadata });
    if (!r.ok) throw new Error(`probe failed: ${grpc.status[r.code]} ${r.details}`);
    if (r.reply.startsWith(`${backend}:`)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`no reply from ${backend}`);
}

function failures(results: readonly CallResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => `${grpc.status[r.code]}: ${r.details}`);
}

describe('@meshlet/grpc under config changes', () => {
  let env: GrpcMeshEnv;
  let a1: BehaviorBackend, a2: BehaviorBackend, b1: BehaviorBackend, b2: BehaviorBackend, b3: BehaviorBackend;

  beforeAll(async () => {
    [a1, a2, b1, b2, b3] = (await Promise.all(['a1', 'a2', 'b1', 'b2', 'b3'].map((n) => startBehaviorBackend(n)))) as [BehaviorBackend, BehaviorBackend, BehaviorBackend, BehaviorBackend, BehaviorBackend];
    env = await startGrpcMesh({
      [TYPE_URLS.listener]: [listener(TARGET, 'rc-updates')],
      [TYPE_URLS.routeConfiguration]: [routeConfig('rc-updates', [{ domains: [TARGET], routes: [{ prefix: ECHO, cluster: A }] }])],
      [TYPE_URLS.cluster]: [edsCluster(A), edsCluster(B)],
      [TYPE_URLS.clusterLoadAssignment]: [
        endpoints(A, [
          ['127.0.0.1', a1.port],
          ['127.0.0.1', a2.port],
        ]),
        endpoints(B, [
          ['127.0.0.1', b1.port],
          ['127.0.0.1', b2.port],
        ]),
      ],
    });
  });

  afterAll(async () => {
    await env?.close();
    await Promise.all([a1, a2, b1, b2, b3].map((b) => b?.close()));
  });

  it('fails no call while routes, clusters and endpoints change', async () => {
    const client = env.client(TARGET);
    await client.names(1);
    const load = runLoad(client, 6);
    const cp = env.cp;
    await until('calls on A', () => a1.calls + a2.calls > 30);
    // The route moves to B.
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc-updates', [{ domains: [TARGET], routes: [{ prefix: ECHO, cluster: B }] }])]);
    await until('calls on B', () => b1.calls + b2.calls > 30);
    // A leaves the configuration altogether; B's endpoints are replaced one by one.
    cp.setResources(TYPE_URLS.cluster, [edsCluster(B)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(B, [
        ['127.0.0.1', b2.port],
        ['127.0.0.1', b3.port],
      ]),
    ]);
    await until('calls on b3', () => b3.calls > 20);
    const b1Calls = b1.calls;
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints(B, [['127.0.0.1', b3.port]])]);
    // A comes back, and the route splits between A and B.
    cp.setResources(TYPE_URLS.cluster, [edsCluster(A), edsCluster(B)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(A, [['127.0.0.1', a1.port]]),
      endpoints(B, [['127.0.0.1', b3.port]]),
    ]);
    const a1Calls = a1.calls;
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-updates', [{ domains: [TARGET], routes: [{ prefix: ECHO, weighted: [[A, 1], [B, 1]] }] }]),
    ]);
    await until('calls on A again', () => a1.calls > a1Calls + 20);
    // The Listener itself changes (a new route configuration name).
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-updates', [{ domains: [TARGET], routes: [{ prefix: ECHO, weighted: [[A, 1], [B, 1]] }] }]),
      routeConfig('rc-updates-2', [{ domains: [TARGET], routes: [{ prefix: ECHO, cluster: A }] }]),
    ]);
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc-updates-2')]);
    let mark = a1.calls;
    await until('calls on A through the new route configuration', () => a1.calls > mark + 30);
    const b3Calls = b3.calls;
    mark = a1.calls;
    await until('more calls on A', () => a1.calls > mark + 30);
    expect(b3.calls).toBe(b3Calls);
    await load.stop();
    expect(failures(load.results)).toEqual([]);
    expect(load.results.length).toBeGreaterThan(100);
    // b1 left B's endpoints: it got no call once the update was in force.
    expect(b1.calls - b1Calls).toBeLessThanOrEqual(6);
    expect(env.cp.nacks()).toHaveLength(0);
  });

  it('lets calls in flight finish on a cluster that an update removes', async () => {
    const client = env.client(TARGET);
    const cp = env.cp;
    cp.setResources(TYPE_URLS.cluster, [edsCluster(A), edsCluster(B)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints(A, [['127.0.0.1', a1.port]]), endpoints(B, [['127.0.0.1', b3.port]])]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-updates-2', [
        { domains: [TARGET], routes: [{ prefix: ECHO, headers: [{ name: 'x-to-b', present_match: true }], cluster: B }, { prefix: ECHO, cluster: A }] },
      ]),
    ]);
    await untilReply(client, { 'x-to-b': '1' }, 'b3');
    // Calls on B that have their response headers (so grpc-js has committed them) but not yet their message.
    const inFlight = Array.from({ length: 5 }, (_, i) =>
      client.call(`slow${i}`, { metadata: { 'x-to-b': '1', 'x-delay-ms': '800', 'x-headers-first': '1' } }),
    );
    await b3.waitInFlight(5);
    await new Promise((r) => setTimeout(r, 50));
    // B leaves the route table and the cluster list.
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc-updates-2', [{ domains: [TARGET], routes: [{ prefix: ECHO, cluster: A }] }])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster(A)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints(A, [['127.0.0.1', a1.port]])]);
    // The update is in force (B's connections are being closed) while the five are still open.
    await untilReply(client, { 'x-to-b': '1' }, 'a1');
    expect(b3.inFlight).toBe(5);
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.reply)).toEqual([0, 1, 2, 3, 4].map((i) => `b3:slow${i}`));
  });

  it('fails no call while the control plane restarts; a new channel works during the outage', async () => {
    const client = env.client(TARGET);
    await client.names(1);
    const load = runLoad(client, 4);
    const cp = env.cp;
    const seen = load.results.length;
    await until('load running', () => load.results.length > seen + 20);
    await cp.stop();
    const during = load.results.length;
    await until('calls during the outage', () => load.results.length > during + 50);
    // A channel created while the control plane is down resolves from the mesh's last good config.
    const fresh = env.client(TARGET);
    expect((await fresh.call('fresh')).ok).toBe(true);
    const acks = cp.acks(TYPE_URLS.clusterLoadAssignment).length;
    await cp.start();
    await until('the mesh to reconnect', () => cp.acks(TYPE_URLS.clusterLoadAssignment).length > acks, 15_000);
    // The restarted control plane's updates apply: move A to a2.
    const a2Calls = a2.calls;
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(A, [['127.0.0.1', a2.port]]),
      endpoints(B, [['127.0.0.1', b3.port]]),
    ]);
    await until('calls on a2 after the restart', () => a2.calls > a2Calls + 20);
    await load.stop();
    expect(failures(load.results)).toEqual([]);
  });
});
