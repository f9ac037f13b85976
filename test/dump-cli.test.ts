// `meshlet dump` as a user runs it: the real bin, a real control plane, a bootstrap in
// the environment.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const require = createRequire(import.meta.url);
const BIN = require.resolve('@meshlet/cli/package.json').replace(/package\.json$/, 'bin/meshlet.js');

function meshlet(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('meshlet dump', () => {
  let cp: ControlPlane;
  let env: Record<string, string>;

  beforeAll(async () => {
    cp = new ControlPlane();
    const { address } = await cp.start();
    env = { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrapFor(address)) };
    cp.setResources(TYPE_URLS.listener, [
      listener('reviews.default.svc.cluster.local:9080', 'rc-reviews'),
      listener('ratings.default.svc.cluster.local:9080', 'rc-ratings'),
      listener('details.default.svc.cluster.local:9080', 'rc-details'),
    ]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-reviews', [
        {
          domains: ['reviews.default.svc.cluster.local:9080'],
          routes: [
            { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }], cluster: 'reviews-v2' },
            { prefix: '/', weighted: [['reviews-v1', 80], ['reviews-v3', 20]] },
          ],
        },
      ]),
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-ratings',
        virtual_hosts: [{ name: 'r', domains: ['*'], routes: [{ match: { safe_regex: { regex: '/ratings/(\\d+' } }, route: { cluster: 'ratings' } }] }],
      },
      routeConfig('rc-details', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'details-missing' }] }]),
    ]);
    cp.setResources(TYPE_URLS.cluster, ['reviews-v1', 'reviews-v2', 'reviews-v3'].map((c) => edsCluster(c)));
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('reviews-v1', [['127.0.0.1', 19081]]),
      endpoints('reviews-v2', [['127.0.0.1', 19082]]),
      endpoints('reviews-v3', [['127.0.0.1', 19083], ['127.0.0.2', 19083]]),
    ]);
  });

  afterAll(async () => {
    await cp?.stop();
  });

  it('prints the resolved chain as JSON and exits 0', async () => {
    const r = await meshlet(['dump', 'reviews.default.svc.cluster.local:9080'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const chain = JSON.parse(r.stdout);
    expect(chain.listenerName).toBe('reviews.default.svc.cluster.local:9080');
    expect(chain.listener.apiListener.routeConfigName).toBe('rc-reviews');
    expect(chain.routeConfiguration.name).toBe('rc-reviews');
    expect(chain.virtualHost.domains).toEqual(['reviews.default.svc.cluster.local:9080']);
    expect(chain.routes).toHaveLength(2);
    expect(chain.routes[0].match.headers[0]).toMatchObject({ name: 'end-user', match: { kind: 'exact', value: 'jason' } });
    expect(chain.routes[1].action.cluster).toMatchObject({ kind: 'weighted_clusters', totalWeight: 100 });
    expect(Object.keys(chain.clusters).sort()).toEqual(['reviews-v1', 'reviews-v2', 'reviews-v3']);
    const v3 = chain.endpoints['reviews-v3'].priorities[0][0].endpoints.map((e: { addresses: { host: string; port: number }[] }) => e.addresses[0]);
    expect(v3).toEqual([
      { host: '127.0.0.1', port: 19083 },
      { host: '127.0.0.2', port: 19083 },
    ]);
  });

  it('names a NACKed resource, its field and the reason in one line, exit 1', async () => {
    const r = await meshlet(['dump', 'ratings.default.svc.cluster.local:9080', '--timeout', '2'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/rc-ratings/);
    expect(lines[0]).toMatch(/safe_regex/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('names a missing listener and a missing cluster, fast', async () => {
    const missing = await meshlet(['dump', 'nothing.default.svc.cluster.local:9080', '--timeout', '1'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^meshlet dump: .*Listener "nothing.default.svc.cluster.local:9080" does not exist$/);
    const noCluster = await meshlet(['dump', 'details.default.svc.cluster.local:9080', '--timeout', '1'], env);
    expect(noCluster.code).toBe(1);
    expect(noCluster.stderr.trim()).toMatch(/Cluster "details-missing" does not exist/);
  });

  it('says when the xDS server cannot be reached', async () => {
    const r = await meshlet(['dump', 'x:80'], {
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({ xds_servers: [{ server_uri: '127.0.0.1:1', channel_creds: [{ type: 'insecure' }] }], node: { id: 'n' } }),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^meshlet dump: xDS server 127\.0\.0\.1:1: .*UNAVAILABLE/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('reports a malformed bootstrap by field, and bad usage with exit 2', async () => {
    const bad = await meshlet(['dump', 'x:80'], { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify({ xds_servers: [{ server_uri: 5 }], node: { id: 'n' } }) });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/xds_servers\[0\]\.server_uri/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const usage = await meshlet(['dump'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/usage: meshlet dump <target>/);
  });
});
