// Priority levels and locality weights, computed once per config update with
// Envoy's integer arithmetic (arch_overview/upstream/load_balancing/priority,
// overprovisioning, panic_threshold, locality_weight; load_balancer_impl.cc):
//
// - A priority's health is min(100, overprovisioning_factor × healthy / total), in
//   whole percent (factor 140 by default: a level with ≥ 72 % of its hosts healthy
//   takes all the load it is offered). Degraded hosts get an availability of their own.
// - Load goes to the highest priority first, each level taking its availability
//   (scaled up when the levels together are below 100 %), healthy load before
//   degraded; rounding left-overs go to the first available level.
// - A level whose healthy + degraded percentage is below healthy_panic_threshold is
//   in panic: its share of the load goes to all its hosts, healthy or not. When no
//   level has any availability, every level is in panic and the load is split by
//   host count.
// - A locality's effective weight is its load_balancing_weight × min(1, factor ×
//   eligible / total): a locality that loses hosts sheds load to the others.

export interface PriorityCounts {
  /** Hosts in the priority. */
  readonly hosts: number;
  readonly healthy: number;
  readonly degraded: number;
  /** Sums of endpoint weights, for weighted_priority_health. */
  readonly hostsWeight: number;
  readonly healthyWeight: number;
  readonly degradedWeight: number;
}

export interface PriorityLoad {
  /** Percent of requests sent to the healthy hosts of each priority. */
  readonly healthy: readonly number[];
  /** Percent of requests sent to the degraded hosts of each priority. */
  readonly degraded: readonly number[];
  /** Priorities in panic: their load goes to all their hosts. */
  readonly panic: readonly boolean[];
  /** Healthy availability (0-100) of each priority, after overprovisioning. */
  readonly health: readonly number[];
  readonly degradedAvailability: readonly number[];
}

export interface PriorityLoadOptions {
  /** Percent, default 140. */
  readonly overprovisioningFactor: number;
  /** Health by endpoint weight instead of host count (ClusterLoadAssignment.Policy.weighted_priority_health). */
  readonly weightedPriorityHealth: boolean;
  /** Percent, default 50; 0 disables panic. */
  readonly healthyPanicThreshold: number;
}

/** Load per priority, availability and panic state, as Envoy's LoadBalancerBase computes them. */
export function computePriorityLoad(sets: readonly PriorityCounts[], options: PriorityLoadOptions): PriorityLoad {
  const n = sets.length;
  const health = new Array<number>(n).fill(0);
  const degradedAvail = new Array<number>(n).fill(0);
  const healthyLoad = new Array<number>(n).fill(0);
  const degradedLoad = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  const result = (): PriorityLoad => ({ healthy: healthyLoad, degraded: degradedLoad, panic, health, degradedAvailability: degradedAvail });
  if (n === 0) return result();

  const factor = options.overprovisioningFactor;
  for (let p = 0; p < n; p++) {
    const s = sets[p]!;
    if (s.hosts === 0) continue;
    const [healthy, degraded, total] = options.weightedPriorityHealth
      ? [s.healthyWeight, s.degradedWeight, s.hostsWeight]
      : [s.healthy, s.degraded, s.hosts];
    if (total === 0) continue;
    health[p] = Math.min(100, Math.floor((factor * healthy) / total));
    degradedAvail[p] = Math.min(100, Math.floor((factor * degraded) / total));
  }
  const totalAvailability = Math.min(100, sum(health) + sum(degradedAvail));

  if (totalAvailability > 0) {
    const [firstHealthy, afterHealthy] = distribute(healthyLoad, health, 100, totalAvailability);
    const [firstDegraded, remaining] = distribute(degradedLoad, degradedAvail, afterHealthy, totalAvailability);
    if (remaining > 0) {
      if (firstHealthy >= 0) healthyLoad[firstHealthy]! += remaining;
      else degradedLoad[firstDegraded]! += remaining;
    }
  }

  // Envoy's healthy_panic_threshold is a Percent rounded to a whole number.
  const threshold = Math.min(100, Math.round(options.healthyPanicThreshold));
  if (totalAvailability === 0 && threshold === 0) {
    // Panic disabled and nothing available: the load must still add up to 100.
    healthyLoad[0] = 100;
    return result();
  }
  for (let p = 0; p < n; p++) {
    const s = sets[p]!;
    if (totalAvailability === 0) {
      panic[p] = true;
      continue;
    }
    const healthyPct = s.hosts === 0 ? 0 : (100 * s.healthy) / s.hosts;
    const degradedPct = s.hosts === 0 ? 0 : (100 * s.degraded) / s.hosts;
    panic[p] = healthyPct + degradedPct < threshold;
  }
  if (totalAvailability === 0) {
    // Total panic: split by host count, healthy or not.
    const totalHosts = sets.reduce((a, s) => a + s.hosts, 0);
    degradedLoad.fill(0);
    if (totalHosts === 0) {
      healthyLoad.fill(0);
      healthyLoad[0] = 100;
      return result();
    }
    let left = 100;
    let firstNonEmpty = -1;
    for (let p = 0; p < n; p++) {
      const hosts = sets[p]!.hosts;
      if (firstNonEmpty < 0 && hosts > 0) firstNonEmpty = p;
      healthyLoad[p] = Math.floor((100 * hosts) / totalHosts);
      left -= healthyLoad[p]!;
    }
    healthyLoad[firstNonEmpty]! += left;
  }
  return result();
}

/** Give each level min(remaining, availability scaled to the total); returns [first available level, load left]. */
function distribute(load: number[], availability: readonly number[], total: number, totalAvailability: number): [number, number] {
  let first = -1;
  for (let p = 0; p < availability.length; p++) {
    const a = availability[p]!;
    if (first < 0 && a > 0) first = p;
    load[p] = Math.min(total, Math.floor((a * 100) / totalAvailability));
    total -= load[p]!;
  }
  return [first, total];
}

function sum(a: readonly number[]): number {
  let s = 0;
  for (const x of a) s += x;
  return s;
}

/**
 * Envoy's effective locality weight: the configured weight scaled by the share of
 * the locality's hosts that are eligible (healthy, or degraded for degraded load),
 * overprovisioned and capped at 1. 0 for a locality with no hosts.
 */
export function effectiveLocalityWeight(weight: number, eligible: number, hosts: number, overprovisioningFactor: number): number {
  if (hosts === 0) return 0;
  return weight * Math.min(1, (overprovisioningFactor / 100) * (eligible / hosts));
}
