// A LOGICAL_DNS cluster through meshFetch, end to end: the name is resolved again at
// dns_refresh_rate, and when the answer changes, requests move to the new address (Envoy's
// logical DNS cluster); HTTP uses the first resolved address only.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, createMeshFetch } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, listener, routeConfig } from './helpers/xds-resources.js';

const API = 'dns.mesh.test';

/** HTTP servers on one port of 127.0.0.2 and 127.0.0.3, answering with their own name. */
async function startPair(): Promise<{ port: number; servers: Server[] }> {
  const named = (name: string): Server =>
    createServer((_req, res) => {
      res.end(name);
    });
  const a = named('a');
  await new Promise<void>((resolve) => a.listen(0, '127.0.0.2', resolve));
  const port = (a.address() as AddressInfo).port;
  const b = named('b');
  await new Promise<void>((resolve, reject) => b.once('error', reject).listen(port, '127.0.0.3', resolve));
  return { port, servers: [a, b] };
}

describe('meshFetch: LOGICAL_DNS re-resolution', () => {
  let cp: ControlPlane;
  let pair: Awaited<ReturnType<typeof startPair>>;
  let answer: string[] = ['127.0.0.2'];
  let mesh: ReturnType<typeof createMesh>;
  let fetchM: ReturnType<typeof createMeshFetch>;

  beforeAll(async () => {
    pair = await startPair();
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
          endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'backend.dns.test', port_value: pair.port } } } }] }],
        },
      },
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), resolveDns: async () => answer });
    fetchM = createMeshFetch({ mesh });
  });

  afterAll(async () => {
    await fetchM?.agent.close();
    mesh?.close();
    await cp?.stop();
    for (const s of pair?.servers ?? []) {
      s.closeAllConnections();
      s.close();
    }
  });

  const backend = async (): Promise<string> => (await fetchM(`http://${API}/`)).text();

  it('moves requests to the new address when the DNS answer changes', async () => {
    expect(await backend()).toBe('a');
    // Two addresses: HTTP (Envoy) uses the first one only.
    answer = ['127.0.0.3', '127.0.0.2'];
    const seen: string[] = [];
    for (let i = 0; i < 100 && seen.at(-1) !== 'b'; i++) {
      seen.push(await backend());
      if (seen.at(-1) !== 'b') await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen.at(-1)).toBe('b');
    const next = await Promise.all(Array.from({ length: 6 }, () => backend()));
    expect(next).toEqual(Array(6).fill('b'));
  });
});
