// Mirroring and priority failover through meshFetch, end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { seededRandom } from '@meshlet/core';
import { createMesh, createMeshFetch } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startHttpBackend, type HttpBackend, type Seen } from './helpers/http-backend.js';

const API = 'svc3.mesh.test';

describe('meshFetch: mirrors and priorities', () => {
  let cp: ControlPlane;
  let main: HttpBackend;
  let shadow: HttpBackend;
  let p0: HttpBackend;
  let p1: HttpBackend;
  let mesh: ReturnType<typeof createMesh>;
  let fetchM: ReturnType<typeof createMeshFetch>;

  const priorities = (p0Health: string) =>
    endpoints('tiered', [], {
      endpoints: [
        { priority: 0, locality: { zone: 'a' }, load_balancing_weight: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p0.port } } }, health_status: p0Health }] },
        { priority: 1, locality: { zone: 'b' }, load_balancing_weight: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p1.port } } }, health_status: 'HEALTHY' }] },
      ],
    });

  beforeAll(async () => {
    [main, shadow, p0, p1] = (await Promise.all(['main', 'shadow', 'p0', 'p1'].map((n) => startHttpBackend(n)))) as [HttpBackend, HttpBackend, HttpBackend, HttpBackend];
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc3')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc3',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              { match: { prefix: '/tiered' }, route: { cluster: 'tiered' } },
              { match: { prefix: '/' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow' }] } },
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('main'), edsCluster('shadow'), edsCluster('tiered')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('main', [['127.0.0.1', main.port]]),
      endpoints('shadow', [['127.0.0.1', shadow.port]]),
      priorities('HEALTHY'),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(5) });
    fetchM = createMeshFetch({ mesh });
  });

  afterAll(async () => {
    await fetchM?.agent.close();
    mesh?.close();
    await cp?.stop();
    await Promise.all([main, shadow, p0, p1].map((b) => b?.close()));
  });

  it('mirrors a copy to the shadow cluster with "-shadow" on the host, and answers from the main one', async () => {
    const res = await fetchM(`http://${API}/orders?id=1`);
    expect(((await res.json()) as Seen).backend).toBe('main');
    for (let i = 0; i < 50 && shadow.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(shadow.seen).toHaveLength(1);
    expect(shadow.seen[0]).toMatchObject({ method: 'GET', url: '/orders?id=1' });
    expect(shadow.seen[0]!.headers.host).toBe(`${API}-shadow`);
    // A buffered body is mirrored too (undici.request with a string body).
    const r2 = await request(`http://${API}/orders`, { dispatcher: fetchM.agent, method: 'POST', body: 'payload' });
    expect(((await r2.body.json()) as Seen).body).toBe('payload');
    for (let i = 0; i < 50 && shadow.seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(shadow.seen[1]).toMatchObject({ method: 'POST', body: 'payload' });
    // fetch streams its body: the tee keeps a copy for the mirror.
    const r3 = await fetchM(`http://${API}/orders`, { method: 'PUT', body: 'streamed' });
    expect(((await r3.json()) as Seen).body).toBe('streamed');
    for (let i = 0; i < 50 && shadow.seen.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(shadow.seen[2]).toMatchObject({ method: 'PUT', body: 'streamed' });
  });

  it('never fails the request when the mirror cannot be reached', async () => {
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints('shadow', [['127.0.0.1', 1]])]);
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetchM(`http://${API}/still-fine`);
    expect(((await res.json()) as Seen).backend).toBe('main');
  });

  it('fails over to priority 1 when priority 0 turns unhealthy, and back', async () => {
    const backendOf = async () => ((await (await fetchM(`http://${API}/tiered`)).json()) as Seen).backend;
    expect(await backendOf()).toBe('p0');
    const target = mesh.target(`${API}:80`);
    const next = () => new Promise<void>((resolve) => { const off = target.onChange(() => { off(); resolve(); }); });
    let changed = next();
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [priorities('UNHEALTHY')]);
    await changed;
    const during = new Set<string>();
    for (let i = 0; i < 10; i++) during.add(await backendOf());
    expect(during).toEqual(new Set(['p1']));
    changed = next();
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [priorities('HEALTHY')]);
    await changed;
    expect(await backendOf()).toBe('p0');
  });
});
