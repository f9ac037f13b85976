// meshFetch and MeshAgent end to end: the real control plane, real HTTP backends on
// loopback, the real undici stack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { seededRandom } from '@meshlet/core';
import { createMesh, createMeshFetch, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startHttpBackend, type HttpBackend, type Seen } from './helpers/http-backend.js';

const API = 'api.mesh.test';

describe('meshFetch and MeshAgent', () => {
  let cp: ControlPlane;
  let a: HttpBackend;
  let b1: HttpBackend;
  let b2: HttpBackend;
  let mesh: ReturnType<typeof createMesh>;
  let fetchM: ReturnType<typeof createMeshFetch>;

  const rc = (weights: [number, number]) => ({
    '@type': TYPE_URLS.routeConfiguration,
    name: 'rc-api',
    virtual_hosts: [
      {
        name: 'api',
        domains: [API, `${API}:80`],
        response_headers_to_add: [{ header: { key: 'x-vhost', value: 'api' } }],
        routes: [
          { match: { prefix: '/static' }, direct_response: { status: 200, body: { inline_string: 'static ok' } } },
          { match: { prefix: '/old' }, redirect: { path_redirect: '/new', response_code: 'FOUND' } },
          { match: { prefix: '/none' }, route: { cluster: 'ghost' } },
          {
            match: { prefix: '/', headers: [{ name: 'x-version', string_match: { exact: 'v2' } }] },
            route: { cluster: 'b', prefix_rewrite: '/v2/' },
            request_headers_to_add: [{ header: { key: 'x-routed', value: 'by-header' } }],
          },
          { match: { prefix: '/split' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: weights[0] }, { name: 'b', weight: weights[1] }] } } },
          { match: { prefix: '/' }, route: { cluster: 'a' } },
        ],
      },
    ],
  });

  beforeAll(async () => {
    [a, b1, b2] = await Promise.all([startHttpBackend('a'), startHttpBackend('b1'), startHttpBackend('b2')]);
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc-api')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [rc([80, 20])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('a'), edsCluster('b'), edsCluster('ghost')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('a', [['127.0.0.1', a.port]]),
      endpoints('b', [['127.0.0.1', b1.port], ['127.0.0.1', b2.port]]),
      endpoints('ghost', [], { endpoints: [] }),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(42), resourceDoesNotExistTimeoutMs: 300 });
    fetchM = createMeshFetch({ mesh });
  });

  afterAll(async () => {
    await fetchM?.agent.close();
    mesh?.close();
    await cp?.stop();
    await Promise.all([a, b1, b2].map((s) => s?.close()));
  });

  async function get(path: string, init?: RequestInit): Promise<Seen> {
    const res = await fetchM(`http://${API}${path}`, init as never);
    expect(res.status).toBe(200);
    return (await res.json()) as Seen;
  }

  it('routes by prefix to the cluster\'s endpoint, with the authority the caller used', async () => {
    const seen = await get('/hello?x=1');
    expect(seen.backend).toBe('a');
    expect(seen.url).toBe('/hello?x=1');
    expect(seen.headers.host).toBe(API);
  });

  it('routes by header, rewrites the prefix and adds headers both ways', async () => {
    const res = await fetchM(`http://${API}/items/7`, { headers: { 'x-version': 'v2' } });
    const seen = (await res.json()) as Seen;
    expect(['b1', 'b2']).toContain(seen.backend);
    expect(seen.url).toBe('/v2/items/7');
    expect(seen.headers['x-routed']).toBe('by-header');
    expect(seen.headers['x-envoy-original-path']).toBe('/items/7');
    expect(res.headers.get('x-vhost')).toBe('api');
  });

  it('splits by weight within statistical bounds and balances round robin', async () => {
    const counts: Record<string, number> = { a: 0, b1: 0, b2: 0 };
    for (let i = 0; i < 400; i++) counts[(await get('/split/x')).backend]!++;
    // 80/20 of 400: a ≈ 320 (σ = 8); b's 80 alternate between b1 and b2.
    expect(counts.a).toBeGreaterThan(290);
    expect(counts.a).toBeLessThan(350);
    expect(Math.abs(counts.b1! - counts.b2!)).toBeLessThanOrEqual(1);
  });

  it('answers direct responses and redirects itself', async () => {
    const direct = await fetchM(`http://${API}/static`);
    expect(direct.status).toBe(200);
    expect(await direct.text()).toBe('static ok');
    expect(direct.headers.get('x-vhost')).toBe('api');
    const redirect = await fetchM(`http://${API}/old/page`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe(`http://${API}/new`);
  });

  it('fails with Envoy-flag codes: no healthy upstream (UH), no route (NR)', async () => {
    const err = await fetchM(`http://${API}/none`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error & { cause?: { code?: string; responseFlag?: string } }).cause).toMatchObject({
      code: 'MESHLET_NO_HEALTHY_UPSTREAM',
      responseFlag: 'UH',
    });
    const nr = await request(`http://${API}/x`, { dispatcher: fetchM.agent, headers: { host: 'elsewhere.test' } }).catch((e: Error) => e);
    expect(nr).toMatchObject({ code: 'MESHLET_NO_ROUTE', responseFlag: 'NR' });
  });

  it('works as a Dispatcher for undici.request', async () => {
    const res = await request(`http://${API}/via-request`, { dispatcher: fetchM.agent, headers: { 'x-version': 'v2' } });
    const seen = (await res.body.json()) as Seen;
    expect(seen.url).toBe('/v2/via-request');
    // undici.request's handler is of the older style: response mutations apply to it too.
    expect(res.headers['x-vhost']).toBe('api');
  });

  it('passes unknown hosts through (ALLOW_ANY) and refuses them under REGISTRY_ONLY', async () => {
    const direct = await fetchM(`http://127.0.0.1:${a.port}/plain`);
    expect(((await direct.json()) as Seen).url).toBe('/plain');
    const strict = new MeshAgent({ mesh, outboundTrafficPolicy: 'REGISTRY_ONLY' });
    const err = await request(`http://127.0.0.1:${a.port}/plain`, { dispatcher: strict }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'MESHLET_REGISTRY_ONLY', responseFlag: 'NR' });
    await strict.close();
    expect(() => new MeshAgent({ outboundTrafficPolicy: 'SOMETIMES' as never })).toThrow(/MeshAgent option outboundTrafficPolicy/);
  });

  it('drops no request while the split changes under load', async () => {
    const inflight: Promise<Seen>[] = [];
    for (let i = 0; i < 200; i++) {
      inflight.push(get('/split/load'));
      if (i === 50) cp.setResources(TYPE_URLS.routeConfiguration, [rc([0, 100])]);
      if (i === 120) cp.setResources(TYPE_URLS.routeConfiguration, [rc([100, 0])]);
    }
    const results = await Promise.all(inflight);
    expect(results).toHaveLength(200);
    cp.setResources(TYPE_URLS.routeConfiguration, [rc([80, 20])]);
  });
});
