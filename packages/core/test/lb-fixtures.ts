// Builders for ClusterResource / EndpointsResource in load-balancer tests.
import type { ClusterResource, Endpoint, EndpointsResource, HealthStatus, LbPolicyConfig, LocalityEndpoints } from '@meshlet/xds-client';

export interface EndpointSpec {
  readonly host: string;
  readonly port?: number;
  readonly weight?: number;
  readonly health?: HealthStatus;
}

export function endpoint(spec: EndpointSpec | string): Endpoint {
  const s = typeof spec === 'string' ? { host: spec } : spec;
  return {
    addresses: [{ host: s.host, port: s.port ?? 80 }],
    hostname: '',
    healthStatus: s.health ?? 'HEALTHY',
    weight: s.weight ?? 1,
    metadata: undefined,
  };
}

export function locality(zone: string, endpoints: readonly (EndpointSpec | string)[], weight = 1, priority = 0): LocalityEndpoints {
  return {
    locality: { region: 'r', zone, subZone: '' },
    weight,
    priority,
    endpoints: endpoints.map(endpoint),
    metadata: undefined,
  };
}

export function endpoints(
  priorities: readonly (readonly LocalityEndpoints[])[],
  extra: Partial<EndpointsResource> = {},
): EndpointsResource {
  return {
    clusterName: 'c',
    priorities: priorities.map((p, i) => p.map((l) => ({ ...l, priority: i }))),
    dropOverloads: [],
    overprovisioningFactor: 140,
    weightedPriorityHealth: false,
    ...extra,
  };
}

export function cluster(lbPolicy: readonly LbPolicyConfig[], common: Partial<ClusterResource['commonLbConfig']> = {}): ClusterResource {
  return {
    name: 'c',
    type: 'EDS',
    edsServiceName: undefined,
    lbPolicy,
    commonLbConfig: {
      healthyPanicThreshold: 50,
      localityWeightedLbConfig: false,
      zoneAwareLbConfig: undefined,
      ignoreNewHostsUntilFirstHc: false,
      updateMergeWindow: 1000,
      ...common,
    },
  } as unknown as ClusterResource;
}

/** n hosts 10.0.<i/250>.<i%250 + 1>:80 as endpoint specs. */
export function hostsSpec(n: number, extra: Partial<EndpointSpec> = {}): EndpointSpec[] {
  return Array.from({ length: n }, (_, i) => ({ host: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, ...extra }));
}

export function countKeys(keys: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

export const RR: LbPolicyConfig = { name: 'round_robin', config: {} };
export const RANDOM: LbPolicyConfig = { name: 'random', config: {} };
export const LR = (choiceCount = 2, activeRequestBias = 1): LbPolicyConfig => ({ name: 'least_request', config: { choiceCount, activeRequestBias } });
export const RING = (minRingSize = 1024, maxRingSize = 8_388_608): LbPolicyConfig => ({
  name: 'ring_hash',
  config: { minRingSize, maxRingSize, hashFunction: 'XX_HASH' },
});
export const MAGLEV = (tableSize = 65537): LbPolicyConfig => ({ name: 'maglev', config: { tableSize } });
