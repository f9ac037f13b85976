// The per-cluster picker: built once per config update from a Cluster and its
// endpoints, it chooses priority → locality → endpoint for each request (DESIGN.md
// "The request path", step 3) with Envoy's rules for HTTP:
// - the policy is the first entry of cluster.lbPolicy registered in lb-registry.ts;
// - priorities get their load from their health (priority-locality.ts); a priority
//   in panic balances over all its hosts;
// - 'locality'-scope policies (round robin, least request, random) are chosen a
//   priority at random; with locality_weighted_lb_config (or wrr_locality) a
//   locality is chosen by EDF over the effective locality weights (weight 0 = never),
//   else the policy sees all the priority's hosts together;
// - 'priority'-scope policies (ring hash, Maglev) take the priority from the request
//   hash and one ring/table per priority over normalized weights (Envoy's
//   ThreadAwareLoadBalancerBase);
// - `exclude` (hosts a retry already tried) is honoured while any other host the
//   load could go to remains; when every such host is excluded, the pick ignores
//   the exclusions, as Envoy reuses a host once host-selection attempts run out.
import { MeshletError, tracer, type ClusterResource, type EndpointsResource, type LbPolicyConfig } from '@meshlet/xds-client';
import { EdfScheduler } from './lb-edf.js';
import { selectLoadBalancer } from './lb-registry.js';
import {
  firstNotExcluded,
  type HostHealth,
  type HostPicker,
  type HostStats,
  type LbScope,
  type LoadBalancerFactory,
  type PickContext,
  type PickedHost,
} from './lb-types.js';
import { computePriorityLoad, effectiveLocalityWeight, type PriorityCounts, type PriorityLoad } from './priority-locality.js';
import type { Random } from './random.js';
import { mod64, splitHash } from './xxhash.js';

export interface ClusterLoadBalancerOptions {
  /** Source of randomness for build-time choices and for picks without their own. */
  readonly random: Random;
  /**
   * The live counters of a host, by key (`host:port`). Called once per host per
   * build; the returned object is kept on the PickedHost. Default: a fresh
   * `{ activeRequests: 0 }` per key.
   */
  readonly hostStats?: (key: string) => HostStats;
}

export interface ClusterLoadBalancer {
  readonly cluster: string;
  /** The policy in use, e.g. "round_robin" or "wrr_locality/least_request". */
  readonly policy: string;
  /** Every host, in EDS order (priority, locality, endpoint). */
  readonly hosts: readonly PickedHost[];
  readonly priorityLoad: PriorityLoad;
  /** A host for one request (or one retry), or undefined when there is none (no healthy upstream). */
  pick(ctx?: PickContext): PickedHost | undefined;
}

const trace = tracer('lb');

const DEFAULT_POLICY: readonly LbPolicyConfig[] = [{ name: 'round_robin', config: {} }];
const EMPTY_CTX: PickContext = {};

/** Envoy's address string: `1.2.3.4:80`, `[::1]:80`. */
export function hostKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function healthOf(status: string): HostHealth {
  switch (status) {
    case 'HEALTHY':
    case 'UNKNOWN':
      return 'healthy';
    case 'DEGRADED':
      return 'degraded';
    default:
      return 'unhealthy';
  }
}

interface LocalityHosts {
  readonly weight: number;
  readonly hosts: readonly PickedHost[];
}

/** Picks a locality by EDF over effective weights, then a host within it. */
class LocalityPicker implements HostPicker {
  private readonly edf: EdfScheduler;
  constructor(
    private readonly pickers: readonly HostPicker[],
    weights: readonly number[],
    random: Random,
  ) {
    this.edf = EdfScheduler.withRandomStart(weights, random);
  }
  pick(ctx: PickContext, random: Random): PickedHost | undefined {
    return this.pickers[this.edf.pickAndAdd()]!.pick(ctx, random);
  }
}

interface PriorityState {
  readonly all: readonly PickedHost[];
  /** Hosts a pick of this priority may land on (for the exclusion fallback). */
  readonly eligible: PickedHost[];
  panic: boolean;
  healthy: HostPicker | undefined;
  degraded: HostPicker | undefined;
}

