// XXH64 (Yann Collet's xxHash, 64-bit variant), the hash Envoy uses for ring hash,
// Maglev and hash policies (HashUtil::xxHash64, seed 0). Written over 32-bit halves
// rather than BigInt: building a ring hashes thousands to millions of short keys,
// and BigInt arithmetic allocates on every step. The result of each 64-bit helper
// lands in the module "registers" R[0]/R[1] so the inner loop allocates nothing.
//
// Why not xxhash-wasm: it needs an async init, and the snapshot builder that calls
// this is synchronous; for the short keys hashed here a JS implementation is as fast.

// Registers in a typed array: a module-level `let` holding a number above 2^31
// would be boxed (a heap allocation) on every write.
const R = new Uint32Array(2);

const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;
// -P1 mod 2^64, for v4 = seed - P1.
const NP1H = 0x61c8864e, NP1L = 0x7a143579;

function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  R[1] = lo >>> 0;
  R[0] = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function mul(ah: number, al: number, bh: number, bl: number): void {
  // The high half of al × bl from 16-bit pieces; every intermediate stays below
  // 2^32, so only integer operations run (a double `%` would call fmod).
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const m1 = a1 * b0 + ((a0 * b0) >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  const hi = a1 * b1 + (m1 >>> 16) + (m2 >>> 16);
  R[1] = Math.imul(al, bl) >>> 0;
  R[0] = (hi + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** Rotate left by r, 0 < r < 32. */
function rotl(h: number, l: number, r: number): void {
  R[0] = ((h << r) | (l >>> (32 - r))) >>> 0;
  R[1] = ((l << r) | (h >>> (32 - r))) >>> 0;
}

function round(accH: number, accL: number, inH: number, inL: number): void {
  mul(inH, inL, P2H, P2L);
  add(accH, accL, R[0]!, R[1]!);
  rotl(R[0]!, R[1]!, 31);
  mul(R[0]!, R[1]!, P1H, P1L);
}

function mergeRound(accH: number, accL: number, valH: number, valL: number): void {
  round(0, 0, valH, valL);
  mul((accH ^ R[0]!) >>> 0, (accL ^ R[1]!) >>> 0, P1H, P1L);
  add(R[0]!, R[1]!, P4H, P4L);
}

function u32le(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** XXH64 of b[0, len) with seed (seedH, seedL); the result is left in R[0]/R[1]. */
function hashBytes(b: Uint8Array, len: number, seedH: number, seedL: number): void {
  let p = 0;
  let hH: number, hL: number;
  if (len >= 32) {
    add(seedH, seedL, P1H, P1L);
    add(R[0]!, R[1]!, P2H, P2L);
    let v1h = R[0]!, v1l = R[1]!;
    add(seedH, seedL, P2H, P2L);
    let v2h = R[0]!, v2l = R[1]!;
    let v3h = seedH, v3l = seedL;
    add(seedH, seedL, NP1H, NP1L);
    let v4h = R[0]!, v4l = R[1]!;
    const limit = len - 32;
    do {
      round(v1h, v1l, u32le(b, p + 4), u32le(b, p)); v1h = R[0]!; v1l = R[1]!;
      round(v2h, v2l, u32le(b, p + 12), u32le(b, p + 8)); v2h = R[0]!; v2l = R[1]!;
      round(v3h, v3l, u32le(b, p + 20), u32le(b, p + 16)); v3h = R[0]!; v3l = R[1]!;
      round(v4h, v4l, u32le(b, p + 28), u32le(b, p + 24)); v4h = R[0]!; v4l = R[1]!;
      p += 32;
    } while (p <= limit);
    rotl(v1h, v1l, 1); hH = R[0]!; hL = R[1]!;
    rotl(v2h, v2l, 7); add(hH, hL, R[0]!, R[1]!); hH = R[0]!; hL = R[1]!;
    rotl(v3h, v3l, 12); add(hH, hL, R[0]!, R[1]!); hH = R[0]!; hL = R[1]!;
    rotl(v4h, v4l, 18); add(hH, hL, R[0]!, R[1]!); hH = R[0]!; hL = R[1]!;
    mergeRound(hH, hL, v1h, v1l); hH = R[0]!; hL = R[1]!;
    mergeRound(hH, hL, v2h, v2l); hH = R[0]!; hL = R[1]!;
    mergeRound(hH, hL, v3h, v3l); hH = R[0]!; hL = R[1]!;
    mergeRound(hH, hL, v4h, v4l); hH = R[0]!; hL = R[1]!;
  } else {
    add(seedH, seedL, P5H, P5L);
    hH = R[0]!; hL = R[1]!;
  }
  add(hH, hL, Math.floor(len / 0x1_0000_0000), len >>> 0);
  hH = R[0]!; hL = R[1]!;
  while (p + 8 <= len) {
    round(0, 0, u32le(b, p + 4), u32le(b, p));
    rotl((hH ^ R[0]!) >>> 0, (hL ^ R[1]!) >>> 0, 27);
    mul(R[0]!, R[1]!, P1H, P1L);
    add(R[0]!, R[1]!, P4H, P4L);
    hH = R[0]!; hL = R[1]!;
    p += 8;
  }
  if (p + 4 <= len) {
    mul(0, u32le(b, p), P1H, P1L);
    rotl((hH ^ R[0]!) >>> 0, (hL ^ R[1]!) >>> 0, 23);
    mul(R[0]!, R[1]!, P2H, P2L);
    add(R[0]!, R[1]!, P3H, P3L);
    hH = R[0]!; hL = R[1]!;
    p += 4;
  }
  while (p < len) {
    mul(0, b[p]!, P5H, P5L);
    rotl((hH ^ R[0]!) >>> 0, (hL ^ R[1]!) >>> 0, 11);
    mul(R[0]!, R[1]!, P1H, P1L);
    hH = R[0]!; hL = R[1]!;
    p++;
  }
  // Avalanche.
  hL = (hL ^ (hH >>> 1)) >>> 0;
  mul(hH, hL, P2H, P2L);
  hH = R[0]!; hL = R[1]!;
  hL = (hL ^ ((hL >>> 29) | (hH << 3))) >>> 0;
  hH = (hH ^ (hH >>> 29)) >>> 0;
  mul(hH, hL, P3H, P3L);
  hH = R[0]!; hL = R[1]!;
  R[1] = (hL ^ hH) >>> 0;
  R[0] = hH;
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

// Moving between a bigint and its halves through one 8-byte view costs no BigInt
// arithmetic (each shift or mask would allocate a new BigInt).
const view = new DataView(new ArrayBuffer(8));

/** The unsigned 64-bit value hi · 2^32 + lo as a bigint. */
export function joinHash(hi: number, lo: number): bigint {
  view.setUint32(0, hi);
  view.setUint32(4, lo);
  return view.getBigUint64(0);
}

/** out[0] = high 32 bits, out[1] = low 32 bits of a 64-bit hash (taken mod 2^64). */
export function splitHash(hash: bigint, out: Uint32Array): void {
  view.setBigUint64(0, hash);
  out[0] = view.getUint32(0);
  out[1] = view.getUint32(4);
}

/** (hi · 2^32 + lo) mod m, exactly, for m below 2^26 (table sizes, percentages). */
export function mod64(hi: number, lo: number, m: number): number {
  return ((hi % m) * (0x1_0000_0000 % m) + lo) % m;
}

/** XXH64 of a string (as UTF-8) or bytes, as an unsigned 64-bit bigint. */
export function xxhash64(input: string | Uint8Array, seed: bigint = 0n): bigint {
  view.setBigUint64(0, seed);
  hashInput(input, view.getUint32(0), view.getUint32(4));
  return joinHash(R[0]!, R[1]!);
}

/**
 * XXH64 into out[0] (high 32 bits) and out[1] (low 32 bits), with a seed below 2^32;
 * for hot loops (ring and table construction) that must not allocate BigInts.
 */
export function xxhash64Into(input: string | Uint8Array, seed: number, out: Uint32Array): void {
  hashInput(input, 0, seed >>> 0);
  out[0] = R[0]!;
  out[1] = R[1]!;
}
