// LEAST_REQUEST (Envoy load_balancers "Weighted least request"):
// - all weights equal: power of `choiceCount` choices (Envoy's N_CHOICES selection):
//   sample that many hosts at random, with replacement, and take the one with the
//   fewest active requests (the first sampled on a tie);
// - weights differ: EDF scheduling where a host's weight is recomputed, each time it
//   is queued again, as weight / (active + 1)^active_request_bias.
import type { LeastRequestConfig } from '@meshlet/xds-client';
import { EdfScheduler } from './lb-edf.js';
import { allEqual } from './lb-round-robin.js';
import { isExcluded, type HostPicker, type LoadBalancerFactory, type PickContext, type PickedHost, type PickerInput } from './lb-types.js';
import type { Random } from './random.js';

const DEFAULTS: LeastRequestConfig = { choiceCount: 2, activeRequestBias: 1.0 };

/** The fallback when every sample was excluded: a scan of the rest. */
function leastLoaded(hosts: readonly PickedHost[], ctx: PickContext, random: Random): PickedHost | undefined {
  // From a random start: the first host with the fewest requests wins, so ties fall
  // to a random one.
  const n = hosts.length;
  if (n === 0) return undefined;
  const start = random.nextUint32() % n;
  let best: PickedHost | undefined;
  for (let k = 0; k < n; k++) {
    const h = hosts[(start + k) % n]!;
    if (isExcluded(ctx, h)) continue;
    if (best === undefined || h.stats.activeRequests < best.stats.activeRequests) best = h;
  }
  return best;
}

class PowerOfChoicesPicker implements HostPicker {
  constructor(
    private readonly hosts: readonly PickedHost[],
    private readonly choices: number,
  ) {}
  pick(ctx: PickContext, random: Random): PickedHost | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    let best: PickedHost | undefined;
    for (let i = 0; i < this.choices; i++) {
      const h = hosts[random.nextUint32() % n]!;
      if (isExcluded(ctx, h)) continue;
      if (best === undefined || h.stats.activeRequests < best.stats.activeRequests) best = h;
    }
    // Every sample was excluded: fall back to a scan of the rest.
    return best ?? leastLoaded(hosts, ctx, random);
  }
}

class WeightedLeastRequestPicker implements HostPicker {
  private readonly edf: EdfScheduler;
  private readonly dynamicWeight: (i: number) => number;
  constructor(
    private readonly hosts: readonly PickedHost[],
    weights: readonly number[],
    bias: number,
  ) {
    this.dynamicWeight = (i) => {
      const w = weights[i]!;
      const active = hosts[i]!.stats.activeRequests;
      if (bias === 1) return w / (active + 1);
      if (bias === 0) return w;
      return w / Math.pow(active + 1, bias);
    };
    const initial: number[] = [];
    for (let i = 0; i < hosts.length; i++) initial.push(this.dynamicWeight(i));
    this.edf = new EdfScheduler(initial);
  }
  pick(ctx: PickContext): PickedHost | undefined {
    const n = this.hosts.length;
    for (let k = 0; k < n; k++) {
      const h = this.hosts[this.edf.pickAndAdd(this.dynamicWeight)]!;
      if (!isExcluded(ctx, h)) return h;
    }
    return undefined;
  }
}

export function createLeastRequest(input: PickerInput): HostPicker {
  const config = (input.config as LeastRequestConfig | undefined) ?? DEFAULTS;
  const choices = config.choiceCount ?? DEFAULTS.choiceCount;
  const bias = config.activeRequestBias ?? DEFAULTS.activeRequestBias;
  return allEqual(input.weights)
    ? new PowerOfChoicesPicker(input.hosts, choices)
    : new WeightedLeastRequestPicker(input.hosts, input.weights, bias);
}

export const leastRequestFactory: LoadBalancerFactory = { scope: 'locality', create: createLeastRequest };
