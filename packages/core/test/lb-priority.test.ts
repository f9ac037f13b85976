import { describe, expect, it } from 'vitest';
import type { HealthStatus } from '@meshlet/xds-client';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { computePriorityLoad, effectiveLocalityWeight, type PriorityCounts } from '../src/priority-locality.js';
import { seededRandom } from '../src/random.js';
import { cluster, countKeys, endpoints, hostsSpec, locality, RING, RR } from './lb-fixtures.js';

/** A priority of 100 hosts, `healthyPct` of them healthy (the rest `other`). */
function level(p: number, healthyPct: number, other: HealthStatus = 'UNHEALTHY') {
  return [
    locality(
      `p${p}`,
      hostsSpec(100).map((h, i) => ({ host: h.host.replace('10.0.', `10.${p}.`), health: i < healthyPct ? ('HEALTHY' as const) : other })),
    ),
  ];
}

function loadOf(...healthyPcts: number[]) {
  const lb = buildClusterLoadBalancer(cluster([RR]), endpoints(healthyPcts.map((h, p) => level(p, h))), { random: seededRandom(1) });
  return lb.priorityLoad.healthy;
}

describe('priority load (Envoy priority.rst, overprovisioning factor 1.4)', () => {
  // Two levels, P=1 fully healthy.
  it.each([
    [100, [100, 0]],
    [72, [100, 0]],
    [71, [99, 1]],
    [50, [70, 30]],
    [25, [35, 65]],
    [0, [0, 100]],
  ])('P0 %i%% healthy, P1 100%% → %j', (p0, expected) => {
    expect(loadOf(p0, 100)).toEqual(expected);
  });

  // Both levels degrade together; below 100 % total the loads are normalized.
  it.each([
    [100, 100, [100, 0]],
    [72, 72, [100, 0]],
    [71, 71, [99, 1]],
    [50, 50, [70, 30]],
    [25, 100, [35, 65]],
    [25, 25, [50, 50]],
  ])('P0 %i%%, P1 %i%% → %j', (p0, p1, expected) => {
    expect(loadOf(p0, p1)).toEqual(expected);
  });

  it.each([
    [100, 100, 100, [100, 0, 0]],
    [72, 72, 100, [100, 0, 0]],
    [71, 71, 100, [99, 1, 0]],
    [50, 50, 100, [70, 30, 0]],
    [25, 100, 100, [35, 65, 0]],
    [25, 25, 100, [35, 35, 30]],
    // The doc's table says 36/36/28; Envoy's code (distributeLoad) gives each level
    // floor(health × 100 / 98) = 35, 35, 28 and the rounding remainder (2) to the
    // first healthy level, which is what is implemented.
    [25, 25, 20, [37, 35, 28]],
  ])('P0 %i%%, P1 %i%%, P2 %i%% → %j', (p0, p1, p2, expected) => {
    expect(loadOf(p0, p1, p2)).toEqual(expected);
  });

  it('sends picks in those proportions as endpoints turn unhealthy', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([level(0, 50), level(1, 100)]), { random: seededRandom(2) });
    const byPriority = [0, 0];
    for (let i = 0; i < 20_000; i++) {
      const h = lb.pick()!;
      expect(h.health).toBe('healthy');
      byPriority[h.priority]!++;
    }
    expect(Math.abs(byPriority[0]! / 20_000 - 0.7)).toBeLessThan(0.02);
  });

  it('hash-based policies draw the priority from the request hash', () => {
    const lb = buildClusterLoadBalancer(cluster([RING()]), endpoints([level(0, 50), level(1, 100)]), { random: seededRandom(2) });
    // hash % 100 + 1 ≤ 70 → P0.
    expect(lb.pick({ hash: 69n })!.priority).toBe(0);
    expect(lb.pick({ hash: 70n })!.priority).toBe(1);
    expect(lb.pick({ hash: 169n })!.priority).toBe(0);
  });

  it('uses the EDS overprovisioning factor', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([level(0, 80), level(1, 100)], { overprovisioningFactor: 100 }), {
      random: seededRandom(1),
    });
    expect(lb.priorityLoad.healthy).toEqual([80, 20]);
  });

  it('weighted_priority_health counts endpoint weights', () => {
    const counts: PriorityCounts[] = [
      { hosts: 2, healthy: 1, degraded: 0, hostsWeight: 4, healthyWeight: 1, degradedWeight: 0 },
      { hosts: 1, healthy: 1, degraded: 0, hostsWeight: 1, healthyWeight: 1, degradedWeight: 0 },
    ];
    const opts = { overprovisioningFactor: 140, healthyPanicThreshold: 0 };
    expect(computePriorityLoad(counts, { ...opts, weightedPriorityHealth: false }).healthy).toEqual([70, 30]);
    expect(computePriorityLoad(counts, { ...opts, weightedPriorityHealth: true }).healthy).toEqual([35, 65]);
  });
});

