// `meshlet dump --admin URL` as an operator runs it: the real bin reading the admin
// endpoint of a mesh fed by the real control plane; and its one-line errors for an address
// where nothing listens and for HTTP servers that are not a meshlet admin endpoint.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, startAdminServer, type AdminServer } from '@meshlet/core';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const require = createRequire(import.meta.url);
const BIN = require.resolve('@meshlet/cli/package.json').replace(/package\.json$/, 'bin/meshlet.js');

function meshlet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function httpServer(handler: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;

describe('meshlet dump --admin', () => {
  let cp: ControlPlane;
  let mesh: ReturnType<typeof createMesh>;
  let admin: AdminServer;
  const others: Server[] = [];

  beforeAll(async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener('dump.admin.test:80', 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'c1' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('c1')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('c1', [['127.0.0.1', 19555]])]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), listenerCatalog: false });
    await mesh.target('dump.admin.test:80').ready();
    admin = await startAdminServer({ mesh });
  });

  afterAll(async () => {
    await admin?.close();
    mesh?.close();
    await cp?.stop();
    for (const s of others) {
      s.closeAllConnections();
      s.close();
    }
  });

  it("prints the process's config dump and clusters as JSON", async () => {
    const [r, bare] = await Promise.all([meshlet(['dump', '--admin', admin.url]), meshlet(['dump', '--admin', admin.url.replace('http://', '')])]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.admin).toBe(admin.url);
    const configs = out.config_dump.config[0].generic_xds_configs;
    expect(configs.map((g: { name: string; client_status: string }) => [g.name, g.client_status])).toEqual([
      ['dump.admin.test:80', 'ACKED'],
      ['rc', 'ACKED'],
      ['c1', 'ACKED'],
      ['c1', 'ACKED'],
    ]);
    expect(out.clusters.targets[0]).toMatchObject({ authority: 'dump.admin.test:80', state: 'ready' });
    expect(out.clusters.targets[0].clusters[0].hosts[0]).toMatchObject({ address: '127.0.0.1:19555', health_status: 'HEALTHY', ejected: false });
    // host:port without a scheme works too.
    expect(bare.code).toBe(0);
  });

  it('says in one line that nothing listens there, and exits 1', async () => {
    const closed = await httpServer(() => {});
    const url = urlOf(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await meshlet(['dump', '--admin', url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`meshlet dump: cannot read ${url}/config_dump: connection refused (is the admin endpoint started, and on this port?)\n`);
  });

  it('says in one line that an HTTP server is not a meshlet admin endpoint, and exits 1', async () => {
    const notFound = await httpServer((_req, res) => {
      res.statusCode = 404;
      res.end('nope');
    });
    const html = await httpServer((_req, res) => res.end('<html>hello</html>'));
    const envoyLike = await httpServer((_req, res) => res.end(JSON.stringify({ configs: [] })));
    others.push(notFound, html, envoyLike);
    const cases: Array<[Server, RegExp]> = [
      [notFound, /\/config_dump answered 404: not a meshlet admin endpoint/],
      [html, /\/config_dump did not answer JSON: not a meshlet admin endpoint/],
      [envoyLike, /\/config_dump answered JSON of another shape: not a meshlet admin endpoint/],
    ];
    const results = await Promise.all(cases.map(([server]) => meshlet(['dump', '--admin', urlOf(server)])));
    for (const [i, [, message]] of cases.entries()) {
      const r = results[i]!;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('rejects a bad --admin value or a target beside it as usage errors (exit 2)', async () => {
    const [bad, both] = await Promise.all([meshlet(['dump', '--admin', 'ftp://x']), meshlet(['dump', '--admin', admin.url, 'dump.admin.test:80'])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--admin: want an http:\/\/ URL/);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give no <target>/);
  });
});
