// The admin endpoint's routes on loopback: the index, read-only methods, /stats/prometheus
// with and without a stats source, /ready while a target waits for its first config, and
// /config_dump of resources still REQUESTED. (test/admin-*.test.ts runs it against a real
// control plane with real traffic.)
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer } from '../src/admin/admin-server.js';
import { Mesh } from '../src/mesh.js';

describe('admin endpoint', () => {
  // An "xDS server" that accepts connections and never answers: targets stay pending.
  let silent: Server;
  const sockets = new Set<Socket>();
  let mesh: Mesh;
  let admin: AdminServer;
  let stats: string | undefined = '# TYPE up gauge\nup 1\n';

  beforeAll(async () => {
    silent = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    mesh = new Mesh({
      bootstrap: {
        xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
        node: { id: 'admin-test', cluster: 'c' },
      },
      listenerCatalog: false,
    });
    admin = await startAdminServer({ mesh, stats: () => stats });
  });

  afterAll(async () => {
    await admin?.close();
    mesh?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${admin.url}${path}`, init);
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
  };

  it('binds to loopback on a free port by default', () => {
    expect(admin.host).toBe('127.0.0.1');
    expect(admin.port).toBeGreaterThan(0);
    expect(admin.url).toBe(`http://127.0.0.1:${admin.port}`);
  });

  it('lists its routes at /, answers 404 for others and 405 for anything but GET', async () => {
    const index = await get('/');
    expect(index.status).toBe(200);
    for (const route of ['/config_dump', '/clusters', '/stats/prometheus', '/ready']) expect(index.body).toContain(route);
    const missing = await get('/nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatch(/no such admin route: \/nope/);
    const post = await get('/clusters', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
  });

  it('serves the stats text, and 404 with a reason when there is none', async () => {
    const ok = await get('/stats/prometheus');
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(ok.body).toBe('# TYPE up gauge\nup 1\n');
    stats = undefined;
    const none = await get('/stats/prometheus');
    expect(none.status).toBe(404);
    expect(none.body).toMatch(/no metrics here/);

    const async = await startAdminServer({ mesh, stats: async () => 'later 1\n' });
    try {
      expect(await (await fetch(`${async.url}/stats/prometheus`)).text()).toBe('later 1\n');
      const head = await fetch(`${async.url}/stats/prometheus`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
    } finally {
      await async.close();
    }

    const bare = await startAdminServer({ mesh });
    try {
      expect((await fetch(`${bare.url}/stats/prometheus`)).status).toBe(404);
      // Without a stats option: the mesh's own aggregation of Istio's metrics, once it is on.
      mesh.telemetry.configure({ prometheus: true });
      const own = await fetch(`${bare.url}/stats/prometheus`);
      expect(own.status).toBe(200);
      expect(own.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      mesh.telemetry.configure({ prometheus: false });
    } finally {
      await bare.close();
    }
  });

  it('is not ready while a target waits for its first config; config_dump shows it REQUESTED', async () => {
    expect(await get('/ready')).toMatchObject({ status: 200, body: 'LIVE\n' });
    mesh.target('pending.test:80');
    const ready = await get('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/pending\.test:80/);

    const dump = await get('/config_dump');
    expect(dump.type).toMatch(/^application\/json/);
    const json = JSON.parse(dump.body) as { config: Array<{ client_scope: string; node: { id: string }; generic_xds_configs: unknown[] }> };
    expect(json.config).toHaveLength(1);
    expect(json.config[0]).toMatchObject({ client_scope: 'mesh', node: { id: 'admin-test' } });
    expect(json.config[0]!.generic_xds_configs).toEqual([
      { type_url: 'type.googleapis.com/envoy.config.listener.v3.Listener', name: 'pending.test:80', client_status: 'REQUESTED' },
    ]);

    const clusters = JSON.parse((await get('/clusters')).body);
    expect(clusters).toEqual({ targets: [{ authority: 'pending.test:80', listener_name: 'pending.test:80', state: 'pending', clusters: [] }] });
    expect((await get('/clusters?format=text')).body).toContain('target::pending.test:80::state::pending');
  });

  it('checks its options where they are given', async () => {
    await expect(startAdminServer({ mesh, port: 70000 })).rejects.toThrow(/port: want an integer/);
    await expect(startAdminServer({ mesh, port: admin.port })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
  });
});
