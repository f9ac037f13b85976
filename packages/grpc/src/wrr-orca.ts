// Weighted round robin from ORCA load reports (gRFC A58, client_side_weighted_round_robin).
// Core's policy of that name is plain round robin, because HTTP calls carry no load reports;
// gRPC calls do (per-call ORCA, A51), so for a gRPC call the pool feeds each call's report
// here and picks by the resulting weights once at least two endpoints have one:
// - an endpoint's weight is qps / (utilization + eps / qps × error_utilization_penalty),
//   utilization being application_utilization when set, else cpu_utilization; a report with
//   no qps or no utilization leaves the weight alone;
// - a weight counts only after blackout_period from the endpoint's first report of a run of
//   non-empty reports, and lapses weight_expiration_period after its last report;
// - the weights are reread every weight_update_period (not per call); an endpoint with no
//   weight gets the mean of the others; with fewer than two weights, every endpoint weighs
//   the same and the pool's ordinary round robin picks;
// - the choice among the weighted endpoints is smooth weighted round robin (A58 specifies a
//   static stride scheduler; both give each endpoint its weight's share, evenly spread).
// Out-of-band reporting (enable_oob_load_report) is not implemented: such endpoints simply
// report nothing per call and the policy stays round robin.
import type { PickedHost } from '@meshlet/core';
import type { Clock, LbPolicyConfig, WeightedRoundRobinConfig, WrrLocalityConfig } from '@meshlet/xds-client';
import type { OrcaReport } from './orca.js';

interface EndpointWeight {
  weight: number;
  nonEmptySince: number;
  lastUpdated: number;
}

/** The A58 config of a cluster's policy list (directly or under wrr_locality), if it uses WRR. */
export function wrrConfigOf(policies: readonly LbPolicyConfig[], policyName: string): WeightedRoundRobinConfig | undefined {
  if (!policyName.endsWith('client_side_weighted_round_robin')) return undefined;
  for (const p of policies) {
    if (p.name === 'client_side_weighted_round_robin') return p.config as WeightedRoundRobinConfig;
    if (p.name === 'wrr_locality') {
      const inner = wrrConfigOf((p.config as WrrLocalityConfig).childPolicy, policyName);
      if (inner) return inner;
    }
  }
  return undefined;
}

export class OrcaWeightedPicker {
  readonly #config: WeightedRoundRobinConfig;
  readonly #clock: Clock;
  readonly #weights = new Map<string, EndpointWeight>();
  #builtAt = -Infinity;
  #candidates: readonly PickedHost[] = [];
  #exclude: ReadonlySet<string> | undefined;
  #hosts: PickedHost[] = [];
  #w: number[] = [];
  #current: number[] = [];
  #total = 0;

  constructor(config: WeightedRoundRobinConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
  }

  /** One call's load report from an endpoint. */
  record(key: string, report: OrcaReport): void {
    const utilization = report.applicationUtilization > 0 ? report.applicationUtilization : report.cpuUtilization;
    const qps = report.qps;
    if (!(qps > 0) || !(utilization > 0)) return;
    const penalty = report.eps > 0 ? (report.eps / qps) * this.#config.errorUtilizationPenalty : 0;
    const weight = qps / (utilization + penalty);
    const now = this.#clock.now();
    let w = this.#weights.get(key);
    if (w === undefined) this.#weights.set(key, (w = { weight: 0, nonEmptySince: 0, lastUpdated: 0 }));
    if (w.nonEmptySince === 0) w.nonEmptySince = now;
    w.weight = weight;
    w.lastUpdated = now;
  }

  /** Forget endpoints that left the cluster. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.#weights.keys()) if (!keys.has(k)) this.#weights.delete(k);
    this.#builtAt = -Infinity;
  }

  #weightOf(key: string, now: number): number {
    const w = this.#weights.get(key);
    if (w === undefined) return 0;
    if (now - w.lastUpdated >= this.#config.weightExpirationPeriod) {
      w.nonEmptySince = 0;
      return 0;
    }
    if (this.#config.blackoutPeriod > 0 && now - w.nonEmptySince < this.#config.blackoutPeriod) return 0;
    return w.weight;
  }

  /**
   * An endpoint of `candidates` (those not in `exclude`, of the first priority that has any) by
   * weight, or undefined when fewer than two have weights (the caller's round robin picks).
   */
  pick(candidates: readonly PickedHost[], exclude: ReadonlySet<string> | undefined): PickedHost | undefined {
    const now = this.#clock.now();
    if (candidates !== this.#candidates || exclude !== this.#exclude || now - this.#builtAt >= this.#config.weightUpdatePeriod) {
      this.#rebuild(candidates, exclude, now);
    }
    const n = this.#hosts.length;
    if (n === 0) return undefined;
    let best = 0;
    for (let i = 0; i < n; i++) {
      this.#current[i]! += this.#w[i]!;
      if (this.#current[i]! > this.#current[best]!) best = i;
    }
    this.#current[best]! -= this.#total;
    return this.#hosts[best];
  }

  #rebuild(candidates: readonly PickedHost[], exclude: ReadonlySet<string> | undefined, now: number): void {
    this.#candidates = candidates;
    this.#exclude = exclude;
    this.#builtAt = now;
    let priority = Infinity;
    for (const h of candidates) if (!exclude?.has(h.key) && h.priority < priority) priority = h.priority;
    const hosts = candidates.filter((h) => h.priority === priority && !exclude?.has(h.key));
    const weights = hosts.map((h) => this.#weightOf(h.key, now));
    const known = weights.filter((w) => w > 0);
    if (known.length < 2) {
      this.#hosts = [];
      return;
    }
    const mean = known.reduce((a, b) => a + b, 0) / known.length;
    const previous = new Map(this.#hosts.map((h, i) => [h.key, this.#current[i]!]));
    this.#hosts = hosts;
    this.#w = weights.map((w) => (w > 0 ? w : mean));
    this.#total = this.#w.reduce((a, b) => a + b, 0);
    this.#current = hosts.map((h) => previous.get(h.key) ?? 0);
  }
}
