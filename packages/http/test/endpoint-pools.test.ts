import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { EndpointPools } from '../src/endpoint-pools.js';

describe('EndpointPools', () => {
  let server: Server;
  let origin: string;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/host') {
        // Every Host line as sent (a duplicate would show here, and not in req.headers).
        const hosts: string[] = [];
        for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
        res.end(JSON.stringify(hosts));
        return;
      }
      if (req.url === '/slow') {
        release = () => res.end('slow done');
        return;
      }
      res.end(`ok ${req.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('creates one pool per origin on first use', async () => {
    const pools = new EndpointPools();
    expect(pools.size).toBe(0);
    const p = pools.get(origin);
    expect(pools.get(origin)).toBe(p);
    const res = await p.request({ method: 'GET', path: '/a' });
    expect(await res.body.text()).toBe('ok /a');
    expect(pools.size).toBe(1);
    await pools.close();
  });

  it('lets in-flight requests finish when an endpoint leaves, and opens a new pool if it returns', async () => {
    const pools = new EndpointPools();
    const p = pools.get(origin);
    const slow = p.request({ method: 'GET', path: '/slow' });
    await new Promise((r) => setTimeout(r, 50));
    pools.retain(new Set());
    expect(pools.has(origin)).toBe(false);
    release!();
    const res = await slow;
    expect(await res.body.text()).toBe('slow done');
    // The old pool refuses new work; the endpoint coming back gets a fresh pool.
    await expect(p.request({ method: 'GET', path: '/b' })).rejects.toThrow();
    const fresh = pools.get(origin);
    expect(fresh).not.toBe(p);
    expect(await (await fresh.request({ method: 'GET', path: '/c' })).body.text()).toBe('ok /c');
    await pools.close();
  });

  it('names a plain-HTTP pool for the Host that made it, dials the endpoint, and writes that Host itself', async () => {
    const pools = new EndpointPools();
    const e = pools.entry(origin, 'k', undefined, 'svc.mesh.test:9080');
    expect(e.host).toBe('svc.mesh.test:9080');
    // The same key gives the same entry, whatever Host asks next.
    expect(pools.entry(origin, 'k', undefined, 'other')).toBe(e);
    const res = await e.pool.request({ method: 'GET', path: '/host' });
    expect(await res.body.json()).toEqual(['svc.mesh.test:9080']);
    // A request with a Host header of its own sends that one only.
    const res2 = await e.pool.request({ method: 'GET', path: '/host', headers: { host: 'another:1' } });
    expect(await res2.body.json()).toEqual(['another:1']);
    await pools.close();
  });

  it('keeps the endpoint as the pool\'s name when undici would write the Host differently, for https, and for a custom factory', async () => {
    const pools = new EndpointPools();
    // undici writes a URL's hostname lower-cased and drops the scheme's default port.
    expect(pools.entry(origin, 'a', undefined, 'Svc.Mesh.Test').host).toBeUndefined();
    expect(pools.entry(origin, 'b', undefined, 'svc:80').host).toBeUndefined();
    expect(pools.entry(origin, 'c', undefined, 'user@svc').host).toBeUndefined();
    expect(pools.entry(origin, 'd', undefined, '').host).toBeUndefined();
    expect(pools.entry(origin, 'e', undefined, undefined).host).toBeUndefined();
    expect(pools.entry(origin.replace('http:', 'https:'), 'f', undefined, 'svc').host).toBeUndefined();
    const v6 = pools.entry(origin, 'g', undefined, '[::1]:8080');
    expect(v6.host).toBe('[::1]:8080');
    expect(await (await v6.pool.request({ method: 'GET', path: '/host' })).body.json()).toEqual(['[::1]:8080']);
    await pools.close();
    const custom = new EndpointPools((o) => new Pool(o));
    expect(custom.entry(origin, 'a', undefined, 'svc').host).toBeUndefined();
    await custom.close();
  });
});
