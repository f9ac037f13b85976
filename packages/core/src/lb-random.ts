// RANDOM (Envoy load_balancers "Random"): a uniformly random host, endpoint weights
// ignored as Envoy ignores them. With exclusions, the scan continues from the
// random start to the next host that is not excluded.
import { firstNotExcluded, type HostPicker, type LoadBalancerFactory, type PickerInput } from './lb-types.js';

export function createRandom(input: PickerInput): HostPicker {
  const hosts = input.hosts;
  return {
    pick(ctx, random) {
      if (hosts.length === 0) return undefined;
      return firstNotExcluded(hosts, ctx, random.nextUint32() % hosts.length);
    },
  };
}

export const randomFactory: LoadBalancerFactory = { scope: 'locality', create: createRandom };
