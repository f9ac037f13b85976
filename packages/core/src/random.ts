// The source of randomness for every random choice on the request path (weighted
// clusters, runtime fractions, load balancer picks, jitter), injectable so tests are
// deterministic.

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, 2^32). */
  nextUint32(): number;
}

/** Math.random, for production. */
export const systemRandom: Random = {
  next: () => Math.random(),
  nextUint32: () => Math.floor(Math.random() * 0x1_0000_0000),
};

/**
 * A seeded generator (mulberry32): fast, 32-bit state, good enough for load
 * balancing and tests; not for anything secret.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return { nextUint32, next: () => nextUint32() / 0x1_0000_0000 };
}
