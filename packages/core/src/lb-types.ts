// The shapes shared by the cluster load balancer (lb-cluster.ts) and the policies
// it is built from (lb-*.ts). A policy builds a HostPicker over one list of hosts;
// the cluster load balancer decides which list (priority, health, locality) a pick
// draws from, the way Envoy's LoadBalancerBase does for its policies.
import type { Endpoint, Locality, SocketAddress } from '@meshlet/xds-client';
import type { Random } from './random.js';

/**
 * Live per-host counters kept by the transport layer. The load balancer holds the
 * same object for the life of the snapshot, so the hot path reads a property
 * instead of looking the host up in a Map.
 */
export interface HostStats {
  /** Requests in flight to this host (least request reads it). */
  activeRequests: number;
}

export type HostHealth = 'healthy' | 'degraded' | 'unhealthy';

/** One endpoint as the load balancer sees it; what pick() returns. Built once per snapshot. */
export interface PickedHost {
  readonly endpoint: Endpoint;
  /** `host:port` of the primary address (`[v6]:port` for IPv6), as Envoy prints an address. */
  readonly key: string;
  readonly address: SocketAddress;
  readonly locality: Locality;
  readonly priority: number;
  /** The endpoint's load_balancing_weight. */
  readonly weight: number;
  /**
   * HEALTHY and UNKNOWN are healthy; DEGRADED is degraded (used only once the
   * healthy hosts of every priority fall short, per Envoy's degraded-host rules);
   * UNHEALTHY, DRAINING and TIMEOUT are unhealthy.
   */
  readonly health: HostHealth;
  readonly stats: HostStats;
}

export interface PickContext {
  /** The request hash (hash-policy.ts); hash-based policies use a random one when absent. */
  readonly hash?: bigint;
  /** Overrides the balancer's own source of randomness for this pick. */
  readonly random?: Random;
  /** Keys of hosts not to pick (hosts a retry already tried). */
  readonly exclude?: ReadonlySet<string>;
}

/** Picks from one fixed list of hosts. May keep scheduling state (rotation, EDF deadlines). */
export interface HostPicker {
  /**
   * A host of this picker's list that is not in `exclude`, or undefined when the
   * list is empty or every host in it is excluded.
   */
  pick(ctx: PickContext, random: Random): PickedHost | undefined;
}

export interface PickerInput {
  /** The policy's config as the xds-client decoder (or a user's parser) produced it. */
  readonly config: unknown;
  readonly hosts: readonly PickedHost[];
  /**
   * The weight of each host. For 'locality' scope the endpoint weights; for
   * 'priority' scope Envoy's normalized weights (locality share × endpoint share,
   * summing to at most 1); for 'cluster' scope the endpoint weights.
   */
  readonly weights: readonly number[];
  /** For the build-time random choices (start offsets, shuffles). */
  readonly random: Random;
}

/**
 * Which host lists a policy is given (Envoy's two families of load balancers):
 * - 'locality': the cluster picks the priority at random and, with locality-weighted
 *   balancing, the locality; the policy picks within that list (round robin, least
 *   request, random: Envoy's ZoneAwareLoadBalancerBase).
 * - 'priority': one picker per priority over all its hosts with normalized weights,
 *   and the priority is chosen from the request hash (ring hash, Maglev: Envoy's
 *   ThreadAwareLoadBalancerBase).
 * - 'cluster': one picker over every host of every priority, in priority order, with
 *   health left to the policy (pick_first).
 */
export type LbScope = 'locality' | 'priority' | 'cluster';

export interface LoadBalancerFactory {
  /** Default 'locality'. */
  readonly scope?: LbScope;
  /** Build a picker over one host list. Called when config changes, never per request. */
  create(input: PickerInput): HostPicker;
}

/**
 * A policy that wraps a child policy per locality (wrr_locality, gRFC A52): the
 * cluster balances localities by weight and uses the child within each.
 */
export interface WrappingLoadBalancerFactory {
  readonly wraps: true;
  /** The child policy list to resolve against the registry (first registered wins). */
  childPolicy(config: unknown): readonly { readonly name: string; readonly config: unknown }[];
}

export type AnyLoadBalancerFactory = LoadBalancerFactory | WrappingLoadBalancerFactory;

/** True when `key` is in the optional exclusion set. */
export function isExcluded(ctx: PickContext, host: PickedHost): boolean {
  const ex = ctx.exclude;
  return ex !== undefined && ex.size > 0 && ex.has(host.key);
}

/** Scan from a random offset for the first host not excluded (the fallback of several policies). */
export function firstNotExcluded(hosts: readonly PickedHost[], ctx: PickContext, start: number): PickedHost | undefined {
  const n = hosts.length;
  for (let k = 0; k < n; k++) {
    const h = hosts[(start + k) % n]!;
    if (!isExcluded(ctx, h)) return h;
  }
  return undefined;
}
