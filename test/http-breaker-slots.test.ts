// MeshAgent gives every circuit-breaker slot back exactly once, whatever ends an attempt (a
// per-try or route timeout while it waits for a connection, the caller's abort, a retried 503
// or connect failure), and a retried, path-rewritten request sends its headers as they were.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, MeshAgent } from '@meshlet/http';
import { seededRandom } from '@meshlet/core';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { closeServers, codeOf } from './helpers/http-backend.js';
import { freePort } from './helpers/ports.js';

const HOST = 'slots.mesh.test';
const BACKOFF = { base_interval: '0.001s', max_interval: '0.002s' };
const PREV = [{ name: 'envoy.retry_host_predicates.previous_hosts' }];

describe('MeshAgent: breaker slots and retried headers', () => {
  let cp: ControlPlane;
  const servers: Server[] = [];
  const ports: number[] = [];
  const held: ServerResponse[] = [];
  const heads: Array<{ port: number; url: string; raw: string[] }> = [];
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  let refused = 0;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const s = createServer((req, res) => {
        const port = (s.address() as AddressInfo).port;
        heads.push({ port, url: req.url ?? '', raw: req.rawHeaders });
        if (req.url?.includes('hold')) held.push(res);
        else if (req.url?.includes('fail') && i === 0) {
          res.statusCode = 503;
          res.end('503');
        } else res.end(`ok ${i}`);
      });
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      servers.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
    refused = await freePort();
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc')]);
    const retry = (extra: Record<string, unknown>) => ({ retry_back_off: BACKOFF, retry_host_predicate: PREV, ...extra });
    const routes: Array<[string, string, Record<string, unknown>, Record<string, unknown>?]> = [
      ['/q-pertry', 'cq', { retry_policy: retry({ retry_on: 'reset,5xx', num_retries: 2, per_try_timeout: '0.05s' }), timeout: '5s' }],
      ['/q-route', 'cq', { timeout: '0.05s' }],
      ['/q-abort', 'cq', {}],
      ['/q-hold', 'cq', {}],
      ['/r-fail', 'cr', { retry_policy: retry({ retry_on: '5xx', num_retries: 1 }) }],
      ['/r-refused', 'cf', { retry_policy: retry({ retry_on: 'connect-failure', num_retries: 1 }) }],
      ['/p-fail', 'cr', { retry_policy: retry({ retry_on: '5xx', num_retries: 1 }), prefix_rewrite: '/rewritten-fail' }],
    ];
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc',
        virtual_hosts: [{ name: 'v', domains: ['*'], routes: routes.map(([prefix, cluster, action, r]) => ({ match: { prefix }, route: { cluster, ...action }, ...r })) }],
      },
    ]);
    const cb = { circuit_breakers: { thresholds: [{ max_connections: 1, max_retries: 100, max_pending_requests: 100, max_requests: 100 }] } };
    const cb2 = { circuit_breakers: { thresholds: [{ max_retries: 100, max_pending_requests: 100, max_requests: 100 }] } };
    cp.setResources(TYPE_URLS.cluster, [edsCluster('cq', cb), edsCluster('cr', cb2), edsCluster('cf', cb2)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('cq', [['127.0.0.1', ports[1]!]]),
      endpoints('cr', [
        ['127.0.0.1', ports[0]!],
        ['127.0.0.1', ports[1]!],
      ]),
      endpoints('cf', [
        ['127.0.0.1', refused],
        ['127.0.0.1', ports[1]!],
      ]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(3) });
    agent = new MeshAgent({ mesh });
    await mesh.target(`${HOST}:80`).ready();
  });

  afterAll(async () => {
    for (const r of held) r.destroy();
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    await closeServers(servers);
  });

  const counters = (c: string) => {
    const b = mesh.breakers.peek(c)!;
    return { request: b.active('request'), pending: b.active('pending'), retry: b.active('retry') };
  };
  const settle = async (c: string) => {
    for (let i = 0; i < 200; i++) {
      const x = counters(c);
      if (x.request === 0 && x.pending === 0 && x.retry === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    return counters(c);
  };

  it('queued attempts that hit per-try / route timeouts or a caller abort give every slot back once', async () => {
    const first = request(`http://${HOST}/q-hold`, { dispatcher: agent });
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(held.length).toBe(1);
    // Queued behind the held request (max_connections 1): per-try timeouts, retried, then UT.
    const pertry = codeOf(request(`http://${HOST}/q-pertry`, { dispatcher: agent }));
    const routeT = codeOf(request(`http://${HOST}/q-route`, { dispatcher: agent }));
    const ac = new AbortController();
    const aborted = codeOf(request(`http://${HOST}/q-abort`, { dispatcher: agent, signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    expect(await routeT).toBe('MESHLET_UPSTREAM_TIMEOUT');
    expect(await pertry).toBe('MESHLET_UPSTREAM_TIMEOUT');
    await aborted;
    // The abandoned attempts still sit in undici's queue, but no longer count as pending (Envoy
    // takes a cancelled request off the pending list at once); the held request is active.
    expect(counters('cq')).toEqual({ request: 1, pending: 0, retry: 0 });
    held.shift()!.end('released');
    await (await first).body.text();
    expect(await settle('cq')).toEqual({ request: 0, pending: 0, retry: 0 });
    // and the cluster still serves
    expect(await (await request(`http://${HOST}/q-abort/after`, { dispatcher: agent })).body.text()).toBe('ok 1');
    expect(await settle('cq')).toEqual({ request: 0, pending: 0, retry: 0 });
  });

  it('a retried 503 and a retried connect failure leave no slot held', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await request(`http://${HOST}/r-fail/${i}`, { dispatcher: agent });
      expect(await r.body.text()).toBe('ok 1');
    }
    expect(await settle('cr')).toEqual({ request: 0, pending: 0, retry: 0 });
    for (let i = 0; i < 6; i++) {
      const r = await request(`http://${HOST}/r-refused/${i}`, { dispatcher: agent });
      expect(await r.body.text()).toBe('ok 1');
    }
    expect(await settle('cf')).toEqual({ request: 0, pending: 0, retry: 0 });
  });

  it('a retried, path-rewritten request sends x-envoy-original-path once and the caller headers as they were', async () => {
    const seen = heads.length;
    for (let i = 0; i < 4; i++) {
      const r = await request(`http://${HOST}/p-fail/${i}`, { dispatcher: agent, headers: { 'x-caller': 'c', 'x-envoy-max-retries': '1', 'x-envoy-upstream-rq-timeout-ms': '3000' } });
      expect(r.statusCode).toBe(200);
      await r.body.text();
    }
    const got = heads.slice(seen).map((h) => ({
      url: h.url,
      hosts: h.raw.filter((_, i) => i % 2 === 0 && h.raw[i]!.toLowerCase() === 'host').length,
      orig: h.raw.filter((_, i) => i % 2 === 1 && h.raw[i - 1]!.toLowerCase() === 'x-envoy-original-path'),
      envoy: h.raw.filter((_, i) => i % 2 === 0 && /^x-envoy-(max-retries|upstream-rq)/i.test(h.raw[i]!)).length,
      caller: h.raw.filter((_, i) => i % 2 === 1 && h.raw[i - 1]!.toLowerCase() === 'x-caller'),
    }));
    expect(got.some((g) => g.url.includes('rewritten-fail'))).toBe(true);
    for (const g of got) {
      expect(g.hosts).toBe(1);
      expect(g.orig.length).toBe(1);
      expect(g.envoy).toBe(0);
      expect(g.caller).toEqual(['c']);
    }
    expect(await settle('cr')).toEqual({ request: 0, pending: 0, retry: 0 });
  });
});
