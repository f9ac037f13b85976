// The admin view of /clusters: for every target the mesh has resolved and every cluster of
// its snapshot, the endpoints with their EDS health, outlier ejection and active requests,
// and the cluster's circuit breaker. Read-only: it reads the live objects the request path
// uses (the snapshot's balancer, the breaker and outlier registries, the host counters).
// The text form follows Envoy's admin /clusters lines (`cluster::host::stat::value`). The
// admin server sends the chunked forms, one cluster at a time.
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
  return { ...targetHead(t), clusters: t.snapshot ? [...t.snapshot.clusters.values()].map(clusterView) : [] };
}

/** Every target's clusters, as /clusters serves them in JSON. */
export function clustersView(mesh: Mesh): ClustersView {
  return { targets: mesh.targets().map(targetView) };
}

/** A target's view without its clusters (rendered one by one by the chunked forms). */
function targetHead(t: MeshTarget): Omit<TargetView, 'clusters'> {
  return {
    authority: t.authority,
    listener_name: t.listenerName,
    state: t.state,
    ...(t.error ? { error: t.error.message } : {}),
  };
}

/** JSON.stringify(value, null, 2) placed at a nesting depth. */
function pretty(value: unknown, depth: number): string {
  return JSON.stringify(value, null, 2).replace(/\n/g, `\n${'  '.repeat(depth)}`);
}

/**
 * `JSON.stringify(clustersView(mesh), null, 2)` in pieces of one cluster each, each cluster's
 * view built only when its piece is asked for: a mesh of thousands of clusters is sent while
 * the server yields to other work.
 */
export function* clustersJsonChunks(mesh: Mesh): Generator<string> {
  const targets = mesh.targets();
  if (targets.length === 0) {
    yield '{\n  "targets": []\n}\n';
    return;
  }
  yield '{\n  "targets": [';
  for (const [i, t] of targets.entries()) {
    const head = Object.entries(targetHead(t)).map(([k, v]) => `\n      ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    yield `${i > 0 ? ',' : ''}\n    {${head.join(',')},`;
    const clusters = t.snapshot ? [...t.snapshot.clusters.values()] : [];
    if (clusters.length === 0) {
      yield '\n      "clusters": []';
    } else {
      yield '\n      "clusters": [';
      for (const [j, c] of clusters.entries()) yield `${j > 0 ? ',' : ''}\n        ${pretty(clusterView(c), 4)}`;
      yield '\n      ]';
    }
    yield '\n    }';
  }
  yield '\n  ]\n}\n';
}

// Envoy's names for the breaker gauges (config/cluster/v3/circuit_breaker.proto, admin /clusters).
const ENVOY_BREAKER_NAMES: Record<BreakerResource, string> = {
  connection: 'max_connections',
  pending: 'max_pending_requests',
  request: 'max_requests',
  retry: 'max_retries',
  connection_pool: 'max_connection_pools',
};

function clusterTextLines(c: ClusterView): string {
  const lines: string[] = [];
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
  if (c.outlier_detection) lines.push(`${n}::outlier::ejections_active::${c.outlier_detection.ejections_active}`);
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
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * The same in Envoy's text form (`cluster::host::stat::value` lines), in pieces of one
 * cluster each; each cluster once (a cluster shared by several targets has one breaker and
 * one detector).
 */
export function* clustersTextChunks(mesh: Mesh): Generator<string> {
  const seen = new Set<string>();
  for (const t of mesh.targets()) {
    const head = targetHead(t);
    yield `target::${head.authority}::listener::${head.listener_name}\ntarget::${head.authority}::state::${head.state}\n${
      head.error ? `target::${head.authority}::error::${head.error}\n` : ''
    }`;
    for (const c of t.snapshot?.clusters.values() ?? []) {
      if (seen.has(c.name)) continue;
      seen.add(c.name);
      yield clusterTextLines(clusterView(c));
    }
  }
}
