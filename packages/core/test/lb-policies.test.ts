import { describe, expect, it } from 'vitest';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { EdfScheduler } from '../src/lb-edf.js';
import { seededRandom } from '../src/random.js';
import { cluster, countKeys, endpoints, hostsSpec, locality, LR, RANDOM, RR } from './lb-fixtures.js';

const picks = (lb: ReturnType<typeof buildClusterLoadBalancer>, n: number) =>
  Array.from({ length: n }, () => lb.pick()!.key);

describe('EDF scheduler', () => {
  it('gives each entry exactly its weight over any window of sum(weights) picks', () => {
    const weights = [1, 2, 3, 7];
    const edf = new EdfScheduler(weights);
    const seq = Array.from({ length: 13 * 20 }, () => edf.pickAndAdd());
    for (let start = 0; start + 13 <= seq.length; start += 5) {
      const counts = [0, 0, 0, 0];
      for (const e of seq.slice(start, start + 13)) counts[e]!++;
      expect(counts).toEqual(weights);
    }
  });
});

describe('round robin', () => {
  it('rotates over equal-weight hosts, starting at a random host', () => {
    const eds = endpoints([[locality('a', ['10.0.0.1', '10.0.0.2', '10.0.0.3'])]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(1) });
    const seq = picks(lb, 9);
    expect(seq.slice(3, 6)).toEqual(seq.slice(0, 3));
    expect(new Set(seq.slice(0, 3)).size).toBe(3);
    const starts = new Set<string>();
    for (let seed = 0; seed < 20; seed++) starts.add(buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(seed) }).pick()!.key);
    expect(starts.size).toBe(3);
  });

  it('is exact over a cycle when weights differ (EDF)', () => {
    const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 3 }, { host: '10.0.0.3', weight: 6 }])]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(7) });
    for (let cycle = 0; cycle < 5; cycle++) {
      const c = countKeys(picks(lb, 10));
      expect(c.get('10.0.0.1:80')).toBe(1);
      expect(c.get('10.0.0.2:80')).toBe(3);
      expect(c.get('10.0.0.3:80')).toBe(6);
    }
  });

  it('interleaves rather than bursting', () => {
    const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 1 }, { host: '10.0.0.3', weight: 2 }])]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(3) });
    const seq = picks(lb, 40);
    // The weight-2 host never appears three times in a row.
    for (let i = 0; i + 2 < seq.length; i++) expect(seq[i] === seq[i + 1] && seq[i] === seq[i + 2]).toBe(false);
  });

  it('client_side_weighted_round_robin without ORCA data is plain round robin (weights ignored)', () => {
    const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 9 }])]]);
    const lb = buildClusterLoadBalancer(cluster([{ name: 'client_side_weighted_round_robin', config: {} }]), eds, { random: seededRandom(3) });
    const c = countKeys(picks(lb, 100));
    expect(c.get('10.0.0.1:80')).toBe(50);
    expect(c.get('10.0.0.2:80')).toBe(50);
  });
});

describe('random', () => {
  it('spreads uniformly (weights ignored, as Envoy)', () => {
    const eds = endpoints([[locality('a', hostsSpec(10).map((h, i) => ({ ...h, weight: i + 1 })))]]);
    const lb = buildClusterLoadBalancer(cluster([RANDOM]), eds, { random: seededRandom(11) });
    const n = 50_000;
    const c = countKeys(picks(lb, n));
    expect(c.size).toBe(10);
    // Binomial(50000, 0.1): sd ≈ 67; 5 sd bounds.
    for (const v of c.values()) expect(Math.abs(v - n / 10)).toBeLessThan(340);
  });
});

