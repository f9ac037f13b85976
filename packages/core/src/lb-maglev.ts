// MAGLEV (Envoy load_balancers "Maglev"; maglev_lb.cc, after Google's Maglev paper).
// Each host has a permutation of the table slots, offset = xxHash64(address, 0) % M
// and skip = xxHash64(address, 1) % (M − 1) + 1; hosts take turns claiming their next
// free slot, a host of normalized weight w taking a turn in proportion to w / max w,
// until all M slots are filled. A request goes to table[hash % M].
//
// A retry that excludes hosts moves on to the following slots until one holds a host
// not excluded (the table is a pseudo-random permutation, so the next slot is a
// weight-proportional draw of another host).
import type { MaglevConfig } from '@meshlet/xds-client';
import { isExcluded, type HostPicker, type LoadBalancerFactory, type PickContext, type PickedHost, type PickerInput } from './lb-types.js';
import type { Random } from './random.js';
import { mod64, splitHash, xxhash64Into } from './xxhash.js';

const DEFAULT_TABLE_SIZE = 65537;
const halves = new Uint32Array(2);

export class MaglevPicker implements HostPicker {
  /** Host index per slot (-1 only when there are no hosts). */
  readonly table: Int32Array;

  constructor(
    private readonly hosts: readonly PickedHost[],
    weights: readonly number[],
    readonly tableSize: number,
  ) {
    const m = tableSize;
    const n = hosts.length;
    let maxW = 0;
    for (const w of weights) if (w > maxW) maxW = w;
    if (n === 0 || !(maxW > 0)) {
      this.table = new Int32Array(0);
      return;
    }
    // pos[i] is host i's next candidate slot, (offset + skip × next) mod M, advanced by
    // adding skip (integer arithmetic only: M is below 2^23).
    const pos = new Int32Array(n), skip = new Int32Array(n), targetWeight = new Float64Array(n);
    const out = new Uint32Array(2);
    for (let i = 0; i < n; i++) {
      const key = hosts[i]!.key;
      xxhash64Into(key, 0, out);
      pos[i] = mod64(out[0]!, out[1]!, m);
      xxhash64Into(key, 1, out);
      skip[i] = mod64(out[0]!, out[1]!, m - 1) + 1;
    }
    const table = new Int32Array(m).fill(-1);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        // A host of weight maxW takes a slot every iteration, one of maxW / k every k-th.
        if (iteration * weights[i]! < targetWeight[i]!) continue;
        targetWeight[i]! += maxW;
        let c = pos[i]!;
        const step = skip[i]!;
        while (table[c] !== -1) {
          c += step;
          if (c >= m) c -= m;
        }
        table[c] = i;
        c += step;
        pos[i] = c >= m ? c - m : c;
        filled++;
      }
    }
    this.table = table;
  }

  pick(ctx: PickContext, random: Random): PickedHost | undefined {
    const table = this.table;
    const m = table.length;
    if (m === 0) return undefined;
    let slot: number;
    if (ctx.hash !== undefined) {
      splitHash(ctx.hash, halves);
      slot = mod64(halves[0]!, halves[1]!, m);
    } else {
      slot = mod64(random.nextUint32(), random.nextUint32(), m);
    }
    const first = this.hosts[table[slot]!]!;
    if (!isExcluded(ctx, first)) return first;
    for (let k = 1; k < m; k++) {
      const host = this.hosts[table[(slot + k) % m]!]!;
      if (!isExcluded(ctx, host)) return host;
    }
    return undefined;
  }
}

export const maglevFactory: LoadBalancerFactory = {
  scope: 'priority',
  create: (input: PickerInput) =>
    new MaglevPicker(input.hosts, input.weights, (input.config as MaglevConfig | undefined)?.tableSize ?? DEFAULT_TABLE_SIZE),
};
