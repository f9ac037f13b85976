// Load-balancing policies by name, the `LbPolicyConfig.name` the xds-client decoder
// produces for each load_balancing_policy entry (or the legacy lb_policy enum). A user
// adds a policy with registerLoadBalancer (and, for a new type URL, a parser with
// xds-client's registerLbPolicyParser); a cluster uses the first entry of its
// lbPolicy list that is registered here (gRFC A52).
import type { LbPolicyConfig } from '@meshlet/xds-client';
import { leastRequestFactory } from './lb-least-request.js';
import { maglevFactory } from './lb-maglev.js';
import { pickFirstFactory } from './lb-pick-first.js';
import { randomFactory } from './lb-random.js';
import { ringHashFactory } from './lb-ring-hash.js';
import { roundRobinFactory } from './lb-round-robin.js';
import type { AnyLoadBalancerFactory } from './lb-types.js';
import { weightedRoundRobinFactory } from './lb-weighted-round-robin.js';
import { wrrLocalityFactory } from './lb-wrr-locality.js';

const registry = new Map<string, AnyLoadBalancerFactory>();

/** Add or replace the policy for `name`. Applies to load balancers built afterwards. */
export function registerLoadBalancer(name: string, factory: AnyLoadBalancerFactory): void {
  registry.set(name, factory);
}

export function getLoadBalancer(name: string): AnyLoadBalancerFactory | undefined {
  return registry.get(name);
}

/** The first entry of `policies` that is registered, with its factory. */
export function selectLoadBalancer(
  policies: readonly LbPolicyConfig[],
): { readonly policy: LbPolicyConfig; readonly factory: AnyLoadBalancerFactory } | undefined {
  for (const policy of policies) {
    const factory = registry.get(policy.name);
    if (factory) return { policy, factory };
  }
  return undefined;
}

registerLoadBalancer('round_robin', roundRobinFactory);
registerLoadBalancer('least_request', leastRequestFactory);
registerLoadBalancer('random', randomFactory);
registerLoadBalancer('ring_hash', ringHashFactory);
registerLoadBalancer('maglev', maglevFactory);
registerLoadBalancer('pick_first', pickFirstFactory);
registerLoadBalancer('wrr_locality', wrrLocalityFactory);
registerLoadBalancer('client_side_weighted_round_robin', weightedRoundRobinFactory);
