// A LOGICAL_DNS cluster through meshFetch, end to end, on 127.0.0.1 only: the name is resolved
// again at dns_refresh_rate (Envoy's logical DNS cluster), so a name that did not resolve at
// first serves requests once it does, and a later failed resolution keeps the last good address.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, createMeshFetch } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, listener, routeConfig } from './helpers/xds-resources.js';

const API = 'dns.mesh.test';
const NAME = 'backend.dns.test';

describe('meshFetch: LOGICAL_DNS re-resolution', () => {
  let cp: ControlPlane;
  let server: Server;
  /** What the injected resolver answers for NAME; an Error is a failed resolution. */
  let answer: string[] | Error = new Error(`getaddrinfo ENOTFOUND ${NAME}`);
  const asked: string[] = [];
  let mesh: ReturnType<typeof createMesh>;
  let fetchM: ReturnType<typeof createMeshFetch>;

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('backend'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc-dns')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc-dns', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'dns' }] }])]);
    cp.setResources(TYPE_URLS.cluster, [
      {
        '@type': TYPE_URLS.cluster,
        name: 'dns',
        type: 'LOGICAL_DNS',
        dns_refresh_rate: '0.05s',
        load_assignment: {
          cluster_name: 'dns',
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: NAME, port_value: port } } } }] }],
        },
      },
    ]);
    mesh = createMesh({
      bootstrap: bootstrapFor(address),
      resolveDns: async (host) => {
        asked.push(host);
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    fetchM = createMeshFetch({ mesh });
  });

  afterAll(async () => {
    await fetchM?.agent.close();
    mesh?.close();
    await cp?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  /** One request: the response, or for a request meshlet failed locally, its error's status and code. */
  const get = async (): Promise<{ status: number; body: string }> => {
    try {
      const res = await fetchM(`http://${API}/`);
      return { status: res.status, body: await res.text() };
    } catch (err) {
      const cause = (err as { cause?: { status?: number; code?: string } }).cause;
      return { status: cause?.status ?? 0, body: cause?.code ?? String(err) };
    }
  };

  /** Requests every 20 ms until one gets `body`, or 5 s; the responses seen. */
  async function until(body: string): Promise<Array<{ status: number; body: string }>> {
    const seen: Array<{ status: number; body: string }> = [];
    const end = Date.now() + 5_000;
    while (Date.now() < end) {
      seen.push(await get());
      if (seen.at(-1)!.body === body) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return seen;
  }

  it('fails while the name does not resolve, and serves once a re-resolution succeeds', async () => {
    expect(await get()).toEqual({ status: 503, body: 'MESHLET_NO_HEALTHY_UPSTREAM' });
    expect(asked).toContain(NAME);
    // Resolved only once, this name would stay failed for the cluster's lifetime.
    answer = ['127.0.0.1'];
    const seen = await until('backend');
    expect(seen.at(-1)).toEqual({ status: 200, body: 'backend' });
  });

  it('keeps the last good address when a later resolution fails', async () => {
    const before = asked.length;
    answer = new Error(`getaddrinfo EAI_AGAIN ${NAME}`);
    // Several refresh periods pass with the resolver failing.
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.length).toBeGreaterThan(before);
    const after = await Promise.all(Array.from({ length: 6 }, () => get()));
    expect(after).toEqual(Array(6).fill({ status: 200, body: 'backend' }));
  });
});

describe('createMesh({ resolveDns })', () => {
  it('throws when given something other than a function, naming the option', () => {
    for (const bad of ['dns', 42, null, {}]) {
      expect(() => createMesh({ bootstrap: bootstrapFor('127.0.0.1:1'), resolveDns: bad as never })).toThrow(/^createMesh\(\): resolveDns: want a function \(host\) => Promise<string\[\]>, got (string|number|null|object)$/);
    }
  });
});
