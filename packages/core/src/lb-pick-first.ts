// pick_first (gRFC A62; envoy.extensions.load_balancing_policies.pick_first): every
// request goes to the first usable endpoint of the list, in EDS order (priority,
// then locality, then endpoint), shuffled once per config update when
// shuffle_address_list is set, so that clients spread out. "Usable" is healthy;
// when no endpoint is healthy, the first degraded one, then the first of any (a
// connection attempt is better than no attempt, as gRPC tries every address).
import type { PickFirstConfig } from '@meshlet/xds-client';
import { isExcluded, type HostPicker, type LoadBalancerFactory, type PickContext, type PickedHost, type PickerInput } from './lb-types.js';

export function createPickFirst(input: PickerInput): HostPicker {
  const config = input.config as PickFirstConfig | undefined;
  const list = [...input.hosts];
  if (config?.shuffleAddressList) {
    // Fisher–Yates with the injected random source.
    for (let i = list.length - 1; i > 0; i--) {
      const j = input.random.nextUint32() % (i + 1);
      const t = list[i]!;
      list[i] = list[j]!;
      list[j] = t;
    }
  }
  const ordered = [
    ...list.filter((h) => h.health === 'healthy'),
    ...list.filter((h) => h.health === 'degraded'),
    ...list.filter((h) => h.health === 'unhealthy'),
  ];
  return {
    pick(ctx: PickContext): PickedHost | undefined {
      for (const h of ordered) if (!isExcluded(ctx, h)) return h;
      return undefined;
    },
  };
}

export const pickFirstFactory: LoadBalancerFactory = { scope: 'cluster', create: createPickFirst };
