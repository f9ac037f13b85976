// The admin view of /clusters: for every target the mesh has resolved and every cluster of
// its snapshot, the endpoints with their EDS health, outlier ejection and active requests,
// and the cluster's circuit breaker. Read-only: it reads the live objects the request path
// uses (the snapshot's balancer, the breaker and outlier registries, the host counters).
// The text form follows Envoy's admin /clusters lines (`cluster::host::stat::value`).
import type { BreakerResource, BreakerResourceState, RoutingPriority } from '../circuit-breaker.js';
import type { ClusterSnapshot, Mesh, MeshTarget } from '../mesh.js';

export interface HostView {
  readonly address: string;
  readonly priority: number;
  readonly locality: { readonly region: string; readonly zone: string; readonly sub_zone: string };
  readonly weight: number;
  /** The endpoint's EDS health_status (HEALTHY, UNKNOWN, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED). */
  readonly health_status: string;
  /** How the load balancer treats it: healthy, degraded or unhealthy. */
  readonly health: string;
  /** Ejected by outlier detection now. */
  readonly ejected: boolean;
  /** Times outlier detection has ejected it (absent without outlier detection). */
  readonly num_ejections?: number;
  /** Requests in flight to it, from every target of the mesh. */
  readonly active_requests: number;
}

export interface BreakerView {
  readonly active: number;
  /** null when the resource has no limit. */
  readonly limit: number | null;
  readonly remaining: number | null;
  readonly open: boolean;
}

export interface ClusterView {
  readonly name: string;
  /** The load balancing policy in use; absent when the cluster has no balancer. */
  readonly policy?: string;
  /** Why the cluster cannot be used (missing, NACKed with no last good value, no endpoints...). */
  readonly error?: string;
  readonly circuit_breakers?: Record<Lowercase<RoutingPriority>, Record<BreakerResource, BreakerView>>;
  readonly outlier_detection?: {
    readonly ejections_active: number;
    readonly ejections_overflow: number;
    readonly ejections_enforced_total: number;
  };
  readonly hosts: readonly HostView[];
}

export interface TargetView {
  readonly authority: string;
  readonly listener_name: string;
  readonly state: string;
  readonly error?: string;
  readonly clusters: readonly ClusterView[];
}

export interface ClustersView {
  readonly targets: readonly TargetView[];
}

function breakerView(s: BreakerResourceState): BreakerView {
  const finite = Number.isFinite(s.limit);
  return { active: s.active, limit: finite ? s.limit : null, remaining: finite ? s.remaining : null, open: s.open };
}

function clusterView(c: ClusterSnapshot): ClusterView {
  const hosts: HostView[] = (c.lb?.hosts ?? []).map((h) => {
    const od = c.outlier?.hostState(h.key);
    const l = h.locality;
    return {
      address: h.key,
      priority: h.priority,
      locality: { region: l.region, zone: l.zone, sub_zone: l.subZone },
      weight: h.weight,
      health_status: h.endpoint.healthStatus,
      health: h.health,
      ejected: c.outlier?.isEjected(h.key) ?? false,
      ...(od ? { num_ejections: od.numEjections } : {}),
      active_requests: h.stats.activeRequests,
    };
  });
  let breakers: ClusterView['circuit_breakers'];
  if (c.breaker) {
    const states = c.breaker.states();
    const priority = (p: RoutingPriority) =>
      Object.fromEntries(Object.entries(states[p]).map(([r, s]) => [r, breakerView(s)])) as Record<BreakerResource, BreakerView>;
    breakers = { default: priority('DEFAULT'), high: priority('HIGH') };
  }
  const stats = c.outlier?.stats();
  return {
    name: c.name,
    ...(c.lb ? { policy: c.lb.policy } : {}),
    ...(c.error ? { error: c.error.message } : c.lb ? {} : { error: 'no endpoints' }),
    ...(breakers ? { circuit_breakers: breakers } : {}),
    ...(stats
      ? {
          outlier_detection: {
            ejections_active: stats.ejectionsActive,
            ejections_overflow: stats.ejectionsOverflow,
            ejections_enforced_total: stats.ejectionsEnforcedTotal,
          },
        }
      : {}),
    hosts,
  };
}

function targetView(t: MeshTarget): TargetView {
  const snapshot = t.snapshot;
  return {
    authority: t.authority,
    listener_name: t.listenerName,
    state: t.state,
    ...(t.error ? { error: t.error.message } : {}),
    clusters: snapshot ? [...snapshot.clusters.values()].map(clusterView) : [],
  };
}

/** Every target's clusters, as /clusters serves them in JSON. */
export function clustersView(mesh: Mesh): ClustersView {
  return { targets: mesh.targets().map(targetView) };
}

// Envoy's names for the breaker gauges (config/cluster/v3/circuit_breaker.proto, admin /clusters).
const ENVOY_BREAKER_NAMES: Record<BreakerResource, string> = {
  connection: 'max_connections',
  pending: 'max_pending_requests',
  request: 'max_requests',
  retry: 'max_retries',
  connection_pool: 'max_connection_pools',
};

/**
 * The same in Envoy's text form, one `name::value` per line, each cluster once (a cluster
 * shared by several targets has one breaker and one detector).
 */
export function clustersText(view: ClustersView): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const t of view.targets) {
    lines.push(`target::${t.authority}::listener::${t.listener_name}`, `target::${t.authority}::state::${t.state}`);
    if (t.error) lines.push(`target::${t.authority}::error::${t.error}`);
    for (const c of t.clusters) {
      if (seen.has(c.name)) continue;
      seen.add(c.name);
      const n = c.name;
      if (c.policy) lines.push(`${n}::lb_policy::${c.policy}`);
      if (c.error) lines.push(`${n}::error::${c.error}`);
      if (c.circuit_breakers) {
        for (const [priority, resources] of Object.entries(c.circuit_breakers)) {
          for (const [resource, s] of Object.entries(resources) as Array<[BreakerResource, BreakerView]>) {
            const prefix = `${n}::${priority}_priority::${ENVOY_BREAKER_NAMES[resource]}`;
            lines.push(`${prefix}::${s.limit ?? 'unlimited'}`, `${prefix}::active::${s.active}`, `${prefix}::open::${s.open}`);
          }
        }
      }
      if (c.outlier_detection) {
        lines.push(`${n}::outlier::ejections_active::${c.outlier_detection.ejections_active}`);
      }
      for (const h of c.hosts) {
        const p = `${n}::${h.address}`;
        // Envoy's health_flags: "healthy", or each reason with a leading "/".
        const flags: string[] = [];
        if (h.health === 'unhealthy') flags.push('failed_eds_health');
        if (h.health === 'degraded') flags.push('degraded_eds_health');
        if (h.ejected) flags.push('failed_outlier_check');
        lines.push(
          `${p}::health_flags::${flags.length === 0 ? 'healthy' : flags.map((f) => `/${f}`).join('')}`,
          `${p}::weight::${h.weight}`,
          `${p}::priority::${h.priority}`,
          `${p}::region::${h.locality.region}`,
          `${p}::zone::${h.locality.zone}`,
          `${p}::sub_zone::${h.locality.sub_zone}`,
          `${p}::rq_active::${h.active_requests}`,
        );
        if (h.num_ejections !== undefined) lines.push(`${p}::num_ejections::${h.num_ejections}`);
      }
    }
  }
  return lines.join('\n') + (lines.length > 0 ? '\n' : '');
}
