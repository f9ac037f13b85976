// @grpc/grpc-js-xds (scheme `xds`) and @meshlet/grpc (another scheme) in one process, against
// one control plane: both route the same calls to the same backends, neither disturbs the
// other, and only grpc-js-xds connects to a cluster no call uses. @meshlet/grpc also runs on
// the process-wide mesh, bootstrapped from GRPC_XDS_BOOTSTRAP_CONFIG as grpc-js-xds is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpcXds from '@grpc/grpc-js-xds';
import { ControlPlane } from '@meshlet/control-plane';
import { closeDefaultMesh, createMesh, type Mesh } from '@meshlet/core';
import { register } from '@meshlet/grpc';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';
import { count, echoCaller, startConnectionCounter, type EchoCaller } from './helpers/grpc-mesh.js';

const TARGET = 'both.grpc.test:8080';
const A = 'outbound|8080|a|both.grpc.test';
const B = 'outbound|8080|b|both.grpc.test';
const IDLE = 'outbound|8080|idle|both.grpc.test';
// A target only meshlet channels resolve (until the last check), so any connection to its idle
// cluster is meshlet's, whatever channels were opened before.
const ONLY = 'only.grpc.test:8080';
const ONLY_IDLE = 'outbound|8080|idle|only.grpc.test';

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe('@grpc/grpc-js-xds and @meshlet/grpc side by side', () => {
  let cp: ControlPlane;
  let a1: EchoBackend, a2: EchoBackend, b1: EchoBackend;
  let idle: Awaited<ReturnType<typeof startConnectionCounter>>;
  let onlyIdle: Awaited<ReturnType<typeof startConnectionCounter>>;
  let mesh: Mesh;
  const clients: EchoCaller[] = [];
  const client = (target: string): EchoCaller => {
    const c = echoCaller(target);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    [a1, a2, b1] = await Promise.all([startEchoBackend('a1'), startEchoBackend('a2'), startEchoBackend('b1')]);
    [idle, onlyIdle] = await Promise.all([startConnectionCounter(), startConnectionCounter()]);
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(TARGET, 'rc-both'), listener(ONLY, 'rc-only')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-both', [
        {
          domains: [TARGET],
          routes: [
            { prefix: '', headers: [{ name: 'x-subset', string_match: { exact: 'b' } }], cluster: B },
            { prefix: '/meshlet.test.IdleService/', cluster: IDLE },
            { prefix: '/meshlet.test.EchoService/', cluster: A },
          ],
        },
      ]),
      routeConfig('rc-only', [
        {
          domains: [ONLY],
          routes: [
            { prefix: '/meshlet.test.IdleService/', cluster: ONLY_IDLE },
            { prefix: '/meshlet.test.EchoService/', cluster: A },
          ],
        },
      ]),
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster(A), edsCluster(B), edsCluster(IDLE), edsCluster(ONLY_IDLE)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(A, [
        ['127.0.0.1', a1.port],
        ['127.0.0.1', a2.port],
      ]),
      endpoints(B, [['127.0.0.1', b1.port]]),
      endpoints(IDLE, [['127.0.0.1', idle.port]]),
      endpoints(ONLY_IDLE, [['127.0.0.1', onlyIdle.port]]),
    ]);
    const bootstrap = bootstrapFor(address, 'sidecar~127.0.0.1~both.default~default.svc.cluster.local');
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(bootstrap);
    grpcXds.register();
    mesh = createMesh({ bootstrap });
    register({ scheme: 'meshlet-xds', mesh });
    register({ scheme: 'meshlet-default' }); // the process-wide mesh, from the environment
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    mesh?.close();
    closeDefaultMesh();
    delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
    await cp?.stop();
    await Promise.all([a1, a2, b1, idle, onlyIdle].map((b) => b?.close()));
  });

  it('routes the same calls the same way through both libraries', async () => {
    for (const scheme of ['meshlet-xds', 'xds', 'meshlet-default']) {
      const c = client(`${scheme}:///${TARGET}`);
      // Both balance round robin over READY subchannels: warm up until both have answered.
      const seen = new Set<string>();
      for (let i = 0; i < 50 && seen.size < 2; i++) seen.add((await c.names(1))[0]!);
      expect(seen, scheme).toEqual(new Set(['a1', 'a2']));
      expect(count(await c.names(4)), scheme).toEqual({ a1: 2, a2: 2 });
      expect((await c.call('h', { metadata: { 'x-subset': 'b' } })).reply, scheme).toBe('b1:h');
    }
  });

  it('leaves the unused cluster unconnected under meshlet only', async () => {
    // grpc-js-xds connects to every endpoint of every cluster the route table names.
    expect(await until(() => idle.connections > 0)).toBe(true);
    // meshlet, on either mesh, connects only the clusters calls are routed to. Counting TARGET's
    // idle cluster would prove nothing: it is connected already (by grpc-js-xds, and by any
    // meshlet channel opened before), and grpc-js shares a subchannel among channels with the
    // same address and options, so a new one would add no connection. ONLY has had no channel.
    for (const scheme of ['meshlet-xds', 'meshlet-default']) {
      const names = await client(`${scheme}:///${ONLY}`).names(10);
      expect(names.every((n) => n === 'a1' || n === 'a2'), scheme).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(onlyIdle.connections).toBe(0);
    // The same route table under grpc-js-xds: the idle cluster is named, reachable, and connected.
    await client(`xds:///${ONLY}`).names(2);
    expect(await until(() => onlyIdle.connections > 0)).toBe(true);
  });

  it('keeps both working when one library closes its channels', async () => {
    const x = client(`xds:///${TARGET}`);
    const m = client(`meshlet-xds:///${TARGET}`);
    await x.names(2);
    await m.names(2);
    x.close();
    expect((await m.names(4)).every((n) => n === 'a1' || n === 'a2')).toBe(true);
    const x2 = client(`xds:///${TARGET}`);
    expect((await x2.names(2)).length).toBe(2);
  });
});
