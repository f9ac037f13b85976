// The admin view of a live mesh (issue 6, item 4): a Mesh fed by the real control plane,
// real HTTP backends and real requests through MeshAgent; then the admin endpoint's
// /config_dump (versions, a NACKed route table with its error), /clusters (an ejected host,
// a tripped circuit breaker, active requests) and the CSDS gRPC service called by a real
// grpc-js client.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { clustersView, seededRandom, startAdminServer, type AdminServer } from '@meshlet/core';
import { createMesh, MeshAgent } from '@meshlet/http';
import { addCsdsService, clientStatusJson, csdsServiceDefinition, TYPE_URLS } from '@meshlet/xds-client';
import type { envoy_service_status_v3_ClientStatusResponse as ClientStatusResponse } from '@meshlet/xds-client/pb';
import { envoy_admin_v3_ClientResourceStatus as Status } from '@meshlet/xds-client/pb';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';

const API = 'admin.mesh.test';
const NACKED = 'nacked.mesh.test';
const { listener: LDS, routeConfiguration: RDS, cluster: CDS, clusterLoadAssignment: EDS } = TYPE_URLS;

interface Backend {
  readonly port: number;
  close(): Promise<void>;
}

async function backend(handler: (res: ServerResponse) => void): Promise<Backend> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('admin endpoint and CSDS on a live mesh', () => {
  let cp: ControlPlane;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  let admin: AdminServer;
  let csds: grpc.Server;
  let csdsAddress: string;
  const backends: Record<string, Backend> = {};
  const hanging = new Set<ServerResponse>();
  const hangingCall = new AbortController();

  beforeAll(async () => {
    backends.ok = await backend((res) => res.end('ok'));
    backends.bad = await backend((res) => {
      res.statusCode = 503;
      res.end('bad');
    });
    backends.hang = await backend((res) => hanging.add(res));

    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(LDS, [listener(`${API}:80`, 'rc-admin'), listener(`${NACKED}:80`, 'rc-nack')]);
    cp.setResources(RDS, [
      routeConfig('rc-admin', [{ domains: ['*'], routes: [{ prefix: '/od', cluster: 'c-od' }, { prefix: '/cb', cluster: 'c-cb' }] }]),
      routeConfig('rc-nack', [{ domains: ['*'], routes: [{ prefix: '/', cluster: 'c-od' }] }]),
    ]);
    cp.setResources(CDS, [
      // Envoy's consecutive_5xx ejects at once on the second 503; the host stays out 30 s.
      edsCluster('c-od', { outlier_detection: { consecutive_5xx: 2, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 100 } }),
      edsCluster('c-cb', { circuit_breakers: { thresholds: [{ max_requests: 1 }] } }),
    ]);
    cp.setResources(EDS, [
      endpoints('c-od', [
        ['127.0.0.1', backends.ok!.port],
        ['127.0.0.1', backends.bad!.port],
      ]),
      endpoints('c-cb', [['127.0.0.1', backends.hang!.port]]),
    ]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(7) });
    agent = new MeshAgent({ mesh });
    admin = await startAdminServer({ mesh });
    csds = new grpc.Server();
    addCsdsService(csds, () => mesh.xdsClients());
    const port = await new Promise<number>((resolve, reject) =>
      csds.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    csdsAddress = `127.0.0.1:${port}`;

    // Real traffic: round robin over ok and bad until bad has answered 503 twice (ejected).
    let bad = 0;
    for (let i = 0; i < 20 && bad < 2; i++) {
      const r = await request(`http://${API}/od/${i}`, { dispatcher: agent });
      await r.body.text();
      if (r.statusCode === 503) bad++;
    }
    // One request holds c-cb's only max_requests slot; the next one overflows (UO).
    void request(`http://${API}/cb/hold`, { dispatcher: agent, signal: hangingCall.signal }).catch(() => {});
    for (let i = 0; i < 100 && hanging.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const overflow = await request(`http://${API}/cb/over`, { dispatcher: agent }).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(overflow?.code).toBe('MESHLET_OVERFLOW');

    // A route table that was good turns bad: NACKed, the last good one stays in force.
    await mesh.target(`${NACKED}:80`).ready();
    const nacksBefore = cp.nacks(RDS).length;
    cp.updateResources(RDS, [
      { '@type': RDS, name: 'rc-nack', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'c-od' } }] }] },
    ]);
    await cp.waitForRequest((r) => r.typeUrl === RDS && r.kind === 'nack' && cp.nacks(RDS).length > nacksBefore);
  });

  afterAll(async () => {
    hangingCall.abort();
    for (const r of hanging) r.destroy();
    await admin?.close();
    csds?.forceShutdown();
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    await Promise.all(Object.values(backends).map((b) => b.close()));
  });

  const getJson = async (path: string) => {
    const res = await fetch(`${admin.url}${path}`);
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };

  it('/config_dump: every resource of both xDS clients with versions, and the NACKed one with its error', async () => {
    const dump = await getJson('/config_dump');
    expect(dump.config.map((c: { client_scope: string }) => c.client_scope)).toEqual(['mesh', 'listener-catalog']);
    const main = dump.config[0];
    expect(main.node).toMatchObject({ id: 'sidecar~127.0.0.1~test.default~default.svc.cluster.local', user_agent_name: 'meshlet' });
    const find = (type: string, name: string) => main.generic_xds_configs.find((g: any) => g.type_url === type && g.name === name);

    const nacked = find(RDS, 'rc-nack');
    expect(nacked.client_status).toBe('NACKED');
    // The accepted route table, still in force, and the rejected version with the reason.
    expect(nacked.xds_config).toMatchObject({ '@type': RDS, name: 'rc-nack' });
    expect(nacked.xds_config.virtual_hosts[0].routes[0].match).toEqual({ prefix: '/' });
    expect(nacked.version_info).not.toBe(nacked.error_state.version_info);
    expect(nacked.error_state.version_info).toBe(cp.version(RDS));
    expect(nacked.error_state.details).toMatch(/RouteConfiguration "rc-nack".*regex/);
    expect(Date.parse(nacked.error_state.last_update_attempt)).toBeGreaterThan(0);
    expect(nacked.error_state.failed_configuration).toMatchObject({ '@type': RDS, name: 'rc-nack' });

    for (const [type, name] of [[LDS, `${API}:80`], [RDS, 'rc-admin'], [CDS, 'c-od'], [CDS, 'c-cb'], [EDS, 'c-od']] as const) {
      const g = find(type, name);
      expect(g, `${type} ${name}`).toMatchObject({ client_status: 'ACKED', version_info: cp.version(type) });
      expect(g.error_state).toBeUndefined();
      expect(Date.parse(g.last_updated)).toBeGreaterThan(0);
      expect(g.xds_config['@type']).toBe(type);
    }
    expect(find(CDS, 'c-od').xds_config.outlier_detection).toMatchObject({ consecutive_5xx: 2, base_ejection_time: '30s' });

    // The listener catalog's wildcard subscription: every Listener the server has.
    const catalog = dump.config[1].generic_xds_configs.map((g: any) => [g.name, g.client_status]);
    expect(catalog.sort()).toEqual([
      [`${API}:80`, 'ACKED'],
      [`${NACKED}:80`, 'ACKED'],
    ]);
  });

  it('/clusters: endpoints with health, the ejected host, active requests and the tripped breaker', async () => {
    const view = await getJson('/clusters');
    const target = view.targets.find((t: any) => t.authority === `${API}:80`);
    expect(target).toMatchObject({ listener_name: `${API}:80`, state: 'ready' });
    const od = target.clusters.find((c: any) => c.name === 'c-od');
    expect(od.policy).toMatch(/round_robin/);
    expect(od.outlier_detection).toMatchObject({ ejections_active: 1, ejections_enforced_total: 1 });
    const host = (port: number) => `127.0.0.1:${port}`;
    expect(od.hosts).toEqual([
      expect.objectContaining({ address: host(backends.ok!.port), health_status: 'HEALTHY', health: 'healthy', ejected: false, num_ejections: 0, active_requests: 0 }),
      expect.objectContaining({ address: host(backends.bad!.port), health_status: 'HEALTHY', ejected: true, num_ejections: 1, active_requests: 0 }),
    ]);
    expect(od.hosts[0].locality).toEqual({ region: 'r1', zone: 'z1', sub_zone: '' });

    const cb = target.clusters.find((c: any) => c.name === 'c-cb');
    expect(cb.circuit_breakers.default.request).toEqual({ active: 1, limit: 1, remaining: 0, open: true });
    expect(cb.circuit_breakers.default.pending).toMatchObject({ active: 0, limit: 1024, open: false });
    expect(cb.circuit_breakers.high.request).toMatchObject({ active: 0, open: false });
    expect(cb.hosts).toEqual([expect.objectContaining({ address: host(backends.hang!.port), active_requests: 1, ejected: false })]);
    expect(cb.outlier_detection).toBeUndefined();

    const text = await (await fetch(`${admin.url}/clusters?format=text`)).text();
    expect(text).toContain(`c-od::${host(backends.bad!.port)}::health_flags::/failed_outlier_check\n`);
    expect(text).toContain(`c-od::${host(backends.ok!.port)}::health_flags::healthy\n`);
    expect(text).toContain(`c-cb::${host(backends.hang!.port)}::rq_active::1\n`);
    expect(text).toContain('c-cb::default_priority::max_requests::1\n');
    expect(text).toContain('c-cb::default_priority::max_requests::open::true\n');
  });

  it('CSDS over gRPC: a grpc-js client sees the NACKed route table and its error', async () => {
    const Client = grpc.makeGenericClientConstructor(csdsServiceDefinition, 'ClientStatusDiscoveryService');
    const stub = new Client(csdsAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    try {
      const response = await new Promise<ClientStatusResponse>((resolve, reject) =>
        stub.FetchClientStatus({ node_matchers: [], exclude_resource_contents: false }, (e: Error | null, r: ClientStatusResponse) =>
          e ? reject(e) : resolve(r),
        ),
      );
      expect(response.config.map((c) => c.client_scope)).toEqual(['mesh', 'listener-catalog']);
      const g = response.config[0]!.generic_xds_configs.find((x) => x.type_url === RDS && x.name === 'rc-nack')!;
      expect(g.client_status).toBe(Status.NACKED);
      expect(g.error_state?.version_info).toBe(cp.version(RDS));
      expect(g.error_state?.details).toMatch(/regex/);
      expect(g.xds_config?.type_url).toBe(RDS);
      const acked = response.config[0]!.generic_xds_configs.find((x) => x.type_url === CDS && x.name === 'c-od')!;
      expect(acked.client_status).toBe(Status.ACKED);
      expect(acked.version_info).toBe(cp.version(CDS));
    } finally {
      stub.close();
    }
  });

  it('sends the same documents as the one-piece renderings (it streams them a piece at a time)', async () => {
    const dump = await (await fetch(`${admin.url}/config_dump`)).text();
    expect(dump).toBe(`${JSON.stringify(clientStatusJson(() => mesh.xdsClients()), null, 2)}\n`);
    const clusters = await (await fetch(`${admin.url}/clusters`)).text();
    expect(clusters).toBe(`${JSON.stringify(clustersView(mesh), null, 2)}\n`);
  });

  it('/ready is LIVE once every target has its config', async () => {
    const res = await fetch(`${admin.url}/ready`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('LIVE\n');
  });
});
