import { describe, expect, it } from 'vitest';
import { xxhash64, xxhash64Into } from '../src/xxhash.js';

// Published XXH64 vectors (xxHash's reference output, also in Envoy's hash_test.cc for
// "foo") plus values cross-checked against the reference C implementation
// (xxhash-wasm) for every length class: < 4, 4..7, 8..31, >= 32 bytes, multi-stripe.
const VECTORS: [string, bigint, bigint][] = [
  ['', 0n, 0xef46db3751d8e999n],
  ['', 1n, 0xd5afba1336a3be4bn],
  ['a', 0n, 0xd24ec4f1a98c6e5bn],
  ['abc', 0n, 0x44bc2cf5ad770999n],
  ['abc', 1n, 0xbea9ca8199328908n],
  ['foo', 0n, 3728699739546630719n],
  ['Nobody inspects the spammish repetition', 0n, 0xfbcea83c8a378bf1n],
  ['Nobody inspects the spammish repetition', 1n, 0x43f425448d954db6n],
  ['10.0.0.1:80_0', 0n, 0x75041381e7371a08n],
  ['héllo wörld ✓', 0n, 0x34d9919c86f55ac4n],
  ['x'.repeat(100), 0n, 0x92f0de5a88a3c094n],
  ['x'.repeat(100), 1n, 0xa27aec103fa2bdaen],
  ['y'.repeat(1000), 0n, 0x919a4111ff8ce3d1n],
];

describe('xxhash64', () => {
  it.each(VECTORS)('XXH64(%j, seed %s)', (input, seed, expected) => {
    expect(xxhash64(input, seed)).toBe(expected);
    expect(xxhash64(new TextEncoder().encode(input), seed)).toBe(expected);
  });

  it('xxhash64Into gives the same value as halves', () => {
    const out = new Uint32Array(2);
    for (const [input, seed, expected] of VECTORS) {
      xxhash64Into(input, Number(seed), out);
      expect((BigInt(out[0]!) << 32n) | BigInt(out[1]!)).toBe(expected);
    }
  });

  it('accepts a 64-bit seed', () => {
    // Seeds wrap mod 2^64, so -1 and 2^64 - 1 are the same seed.
    expect(xxhash64('abc', -1n)).toBe(xxhash64('abc', (1n << 64n) - 1n));
  });
});