describe('degraded hosts', () => {
  it('take load only after the healthy hosts of every priority fall short', () => {
    // P0: 50 healthy, 50 degraded → health 70, degraded 70; P1: none.
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([level(0, 50, 'DEGRADED')]), { random: seededRandom(1) });
    expect(lb.priorityLoad.healthy).toEqual([70]);
    expect(lb.priorityLoad.degraded).toEqual([30]);
    const c = countKeys(Array.from({ length: 10_000 }, () => lb.pick()!.health));
    expect(Math.abs(c.get('degraded')! / 10_000 - 0.3)).toBeLessThan(0.02);
  });
});

describe('panic threshold', () => {
  it('below the threshold a priority balances over all its hosts', () => {
    // 40 % healthy < 50 %: panic, every host of P0 gets load (P0 has all of it: 56 % health + P1 absent).
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([level(0, 40)]), { random: seededRandom(1) });
    expect(lb.priorityLoad.panic).toEqual([true]);
    const c = countKeys(Array.from({ length: 1000 }, () => lb.pick()!.health));
    expect(c.get('unhealthy')).toBe(600);
    expect(c.get('healthy')).toBe(400);
  });

  it('at or above the threshold only healthy hosts are used', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([level(0, 50)]), { random: seededRandom(1) });
    expect(lb.priorityLoad.panic).toEqual([false]);
    for (let i = 0; i < 200; i++) expect(lb.pick()!.health).toBe('healthy');
  });

  it('a threshold of 0 disables panic: no healthy host, no pick', () => {
    const lb = buildClusterLoadBalancer(cluster([RR], { healthyPanicThreshold: 0 }), endpoints([level(0, 0)]), { random: seededRandom(1) });
    expect(lb.priorityLoad.healthy).toEqual([100]);
    expect(lb.pick()).toBeUndefined();
  });

  it('with nothing healthy anywhere, load is split by host count and every level panics', () => {
    const eds = endpoints([level(0, 0), [locality('x', hostsSpec(300).map((h) => ({ ...h, host: h.host.replace('10.0.', '10.9.'), health: 'UNHEALTHY' as const })))]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(1) });
    expect(lb.priorityLoad.panic).toEqual([true, true]);
    expect(lb.priorityLoad.healthy).toEqual([25, 75]);
    expect(lb.pick()).toBeDefined();
  });

  it('fail_traffic_on_panic returns no host in panic', () => {
    const lb = buildClusterLoadBalancer(
      cluster([RR], { zoneAwareLbConfig: { routingEnabled: 100, minClusterSize: 6, failTrafficOnPanic: true } }),
      endpoints([level(0, 10)]),
      { random: seededRandom(1) },
    );
    expect(lb.pick()).toBeUndefined();
  });
});

describe('locality weights', () => {
  const twoZones = (aHealthy = 10) =>
    endpoints([
      [
        locality('a', hostsSpec(10).map((h, i) => ({ ...h, health: i < aHealthy ? ('HEALTHY' as const) : ('UNHEALTHY' as const) })), 1),
        locality('b', hostsSpec(10).map((h) => ({ ...h, host: h.host.replace('10.0.', '10.1.') })), 3),
        locality('z', [{ host: '10.2.0.1' }], 0),
      ],
    ]);
  const zoneShare = (lb: ReturnType<typeof buildClusterLoadBalancer>, n: number) =>
    countKeys(Array.from({ length: n }, () => lb.pick()!.locality.zone));

  it('split load by locality weight with locality_weighted_lb_config (weight 0 skipped)', () => {
    const lb = buildClusterLoadBalancer(cluster([RR], { localityWeightedLbConfig: true }), twoZones(), { random: seededRandom(1) });
    const c = zoneShare(lb, 4000);
    expect(c.get('a')).toBe(1000);
    expect(c.get('b')).toBe(3000);
    expect(c.get('z')).toBeUndefined();
  });

  it('scale a locality by its health (overprovisioned)', () => {
    // a: 5/10 healthy → effective weight 1 × min(1, 1.4 × 0.5) = 0.7; b: 3.
    expect(effectiveLocalityWeight(1, 5, 10, 140)).toBeCloseTo(0.7);
    const lb = buildClusterLoadBalancer(cluster([RR], { localityWeightedLbConfig: true }), twoZones(5), { random: seededRandom(1) });
    const c = zoneShare(lb, 37_000);
    expect(Math.abs(c.get('a')! - 7000)).toBeLessThanOrEqual(1);
  });

  it('without the config, all localities of the priority are balanced together', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), twoZones(), { random: seededRandom(1) });
    const c = zoneShare(lb, 2100);
    expect(c.get('a')).toBe(1000);
    expect(c.get('b')).toBe(1000);
    expect(c.get('z')).toBe(100);
  });

  it('wrr_locality balances localities by weight and uses the child policy within', () => {
    const lb = buildClusterLoadBalancer(
      cluster([{ name: 'wrr_locality', config: { childPolicy: [{ name: 'unknown', config: {} }, RR] } }]),
      twoZones(),
      { random: seededRandom(1) },
    );
    expect(lb.policy).toBe('wrr_locality/round_robin');
    const c = zoneShare(lb, 4000);
    expect(c.get('a')).toBe(1000);
    expect(c.get('b')).toBe(3000);
  });

  it('ring hash folds locality weights into the normalized host weights', () => {
    const lb = buildClusterLoadBalancer(cluster([RING()], { localityWeightedLbConfig: true }), twoZones(), { random: seededRandom(1) });
    const r = seededRandom(5);
    const c = countKeys(Array.from({ length: 20_000 }, () => lb.pick({ hash: (BigInt(r.nextUint32()) << 32n) | BigInt(r.nextUint32()) })!.locality.zone));
    expect(Math.abs(c.get('b')! / 20_000 - 0.75)).toBeLessThan(0.03);
    expect(c.get('z')).toBeUndefined();
  });
});

