// More of the HTTP path end to end: connection failures (UF), no cluster (NC),
// pools closed when an endpoint leaves EDS, ring-hash stickiness through meshFetch, and
// MeshAgent as undici's global dispatcher.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGlobalDispatcher, request, setGlobalDispatcher, fetch as undiciFetch, Pool } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { seededRandom } from '@meshlet/core';
import { createMesh, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startHttpBackend, type HttpBackend, type Seen } from './helpers/http-backend.js';

const API = 'svc2.mesh.test';

/** A Pool that records its own close(). */
class RecordingPool extends Pool {
  readonly #origin: string;
  readonly #closed: string[];
  constructor(origin: string, closed: string[]) {
    super(origin);
    this.#origin = origin;
    this.#closed = closed;
  }
  override close(...args: unknown[]): never {
    // undici's promise form calls close(callback) again: record once.
    if (args.length === 0) this.#closed.push(this.#origin);
    return (super.close as (...a: unknown[]) => never)(...args);
  }
}

describe('MeshAgent, more', () => {
  let cp: ControlPlane;
  let backends: HttpBackend[];
  let mesh: ReturnType<typeof createMesh>;
  const opened: string[] = [];
  const closed: string[] = [];
  let agent: MeshAgent;

  beforeAll(async () => {
    backends = await Promise.all(['h1', 'h2', 'h3', 'h4'].map((n) => startHttpBackend(n)));
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc2')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc2',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              { match: { prefix: '/refused' }, route: { cluster: 'refused' } },
              { match: { prefix: '/by-header' }, route: { cluster_header: 'x-cluster' } },
              { match: { prefix: '/sticky' }, route: { cluster: 'ring', hash_policy: [{ header: { header_name: 'x-user' } }] } },
              { match: { prefix: '/' }, route: { cluster: 'rr' } },
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('refused'), edsCluster('ring', { lb_policy: 'RING_HASH' }), edsCluster('rr')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('refused', [['127.0.0.1', 1]]),
      // h2 serves only 'rr', so it leaves the mesh when 'rr' drops it.
      endpoints('ring', [0, 2, 3].map((i) => ['127.0.0.1', backends[i]!.port] as [string, number])),
      endpoints('rr', [['127.0.0.1', backends[0]!.port], ['127.0.0.1', backends[1]!.port]]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(3) });
    agent = new MeshAgent({
      mesh,
      poolFactory: (origin) => {
        opened.push(origin);
        return new RecordingPool(origin, closed);
      },
    });
  });

  afterAll(async () => {
    await agent?.close();
    mesh?.close();
    await cp?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('maps a refused connection to UF', async () => {
    const err = await request(`http://${API}/refused`, { dispatcher: agent }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'MESHLET_UPSTREAM_CONNECT_FAILURE', responseFlag: 'UF' });
  });

  it('maps an absent cluster header to NC, and routes by it when present', async () => {
    const err = await request(`http://${API}/by-header`, { dispatcher: agent }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'MESHLET_NO_CLUSTER', responseFlag: 'NC' });
    const res = await request(`http://${API}/by-header`, { dispatcher: agent, headers: { 'x-cluster': 'rr' } });
    expect(['h1', 'h2']).toContain(((await res.body.json()) as Seen).backend);
  });

  it('keeps a user on one host with ring hash', async () => {
    const hostsFor = async (user: string): Promise<Set<string>> => {
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const res = await request(`http://${API}/sticky`, { dispatcher: agent, headers: { 'x-user': user } });
        seen.add(((await res.body.json()) as Seen).backend);
      }
      return seen;
    };
    const all = new Set<string>();
    for (const u of ['ann', 'bob', 'cy', 'dee', 'eve', 'fay']) {
      const hosts = await hostsFor(u);
      expect(hosts.size, u).toBe(1);
      all.add([...hosts][0]!);
    }
    expect(all.size).toBeGreaterThan(1);
  });

  it('closes the pool of an endpoint that leaves EDS, after its requests', async () => {
    await request(`http://${API}/rr`, { dispatcher: agent }).then((r) => r.body.dump());
    await request(`http://${API}/rr`, { dispatcher: agent }).then((r) => r.body.dump());
    const h2 = `http://127.0.0.1:${backends[1]!.port}`;
    expect(opened).toContain(h2);
    const changed = new Promise<void>((resolve) => {
      const off = mesh.target(`${API}:80`).onChange(() => {
        off();
        resolve();
      });
    });
    cp.updateResources(TYPE_URLS.clusterLoadAssignment, [endpoints('rr', [['127.0.0.1', backends[0]!.port]])]);
    await changed;
    expect(closed).toContain(h2);
    const res = await request(`http://${API}/rr`, { dispatcher: agent });
    expect(((await res.body.json()) as Seen).backend).toBe('h1');
  });

  it('serves as the global dispatcher for undici.fetch and undici.request', async () => {
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(agent);
    try {
      const res = await undiciFetch(`http://${API}/global`);
      expect(((await res.json()) as Seen).url).toBe('/global');
      const r2 = await request(`http://${API}/global2`);
      expect(((await r2.body.json()) as Seen).url).toBe('/global2');
    } finally {
      setGlobalDispatcher(previous);
    }
  });
});
