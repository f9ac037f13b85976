// Circuit breakers per cluster and routing priority (Envoy: arch_overview/upstream/circuit_breaking,
// cluster/v3/circuit_breaker.proto; gRFC A32 for gRPC). Each resource is a counter with a
// limit; admission fails fast when the counter has reached the limit, and the caller answers
// 503 with flag UO (gRPC: UNAVAILABLE).
//
// The counters outlive config snapshots: a cluster's breaker is created once (see
// CircuitBreakerRegistry) and every update only swaps the thresholds, so requests admitted
// under an older snapshot keep counting against the newest limits. gRFC A32 keys the shared
// counter by cluster name and EDS service name; the registry key is the caller's choice.
//
// Envoy's limits are "fuzzy" across its worker threads; here there is one thread, so a limit
// is exact: `active < max` admits.
import type { CircuitBreakers, CircuitBreakerThresholds } from '@meshlet/xds-client';

/** Envoy's RoutingPriority. */
export type RoutingPriority = 'DEFAULT' | 'HIGH';

/**
 * The resources a breaker limits:
 * - `connection`: open connections to the cluster (max_connections);
 * - `pending`: requests waiting for a connection from a pool (max_pending_requests);
 * - `request`: requests in flight to the cluster (max_requests);
 * - `retry`: retries in flight (max_retries, or retry_budget when set);
 * - `connection_pool`: connection pools (max_connection_pools; unlimited when unset).
 */
export type BreakerResource = 'connection' | 'pending' | 'request' | 'retry' | 'connection_pool';

/** Gives the resource back. Calling it more than once has no further effect. */
export type BreakerRelease = () => void;

/** What tryAcquire returns when the resource is at its limit. */
export interface BreakerOverflow {
  readonly overflow: true;
  /** Envoy's response flag for an overflow. */
  readonly flag: 'UO';
  readonly resource: BreakerResource;
  readonly priority: RoutingPriority;
  /** The limit in force when admission failed. */
  readonly limit: number;
}

export function isBreakerOverflow(r: BreakerRelease | BreakerOverflow): r is BreakerOverflow {
  return typeof r !== 'function';
}

/** The live state of one resource, for admin output and telemetry (Envoy's circuit_breakers.* gauges). */
export interface BreakerResourceState {
  readonly active: number;
  readonly limit: number;
  /** Envoy's remaining_* gauge: limit − active, never negative (0 for a retry budget, as Envoy). */
  readonly remaining: number;
  /** Envoy's *_open gauge: the breaker is tripped (active ≥ limit). */
  readonly open: boolean;
}

const RESOURCES: readonly BreakerResource[] = ['connection', 'pending', 'request', 'retry', 'connection_pool'];

/** The counters and thresholds of one priority. */
class PriorityBreaker {
  connection = 0;
  pending = 0;
  request = 0;
  retry = 0;
  connection_pool = 0;

  constructor(
    public thresholds: CircuitBreakerThresholds,
    readonly priority: RoutingPriority,
  ) {}

  limit(resource: BreakerResource): number {
    const t = this.thresholds;
    switch (resource) {
      case 'connection':
        return t.maxConnections;
      case 'pending':
        return t.maxPendingRequests;
      case 'request':
        return t.maxRequests;
      case 'connection_pool':
        return t.maxConnectionPools ?? Number.POSITIVE_INFINITY;
      case 'retry': {
        const budget = t.retryBudget;
        if (budget === undefined) return t.maxRetries;
        // Envoy's RetryBudgetImpl::max(): budget_percent of (active + pending requests),
        // truncated to an integer, never below min_retry_concurrency. max_retries is then
        // not consulted at all.
        const fromBudget = Math.floor((budget.budgetPercent / 100) * (this.request + this.pending));
        return Math.max(fromBudget, budget.minRetryConcurrency);
      }
    }
  }
}

/**
 * The breaker of one cluster: a DEFAULT and a HIGH priority set of counters. Build it once per
 * cluster and call update() with each new cluster resource.
 */
export class ClusterCircuitBreaker {
  private readonly byPriority: { readonly DEFAULT: PriorityBreaker; readonly HIGH: PriorityBreaker };
  private readonly overflows = new Map<string, BreakerOverflow>();

  constructor(config: CircuitBreakers) {
    this.byPriority = {
      DEFAULT: new PriorityBreaker(config.default, 'DEFAULT'),
      HIGH: new PriorityBreaker(config.high, 'HIGH'),
    };
  }

  /** New thresholds from the newest cluster resource; the counters carry on. */
  update(config: CircuitBreakers): void {
    this.byPriority.DEFAULT.thresholds = config.default;
    this.byPriority.HIGH.thresholds = config.high;
  }

  /** The thresholds in force for a priority. */
  thresholds(priority: RoutingPriority = 'DEFAULT'): CircuitBreakerThresholds {
    return this.byPriority[priority].thresholds;
  }

