// @meshlet/grpc endpoints with several addresses, through the real control plane to a real
// grpc-js backend on 127.0.0.1: grpc-js's pick_first runs over an endpoint's addresses in order,
// so a first address that cannot be reached does not fail the endpoint.
// - A LOGICAL_DNS cluster, on its own and inside an aggregate cluster (gRFC A37: the logical DNS
//   mechanism reports every resolved address under pick_first). The mesh's resolver answers ::1 first;
//   nothing listens on [::1] at the backend's port (or the machine has no ::1), so the calls
//   succeed only if the next address, 127.0.0.1, is tried.
// - An EDS endpoint whose address refuses connections and whose additional_addresses has the
//   backend (gRFC A61).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TYPE_URLS } from '@meshlet/xds-client';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type GrpcMeshEnv } from './helpers/grpc-mesh.js';
import { freePort } from './helpers/ports.js';
import { caseRoute, edsCluster, listener } from './helpers/xds-resources.js';

const TARGET = 'addresses.grpc.test:8080';
const AGG = 'outbound|8080|agg|addresses.grpc.test';
const DNS = 'outbound|8080|dns|addresses.grpc.test';
const DNS_ALONE = 'outbound|8080|dns-alone|addresses.grpc.test';
const EDS = 'outbound|8080|eds|addresses.grpc.test';
const DNS_NAME = 'backend.addresses.grpc.test';

describe('@meshlet/grpc: endpoints with several addresses', () => {
  let backend: BehaviorBackend;
  let env: GrpcMeshEnv;
  const asked: string[] = [];

  beforeAll(async () => {
    backend = await startBehaviorBackend('v4');
    const dead = await freePort();
    env = await startGrpcMesh(
      {
        [TYPE_URLS.listener]: [listener(TARGET, 'rc-addresses')],
        [TYPE_URLS.routeConfiguration]: [
          {
            '@type': TYPE_URLS.routeConfiguration,
            name: 'rc-addresses',
            virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [caseRoute('agg', AGG), caseRoute('dns', DNS_ALONE), caseRoute('eds', EDS)] }],
          },
        ],
        [TYPE_URLS.cluster]: [
          {
            '@type': TYPE_URLS.cluster,
            name: AGG,
            cluster_type: {
              name: 'envoy.clusters.aggregate',
              typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: [DNS] },
            },
            lb_policy: 'CLUSTER_PROVIDED',
          },
          {
            '@type': TYPE_URLS.cluster,
            name: DNS,
            type: 'LOGICAL_DNS',
            load_assignment: {
              cluster_name: DNS,
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: DNS_NAME, port_value: backend.port } } } }] }],
            },
          },
          {
            '@type': TYPE_URLS.cluster,
            name: DNS_ALONE,
            type: 'LOGICAL_DNS',
            lb_policy: 'ROUND_ROBIN',
            load_assignment: {
              cluster_name: DNS_ALONE,
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: DNS_NAME, port_value: backend.port } } } }] }],
            },
          },
          edsCluster(EDS),
        ],
        [TYPE_URLS.clusterLoadAssignment]: [
          {
            '@type': TYPE_URLS.clusterLoadAssignment,
            cluster_name: EDS,
            endpoints: [
              {
                locality: { region: 'r1', zone: 'z1' },
                lb_endpoints: [
                  {
                    endpoint: {
                      address: { socket_address: { address: '127.0.0.1', port_value: dead } },
                      additional_addresses: [{ address: { socket_address: { address: '127.0.0.1', port_value: backend.port } } }],
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
      {
        resolveDns: async (host) => {
          asked.push(host);
          return ['::1', '127.0.0.1'];
        },
      },
    );
  });

  afterAll(async () => {
    await env?.close();
    await backend?.close();
  });

  it('tries every resolved address of a LOGICAL_DNS cluster inside an aggregate cluster, in order (A37)', async () => {
    const c = env.client(TARGET);
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => c.call(`agg ${i}`, { metadata: { 'x-case': 'agg' }, deadlineMs: 10_000 })));
    expect(results.map((r) => [r.ok, r.details])).toEqual(Array(4).fill([true, '']));
    expect(results.map((r) => r.reply.split(':')[0])).toEqual(['v4', 'v4', 'v4', 'v4']);
    expect(asked).toContain(DNS_NAME);
    // The snapshot keeps both addresses on the DNS cluster's one endpoint, ::1 first.
    const snapshot = env.mesh.targets().find((t) => t.authority === TARGET)?.snapshot;
    const ep = snapshot?.clusters.get(AGG)?.endpoints?.priorities[0]?.[0]?.endpoints[0];
    expect(ep?.addresses.map((a) => a.host)).toEqual(['::1', '127.0.0.1']);
  });

  it('tries every resolved address of a LOGICAL_DNS cluster on its own, in order (A37)', async () => {
    const c = env.client(TARGET);
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => c.call(`dns ${i}`, { metadata: { 'x-case': 'dns' }, deadlineMs: 10_000 })));
    expect(results.map((r) => [r.ok, r.details])).toEqual(Array(4).fill([true, '']));
    expect(results.map((r) => r.reply.split(':')[0])).toEqual(['v4', 'v4', 'v4', 'v4']);
  });

  it("reaches an EDS endpoint through its additional_addresses when its address refuses connections (A61)", async () => {
    const c = env.client(TARGET);
    const before = backend.calls;
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => c.call(`eds ${i}`, { metadata: { 'x-case': 'eds' }, deadlineMs: 10_000 })));
    expect(results.map((r) => [r.ok, r.details])).toEqual(Array(4).fill([true, '']));
    expect(backend.calls - before).toBe(4);
  });
});