describe('exclusion (retries on other hosts)', () => {
  it('never returns an excluded host while another is available', () => {
    const eds = endpoints([[locality('a', hostsSpec(5), 1), locality('b', [{ host: '10.1.0.1' }], 1)]]);
    for (const lbPolicy of [[RR], [{ name: 'random', config: {} }], [{ name: 'least_request', config: { choiceCount: 2, activeRequestBias: 1 } }], [RING()], [{ name: 'maglev', config: { tableSize: 65537 } }]]) {
      for (const weighted of [false, true]) {
        const lb = buildClusterLoadBalancer(cluster(lbPolicy, { localityWeightedLbConfig: weighted }), eds, { random: seededRandom(3) });
        const exclude = new Set(lb.hosts.slice(0, 4).map((h) => h.key));
        for (let i = 0; i < 200; i++) expect(exclude.has(lb.pick({ exclude })!.key)).toBe(false);
        // Only one host left in locality a and one in b: both are reached.
        expect(countKeys(Array.from({ length: 200 }, () => lb.pick({ exclude })!.key)).size).toBe(2);
        // A whole locality excluded: the other one serves.
        const zoneA = new Set(lb.hosts.filter((h) => h.locality.zone === 'a').map((h) => h.key));
        for (let i = 0; i < 50; i++) expect(lb.pick({ exclude: zoneA })!.locality.zone).toBe('b');
      }
    }
  });

  it('does not fall back to a locality of weight 0 under locality weighting', () => {
    const eds = endpoints([[locality('a', ['10.0.0.1'], 1), locality('z', ['10.9.0.1'], 0)]]);
    const lb = buildClusterLoadBalancer(cluster([RR], { localityWeightedLbConfig: true }), eds, { random: seededRandom(3) });
    for (let i = 0; i < 20; i++) expect(lb.pick({ exclude: new Set(['10.0.0.1:80']) })!.key).toBe('10.0.0.1:80');
  });

  it('does not spill a retry to a priority that takes no load; reuses a host instead', () => {
    const eds = endpoints([[locality('a', ['10.0.0.1'])], [locality('b', ['10.1.0.1'])]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(3) });
    expect(lb.pick({ exclude: new Set(['10.0.0.1:80']) })!.key).toBe('10.0.0.1:80');
  });

  it('moves to the next priority that takes load', () => {
    const eds = endpoints([level(0, 50), level(1, 100)]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(3) });
    const exclude = new Set(lb.hosts.filter((h) => h.priority === 0).map((h) => h.key));
    for (let i = 0; i < 100; i++) expect(lb.pick({ exclude })!.priority).toBe(1);
  });
});

describe('edge cases', () => {
  it('no endpoints: no pick', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([]), { random: seededRandom(1) });
    expect(lb.pick()).toBeUndefined();
  });

  it('IPv6 keys are bracketed, as Envoy prints them', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([[locality('a', [{ host: '::1', port: 8080 }])]]), { random: seededRandom(1) });
    expect(lb.pick()!.key).toBe('[::1]:8080');
  });

  it('shares one stats object between duplicate endpoints', () => {
    const lb = buildClusterLoadBalancer(cluster([RR]), endpoints([[locality('a', ['10.0.0.1'])], [locality('b', ['10.0.0.1'])]]), {
      random: seededRandom(1),
    });
    expect(lb.hosts[0]!.stats).toBe(lb.hosts[1]!.stats);
  });

  it('a per-pick random source overrides the balancer’s', () => {
    const eds = endpoints([[locality('a', hostsSpec(50))]]);
    const lb = buildClusterLoadBalancer(cluster([{ name: 'random', config: {} }]), eds, { random: seededRandom(1) });
    const a = Array.from({ length: 20 }, () => lb.pick({ random: seededRandom(42) })!.key);
    expect(new Set(a).size).toBe(1);
  });
});
