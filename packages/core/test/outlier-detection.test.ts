import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, systemClock, type OutlierDetection } from '@meshlet/xds-client';
import { buildClusterLoadBalancer } from '../src/lb-cluster.js';
import { OutlierDetector, OutlierDetectorRegistry, type CallOutcome, type OutlierEvent, type OutlierFlavor } from '../src/outlier-detection.js';
import { seededRandom } from '../src/random.js';
import { cluster, endpoints, hostsSpec, locality, RR } from './lb-fixtures.js';
import { restoreWallClock, stepWallClock } from './wall-clock-step.js';


// outlier_detection.proto defaults, as the xds-client decoder fills them in.
const DEFAULTS: OutlierDetection = {
  consecutive5xx: 5,
  interval: 10_000,
  baseEjectionTime: 30_000,
  maxEjectionTime: 300_000,
  maxEjectionTimeJitter: 0,
  maxEjectionPercent: 10,
  enforcingConsecutive5xx: 100,
  enforcingSuccessRate: 100,
  successRateMinimumHosts: 5,
  successRateRequestVolume: 100,
  successRateStdevFactor: 1900,
  consecutiveGatewayFailure: 5,
  enforcingConsecutiveGatewayFailure: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailure: 5,
  enforcingConsecutiveLocalOriginFailure: 100,
  enforcingLocalOriginSuccessRate: 100,
  failurePercentageThreshold: 85,
  enforcingFailurePercentage: 0,
  enforcingFailurePercentageLocalOrigin: 0,
  failurePercentageMinimumHosts: 5,
  failurePercentageRequestVolume: 50,
  successfulActiveHealthCheckUnejectHost: true,
  alwaysEjectOneHost: false,
};

