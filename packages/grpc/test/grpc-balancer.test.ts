// gRPC's rules on top of core's balancer: endpoint health (A27), ring size cap (A42), no panic.
import { describe, expect, it } from 'vitest';
import type { ClusterResource, EndpointsResource } from '@meshlet/xds-client';
import { seededRandom, type ClusterSnapshot, type Mesh } from '@meshlet/core';
import { buildGrpcBalancer, GRPC_RING_SIZE_CAP, grpcCluster, grpcEndpoints } from '../src/grpc-balancer.js';
import { connectModeOf } from '../src/cluster-pool.js';

function endpointsWith(statuses: string[]): EndpointsResource {
  return {
    clusterName: 'c',
    priorities: [
      [
        {
          locality: { region: 'r', zone: 'z', subZone: '' },
          weight: 1,
          priority: 0,
          metadata: undefined,
          endpoints: statuses.map((s, i) => ({
            addresses: [{ host: '127.0.0.1', port: 1000 + i }],
            hostname: '',
            healthStatus: s as never,
            weight: 1,
            metadata: undefined,
          })),
        },
      ],
    ],
    dropOverloads: [],
    overprovisioningFactor: 140,
    weightedPriorityHealth: false,
  };
}

describe('grpc-balancer', () => {
  it('keeps only UNKNOWN and HEALTHY endpoints (A27)', () => {
    const e = grpcEndpoints(endpointsWith(['HEALTHY', 'DEGRADED', 'UNKNOWN', 'UNHEALTHY', 'DRAINING', 'TIMEOUT']));
    expect(e.priorities[0]![0]!.endpoints.map((x) => x.addresses[0]!.port)).toEqual([1000, 1002]);
    const all = endpointsWith(['HEALTHY', 'UNKNOWN']);
    expect(grpcEndpoints(all)).toBe(all);
  });

  it('caps ring sizes at 4096 (A42), also under wrr_locality, and turns panic routing off', () => {
    const cluster = {
      name: 'c',
      lbPolicy: [
        { name: 'ring_hash', config: { minRingSize: 8192, maxRingSize: 8_388_608, hashFunction: 'XX_HASH' } },
        { name: 'wrr_locality', config: { childPolicy: [{ name: 'ring_hash', config: { minRingSize: 10, maxRingSize: 100_000, hashFunction: 'XX_HASH' } }] } },
      ],
      commonLbConfig: { healthyPanicThreshold: 50, localityWeightedLbConfig: false, zoneAwareLbConfig: undefined, ignoreNewHostsUntilFirstHc: false, updateMergeWindow: 1000 },
    } as unknown as ClusterResource;
    const g = grpcCluster(cluster);
    expect(g.lbPolicy[0]!.config).toEqual({ minRingSize: GRPC_RING_SIZE_CAP, maxRingSize: GRPC_RING_SIZE_CAP, hashFunction: 'XX_HASH' });
    expect((g.lbPolicy[1]!.config as { childPolicy: { config: unknown }[] }).childPolicy[0]!.config).toEqual({ minRingSize: 10, maxRingSize: 4096, hashFunction: 'XX_HASH' });
    expect(g.commonLbConfig.healthyPanicThreshold).toBe(0);
    expect(cluster.lbPolicy[0]!.config).toEqual({ minRingSize: 8192, maxRingSize: 8_388_608, hashFunction: 'XX_HASH' });
  });

  it('connects on demand for ring hash, maglev and pick_first, eagerly for the rest', () => {
    expect(connectModeOf('ring_hash')).toBe('on_demand');
    expect(connectModeOf('maglev')).toBe('on_demand');
    expect(connectModeOf('pick_first')).toBe('on_demand');
    expect(connectModeOf('round_robin')).toBe('all');
    expect(connectModeOf('wrr_locality/round_robin')).toBe('all');
    expect(connectModeOf('least_request')).toBe('all');
    expect(connectModeOf('client_side_weighted_round_robin')).toBe('all');
  });
  it('keeps a LOGICAL_DNS cluster as one host holding every resolved address, alone or in an aggregate (A37)', () => {
    // As core gives it: one endpoint holding every address, in the resolver's order. The pool
    // connects such a host with grpc-js's pick_first over its addresses (cluster-pool.ts).
    const endpoints = endpointsWith(['UNKNOWN']);
    const ep = endpoints.priorities[0]![0]!.endpoints[0]!;
    const addresses = [{ host: '::1', port: 80 }, { host: '127.0.0.1', port: 80 }, { host: '127.0.0.2', port: 80 }];
    const dnsEndpoints: EndpointsResource = { ...endpoints, priorities: [[{ ...endpoints.priorities[0]![0]!, endpoints: [{ ...ep, addresses }] }]] };
    const cluster = {
      name: 'dns',
      type: 'LOGICAL_DNS',
      lbPolicy: [{ name: 'round_robin', config: {} }],
      commonLbConfig: { healthyPanicThreshold: 50, localityWeightedLbConfig: false, zoneAwareLbConfig: undefined, ignoreNewHostsUntilFirstHc: false, updateMergeWindow: 1000 },
    } as unknown as ClusterResource;
    const mesh = { random: seededRandom(1), hostStats: () => ({ activeRequests: 0 }) } as unknown as Mesh;
    const snapshot = (c: ClusterResource, lbCluster = c): ClusterSnapshot =>
      ({ name: c.name, cluster: c, lbCluster, endpoints: dnsEndpoints, error: undefined, hostKeys: [] }) as unknown as ClusterSnapshot;
    for (const cs of [snapshot(cluster), snapshot({ ...cluster, name: 'agg', type: 'AGGREGATE' } as unknown as ClusterResource, cluster)]) {
      const lb = buildGrpcBalancer(cs, mesh);
      if (lb instanceof Error) throw lb;
      expect(lb.hosts.map((h) => h.key)).toEqual(['[::1]:80']);
      expect(lb.hosts[0]!.endpoint.addresses).toEqual(addresses);
      expect(lb.pick()?.key).toBe('[::1]:80');
    }
  });
});