export function buildClusterLoadBalancer(
  cluster: ClusterResource,
  endpoints: EndpointsResource,
  options: ClusterLoadBalancerOptions,
): ClusterLoadBalancer {
  const random = options.random;
  // ------------------------------------------------------------ the policy
  const policies = cluster.lbPolicy.length > 0 ? cluster.lbPolicy : DEFAULT_POLICY;
  const selected = selectLoadBalancer(policies);
  if (!selected) {
    throw new MeshletError(
      'MESHLET_INVALID_OPTION',
      `cluster "${cluster.name}": no registered load balancing policy among ${policies.map((p) => p.name).join(', ')}`,
    );
  }
  let factory: LoadBalancerFactory;
  let config: unknown;
  let policyName = selected.policy.name;
  let localityWeighted = cluster.commonLbConfig.localityWeightedLbConfig;
  if ('wraps' in selected.factory) {
    const children = selected.factory.childPolicy(selected.policy.config);
    const child = selectLoadBalancer(children);
    if (!child || 'wraps' in child.factory) {
      throw new MeshletError(
        'MESHLET_INVALID_OPTION',
        `cluster "${cluster.name}": ${policyName} has no registered child policy among ${children.map((p) => p.name).join(', ') || '(none)'}`,
      );
    }
    factory = child.factory;
    config = child.policy.config;
    policyName = `${policyName}/${child.policy.name}`;
    localityWeighted = true;
  } else {
    factory = selected.factory;
    config = selected.policy.config;
  }
  const scope: LbScope = factory.scope ?? 'locality';

  // ------------------------------------------------------------ the hosts
  const ownStats = new Map<string, HostStats>();
  const statsFor = options.hostStats ?? ((key: string) => {
    let s = ownStats.get(key);
    if (!s) ownStats.set(key, (s = { activeRequests: 0 }));
    return s;
  });
  const allHosts: PickedHost[] = [];
  const byPriority: LocalityHosts[][] = [];
  const counts: PriorityCounts[] = [];
  for (let p = 0; p < endpoints.priorities.length; p++) {
    const localities: LocalityHosts[] = [];
    let hosts = 0, healthy = 0, degraded = 0, hostsWeight = 0, healthyWeight = 0, degradedWeight = 0;
    for (const le of endpoints.priorities[p]!) {
      const list: PickedHost[] = [];
      for (const endpoint of le.endpoints) {
        const address = endpoint.addresses[0];
        if (!address) continue;
        const key = hostKey(address.host, address.port);
        const health = healthOf(endpoint.healthStatus);
        const host: PickedHost = {
          endpoint,
          key,
          address,
          locality: le.locality,
          priority: p,
          weight: endpoint.weight,
          health,
          stats: statsFor(key),
        };
        list.push(host);
        allHosts.push(host);
        hosts++;
        hostsWeight += endpoint.weight;
        if (health === 'healthy') {
          healthy++;
          healthyWeight += endpoint.weight;
        } else if (health === 'degraded') {
          degraded++;
          degradedWeight += endpoint.weight;
        }
      }
      localities.push({ weight: le.weight, hosts: list });
    }
    byPriority.push(localities);
    counts.push({ hosts, healthy, degraded, hostsWeight, healthyWeight, degradedWeight });
  }

  const load = computePriorityLoad(counts, {
    overprovisioningFactor: endpoints.overprovisioningFactor,
    weightedPriorityHealth: endpoints.weightedPriorityHealth,
    healthyPanicThreshold: cluster.commonLbConfig.healthyPanicThreshold,
  });
  const failOnPanic = cluster.commonLbConfig.zoneAwareLbConfig?.failTrafficOnPanic ?? false;
  const factor = endpoints.overprovisioningFactor;

  // ------------------------------------------------------------ pickers
  const create = (hosts: readonly PickedHost[], weights: readonly number[]): HostPicker =>
    factory.create({ config, hosts, weights, random });

  // Each builder below appends the hosts its picker can return to `reached`, the
  // list a retry falls back to when every one of them is excluded.

  /** A 'locality'-scope picker over the hosts of `localities` that pass `keep`. */
  const localityScoped = (
    localities: readonly LocalityHosts[],
    keep: (h: PickedHost) => boolean,
    byLocality: boolean,
    reached: PickedHost[],
  ): HostPicker | undefined => {
    if (byLocality) {
      const pickers: HostPicker[] = [];
      const weights: number[] = [];
      for (const l of localities) {
        const eligible = l.hosts.filter(keep);
        const w = effectiveLocalityWeight(l.weight, eligible.length, l.hosts.length, factor);
        if (w > 0 && eligible.length > 0) {
          pickers.push(create(eligible, eligible.map((h) => h.weight)));
          weights.push(w);
          reached.push(...eligible);
        }
      }
      // Envoy: with no locality of positive effective weight, fall back to the flat list.
      if (pickers.length > 0) return new LocalityPicker(pickers, weights, random);
    }
    const flat = localities.flatMap((l) => l.hosts.filter(keep));
    reached.push(...flat);
    return flat.length > 0 ? create(flat, flat.map((h) => h.weight)) : undefined;
  };

  /** A 'priority'-scope picker: one list with Envoy's normalized weights (thread_aware_lb_impl.cc). */
  const priorityScoped = (
    localities: readonly LocalityHosts[],
    keep: (h: PickedHost) => boolean,
    reached: PickedHost[],
  ): HostPicker | undefined => {
    const hosts: PickedHost[] = [];
    const weights: number[] = [];
    if (localityWeighted) {
      let sumLocality = 0;
      for (const l of localities) sumLocality += l.weight;
      if (sumLocality === 0) return undefined;
      for (const l of localities) {
        if (l.weight === 0) continue;
        const share = l.weight / sumLocality;
        const eligible = l.hosts.filter(keep);
        let sumHosts = 0;
        for (const h of eligible) sumHosts += h.weight;
        for (const h of eligible) {
          hosts.push(h);
          weights.push((h.weight * share) / sumHosts);
        }
      }
    } else {
      for (const l of localities) for (const h of l.hosts) if (keep(h)) hosts.push(h);
      let sumHosts = 0;
      for (const h of hosts) sumHosts += h.weight;
      for (const h of hosts) weights.push(h.weight / sumHosts);
    }
    reached.push(...hosts);
    return hosts.length > 0 ? create(hosts, weights) : undefined;
  };

  const isHealthy = (h: PickedHost) => h.health === 'healthy';
  const isDegraded = (h: PickedHost) => h.health === 'degraded';
  const any = () => true;

  const states: PriorityState[] = [];
  let clusterPicker: HostPicker | undefined;
  if (scope === 'cluster') {
    clusterPicker = create(allHosts, allHosts.map((h) => h.weight));
  } else {
    for (let p = 0; p < byPriority.length; p++) {
      const localities = byPriority[p]!;
      const all = localities.flatMap((l) => l.hosts);
      const state: PriorityState = { all, eligible: [], panic: load.panic[p]!, healthy: undefined, degraded: undefined };
      const reachable = load.healthy[p]! > 0 || load.degraded[p]! > 0;
      if (reachable) {
        if (scope === 'priority') {
          // One ring/table per priority: all hosts in panic, else the healthy ones
          // (the degraded ones if there are no healthy hosts).
          const keep = state.panic ? any : all.some(isHealthy) ? isHealthy : isDegraded;
          state.healthy = priorityScoped(localities, keep, state.eligible);
          state.degraded = state.healthy;
        } else if (state.panic) {
          // Panic: every host of the priority, locality weights not applied (Envoy's AllHosts source).
          state.healthy = localityScoped(localities, any, false, state.eligible);
          state.degraded = state.healthy;
        } else {
          if (load.healthy[p]! > 0) state.healthy = localityScoped(localities, isHealthy, localityWeighted, state.eligible);
          if (load.degraded[p]! > 0) state.degraded = localityScoped(localities, isDegraded, localityWeighted, state.eligible);
        }
      }
      states.push(state);
    }
  }

  // Cumulative loads for the priority draw: healthy levels first, then degraded.
  const n = states.length;
  const cumulative = new Int32Array(2 * n);
  let acc = 0;
  for (let p = 0; p < n; p++) cumulative[p] = acc += load.healthy[p]!;
  for (let p = 0; p < n; p++) cumulative[n + p] = acc += load.degraded[p]!;

  const hashScoped = scope === 'priority';
  // The common case, all load on the healthy hosts of P0, needs no draw.
  const onlyFirst = n > 0 && cumulative[0] === 100;
  const halves = new Uint32Array(2);

  function pickFrom(ctx: PickContext, random: Random): PickedHost | undefined {
    if (clusterPicker) return clusterPicker.pick(ctx, random);
    if (n === 0) return undefined;
    let slot = 0;
    if (!onlyFirst) {
      // Envoy's choosePriority: a number in 1..100 against the cumulative loads; hash
      // based policies draw it from the request hash.
      let r: number;
      if (hashScoped && ctx.hash !== undefined) {
        splitHash(ctx.hash, halves);
        r = mod64(halves[0]!, halves[1]!, 100) + 1;
      } else {
        r = (random.nextUint32() % 100) + 1;
      }
      while (slot < 2 * n - 1 && r > cumulative[slot]!) slot++;
    }
    const p = slot < n ? slot : slot - n;
    const state = states[p]!;
    if (state.panic && failOnPanic) return undefined;
    const picker = slot < n ? state.healthy : state.degraded;
    const host = picker?.pick(ctx, random);
    if (host !== undefined || ctx.exclude === undefined || ctx.exclude.size === 0) return host;
    // Every host the pick could reach is excluded: try the rest of this priority,
    // then the other priorities that take load.
    const start = random.nextUint32();
    for (let k = 0; k < n; k++) {
      const s = states[(p + k) % n]!;
      if (s.eligible.length === 0 || (s.panic && failOnPanic)) continue;
      const h = firstNotExcluded(s.eligible, ctx, start % s.eligible.length);
      if (h) return h;
    }
    return undefined;
  }

  trace(
    () =>
      `cluster ${cluster.name}: ${policyName} over ${allHosts.length} hosts; priority load healthy [${load.healthy.join(', ')}]` +
      ` degraded [${load.degraded.join(', ')}]${load.panic.some(Boolean) ? ` panic [${load.panic.join(', ')}]` : ''}` +
      `${localityWeighted ? ', locality weighted' : ''}`,
  );
  return {
    cluster: cluster.name,
    policy: policyName,
    hosts: allHosts,
    priorityLoad: load,
    pick(ctx: PickContext = EMPTY_CTX): PickedHost | undefined {
      const random1 = ctx.random ?? random;
      const host = pickFrom(ctx, random1);
      if (host !== undefined || ctx.exclude === undefined || ctx.exclude.size === 0) return host;
      // Everything is excluded: reuse a host rather than fail the retry.
      return pickFrom(ctx.hash === undefined ? { random: random1 } : { hash: ctx.hash, random: random1 }, random1);
    },
  };
}
