// EDS drop_overloads on the HTTP path (Envoy's router: a dropped request gets 503 with flag DO
// before any circuit breaker or host pick), against a real backend and the real control plane.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { seededRandom } from '@meshlet/core';
import { createMesh, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const HOST = 'drops.mesh.test';

describe('MeshAgent: EDS drop_overloads', () => {
  let cp: ControlPlane;
  let server: Server;
  let hits = 0;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/all', cluster: 'all' }, { prefix: '/half', cluster: 'half' }, { prefix: '/', cluster: 'none' }] }]),
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('all'), edsCluster('half'), edsCluster('none')]);
    const drop = (category: string, numerator: number) => ({ policy: { drop_overloads: [{ category, drop_percentage: { numerator, denominator: 'HUNDRED' } }] } });
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('all', [['127.0.0.1', port]], drop('shed', 100)),
      endpoints('half', [['127.0.0.1', port]], drop('throttle', 50)),
      endpoints('none', [['127.0.0.1', port]]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(7) });
    agent = new MeshAgent({ mesh });
    await mesh.target(`${HOST}:80`).ready();
  });

  afterAll(async () => {
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const outcome = (path: string): Promise<string> =>
    request(`http://${HOST}${path}`, { dispatcher: agent }).then(
      async (r) => `${r.statusCode} ${await r.body.text()}`,
      (e: unknown) => (e as { code?: string }).code ?? String(e),
    );

  it('drops every request of a 100 % category with DO (503), before it reaches the backend', async () => {
    const before = hits;
    const err = await request(`http://${HOST}/all`, { dispatcher: agent }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; responseFlag?: string; status?: number; message?: string },
    );
    expect(err).toMatchObject({ code: 'MESHLET_DROP_OVERLOAD', responseFlag: 'DO', status: 503 });
    expect(err?.message).toMatch(/category "shed"/);
    expect(hits).toBe(before);
  });

  it('drops about the configured share, and nothing where no category is set', async () => {
    const n = 400;
    const half = await Promise.all(Array.from({ length: n }, () => outcome('/half')));
    const dropped = half.filter((o) => o === 'MESHLET_DROP_OVERLOAD').length;
    // Binomial(400, 0.5): mean 200, sd 10.
    expect(dropped).toBeGreaterThanOrEqual(150);
    expect(dropped).toBeLessThanOrEqual(250);
    expect(half.filter((o) => o === '200 ok').length).toBe(n - dropped);
    const none = await Promise.all(Array.from({ length: 50 }, () => outcome('/')));
    expect(none.every((o) => o === '200 ok')).toBe(true);
  });
});
