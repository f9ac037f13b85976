// The connection-level circuit breakers on the HTTP path (issue 4), against real servers on
// loopback: max_connections caps an endpoint's pool (requests past it wait, as in Envoy) and
// the cluster's connections across endpoints (past it: UO, 503); max_connection_pools too.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, MeshAgent } from '@meshlet/http';
import { seededRandom } from '@meshlet/core';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, route, routeConfig } from './helpers/xds-resources.js';
import { closeServers, codeOf } from './helpers/http-backend.js';

const HOST = 'breakers.mesh.test';

describe('MeshAgent: connection circuit breakers', () => {
  let cp: ControlPlane;
  const servers: Server[] = [];
  const ports: number[] = [];
  const held: ServerResponse[] = [];
  let connections = 0;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const s = createServer((req, res) => {
        if (req.url?.includes('/hold')) held.push(res);
        else res.end(`ok ${i}`);
      });
      s.on('connection', () => connections++);
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      servers.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc', [
        { domains: ['*'], routes: [{ prefix: '/conn2', cluster: 'conn2' }, { prefix: '/conn', cluster: 'conn' }, { prefix: '/pools', cluster: 'pools' }] },
      ]),
    ]);
    cp.setResources(TYPE_URLS.cluster, [
      edsCluster('conn', { circuit_breakers: { thresholds: [{ max_connections: 1 }] } }),
      edsCluster('conn2', { circuit_breakers: { thresholds: [{ max_connections: 1 }] } }),
      edsCluster('pools', { circuit_breakers: { thresholds: [{ max_connection_pools: 1 }] } }),
    ]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints('conn', [['127.0.0.1', ports[0]!]]),
      endpoints('conn2', [
        ['127.0.0.1', ports[0]!],
        ['127.0.0.1', ports[1]!],
      ]),
      endpoints('pools', [
        ['127.0.0.1', ports[0]!],
        ['127.0.0.1', ports[1]!],
      ]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(5) });
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


  it('queues a request past max_connections on one endpoint (pending), opening no second connection', async () => {
    const first = request(`http://${HOST}/conn/hold`, { dispatcher: agent });
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(held.length).toBe(1);
    const before = connections;
    const second = request(`http://${HOST}/conn/second`, { dispatcher: agent });
    await new Promise((r) => setTimeout(r, 50));
    expect(connections).toBe(before);
    held.shift()!.end('released');
    expect(await (await first).body.text()).toBe('released');
    expect(await (await second).body.text()).toBe('ok 0');
    expect(connections).toBe(before); // the one connection served both
  });

  it('fails with UO when a request needs a connection past the cluster-wide max_connections', async () => {
    const first = request(`http://${HOST}/conn2/hold`, { dispatcher: agent });
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(held.length).toBe(1);
    // Round robin: the next request goes to the other endpoint, which would need a second connection.
    const err = await request(`http://${HOST}/conn2/second`, { dispatcher: agent }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; responseFlag?: string; status?: number },
    );
    expect(err).toMatchObject({ code: 'MESHLET_OVERFLOW', responseFlag: 'UO', status: 503 });
    held.shift()!.end('released');
    expect(await (await first).body.text()).toBe('released');
  });

  it('fails with UO when a new endpoint would need a pool past max_connection_pools', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => codeOf(request(`http://${HOST}/pools/${i}`, { dispatcher: agent }).then((r) => r.body.text()))));
    // Round robin over two endpoints: the first endpoint's pool opens, the other's is refused.
    expect(results.filter((r) => r === 200).length).toBe(3);
    expect(results.filter((r) => r === 'MESHLET_OVERFLOW').length).toBe(3);
  });
});
