// XXH64 (Yann Collet's xxHash, 64-bit variant), the hash Envoy uses for ring hash,
// Maglev and hash policies (HashUtil::xxHash64, seed 0). Written over 32-bit halves
// rather than BigInt: building a ring hashes thousands to millions of short keys,
// and BigInt arithmetic allocates on every step. The result of each 64-bit helper
// lands in the module "registers" RH/RL so the inner loop allocates nothing.
//
// Why not xxhash-wasm: it needs an async init, and the snapshot builder that calls
// this is synchronous; for the short keys hashed here a JS implementation is as fast.

let RH = 0;
let RL = 0;

const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;
// -P1 mod 2^64, for v4 = seed - P1.
const NP1H = 0x61c8864e, NP1L = 0x7a143579;

function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  RL = lo >>> 0;
  RH = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function mul(ah: number, al: number, bh: number, bl: number): void {
  // al * bl exactly, in 16-bit pieces (every partial sum stays below 2^53).
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const mid = a1 * b0 + a0 * b1;
  const t = a0 * b0 + (mid % 0x10000) * 0x10000;
  const carry = Math.floor(t / 0x1_0000_0000);
  const hi = a1 * b1 + Math.floor(mid / 0x10000) + carry;
  RL = t >>> 0;
  RH = (hi + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** Rotate left by r, 0 < r < 32. */
function rotl(h: number, l: number, r: number): void {
  RH = ((h << r) | (l >>> (32 - r))) >>> 0;
  RL = ((l << r) | (h >>> (32 - r))) >>> 0;
}

function round(accH: number, accL: number, inH: number, inL: number): void {
  mul(inH, inL, P2H, P2L);
  add(accH, accL, RH, RL);
  rotl(RH, RL, 31);
  mul(RH, RL, P1H, P1L);
}

function mergeRound(accH: number, accL: number, valH: number, valL: number): void {
  round(0, 0, valH, valL);
  mul((accH ^ RH) >>> 0, (accL ^ RL) >>> 0, P1H, P1L);
  add(RH, RL, P4H, P4L);
}

function u32le(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** XXH64 of b[0, len) with seed (seedH, seedL); the result is left in RH/RL. */
function hashBytes(b: Uint8Array, len: number, seedH: number, seedL: number): void {
  let p = 0;
  let hH: number, hL: number;
  if (len >= 32) {
    add(seedH, seedL, P1H, P1L);
    add(RH, RL, P2H, P2L);
    let v1h = RH, v1l = RL;
    add(seedH, seedL, P2H, P2L);
    let v2h = RH, v2l = RL;
    let v3h = seedH, v3l = seedL;
    add(seedH, seedL, NP1H, NP1L);
    let v4h = RH, v4l = RL;
    const limit = len - 32;
    do {
      round(v1h, v1l, u32le(b, p + 4), u32le(b, p)); v1h = RH; v1l = RL;
      round(v2h, v2l, u32le(b, p + 12), u32le(b, p + 8)); v2h = RH; v2l = RL;
      round(v3h, v3l, u32le(b, p + 20), u32le(b, p + 16)); v3h = RH; v3l = RL;
      round(v4h, v4l, u32le(b, p + 28), u32le(b, p + 24)); v4h = RH; v4l = RL;
      p += 32;
    } while (p <= limit);
    rotl(v1h, v1l, 1); hH = RH; hL = RL;
    rotl(v2h, v2l, 7); add(hH, hL, RH, RL); hH = RH; hL = RL;
    rotl(v3h, v3l, 12); add(hH, hL, RH, RL); hH = RH; hL = RL;
    rotl(v4h, v4l, 18); add(hH, hL, RH, RL); hH = RH; hL = RL;
    mergeRound(hH, hL, v1h, v1l); hH = RH; hL = RL;
    mergeRound(hH, hL, v2h, v2l); hH = RH; hL = RL;
    mergeRound(hH, hL, v3h, v3l); hH = RH; hL = RL;
    mergeRound(hH, hL, v4h, v4l); hH = RH; hL = RL;
  } else {
    add(seedH, seedL, P5H, P5L);
    hH = RH; hL = RL;
  }
  add(hH, hL, Math.floor(len / 0x1_0000_0000), len >>> 0);
  hH = RH; hL = RL;
  while (p + 8 <= len) {
    round(0, 0, u32le(b, p + 4), u32le(b, p));
    rotl((hH ^ RH) >>> 0, (hL ^ RL) >>> 0, 27);
    mul(RH, RL, P1H, P1L);
    add(RH, RL, P4H, P4L);
    hH = RH; hL = RL;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, u32le(b, p), P1H, P1L);
    rotl((hH ^ RH) >>> 0, (hL ^ RL) >>> 0, 23);
    mul(RH, RL, P2H, P2L);
    add(RH, RL, P3H, P3L);
    hH = RH; hL = RL;
    p += 4;
  }
  while (p < len) {
    mul(0, b[p]!, P5H, P5L);
    rotl((hH ^ RH) >>> 0, (hL ^ RL) >>> 0, 11);
    mul(RH, RL, P1H, P1L);
    hH = RH; hL = RL;
    p++;
  }
  // Avalanche.
  hL = (hL ^ (hH >>> 1)) >>> 0;
  mul(hH, hL, P2H, P2L);
  hH = RH; hL = RL;
  hL = (hL ^ ((hL >>> 29) | (hH << 3))) >>> 0;
  hH = (hH ^ (hH >>> 29)) >>> 0;
  mul(hH, hL, P3H, P3L);
  hH = RH; hL = RL;
  RL = (hL ^ hH) >>> 0;
  RH = hH;
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/** UTF-8 bytes of s in the shared scratch buffer; returns the length. */
function encode(s: string): number {
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(Math.max(s.length * 3, scratch.length * 2));
  let n = 0;
  // ASCII fast path (addresses, most header values); TextEncoder for the rest.
  for (; n < s.length; n++) {
    const c = s.charCodeAt(n);
    if (c >= 0x80) return encoder.encodeInto(s, scratch).written;
    scratch[n] = c;
  }
  return n;
}

function hashInput(input: string | Uint8Array, seedH: number, seedL: number): void {
  if (typeof input === 'string') {
    const len = encode(input); // may replace the scratch buffer, so read it after
    hashBytes(scratch, len, seedH, seedL);
  }
  else hashBytes(input, input.length, seedH, seedL);
}

/** XXH64 of a string (as UTF-8) or bytes, as an unsigned 64-bit bigint. */
export function xxhash64(input: string | Uint8Array, seed: bigint = 0n): bigint {
  const s = BigInt.asUintN(64, seed);
  hashInput(input, Number(s >> 32n), Number(s & 0xffffffffn));
  return (BigInt(RH) << 32n) | BigInt(RL);
}

/**
 * XXH64 into out[0] (high 32 bits) and out[1] (low 32 bits), with a seed below 2^32;
 * for hot loops (ring and table construction) that must not allocate BigInts.
 */
export function xxhash64Into(input: string | Uint8Array, seed: number, out: Uint32Array): void {
  hashInput(input, 0, seed >>> 0);
  out[0] = RH;
  out[1] = RL;
}
