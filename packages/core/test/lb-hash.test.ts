import { describe, expect, it } from 'vitest';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { MaglevPicker } from '../src/lb-maglev.js';
import { RingHashPicker } from '../src/lb-ring-hash.js';
import type { PickedHost } from '../src/lb-types.js';
import { seededRandom } from '../src/random.js';
import { xxhash64 } from '../src/xxhash.js';
import { cluster, countKeys, endpoints, hostsSpec, locality, MAGLEV, RING } from './lb-fixtures.js';

const random64 = (r: ReturnType<typeof seededRandom>) => (BigInt(r.nextUint32()) << 32n) | BigInt(r.nextUint32());
const keys = (n: number, seed = 1) => {
  const r = seededRandom(seed);
  return Array.from({ length: n }, () => random64(r));
};

function fakeHosts(n: number): PickedHost[] {
  return hostsSpec(n).map((s) => ({ key: `${s.host}:80` }) as PickedHost);
}

for (const [name, policy] of [
  ['ring hash', RING()],
  ['maglev', MAGLEV()],
] as const) {
  describe(`${name} through the cluster load balancer`, () => {
    const eds10 = endpoints([[locality('a', hostsSpec(10))]]);
    const eds9 = endpoints([[locality('a', hostsSpec(10).slice(1))]]);

    it('is sticky: the same hash always gives the same host', () => {
      const lb = buildClusterLoadBalancer(cluster([policy]), eds10, { random: seededRandom(1) });
      const lb2 = buildClusterLoadBalancer(cluster([policy]), eds10, { random: seededRandom(99) });
      for (const hash of keys(500)) {
        const k = lb.pick({ hash })!.key;
        expect(lb.pick({ hash })!.key).toBe(k);
        expect(lb2.pick({ hash })!.key).toBe(k); // independent of the random source
      }
    });

    it('moves only about 1/N of the keys when one of N hosts leaves', () => {
      const a = buildClusterLoadBalancer(cluster([policy]), eds10, { random: seededRandom(1) });
      const b = buildClusterLoadBalancer(cluster([policy]), eds9, { random: seededRandom(1) });
      const ks = keys(20_000);
      let moved = 0;
      let onRemoved = 0;
      for (const hash of ks) {
        const before = a.pick({ hash })!.key;
        const after = b.pick({ hash })!.key;
        if (before === '10.0.0.1:80') onRemoved++;
        else if (before !== after) moved++;
      }
      // Keys of the removed host (≈ 1/10) must move; few others may: with 9 hosts
      // each host gets more ring entries (ceil(1024/9) = 114 instead of 103), or a
      // rebuilt Maglev table shifts a few slots.
      expect(onRemoved / ks.length).toBeGreaterThan(0.05);
      expect(onRemoved / ks.length).toBeLessThan(0.15);
      expect(moved / ks.length).toBeLessThan(0.08);
    });

    it('spreads hashes by weight', () => {
      const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 3 }])]]);
      const lb = buildClusterLoadBalancer(cluster([policy]), eds, { random: seededRandom(1) });
      const c = countKeys(keys(20_000).map((hash) => lb.pick({ hash })!.key));
      const share = c.get('10.0.0.2:80')! / 20_000;
      expect(share).toBeGreaterThan(0.7);
      expect(share).toBeLessThan(0.8);
    });

    it('picks at random without a hash', () => {
      const lb = buildClusterLoadBalancer(cluster([policy]), eds10, { random: seededRandom(4) });
      const c = countKeys(Array.from({ length: 10_000 }, () => lb.pick()!.key));
      expect(c.size).toBe(10);
      for (const v of c.values()) expect(v).toBeGreaterThan(700);
    });

    it('a retry that excludes the chosen host gets another, consistently', () => {
      const lb = buildClusterLoadBalancer(cluster([policy]), eds10, { random: seededRandom(4) });
      for (const hash of keys(200)) {
        const first = lb.pick({ hash })!.key;
        const exclude = new Set([first]);
        const second = lb.pick({ hash, exclude })!.key;
        expect(second).not.toBe(first);
        expect(lb.pick({ hash, exclude })!.key).toBe(second);
      }
      // Everything excluded: the pick reuses a host rather than failing.
      const all = new Set(lb.hosts.map((h) => h.key));
      expect(lb.pick({ hash: 1n, exclude: all })).toBeDefined();
    });
  });
}

