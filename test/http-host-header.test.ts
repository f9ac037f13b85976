// The Host an upstream sees through MeshAgent: the request's authority, a rewrite, or the
// caller's own header, each exactly once, whether or not the endpoint's pool writes it itself
// (a plain-HTTP pool is named for the Host of the request that made it: endpoint-pools.ts).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';

const API = 'hosts.mesh.test';

describe('MeshAgent: the Host header upstream', () => {
  let cp: ControlPlane;
  let server: Server;
  let failing: Server;
  let healthy: Server;
  /** What the two servers of cluster "two" saw: path, every Host line, the status sent. */
  const seenByTwo: Array<{ url: string; hosts: string[]; status: number }> = [];
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;

  const listen = async (s: Server): Promise<number> => {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  };
  const hostLines = (raw: string[]): string[] => {
    const hosts: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'host') hosts.push(raw[i + 1]!);
    return hosts;
  };
  const recordingServer = (status: number): Server =>
    createServer((req, res) => {
      seenByTwo.push({ url: req.url!, hosts: hostLines(req.rawHeaders), status });
      res.statusCode = status;
      res.end(JSON.stringify(hostLines(req.rawHeaders)));
    });

  beforeAll(async () => {
    failing = recordingServer(503);
    healthy = recordingServer(200);
    const [failingPort, healthyPort] = [await listen(failing), await listen(healthy)];
    server = createServer((req, res) => {
      const hosts: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
      res.end(JSON.stringify(hosts));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc-hosts')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-hosts',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              { match: { prefix: '/rewrite' }, route: { cluster: 'one', host_rewrite_literal: 'Rewritten.Example:81' } },
              // A weighted cluster's host_rewrite_literal (no header mutation or route rewrite).
              { match: { prefix: '/wc-rewrite' }, route: { weighted_clusters: { clusters: [{ name: 'one', weight: 1, host_rewrite_literal: 'wc.example' }] } } },
              { match: { prefix: '/flaky' }, route: { cluster: 'two', retry_policy: { retry_on: '5xx', num_retries: 3 } } },
              { match: { prefix: '/' }, route: { cluster: 'one' } },
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('one'), edsCluster('two')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('one', [['127.0.0.1', port]]),
      endpoints('two', [
        ['127.0.0.1', failingPort],
        ['127.0.0.1', healthyPort],
      ]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address) });
    agent = new MeshAgent({ mesh });
  });

  afterAll(async () => {
    await agent?.close();
    mesh?.close();
    await cp?.stop();
    await Promise.all([server, failing, healthy].map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r()))));
  });

  const hostsSeen = async (path: string, headers?: Record<string, string>) =>
    (await (await request(`http://${API}${path}`, headers ? { dispatcher: agent, headers } : { dispatcher: agent })).body.json()) as string[];

  it('sends the authority, a rewritten Host, or the caller\'s Host, once each, through the one pool of the endpoint', async () => {
    expect(await hostsSeen('/a')).toEqual([API]);
    expect(await hostsSeen('/rewrite')).toEqual(['Rewritten.Example:81']);
    expect(await hostsSeen('/wc-rewrite')).toEqual(['wc.example']);
    expect(await hostsSeen('/b', { host: 'caller.example:8080' })).toEqual(['caller.example:8080']);
    // The caller's own Host equal to the pool's: still sent once.
    expect(await hostsSeen('/c', { Host: API })).toEqual([API]);
    expect(await hostsSeen('/d')).toEqual([API]);
  });

  it('sends the right Host once on every attempt of a retried request, through pools named for another Host', async () => {
    // The first request opens both endpoints' pools, named for its Host; later ones carry a
    // different Host, which must then go as a header on each attempt.
    expect(await hostsSeen('/flaky/1', { host: 'first.example' })).toEqual(['first.example']);
    for (let i = 2; i <= 5; i++) expect(await hostsSeen(`/flaky/${i}`)).toEqual([API]);
    expect(seenByTwo.some((s) => s.status === 503)).toBe(true);
    for (const s of seenByTwo) expect(s.hosts).toEqual([s.url === '/flaky/1' ? 'first.example' : API]);
  });
});
