// Envoy's timeouts on every routed HTTP request (issue 4), on an injected clock: the default
// 15 s route timeout where the route sets none, the route timeout covering the response body,
// per-request x-envoy-upstream-rq-timeout-ms, and max_stream_duration (flag DT).
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, MeshAgent } from '@meshlet/http';
import { ManualClock, TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';


const HOST = 'timeouts.mesh.test';

describe('MeshAgent: timeouts on every request', () => {
  let cp: ControlPlane;
  let server: Server;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  const clock = new ManualClock();
  const open = new Set<ServerResponse>();
  let seen = 0;
  let lastHeaders: Record<string, unknown> = {};

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen++;
      lastHeaders = req.headers;
      open.add(res);
      if (req.url?.includes('-body')) {
        // Headers now, the body never.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
      }
      // Otherwise: hang.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc-t')]);
    const r = (prefix: string, action: Record<string, unknown>) => ({ match: { prefix }, route: { cluster: 'hang', ...action } });
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-t',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              r('/default', {}),
              r('/disabled', { timeout: '0s' }),
              r('/route-body', { timeout: '1s' }),
              r('/msd-body', { max_stream_duration: { max_stream_duration: '2s' } }),
              r('/msd', { max_stream_duration: { max_stream_duration: '3s' } }),
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('hang')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('hang', [['127.0.0.1', port]])]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), clock });
    agent = new MeshAgent({ mesh });
    await mesh.target(`${HOST}:80`).ready();
  });

  afterAll(async () => {
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Wait until the backend has seen `n` more requests than `before`. */
  const reached = async (before: number, n = 1): Promise<void> => {
    for (let i = 0; i < 500 && seen - before < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(seen - before).toBe(n);
  };
  const settled = <T>(p: Promise<T>) => {
    const state: { done: boolean; error?: { code?: string; responseFlag?: string; status?: number } } = { done: false };
    p.then(
      () => (state.done = true),
      (e: unknown) => {
        state.done = true;
        state.error = e as { code?: string };
      },
    );
    return state;
  };
  const tick = () => new Promise((r) => setTimeout(r, 20));

  it("applies Envoy's default 15 s route timeout to a route that sets none (UT)", async () => {
    const before = seen;
    const s = settled(request(`http://${HOST}/default`, { dispatcher: agent }));
    await reached(before);
    clock.advance(14_999);
    await tick();
    expect(s.done).toBe(false);
    clock.advance(1);
    await tick();
    // Envoy's local reply would be a 504 with flag UT: the error says both.
    expect(s.error).toMatchObject({ code: 'MESHLET_UPSTREAM_TIMEOUT', responseFlag: 'UT', status: 504 });
  });

  it('sets no timer when the route disables the timeout (0s)', async () => {
    const before = seen;
    const ac = new AbortController();
    const s = settled(request(`http://${HOST}/disabled`, { dispatcher: agent, signal: ac.signal }));
    await reached(before);
    clock.advance(3_600_000);
    await tick();
    expect(s.done).toBe(false);
    expect(clock.pending).toBe(0);
    ac.abort();
    await tick();
    expect(s.done).toBe(true);
  });

  it('honours x-envoy-upstream-rq-timeout-ms per request, and does not send it upstream', async () => {
    const before = seen;
    const s = settled(request(`http://${HOST}/default/header`, { dispatcher: agent, headers: { 'x-envoy-upstream-rq-timeout-ms': '500' } }));
    await reached(before);
    expect(lastHeaders['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
    clock.advance(500);
    await tick();
    expect(s.error).toMatchObject({ code: 'MESHLET_UPSTREAM_TIMEOUT' });
  });

  it('lets the route timeout cover the response body: a body that stalls fails with UT', async () => {
    const before = seen;
    const res = await request(`http://${HOST}/route-body`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    await reached(before);
    const body = settled(res.body.text());
    await tick();
    expect(body.done).toBe(false);
    clock.advance(1000);
    await tick();
    expect(body.error).toMatchObject({ code: 'MESHLET_UPSTREAM_TIMEOUT', responseFlag: 'UT' });
  });

  it('ends a stream at max_stream_duration, before or during the response (DT)', async () => {
    const before = seen;
    const s = settled(request(`http://${HOST}/msd`, { dispatcher: agent }));
    await reached(before);
    clock.advance(2999);
    await tick();
    expect(s.done).toBe(false);
    clock.advance(1);
    await tick();
    expect(s.error).toMatchObject({ code: 'MESHLET_STREAM_DURATION_EXCEEDED', responseFlag: 'DT', status: 408 });

    const res = await request(`http://${HOST}/msd-body`, { dispatcher: agent });
    expect(res.statusCode).toBe(200);
    const body = settled(res.body.text());
    clock.advance(2000);
    await tick();
    expect(body.error).toMatchObject({ code: 'MESHLET_STREAM_DURATION_EXCEEDED', responseFlag: 'DT' });
  });
});