describe('ring construction (Envoy ring_hash_lb.cc)', () => {
  it('moves no other key when the entries per host stay the same', () => {
    // 50 and 49 hosts both get ceil(1024 / n) = 21 entries each.
    const a = buildClusterLoadBalancer(cluster([RING()]), endpoints([[locality('a', hostsSpec(50))]]), { random: seededRandom(1) });
    const b = buildClusterLoadBalancer(cluster([RING()]), endpoints([[locality('a', hostsSpec(50).slice(1))]]), { random: seededRandom(1) });
    let onRemoved = 0;
    for (const hash of keys(20_000)) {
      const before = a.pick({ hash })!.key;
      if (before === '10.0.0.1:80') onRemoved++;
      else expect(b.pick({ hash })!.key).toBe(before);
    }
    expect(onRemoved).toBeGreaterThan(0);
  });

  it('gives each host ceil(min weight × min ring size) entries, scaled', () => {
    const hosts = fakeHosts(3);
    const ring = new RingHashPicker(hosts, [1 / 3, 1 / 3, 1 / 3], { minRingSize: 1024, maxRingSize: 8_388_608, hashFunction: 'XX_HASH' });
    // scale = ceil(1024 / 3) × 3 = 1026: 342 entries per host.
    expect(ring.size).toBe(1026);
    expect([...countKeys([...ring.hostIndex].map(String)).values()]).toEqual([342, 342, 342]);
  });

  it('sorts a large ring by unsigned 64-bit hash', () => {
    const ring = new RingHashPicker(fakeHosts(10), Array(10).fill(0.1), { minRingSize: 50_000, maxRingSize: 8_388_608, hashFunction: 'XX_HASH' });
    expect(ring.size).toBe(50_000);
    for (let i = 1; i < ring.size; i++) {
      const a = ring.hashHi[i - 1]!, b = ring.hashHi[i]!;
      if (a > b || (a === b && ring.hashLo[i - 1]! > ring.hashLo[i]!)) throw new Error(`ring not sorted at ${i}`);
    }
    // Host 3's entry 7 is where its hash sorts.
    const h = xxhash64('10.0.0.4:80_7');
    const at = ring.find(Number(h >> 32n), Number(h & 0xffffffffn));
    expect(ring.hostIndex[at]).toBe(3);
  });

  it('caps the ring at the maximum size', () => {
    const ring = new RingHashPicker(fakeHosts(2), [0.0001, 0.9999], { minRingSize: 1024, maxRingSize: 2048, hashFunction: 'XX_HASH' });
    // Unscaled it would be ceil(0.1024) / 0.0001 = 10,000 entries.
    expect(ring.size).toBe(2048);
  });

  it('hashes "<address>_<i>" with xxHash64 seed 0 and sorts the ring', () => {
    const hosts = fakeHosts(2);
    const ring = new RingHashPicker(hosts, [0.5, 0.5], { minRingSize: 4, maxRingSize: 100, hashFunction: 'XX_HASH' });
    const expected = [0, 1]
      .flatMap((h) => [0, 1].map((i) => ({ hash: xxhash64(`${hosts[h]!.key}_${i}`), h })))
      .sort((x, y) => (x.hash < y.hash ? -1 : 1));
    const actual = [...ring.hostIndex].map((h, i) => ({ hash: (BigInt(ring.hashHi[i]!) << 32n) | BigInt(ring.hashLo[i]!), h }));
    expect(actual).toEqual(expected);
    // A hash maps to the first entry at or after it, wrapping past the end.
    expect(ring.pick({ hash: expected[1]!.hash }, seededRandom(1))).toBe(hosts[expected[1]!.h]);
    expect(ring.pick({ hash: expected[1]!.hash + 1n }, seededRandom(1))).toBe(hosts[expected[2]!.h]);
    expect(ring.pick({ hash: expected[3]!.hash + 1n }, seededRandom(1))).toBe(hosts[expected[0]!.h]);
  });
});

describe('Maglev table (Envoy maglev_lb.cc)', () => {
  it('fills the default 65537 slots evenly for equal weights', () => {
    const table = new MaglevPicker(fakeHosts(7), Array(7).fill(1 / 7), 65537);
    expect(table.table.length).toBe(65537);
    const c = [...countKeys([...table.table].map(String)).values()];
    expect(Math.max(...c) - Math.min(...c)).toBeLessThanOrEqual(1);
  });

  it('gives slots in proportion to weight', () => {
    const table = new MaglevPicker(fakeHosts(2), [0.25, 0.75], 65537);
    const c = countKeys([...table.table].map(String));
    expect(Math.abs(c.get('1')! / 65537 - 0.75)).toBeLessThan(0.001);
  });

  it('puts host offsets at xxHash64(address) mod M', () => {
    const hosts = fakeHosts(1);
    const table = new MaglevPicker(hosts, [1], 65537);
    expect(table.table.every((h) => h === 0)).toBe(true);
    // Two hosts: each claims its own offset slot first.
    const two = fakeHosts(2);
    const t2 = new MaglevPicker(two, [0.5, 0.5], 13);
    const offset0 = Number(xxhash64(two[0]!.key) % 13n);
    expect(t2.table[offset0]).toBe(0);
  });

  it('uses the configured table size', () => {
    const eds = endpoints([[locality('a', hostsSpec(3))]]);
    const lb = buildClusterLoadBalancer(cluster([MAGLEV(13)]), eds, { random: seededRandom(1) });
    // hash and hash + 13 share a slot.
    for (const h of keys(50)) expect(lb.pick({ hash: h })!.key).toBe(lb.pick({ hash: h + 13n })!.key);
  });
});