const hostKeys = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:80`);

function detector(
  config: Partial<OutlierDetection>,
  n: number,
  flavor: OutlierFlavor = 'envoy',
  seed = 1,
): { od: OutlierDetector; clock: ManualClock; hosts: string[]; events: OutlierEvent[] } {
  const clock = new ManualClock();
  const od = new OutlierDetector({ ...DEFAULTS, ...config }, { clock, random: seededRandom(seed), flavor });
  const hosts = hostKeys(n);
  od.setHosts(hosts);
  const events: OutlierEvent[] = [];
  od.subscribe((e) => events.push(e));
  return { od, clock, hosts, events };
}

function repeat(od: OutlierDetector, host: string, outcome: CallOutcome, times: number): void {
  for (let i = 0; i < times; i++) od.record(host, outcome);
}

/** `ok` successes and `bad` failures (500, never a streak of two), interleaved. */
function traffic(od: OutlierDetector, host: string, ok: number, bad: number, failure: CallOutcome = 500): void {
  let o = ok;
  let b = bad;
  while (o > 0 || b > 0) {
    if (b > 0 && (b >= o || o === 0)) {
      od.record(host, failure);
      b--;
      if (o > 0) {
        od.record(host, 200);
        o--;
      }
    } else {
      od.record(host, 200);
      o--;
    }
  }
}

describe('consecutive errors (Envoy)', () => {
  it('five 5xx in a row eject the host at once; a success in between starts the count over', () => {
    const { od, hosts, events } = detector({}, 10);
    const [a, b] = hosts as [string, string];
    repeat(od, a, 500, 4);
    od.record(a, 200);
    repeat(od, a, 500, 4);
    expect(od.isEjected(a)).toBe(false);
    od.record(a, 503);
    expect(od.isEjected(a)).toBe(true);
    expect([...od.ejected()]).toEqual([a]);
    expect(events).toEqual([{ action: 'eject', host: a, type: 'CONSECUTIVE_5XX', numEjections: 1, ejectionTimeMs: 30_000 }]);
    expect(od.isEjected(b)).toBe(false);
  });

  it('consecutive gateway failures are detected but not enforced by default (enforcing 0)', () => {
    const { od, hosts } = detector({ consecutive5xx: 100 }, 10);
    repeat(od, hosts[0]!, 502, 5);
    expect(od.isEjected(hosts[0]!)).toBe(false);
    expect(od.stats().ejectionsDetected.CONSECUTIVE_GATEWAY_FAILURE).toBe(1);
    const on = detector({ consecutive5xx: 100, enforcingConsecutiveGatewayFailure: 100 }, 10);
    // A non-gateway 5xx breaks the gateway streak.
    repeat(on.od, on.hosts[0]!, 504, 4);
    on.od.record(on.hosts[0]!, 500);
    repeat(on.od, on.hosts[0]!, 503, 4);
    expect(on.od.isEjected(on.hosts[0]!)).toBe(false);
    on.od.record(on.hosts[0]!, 502);
    expect(on.events[0]).toMatchObject({ action: 'eject', type: 'CONSECUTIVE_GATEWAY_FAILURE' });
  });

  it('connection failures, resets and timeouts count as 5xx when local-origin errors are not split', () => {
    const { od, hosts, events } = detector({ enforcingConsecutiveGatewayFailure: 100 }, 10);
    od.record(hosts[0]!, 'connect_failure');
    od.record(hosts[0]!, 'reset');
    od.record(hosts[0]!, 'timeout');
    od.record(hosts[0]!, 'connect_success'); // ignored: the HTTP status that follows counts
    od.record(hosts[0]!, 'connect_failure');
    od.record(hosts[0]!, 'failure'); // 500: breaks the gateway streak, not the 5xx one
    expect(events).toEqual([expect.objectContaining({ type: 'CONSECUTIVE_5XX' })]);
  });

  it('with split_external_local_origin_errors, local failures have their own streak', () => {
    const { od, hosts, events } = detector({ splitExternalLocalOriginErrors: true, maxEjectionPercent: 50 }, 10);
    repeat(od, hosts[0]!, 'connect_failure', 4);
    od.record(hosts[0]!, 'connect_success');
    repeat(od, hosts[0]!, 'timeout', 4);
    expect(events).toEqual([]);
    od.record(hosts[0]!, 'reset');
    expect(events).toEqual([expect.objectContaining({ type: 'CONSECUTIVE_LOCAL_ORIGIN_FAILURE' })]);
    // External 5xx still counts apart.
    repeat(od, hosts[1]!, 500, 5);
    expect(events[1]).toMatchObject({ host: hosts[1], type: 'CONSECUTIVE_5XX' });
  });

  it('the gRPC flavor (A50) has no consecutive-error ejection', () => {
    const { od, hosts } = detector({ enforcingFailurePercentage: 100 }, 10, 'grpc');
    repeat(od, hosts[0]!, 'failure', 50);
    expect(od.ejected().size).toBe(0);
  });
});

describe('ejection time', () => {
  it('a host returns at the first interval once base_ejection_time has passed', () => {
    const { od, clock, hosts, events } = detector({}, 10);
    clock.advanceTo(5_000);
    repeat(od, hosts[0]!, 500, 5);
    // Intervals at 10 s, 20 s, 30 s: 25 s out < 30 s. At 40 s: 35 s ≥ 30 s.
    clock.advanceTo(39_999);
    expect(od.isEjected(hosts[0]!)).toBe(true);
    clock.advanceTo(40_000);
    expect(od.isEjected(hosts[0]!)).toBe(false);
    expect(events.at(-1)).toEqual({ action: 'uneject', host: hosts[0] });
    expect(od.stats().ejectionsActive).toBe(0);
  });

  it('grows as base × ejection count, capped by max_ejection_time (Envoy)', () => {
    const { od, clock, hosts, events } = detector({ interval: 1_000, baseEjectionTime: 10_000, maxEjectionTime: 25_000 }, 10);
    const a = hosts[0]!;
    const out: number[] = [];
    for (let i = 0; i < 6; i++) {
      repeat(od, a, 500, 5);
      const e = events.at(-1)!;
      expect(e.action).toBe('eject');
      if (e.action === 'eject') out.push(e.ejectionTimeMs);
      const start = clock.now();
      while (od.isEjected(a)) clock.advance(1_000);
      // It came back at the first interval at or after the ejection time.
      expect(clock.now() - start).toBeGreaterThanOrEqual(out.at(-1)!);
      expect(clock.now() - start).toBeLessThan(out.at(-1)! + 1_000);
    }
    expect(out).toEqual([10_000, 20_000, 25_000, 25_000, 25_000, 25_000]);
    // Envoy stops the multiplier once base × multiplier ≥ max + base: 4 here.
    expect(od.hostState(a)!.multiplier).toBe(4);
    // Each healthy interval (a full interval after the return) takes one off.
    clock.advance(1_000);
    expect(od.hostState(a)!.multiplier).toBe(3);
    clock.advance(3_000);
    expect(od.hostState(a)!.multiplier).toBe(0);
    repeat(od, a, 500, 5);
    expect(events.at(-1)).toMatchObject({ action: 'eject', ejectionTimeMs: 10_000, numEjections: 7 });
  });

  it('gRPC (A50): min(base × multiplier, max(base, max)); the multiplier grows without a stop', () => {
    const { od, clock, hosts, events } = detector(
      { interval: 1_000, baseEjectionTime: 10_000, maxEjectionTime: 25_000, enforcingFailurePercentage: 100, enforcingSuccessRate: 0, maxEjectionPercent: 100, failurePercentageMinimumHosts: 1 },
      2,
      'grpc',
    );
    const a = hosts[0]!;
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      repeat(od, a, 'failure', 60);
      const before = events.length;
      clock.advance(1_000);
      expect(events.length).toBe(before + 1);
      const e = events.at(-1)!;
      if (e.action === 'eject') times.push(e.ejectionTimeMs);
      const start = clock.now();
      while (od.isEjected(a)) clock.advance(1_000);
      // A50 returns a host once the time has passed (strictly after), at the end of an interval.
      expect(clock.now() - start).toBe(e.action === 'eject' ? e.ejectionTimeMs + 1_000 : -1);
    }
    expect(times).toEqual([10_000, 20_000, 25_000, 25_000]);
    expect(od.hostState(a)!.multiplier).toBe(4);
  });

  it('jitter adds a random [0, max_ejection_time_jitter] per ejection', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const { od, hosts, events } = detector({ maxEjectionTimeJitter: 5_000 }, 10, 'envoy', seed);
      repeat(od, hosts[0]!, 500, 5);
      const e = events[0]!;
      if (e.action !== 'eject') throw new Error('no ejection');
      expect(e.ejectionTimeMs).toBeGreaterThanOrEqual(30_000);
      expect(e.ejectionTimeMs).toBeLessThanOrEqual(35_000);
      seen.add(e.ejectionTimeMs);
    }
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe('max_ejection_percent', () => {
  it('Envoy: an ejection happens only if the share after it stays within the limit', () => {
    // 5 hosts, 10 %: one ejection would be 20 %, so none happens.
    const small = detector({}, 5);
    repeat(small.od, small.hosts[0]!, 500, 5);
    expect(small.od.ejected().size).toBe(0);
    expect(small.od.stats().ejectionsOverflow).toBe(1);
    // 5 hosts, 40 %: two of five.
    const { od, hosts } = detector({ maxEjectionPercent: 40 }, 5);
    for (const h of hosts) repeat(od, h, 500, 5);
    expect(od.ejected().size).toBe(2);
    expect(od.stats().ejectionsOverflow).toBe(3);
  });

  it('Envoy: always_eject_one_host allows one ejection past the limit, not two', () => {
    const { od, hosts } = detector({ alwaysEjectOneHost: true }, 5);
    for (const h of hosts) repeat(od, h, 500, 5);
    expect([...od.ejected()]).toEqual([hosts[0]]);
  });

  it('Envoy: 20 hosts at the default 10 % eject two at most', () => {
    const { od, hosts } = detector({}, 20);
    for (const h of hosts) repeat(od, h, 500, 5);
    expect(od.ejected().size).toBe(2);
  });

  it('gRPC (A50): checked before each ejection, so the first one always happens', () => {
    const { od, clock, hosts } = detector({ enforcingSuccessRate: 0, enforcingFailurePercentage: 100 }, 5, 'grpc');
    for (const h of hosts) repeat(od, h, 'failure', 100);
    clock.advance(10_000);
    expect([...od.ejected()]).toEqual([hosts[0]]); // 20 % > 10 %, but 0 % < 10 % before it
    const more = detector({ enforcingSuccessRate: 0, enforcingFailurePercentage: 100, maxEjectionPercent: 30 }, 5, 'grpc');
    for (const h of more.hosts) repeat(more.od, h, 'failure', 100);
    more.clock.advance(10_000);
    expect(more.od.ejected().size).toBe(2); // 0 % → 20 % → stop at 40 % ≥ 30 %
  });
});

describe('success rate (A50 / Envoy numbers)', () => {
  // Envoy's example: success rates {50, 100, 100, 100, 100} → mean 90, stdev 20, threshold
  // 90 − 1.9 × 20 = 52; the 50 % host is ejected.
  it('Envoy: ejects the host below mean − 1.9 stdev with 100 requests per host per interval', () => {
    const { od, clock, hosts, events } = detector({ maxEjectionPercent: 20 }, 5);
    traffic(od, hosts[0]!, 50, 50);
    for (const h of hosts.slice(1)) traffic(od, h, 100, 0);
    clock.advance(10_000);
    expect([...od.ejected()]).toEqual([hosts[0]]);
    expect(events).toEqual([expect.objectContaining({ action: 'eject', type: 'SUCCESS_RATE' })]);
  });

  it('one low host among five equal ones is always 2 stdev out: even 99 % is ejected; two low hosts stay', () => {
    // {99, 100, 100, 100, 100}: mean 99.8, stdev 0.4, threshold 99.04.
    const one = detector({ maxEjectionPercent: 20 }, 5);
    traffic(one.od, one.hosts[0]!, 99, 1);
    for (const h of one.hosts.slice(1)) traffic(one.od, h, 100, 0);
    one.clock.advance(10_000);
    expect([...one.od.ejected()]).toEqual([one.hosts[0]]);
    // {50, 50, 100, 100, 100}: mean 80, stdev 24.5, threshold 33.5.
    const two = detector({ maxEjectionPercent: 40 }, 5);
    traffic(two.od, two.hosts[0]!, 50, 50);
    traffic(two.od, two.hosts[1]!, 50, 50);
    for (const h of two.hosts.slice(2)) traffic(two.od, h, 100, 0);
    two.clock.advance(10_000);
    expect(two.od.ejected().size).toBe(0);
  });

  it('not below the threshold, or under request_volume, or too few hosts: no ejection', () => {
    // Stdev factor 3: threshold 90 − 60 = 30, 50 % stays.
    const loose = detector({ maxEjectionPercent: 20, successRateStdevFactor: 3000 }, 5);
    traffic(loose.od, loose.hosts[0]!, 50, 50);
    for (const h of loose.hosts.slice(1)) traffic(loose.od, h, 100, 0);
    loose.clock.advance(10_000);
    expect(loose.od.ejected().size).toBe(0);
    // 99 requests on one healthy host: only 4 hosts qualify (< minimum 5).
    const low = detector({ maxEjectionPercent: 20 }, 5);
    traffic(low.od, low.hosts[0]!, 50, 50);
    for (const h of low.hosts.slice(1, 4)) traffic(low.od, h, 100, 0);
    traffic(low.od, low.hosts[4]!, 99, 0);
    low.clock.advance(10_000);
    expect(low.od.ejected().size).toBe(0);
  });

  it('judges only the interval that just ended (two buckets)', () => {
    const { od, clock, hosts } = detector({ maxEjectionPercent: 20 }, 5);
    // A good first interval for everyone.
    for (const h of hosts) traffic(od, h, 100, 0);
    clock.advance(10_000);
    expect(od.ejected().size).toBe(0);
    // A bad second interval for one host: judged at 20 s, not before.
    traffic(od, hosts[0]!, 50, 50);
    for (const h of hosts.slice(1)) traffic(od, h, 100, 0);
    clock.advance(9_999);
    expect(od.ejected().size).toBe(0);
    clock.advance(1);
    expect([...od.ejected()]).toEqual([hosts[0]]);
  });

  it('gRPC (A50): the same numbers with success fractions; enforcement 0 turns it off', () => {
    const { od, clock, hosts, events } = detector({}, 5, 'grpc');
    for (let i = 0; i < 50; i++) {
      od.record(hosts[0]!, 'success');
      od.record(hosts[0]!, 'failure');
    }
    for (const h of hosts.slice(1)) repeat(od, h, 'success', 100);
    clock.advance(10_000);
    expect(events).toEqual([expect.objectContaining({ host: hosts[0], type: 'SUCCESS_RATE', ejectionTimeMs: 30_000 })]);
    const off = detector({ enforcingSuccessRate: 0 }, 5, 'grpc');
    expect(off.clock.pending).toBe(0); // no algorithm on: no timer, no counting (A50)
  });
});

describe('failure percentage', () => {
  const fp = { enforcingFailurePercentage: 100, enforcingSuccessRate: 0, maxEjectionPercent: 100 };

  it('Envoy ejects at failure % ≥ threshold; A50 only above it', () => {
    for (const [flavor, expected] of [
      ['envoy', 2],
      ['grpc', 1],
    ] as const) {
      const { od, clock, hosts } = detector({ ...fp, consecutive5xx: 1000 }, 5, flavor);
      const fail: CallOutcome = flavor === 'envoy' ? 500 : 'failure';
      traffic(od, hosts[0]!, 10, 90, fail); // 90 %
      traffic(od, hosts[1]!, 15, 85, fail); // exactly 85 %
      traffic(od, hosts[2]!, 16, 84, fail); // 84 %
      for (const h of hosts.slice(3)) traffic(od, h, 100, 0, fail);
      clock.advance(10_000);
      expect(od.ejected().size, flavor).toBe(expected);
      expect(od.isEjected(hosts[0]!)).toBe(true);
      expect(od.isEjected(hosts[2]!)).toBe(false);
    }
  });

  it('needs request_volume (50) per host and minimum_hosts (5) such hosts', () => {
    const { od, clock, hosts } = detector({ ...fp, consecutive5xx: 1000 }, 5);
    traffic(od, hosts[0]!, 0, 49);
    for (const h of hosts.slice(1)) traffic(od, h, 50, 0);
    clock.advance(10_000);
    expect(od.ejected().size).toBe(0);
    const few = detector({ ...fp, consecutive5xx: 1000 }, 4);
    traffic(few.od, few.hosts[0]!, 0, 100);
    for (const h of few.hosts.slice(1)) traffic(few.od, h, 100, 0);
    few.clock.advance(10_000);
    expect(few.od.ejected().size).toBe(0);
  });
});

describe('enforcement percentages', () => {
  it('enforcing_consecutive_5xx 30 ejects about 30 % of detected outliers', () => {
    const random = seededRandom(42);
    let ejected = 0;
    const trials = 4_000;
    for (let i = 0; i < trials; i++) {
      const od = new OutlierDetector({ ...DEFAULTS, enforcingConsecutive5xx: 30, maxEjectionPercent: 100 }, { clock: new ManualClock(), random });
      od.setHosts(['h']);
      repeat(od, 'h', 500, 5);
      if (od.isEjected('h')) ejected++;
    }
    // Binomial(4000, 0.3): σ ≈ 29; allow 5σ.
    expect(Math.abs(ejected - 0.3 * trials)).toBeLessThan(145);
  });

  it('enforcing_success_rate 50 (A50): about half of the intervals eject the outlier', () => {
    let ejected = 0;
    const trials = 1_000;
    for (let i = 0; i < trials; i++) {
      const { od, clock, hosts } = detector({ enforcingSuccessRate: 50 }, 5, 'grpc', i + 1);
      for (let k = 0; k < 50; k++) {
        od.record(hosts[0]!, 'success');
        od.record(hosts[0]!, 'failure');
      }
      for (const h of hosts.slice(1)) repeat(od, h, 'success', 100);
      clock.advance(10_000);
      if (od.isEjected(hosts[0]!)) ejected++;
    }
    // σ ≈ 15.8; allow 5σ.
    expect(Math.abs(ejected - 500)).toBeLessThan(80);
  });
});

describe('lifecycle', () => {
  it('host state survives a config update; the timer keeps its phase', () => {
    const { od, clock, hosts } = detector({}, 10);
    clock.advanceTo(4_000);
    repeat(od, hosts[0]!, 500, 5);
    clock.advanceTo(6_000);
    od.update({ ...DEFAULTS, baseEjectionTime: 5_000 });
    od.setHosts(hosts);
    expect(od.isEjected(hosts[0]!)).toBe(true);
    // Next interval still at 10 s (not 16 s): 6 s out ≥ 5 s (the newest base time).
    clock.advanceTo(10_000);
    expect(od.isEjected(hosts[0]!)).toBe(false);
    expect(od.hostState(hosts[0]!)!.numEjections).toBe(1);
  });

  it('a host that leaves is forgotten and leaves the ejected set; one that comes back starts clean', () => {
    const { od, hosts } = detector({}, 10);
    repeat(od, hosts[0]!, 500, 5);
    expect(od.stats().ejectionsActive).toBe(1);
    od.setHosts(hosts.slice(1));
    expect(od.ejected().size).toBe(0);
    expect(od.stats().ejectionsActive).toBe(0);
    od.record(hosts[0]!, 500); // unknown: ignored
    od.setHosts(hosts);
    expect(od.hostState(hosts[0]!)).toEqual({ ejected: false, multiplier: 0, numEjections: 0, ejectedAt: undefined });
  });

  it('turning detection off returns every ejected host and stops the timer', () => {
    const { od, clock, hosts, events } = detector({ maxEjectionPercent: 50 }, 10);
    repeat(od, hosts[0]!, 500, 5);
    repeat(od, hosts[1]!, 500, 5);
    od.update(undefined);
    expect(od.ejected().size).toBe(0);
    expect(events.filter((e) => e.action === 'uneject').length).toBe(2);
    expect(clock.pending).toBe(0);
    repeat(od, hosts[2]!, 500, 5);
    expect(od.ejected().size).toBe(0);
  });

  it('dispose stops the timer', () => {
    const { od, clock } = detector({}, 3);
    expect(clock.pending).toBe(1);
    od.dispose();
    expect(clock.pending).toBe(0);
  });

  it('ejected() works as the picker’s exclude set', () => {
    const eds = endpoints([[locality('a', hostsSpec(10))]]);
    const lb = buildClusterLoadBalancer(cluster([RR]), eds, { random: seededRandom(3) });
    const keys = new Set<string>();
    for (let i = 0; i < 10; i++) keys.add(lb.pick()!.key);
    const { od } = detector({}, 0);
    od.setHosts(keys);
    const bad = [...keys][3]!;
    repeat(od, bad, 503, 5);
    for (let i = 0; i < 100; i++) expect(lb.pick({ exclude: od.ejected() })!.key).not.toBe(bad);
  });
});

describe('registry and local-origin success rate', () => {
  it('the registry keeps a detector (and its ejections) across updates and disposes of removed ones', () => {
    const clock = new ManualClock();
    const reg = new OutlierDetectorRegistry({ clock, random: seededRandom(1) });
    const hosts = hostKeys(10);
    const od = reg.get('reviews', DEFAULTS, hosts);
    repeat(od, hosts[0]!, 500, 5);
    const again = reg.get('reviews', { ...DEFAULTS, consecutive5xx: 3 }, hosts);
    expect(again).toBe(od);
    expect(again.isEjected(hosts[0]!)).toBe(true);
    repeat(od, hosts[1]!, 500, 3); // the newest threshold; 2 of 10 > 10 %: overflow
    expect(od.stats().ejectionsOverflow).toBe(1);
    reg.get('ratings', undefined, []);
    expect(clock.pending).toBe(1); // no timer without a config
    reg.retain(['ratings']);
    expect(reg.peek('reviews')).toBeUndefined();
    expect(clock.pending).toBe(0);
  });

  it('split: a local-origin success-rate outlier is ejected as SUCCESS_RATE_LOCAL_ORIGIN', () => {
    const { od, clock, hosts, events } = detector({ splitExternalLocalOriginErrors: true, maxEjectionPercent: 20, consecutiveLocalOriginFailure: 1000 }, 5);
    for (let i = 0; i < 50; i++) {
      od.record(hosts[0]!, 'connect_success');
      od.record(hosts[0]!, 'connect_failure');
    }
    for (const h of hosts.slice(1)) repeat(od, h, 'connect_success', 100);
    clock.advance(10_000);
    expect(events).toEqual([expect.objectContaining({ host: hosts[0], type: 'SUCCESS_RATE_LOCAL_ORIGIN' })]);
  });
});

describe('odd configs', () => {
  it('max_ejection_time below base_ejection_time caps at the base time instead of failing', () => {
    const { od, hosts, events } = detector({ baseEjectionTime: 20_000, maxEjectionTime: 5_000 }, 10);
    repeat(od, hosts[0]!, 500, 5);
    expect(events[0]).toMatchObject({ action: 'eject', ejectionTimeMs: 20_000 });
  });
});

// The detectors' default clock (the xDS client's systemClock, real timers) while the date is
// stepped: an ejection lasts its ejection time, not that plus or minus the step.
describe('ejection time across a wall-clock step', () => {
  afterEach(restoreWallClock);

  function onSystemClock(config: Partial<OutlierDetection>): { od: OutlierDetector; host: string } {
    const od = new OutlierDetector({ ...DEFAULTS, ...config }, { clock: systemClock, random: seededRandom(1), flavor: 'envoy' });
    const host = hostKeys(1)[0]!;
    od.setHosts([host]);
    repeat(od, host, 503, 5);
    expect(od.isEjected(host)).toBe(true);
    return { od, host };
  }

  it('a step forward does not end an ejection early', () => {
    const { od, host } = onSystemClock({ maxEjectionPercent: 100 });
    stepWallClock(3_600_000);
    od.runInterval();
    expect(od.isEjected(host)).toBe(true); // 30 s base ejection time, not over
    od.dispose();
  });

  it('a step back does not hold an ejection for the length of the step', async () => {
    const { od, host } = onSystemClock({ maxEjectionPercent: 100, baseEjectionTime: 50, maxEjectionTime: 50 });
    stepWallClock(-3_600_000);
    await sleep(60);
    od.runInterval();
    expect(od.isEjected(host)).toBe(false);
    od.dispose();
  });
});
