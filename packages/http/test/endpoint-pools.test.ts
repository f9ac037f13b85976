import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointPools } from '../src/endpoint-pools.js';

describe('EndpointPools', () => {
  let server: Server;
  let origin: string;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
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
});