describe('least request', () => {
  it('prefers idle hosts (P2C)', () => {
    const eds = endpoints([[locality('a', hostsSpec(10))]]);
    const lb = buildClusterLoadBalancer(cluster([LR()]), eds, { random: seededRandom(5) });
    const busy = lb.hosts.slice(0, 5);
    for (const h of busy) h.stats.activeRequests = 10;
    const c = countKeys(picks(lb, 10_000));
    let toBusy = 0;
    for (const h of busy) toBusy += c.get(h.key) ?? 0;
    // A busy host wins only when both samples are busy: 1/4 of picks.
    expect(toBusy / 10_000).toBeGreaterThan(0.22);
    expect(toBusy / 10_000).toBeLessThan(0.28);
  });

  it('more choices concentrate load on the idle host', () => {
    const eds = endpoints([[locality('a', hostsSpec(10))]]);
    const lb = buildClusterLoadBalancer(cluster([LR(5)]), eds, { random: seededRandom(5) });
    lb.hosts.forEach((h, i) => (h.stats.activeRequests = i === 3 ? 0 : 4));
    const c = countKeys(picks(lb, 10_000));
    // P(idle host among 5 samples) = 1 - 0.9^5 ≈ 0.41
    expect((c.get(lb.hosts[3]!.key) ?? 0) / 10_000).toBeGreaterThan(0.38);
    expect((c.get(lb.hosts[3]!.key) ?? 0) / 10_000).toBeLessThan(0.44);
  });

  it('samples with replacement, as Envoy’s N_CHOICES does, even over two hosts', () => {
    const eds = endpoints([[locality('a', ['10.0.0.1', '10.0.0.2'])]]);
    const lb = buildClusterLoadBalancer(cluster([LR()]), eds, { random: seededRandom(5) });
    lb.hosts[0]!.stats.activeRequests = 1;
    // The busy host is picked only when both samples are the busy host: 1/4.
    const busy = countKeys(picks(lb, 10_000)).get('10.0.0.1:80')! / 10_000;
    expect(busy).toBeGreaterThan(0.22);
    expect(busy).toBeLessThan(0.28);
  });

  it('spreads evenly when every host is idle', () => {
    const eds = endpoints([[locality('a', hostsSpec(4))]]);
    const lb = buildClusterLoadBalancer(cluster([LR()]), eds, { random: seededRandom(9) });
    const c = countKeys(picks(lb, 20_000));
    for (const v of c.values()) expect(Math.abs(v - 5000)).toBeLessThan(350);
  });

  it('weighted: weight / (active + 1)^bias by EDF', () => {
    const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 2 }])]]);
    const lb = buildClusterLoadBalancer(cluster([LR()]), eds, { random: seededRandom(1) });
    // Idle: 1:2 by weight.
    let c = countKeys(picks(lb, 300));
    expect(c.get('10.0.0.2:80')).toBe(200);
    // Host 2 with 3 active requests weighs 2/4 = 0.5 < 1: host 1 now gets twice host 2's share.
    lb.hosts[1]!.stats.activeRequests = 3;
    picks(lb, 30); // let the scheduler take in the new weights
    c = countKeys(picks(lb, 300));
    expect(c.get('10.0.0.1:80')).toBe(200);
    expect(c.get('10.0.0.2:80')).toBe(100);
  });

  it('weighted with active_request_bias 0 is weighted round robin', () => {
    const eds = endpoints([[locality('a', [{ host: '10.0.0.1', weight: 1 }, { host: '10.0.0.2', weight: 3 }])]]);
    const lb = buildClusterLoadBalancer(cluster([LR(2, 0)]), eds, { random: seededRandom(1) });
    lb.hosts[1]!.stats.activeRequests = 100;
    const c = countKeys(picks(lb, 400));
    expect(c.get('10.0.0.2:80')).toBe(300);
  });

  it('reads the caller-owned stats objects (no lookup per pick)', () => {
    const stats = new Map<string, { activeRequests: number }>();
    const eds = endpoints([[locality('a', ['10.0.0.1', '10.0.0.2'])]]);
    const lb = buildClusterLoadBalancer(cluster([LR()]), eds, {
      random: seededRandom(1),
      hostStats: (key) => {
        const s = { activeRequests: 0 };
        stats.set(key, s);
        return s;
      },
    });
    expect(lb.hosts[0]!.stats).toBe(stats.get('10.0.0.1:80'));
    stats.get('10.0.0.1:80')!.activeRequests = 5;
    expect(lb.pick()!.key).toBe('10.0.0.2:80');
  });
});

describe('pick_first', () => {
  const eds = endpoints([
    [locality('a', [{ host: '10.0.0.1', health: 'UNHEALTHY' }, '10.0.0.2', '10.0.0.3'])],
    [locality('b', ['10.0.1.1'])],
  ]);
  it('always picks the first healthy endpoint', () => {
    const lb = buildClusterLoadBalancer(cluster([{ name: 'pick_first', config: { shuffleAddressList: false } }]), eds, { random: seededRandom(1) });
    for (let i = 0; i < 10; i++) expect(lb.pick()!.key).toBe('10.0.0.2:80');
    expect(lb.pick({ exclude: new Set(['10.0.0.2:80']) })!.key).toBe('10.0.0.3:80');
  });
  it('shuffles the list once per build when asked', () => {
    const firsts = new Set<string>();
    for (let seed = 0; seed < 30; seed++) {
      const lb = buildClusterLoadBalancer(cluster([{ name: 'pick_first', config: { shuffleAddressList: true } }]), eds, { random: seededRandom(seed) });
      const first = lb.pick()!.key;
      expect(lb.pick()!.key).toBe(first);
      expect(first).not.toBe('10.0.0.1:80');
      firsts.add(first);
    }
    expect(firsts.size).toBe(3);
  });
});
