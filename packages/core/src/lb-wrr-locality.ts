// wrr_locality (gRFC A52, envoy.extensions.load_balancing_policies.wrr_locality): the
// localities of a priority are balanced by their load_balancing_weight (scaled by
// their health, as Envoy's locality-weighted balancing does) and the child policy
// picks within the chosen locality. The cluster load balancer does the locality
// part; this entry only names the child.
import type { WrrLocalityConfig } from '@meshlet/xds-client';
import type { WrappingLoadBalancerFactory } from './lb-types.js';

export const wrrLocalityFactory: WrappingLoadBalancerFactory = {
  wraps: true,
  childPolicy: (config) => (config as WrrLocalityConfig).childPolicy,
};
