// ROUND_ROBIN (Envoy arch_overview/upstream/load_balancing/load_balancers "Weighted
// round robin"): plain rotation when every host has the same weight, else
// earliest-deadline-first scheduling so each host gets its weight's share, smoothly
// interleaved. Both start at a random point so that many clients (or many
// snapshots) do not all begin with the same host.
import { EdfScheduler } from './lb-edf.js';
import { isExcluded, type HostPicker, type LoadBalancerFactory, type PickContext, type PickedHost, type PickerInput } from './lb-types.js';
import type { Random } from './random.js';

export function allEqual(weights: readonly number[]): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}

/** Rotation over hosts of equal weight. */
export class RotationPicker implements HostPicker {
  private next: number;
  constructor(private readonly hosts: readonly PickedHost[], random: Random) {
    this.next = hosts.length === 0 ? 0 : random.nextUint32() % hosts.length;
  }
  pick(ctx: PickContext): PickedHost | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    for (let k = 0; k < n; k++) {
      const h = hosts[this.next]!;
      this.next = this.next + 1 === n ? 0 : this.next + 1;
      if (!isExcluded(ctx, h)) return h;
    }
    return undefined;
  }
}

/** Weighted rotation by EDF; an excluded host still uses up its turn (as Envoy's retried pick does). */
export class EdfPicker implements HostPicker {
  private readonly edf: EdfScheduler;
  constructor(
    private readonly hosts: readonly PickedHost[],
    weights: readonly number[],
    random: Random,
  ) {
    this.edf = EdfScheduler.withRandomStart(weights, random);
  }
  pick(ctx: PickContext): PickedHost | undefined {
    const n = this.hosts.length;
    for (let k = 0; k < n; k++) {
      const h = this.hosts[this.edf.pickAndAdd()]!;
      if (!isExcluded(ctx, h)) return h;
    }
    return undefined;
  }
}

export function createRoundRobin(input: PickerInput): HostPicker {
  return allEqual(input.weights)
    ? new RotationPicker(input.hosts, input.random)
    : new EdfPicker(input.hosts, input.weights, input.random);
}

export const roundRobinFactory: LoadBalancerFactory = { scope: 'locality', create: createRoundRobin };