  /** True when one more of the resource would be admitted now. */
  canAcquire(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): boolean {
    const b = this.byPriority[priority];
    return b[resource] < b.limit(resource);
  }

  /**
   * Take one of the resource: a release function, or an overflow (flag UO) when the counter has
   * reached its limit. A request that waits for a connection takes 'pending' and releases it
   * once it has one; a retry takes 'retry' for as long as the retried attempt is in flight.
   */
  tryAcquire(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): BreakerRelease | BreakerOverflow {
    return this.take(resource, priority) ?? this.releaser(resource, priority);
  }

  /**
   * tryAcquire without a release function, for a caller that tracks what it holds itself (the
   * HTTP request path takes two slots a request and makes no closure for them): undefined when
   * one of the resource was taken, else the overflow. Give it back with give(), once.
   */
  take(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): BreakerOverflow | undefined {
    const b = this.byPriority[priority];
    const limit = b.limit(resource);
    if (b[resource] >= limit) return this.overflow(resource, priority, limit);
    b[resource]++;
    return undefined;
  }

  /** Give back one of the resource that take() admitted. */
  give(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): void {
    this.byPriority[priority][resource]--;
  }

  /**
   * Count one of the resource whatever the limit, for what is already in use and must be
   * counted (gRFC A32 checks the limit at the pick; a stream created is counted). Give it
   * back with give(), once.
   */
  count(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): void {
    this.byPriority[priority][resource]++;
  }

  /** give() for one resource already counted, as a function that gives it back once. */
  private releaser(resource: BreakerResource, priority: RoutingPriority): BreakerRelease {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(resource, priority);
    };
  }

  /** The number in use of a resource. */
  active(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): number {
    return this.byPriority[priority][resource];
  }

  state(resource: BreakerResource, priority: RoutingPriority = 'DEFAULT'): BreakerResourceState {
    const b = this.byPriority[priority];
    const active = b[resource];
    const limit = b.limit(resource);
    const budgeted = resource === 'retry' && b.thresholds.retryBudget !== undefined;
    return {
      active,
      limit,
      remaining: budgeted ? 0 : Math.max(0, limit - active),
      open: active >= limit,
    };
  }

  /** True when no resource of either priority is in use. */
  idle(): boolean {
    for (const p of [this.byPriority.DEFAULT, this.byPriority.HIGH]) {
      for (const r of RESOURCES) if (p[r] !== 0) return false;
    }
    return true;
  }

  /** Every resource of both priorities (for `meshlet dump` and telemetry). */
  states(): Record<RoutingPriority, Record<BreakerResource, BreakerResourceState>> {
    const out = {} as Record<RoutingPriority, Record<BreakerResource, BreakerResourceState>>;
    for (const p of ['DEFAULT', 'HIGH'] as const) {
      const row = {} as Record<BreakerResource, BreakerResourceState>;
      for (const r of RESOURCES) row[r] = this.state(r, p);
      out[p] = row;
    }
    return out;
  }

  private overflow(resource: BreakerResource, priority: RoutingPriority, limit: number): BreakerOverflow {
    // Overflow results are shared per (resource, priority, limit), so a tripped breaker
    // allocates nothing per rejected request.
    const key = `${priority}:${resource}:${limit}`;
    let o = this.overflows.get(key);
    if (o === undefined) {
      if (this.overflows.size > 64) this.overflows.clear();
      o = Object.freeze({ overflow: true, flag: 'UO', resource, priority, limit } as const);
      this.overflows.set(key, o);
    }
    return o;
  }
}

/**
 * Breakers by key (cluster name, or cluster name and EDS service name for gRPC per gRFC A32),
 * kept across snapshots. `get` creates or updates; `retain` drops the breakers of clusters that
 * are gone.
 */
export class CircuitBreakerRegistry {
  private readonly breakers = new Map<string, ClusterCircuitBreaker>();

  /** The breaker for `key` with the thresholds of `config` (the newest cluster resource). */
  get(key: string, config: CircuitBreakers): ClusterCircuitBreaker {
    let b = this.breakers.get(key);
    if (b === undefined) {
      b = new ClusterCircuitBreaker(config);
      this.breakers.set(key, b);
    } else {
      b.update(config);
    }
    return b;
  }

  peek(key: string): ClusterCircuitBreaker | undefined {
    return this.breakers.get(key);
  }

  /**
   * Forget the breakers whose key is not in `keys` and that hold nothing (a breaker with
   * requests still in flight stays until a later call finds it idle, so a cluster that leaves
   * and comes back at once does not start from zero).
   */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const [k, b] of this.breakers) if (!keep.has(k) && b.idle()) this.breakers.delete(k);
  }

  get size(): number {
    return this.breakers.size;
  }
}
