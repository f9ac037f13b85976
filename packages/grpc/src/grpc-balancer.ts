// A cluster's balancer for gRPC calls: core's balancer (priority → locality → endpoint, the
// cluster's policy from lb-registry), built over the same endpoints as the HTTP one but with
// gRPC's rules where they differ from Envoy's (docs/grpc.md lists them):
// - only endpoints whose health_status is UNKNOWN or HEALTHY are used (gRFC A27); DEGRADED,
//   UNHEALTHY, DRAINING and TIMEOUT endpoints are left out, so Envoy's degraded tier and panic
//   routing never apply (gRPC has no panic threshold);
// - ring_hash's minimum and maximum ring sizes are capped at 4096 (gRFC A42's
//   `ring_hash_cap`), Envoy allows 8M;
// - an endpoint with several addresses (a LOGICAL_DNS cluster's one endpoint, every resolved
//   address, gRFC A37; EDS additional_addresses, A61) stays one host here, whose addresses the
//   pool connects with grpc-js's pick_first (cluster-pool.ts); Envoy uses the first only.
// Built lazily, when the first call is routed to the cluster, and rebuilt only when the
// cluster or its endpoints change.
import { buildClusterLoadBalancer, type ClusterLoadBalancer, type ClusterSnapshot, type Mesh } from '@meshlet/core';
import {
  MeshletError,
  type ClusterResource,
  type EndpointsResource,
  type LbPolicyConfig,
  type RingHashConfig,
  type WrrLocalityConfig,
} from '@meshlet/xds-client';

/** gRFC A42: the largest ring a gRPC client builds. */
export const GRPC_RING_SIZE_CAP = 4096;

function usable(status: string): boolean {
  return status === 'HEALTHY' || status === 'UNKNOWN';
}

/**
 * The endpoints with only the ones gRPC uses (A27), and none of the priorities in `down`.
 * Returns the input when nothing is left out.
 */
export function grpcEndpoints(endpoints: EndpointsResource, down?: ReadonlySet<number>): EndpointsResource {
  let changed = false;
  const priorities = endpoints.priorities.map((localities, p) =>
    localities.map((l) => {
      if (down?.has(p) && l.endpoints.length > 0) {
        changed = true;
        return { ...l, endpoints: [] };
      }
      if (l.endpoints.every((e) => usable(e.healthStatus))) return l;
      changed = true;
      return { ...l, endpoints: l.endpoints.filter((e) => usable(e.healthStatus)) };
    }),
  );
  return changed ? { ...endpoints, priorities } : endpoints;
}

function capPolicies(policies: readonly LbPolicyConfig[]): { policies: readonly LbPolicyConfig[]; changed: boolean } {
  let changed = false;
  const out = policies.map((p): LbPolicyConfig => {
    if (p.name === 'ring_hash') {
      const c = p.config as RingHashConfig;
      if (c.minRingSize <= GRPC_RING_SIZE_CAP && c.maxRingSize <= GRPC_RING_SIZE_CAP) return p;
      changed = true;
      return {
        name: p.name,
        config: { ...c, minRingSize: Math.min(c.minRingSize, GRPC_RING_SIZE_CAP), maxRingSize: Math.min(c.maxRingSize, GRPC_RING_SIZE_CAP) },
      };
    }
    if (p.name === 'wrr_locality') {
      const c = p.config as WrrLocalityConfig;
      const inner = capPolicies(c.childPolicy);
      if (!inner.changed) return p;
      changed = true;
      return { name: p.name, config: { ...c, childPolicy: inner.policies } };
    }
    return p;
  });
  return { policies: changed ? out : policies, changed };
}

/** The cluster with gRPC's parameters: no panic threshold, ring sizes capped. */
export function grpcCluster(cluster: ClusterResource): ClusterResource {
  const capped = capPolicies(cluster.lbPolicy);
  return {
    ...cluster,
    lbPolicy: capped.policies,
    commonLbConfig: { ...cluster.commonLbConfig, healthyPanicThreshold: 0, zoneAwareLbConfig: undefined },
  };
}

/**
 * The gRPC balancer of one cluster snapshot, or the error that explains why there is none.
 * `down`: priorities to leave out because none of their endpoints can be reached (gRPC fails
 * over on connectivity, A56; Envoy's priority load follows health only).
 */
export function buildGrpcBalancer(cs: ClusterSnapshot, mesh: Mesh, down?: ReadonlySet<number>): ClusterLoadBalancer | MeshletError {
  const cluster = cs.lbCluster ?? cs.cluster;
  // A cluster that is missing or invalid is "cluster not found" (NC), one without endpoints "no healthy upstream" (UH).
  if (cluster === undefined) return new MeshletError('MESHLET_NO_CLUSTER', `cluster "${cs.name}": ${cs.error?.message ?? 'not resolved'}`);
  if (cs.endpoints === undefined || cs.error) {
    return new MeshletError('MESHLET_NO_HEALTHY_UPSTREAM', `cluster "${cs.name}": ${cs.error?.message ?? 'no endpoints'}`);
  }
  try {
    return buildClusterLoadBalancer(grpcCluster(cluster), grpcEndpoints(cs.endpoints, down), {
      random: mesh.random,
      hostStats: (key) => mesh.hostStats(key),
    });
  } catch (err) {
    return err instanceof MeshletError ? err : new MeshletError('MESHLET_INVALID_OPTION', `cluster "${cs.name}": ${String(err)}`);
  }
}
