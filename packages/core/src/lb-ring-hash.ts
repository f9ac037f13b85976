// RING_HASH (Envoy load_balancers "Ring hash"; ring_hash_lb.cc). The ring is built
// once per priority from the normalized host weights: the lightest host gets
// ceil(min_weight × minimum_ring_size) entries, every host is scaled by the same
// factor (the ring stays within maximum_ring_size), and running sums of the
// fractional counts decide how many entries each host gets. Entry i of a host is
// xxHash64("<address>_<i>", seed 0); the ring is sorted by hash and a request hash
// maps to the first entry at or after it, wrapping to the start.
//
// A retry that excludes hosts walks on around the ring to the next host not
// excluded (Envoy instead offsets the position by the attempt number; walking on
// gives the same "next host on the ring" without landing on an excluded host again).
import type { RingHashConfig } from '@meshlet/xds-client';
import { isExcluded, type HostPicker, type LoadBalancerFactory, type PickContext, type PickedHost, type PickerInput } from './lb-types.js';
import type { Random } from './random.js';
import { splitHash, xxhash64Into } from './xxhash.js';

const halves = new Uint32Array(2);

const DEFAULTS: RingHashConfig = { minRingSize: 1024, maxRingSize: 8_388_608, hashFunction: 'XX_HASH' };

/**
 * Stable LSD radix sort of 64-bit keys (hi, lo) carrying a payload, 16 bits per
 * pass: linear time, which matters for rings of millions of entries.
 */
function radixSort(hi: Uint32Array, lo: Uint32Array, idx: Int32Array): [Uint32Array, Uint32Array, Int32Array] {
  const n = hi.length;
  let h = hi, l = lo, x = idx;
  let h2: Uint32Array = new Uint32Array(n), l2: Uint32Array = new Uint32Array(n), x2: Int32Array = new Int32Array(n);
  const count = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const src = pass < 2 ? l : h;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(src[i]! >>> shift) & 0xffff]!++;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const d = (src[i]! >>> shift) & 0xffff;
      const j = count[d]!++;
      h2[j] = h[i]!;
      l2[j] = l[i]!;
      x2[j] = x[i]!;
    }
    [h, h2] = [h2, h];
    [l, l2] = [l2, l];
    [x, x2] = [x2, x];
  }
  return [h, l, x];
}

export class RingHashPicker implements HostPicker {
  /** Sorted ring: hash high and low halves, and the host index of each entry. */
  readonly hashHi: Uint32Array;
  readonly hashLo: Uint32Array;
  readonly hostIndex: Int32Array;

  constructor(
    private readonly hosts: readonly PickedHost[],
    weights: readonly number[],
    config: RingHashConfig,
  ) {
    let minW = Infinity;
    for (const w of weights) if (w < minW) minW = w;
    if (hosts.length === 0 || !(minW > 0)) {
      this.hashHi = new Uint32Array(0);
      this.hashLo = new Uint32Array(0);
      this.hostIndex = new Int32Array(0);
      return;
    }
    // Scale so the lightest host gets a whole number of entries, capped by the max size.
    const scale = Math.min(Math.ceil(minW * config.minRingSize) / minW, config.maxRingSize);
    const capacity = Math.ceil(scale) + hosts.length; // running sums may round up by one per host
    let hi: Uint32Array = new Uint32Array(capacity);
    let lo: Uint32Array = new Uint32Array(capacity);
    let idx: Int32Array = new Int32Array(capacity);
    const out = new Uint32Array(2);
    let n = 0;
    let current = 0;
    let target = 0;
    for (let h = 0; h < hosts.length; h++) {
      const prefix = `${hosts[h]!.key}_`;
      target += scale * weights[h]!;
      for (let i = 0; current < target; i++, current++) {
        xxhash64Into(prefix + i, 0, out);
        hi[n] = out[0]!;
        lo[n] = out[1]!;
        idx[n] = h;
        n++;
      }
    }
    // Sort entries by hash; ties (vanishingly rare) keep construction order.
    [hi, lo, idx] = radixSort(hi.subarray(0, n), lo.subarray(0, n), idx.subarray(0, n));
    this.hashHi = hi;
    this.hashLo = lo;
    this.hostIndex = idx;
  }

  get size(): number {
    return this.hostIndex.length;
  }

  /** Index of the first ring entry whose hash is >= (h, l), wrapping to 0. */
  find(h: number, l: number): number {
    const hi = this.hashHi, lo = this.hashLo;
    let a = 0, b = hi.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      const mh = hi[m]!;
      if (mh < h || (mh === h && lo[m]! < l)) a = m + 1;
      else b = m;
    }
    return a === hi.length ? 0 : a;
  }

  pick(ctx: PickContext, random: Random): PickedHost | undefined {
    const n = this.hostIndex.length;
    if (n === 0) return undefined;
    let h: number, l: number;
    if (ctx.hash !== undefined) {
      splitHash(ctx.hash, halves);
      h = halves[0]!;
      l = halves[1]!;
    } else {
      h = random.nextUint32();
      l = random.nextUint32();
    }
    const start = this.find(h, l);
    const first = this.hosts[this.hostIndex[start]!]!;
    if (!isExcluded(ctx, first)) return first;
    for (let k = 1; k < n; k++) {
      const host = this.hosts[this.hostIndex[(start + k) % n]!]!;
      if (!isExcluded(ctx, host)) return host;
    }
    return undefined;
  }
}

export const ringHashFactory: LoadBalancerFactory = {
  scope: 'priority',
  create: (input: PickerInput) => new RingHashPicker(input.hosts, input.weights, (input.config as RingHashConfig | undefined) ?? DEFAULTS),
};
