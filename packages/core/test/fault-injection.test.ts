import { describe, expect, it } from 'vitest';
import type { FaultAbort, FaultDelay, FaultFilterConfig, FractionalPercent, TypedPerFilterConfig } from '@meshlet/xds-client';
import {
  ActiveFaults,
  compileFault,
  decideFault,
  faultConfigForRoute,
  FAULT_FILTER_TYPE_URL,
  httpToGrpcStatus,
  injectFault,
} from '../src/fault-injection.js';
import { seededRandom } from '../src/random.js';
import { headersFromRecord, type MeshRequest } from '../src/request.js';

const MULT = { HUNDRED: 10_000, TEN_THOUSAND: 100, MILLION: 1 } as const;
function pct(numerator: number, denominator: FractionalPercent['denominator'] = 'HUNDRED'): FractionalPercent {
  return { numerator, denominator, perMillion: Math.min(1_000_000, numerator * MULT[denominator]) };
}

const fixedDelay = (ms: number, p: FractionalPercent): FaultDelay => ({ kind: 'fixed', fixedDelay: ms, percentage: p });
const headerDelay = (p: FractionalPercent): FaultDelay => ({ kind: 'header', fixedDelay: undefined, percentage: p });
const httpAbort = (status: number, p: FractionalPercent): FaultAbort => ({ kind: 'http_status', httpStatus: status, grpcStatus: undefined, percentage: p });
const grpcAbort = (status: number, p: FractionalPercent): FaultAbort => ({ kind: 'grpc_status', httpStatus: undefined, grpcStatus: status, percentage: p });
const headerAbort = (p: FractionalPercent): FaultAbort => ({ kind: 'header', httpStatus: undefined, grpcStatus: undefined, percentage: p });

function fault(f: Partial<FaultFilterConfig>): FaultFilterConfig {
  return { delay: undefined, abort: undefined, maxActiveFaults: undefined, headers: [], downstreamNodes: [], upstreamCluster: '', ...f };
}

function req(headers: Record<string, string> = {}, grpc = false): MeshRequest {
  return { method: 'GET', path: '/', authority: 'svc', scheme: 'http', headers: headersFromRecord(headers), grpc };
}

/** How many of `n` draws get a delay and an abort. */
function tally(config: FaultFilterConfig, r: MeshRequest, n = 10_000, seed = 7): { delayed: number; aborted: number; both: number } {
  const compiled = compileFault(config);
  const random = seededRandom(seed);
  let delayed = 0;
  let aborted = 0;
  let both = 0;
  for (let i = 0; i < n; i++) {
    const d = decideFault(compiled, r, random);
    if (d?.delayMs !== undefined) delayed++;
    if (d?.abort !== undefined) aborted++;
    if (d?.delayMs !== undefined && d.abort !== undefined) both++;
  }
  return { delayed, aborted, both };
}

/** |observed − n·p| within 5 standard deviations of Binomial(n, p). */
function expectRate(observed: number, p: number, n = 10_000): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p), `observed ${observed}, expected ${n * p} ± ${5 * sd}`).toBeLessThanOrEqual(5 * sd + 1e-9);
}

describe('fault percentages over 10,000 draws', () => {
  it('a fixed delay at 20 % and an abort at 5 % are drawn independently', () => {
    const t = tally(fault({ delay: fixedDelay(250, pct(20)), abort: httpAbort(503, pct(5)) }), req());
    expectRate(t.delayed, 0.2);
    expectRate(t.aborted, 0.05);
    // Independent draws (A33): 1 % get both, 24 % get a fault.
    expectRate(t.both, 0.01);
  });

  it('fractions over ten thousand and a million', () => {
    expectRate(tally(fault({ delay: fixedDelay(1, pct(1234, 'TEN_THOUSAND')) }), req()).delayed, 0.1234);
    expectRate(tally(fault({ abort: httpAbort(500, pct(333_333, 'MILLION')) }), req()).aborted, 0.333333);
  });

  it('0 % never, 100 % always', () => {
    expect(tally(fault({ delay: fixedDelay(5, pct(0)), abort: httpAbort(503, pct(0)) }), req())).toEqual({ delayed: 0, aborted: 0, both: 0 });
    expect(tally(fault({ delay: fixedDelay(5, pct(100)), abort: httpAbort(503, pct(100)) }), req())).toEqual({
      delayed: 10_000,
      aborted: 10_000,
      both: 10_000,
    });
  });

  it('header-controlled percentages: the header sets the numerator, capped by the config', () => {
    const cfg = fault({ delay: headerDelay(pct(50)), abort: headerAbort(pct(40)) });
    const r = req({ 'x-envoy-fault-delay-request': '100', 'x-envoy-fault-delay-request-percentage': '10', 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': '90' });
    const t = tally(cfg, r);
    expectRate(t.delayed, 0.1);
    expectRate(t.aborted, 0.4); // 90 capped by 40
    // Without the percentage headers the configured percentages apply; an invalid one is ignored.
    const plain = tally(cfg, req({ 'x-envoy-fault-delay-request': '100', 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': 'lots' }));
    expectRate(plain.delayed, 0.5);
    expectRate(plain.aborted, 0.4);
  });

  it('percentage headers do nothing for fixed faults', () => {
    const t = tally(fault({ delay: fixedDelay(5, pct(50)) }), req({ 'x-envoy-fault-delay-request-percentage': '0' }));
    expectRate(t.delayed, 0.5);
  });
});

describe('what a fault does', () => {
  const always = pct(100);
  const one = (config: FaultFilterConfig, r = req()) => decideFault(compileFault(config), r, seededRandom(1));

  it('a fixed delay: DI; an HTTP abort: FI; both: DI then FI', () => {
    expect(one(fault({ delay: fixedDelay(250, always) }))).toEqual({ delayMs: 250, abort: undefined, flags: ['DI'], maxActiveFaults: undefined });
    expect(one(fault({ abort: httpAbort(418, always) }))).toEqual({ delayMs: undefined, abort: { httpStatus: 418, grpcStatus: undefined }, flags: ['FI'], maxActiveFaults: undefined });
    expect(one(fault({ delay: fixedDelay(5, always), abort: httpAbort(503, always), maxActiveFaults: 3 }))).toMatchObject({ delayMs: 5, flags: ['DI', 'FI'], maxActiveFaults: 3 });
    expect(one(fault({}))).toBeUndefined();
  });

  it('a gRPC-status abort on an HTTP request answers 200 with that grpc-status (Envoy)', () => {
    expect(one(fault({ abort: grpcAbort(14, always) }))!.abort).toEqual({ httpStatus: 200, grpcStatus: 14 });
  });

  it('header-controlled delay and abort read x-envoy-fault-* (first value only)', () => {
    const cfg = fault({ delay: headerDelay(always), abort: headerAbort(always) });
    expect(one(cfg, req({ 'x-envoy-fault-delay-request': '120' }))).toMatchObject({ delayMs: 120, abort: undefined, flags: ['DI'] });
    expect(one(cfg, req({ 'x-envoy-fault-delay-request': '0' }))).toBeUndefined();
    expect(one(cfg, req({ 'x-envoy-fault-delay-request': 'soon' }))).toBeUndefined();
    expect(one(cfg, req({ 'x-envoy-fault-abort-request': '503' }))!.abort).toEqual({ httpStatus: 503, grpcStatus: undefined });
    expect(one(cfg, req({ 'x-envoy-fault-abort-request': '600' }))).toBeUndefined();
    expect(one(cfg, req({ 'x-envoy-fault-abort-request': '199' }))).toBeUndefined();
    expect(one(cfg, req({ 'x-envoy-fault-abort-grpc-request': '4' }))!.abort).toEqual({ httpStatus: 200, grpcStatus: 4 });
    // An HTTP status wins over a gRPC one for HTTP.
    expect(one(cfg, req({ 'x-envoy-fault-abort-request': '502', 'x-envoy-fault-abort-grpc-request': '4' }))!.abort).toEqual({ httpStatus: 502, grpcStatus: undefined });
    expect(one(cfg, req({ 'x-envoy-fault-delay-request': '30, 40' }))).toMatchObject({ delayMs: 30 });
    expect(one(cfg, req({}))).toBeUndefined();
  });

  it('fault headers are ignored unless the config is header-controlled', () => {
    expect(one(fault({ delay: fixedDelay(10, always) }), req({ 'x-envoy-fault-delay-request': '9999' }))!.delayMs).toBe(10);
    expect(one(fault({ abort: httpAbort(500, always) }), req({ 'x-envoy-fault-abort-request': '503' }))!.abort!.httpStatus).toBe(500);
  });

  it('gRPC calls (A33) always get a gRPC status: http_status is mapped, 200 becomes UNKNOWN', () => {
    const g = (config: FaultFilterConfig, h: Record<string, string> = {}) => one(config, req(h, true))!.abort;
    expect(g(fault({ abort: httpAbort(503, always) }))).toEqual({ httpStatus: 200, grpcStatus: 14 });
    expect(g(fault({ abort: httpAbort(200, always) }))).toEqual({ httpStatus: 200, grpcStatus: 2 });
    expect(g(fault({ abort: grpcAbort(0, always) }))).toEqual({ httpStatus: 200, grpcStatus: 0 });
    // The gRPC header first, then the HTTP one mapped.
    const hdr = fault({ abort: headerAbort(always) });
    expect(g(hdr, { 'x-envoy-fault-abort-request': '404', 'x-envoy-fault-abort-grpc-request': '8' })).toEqual({ httpStatus: 200, grpcStatus: 8 });
    expect(g(hdr, { 'x-envoy-fault-abort-request': '404' })).toEqual({ httpStatus: 200, grpcStatus: 12 });
    expect([400, 401, 403, 404, 429, 502, 503, 504, 500].map(httpToGrpcStatus)).toEqual([13, 16, 7, 12, 14, 14, 14, 14, 2]);
  });
});

describe('who gets a fault', () => {
  const always = pct(100);
  const base = { abort: httpAbort(503, always) };
  const one = (config: FaultFilterConfig, r: MeshRequest, cluster?: string) => decideFault(compileFault(config), r, seededRandom(1), { cluster });

  it('headers: every matcher must match', () => {
    const cfg = fault({
      ...base,
      headers: [
        { name: 'x-user', match: { kind: 'exact', value: 'tester', ignoreCase: false }, invertMatch: false, treatMissingHeaderAsEmpty: false },
        { name: 'x-canary', match: { kind: 'present', present: true }, invertMatch: false, treatMissingHeaderAsEmpty: false },
      ],
    });
    expect(one(cfg, req({ 'x-user': 'tester', 'x-canary': '1' }))).toBeDefined();
    expect(one(cfg, req({ 'x-user': 'tester' }))).toBeUndefined();
    expect(one(cfg, req({ 'x-user': 'other', 'x-canary': '1' }))).toBeUndefined();
  });

  it('downstream_nodes: x-envoy-downstream-service-node must be listed', () => {
    const cfg = fault({ ...base, downstreamNodes: ['node-a', 'node-b'] });
    expect(one(cfg, req({ 'x-envoy-downstream-service-node': 'node-b' }))).toBeDefined();
    expect(one(cfg, req({ 'x-envoy-downstream-service-node': 'node-c' }))).toBeUndefined();
    expect(one(cfg, req())).toBeUndefined();
  });

  it('upstream_cluster: only requests routed to that cluster', () => {
    const cfg = fault({ ...base, upstreamCluster: 'reviews' });
    expect(one(cfg, req(), 'reviews')).toBeDefined();
    expect(one(cfg, req(), 'ratings')).toBeUndefined();
    expect(one(cfg, req())).toBeUndefined();
  });

  it('gRPC (A33) does not support headers, downstream_nodes or upstream_cluster selection', () => {
    const cfg = fault({ ...base, upstreamCluster: 'reviews', downstreamNodes: ['n'] });
    expect(one(cfg, req({}, true), 'ratings')).toBeDefined();
  });
});

describe('max_active_faults', () => {
  const cfg = compileFault(fault({ delay: fixedDelay(100, pct(100)), maxActiveFaults: 2 }));

  it('a faulted request takes a slot; at the maximum a request gets no fault at all', () => {
    const active = new ActiveFaults();
    const random = seededRandom(3);
    const a = injectFault(cfg, req(), random, active);
    const b = injectFault(cfg, req(), random, active);
    expect(a?.flags).toEqual(['DI']);
    expect(b?.flags).toEqual(['DI']);
    expect(active.active).toBe(2);
    expect(injectFault(cfg, req(), random, active)).toBeUndefined();
    expect(active.overflows).toBe(1);
    a!.release(); // the delay ended
    a!.release(); // idempotent
    expect(active.active).toBe(1);
    expect(injectFault(cfg, req(), random, active)).toBeDefined();
    expect(active.active).toBe(2);
  });

  it('requests that get no fault take no slot; unset means unlimited', () => {
    const active = new ActiveFaults();
    const none = compileFault(fault({ delay: fixedDelay(100, pct(0)), maxActiveFaults: 0 }));
    expect(injectFault(none, req(), seededRandom(1), active)).toBeUndefined();
    expect(active.overflows).toBe(0);
    const unlimited = compileFault(fault({ abort: httpAbort(503, pct(100)) }));
    for (let i = 0; i < 5000; i++) expect(injectFault(unlimited, req(), seededRandom(i), active)).toBeDefined();
    expect(active.active).toBe(5000);
  });

  it('the gauge is shared by the filter config and its per-route overrides, across snapshots', () => {
    const active = new ActiveFaults();
    const filterLevel = compileFault(fault({ abort: httpAbort(503, pct(100)), maxActiveFaults: 1 }));
    const routeLevel = compileFault(fault({ delay: fixedDelay(5, pct(100)), maxActiveFaults: 1 }));
    expect(injectFault(filterLevel, req(), seededRandom(1), active)).toBeDefined();
    expect(injectFault(routeLevel, req(), seededRandom(1), active)).toBeUndefined();
  });
});

describe('per-route override', () => {
  const filterConfig = fault({ abort: httpAbort(503, pct(100)) });
  const routeConfig = fault({ delay: fixedDelay(42, pct(100)) });
  const filter = { config: filterConfig, disabled: false };
  const entry = (config: FaultFilterConfig | undefined, disabled = false): TypedPerFilterConfig => ({
    'envoy.filters.http.fault': { typeUrl: FAULT_FILTER_TYPE_URL, config, isOptional: false, disabled },
  });

  it('replaces the filter config whole (no merging of delay and abort)', () => {
    const c = faultConfigForRoute('envoy.filters.http.fault', filter, [undefined, entry(routeConfig), undefined]);
    expect(c).toBe(routeConfig);
    const d = decideFault(compileFault(c!), req(), seededRandom(1));
    expect(d).toEqual({ delayMs: 42, abort: undefined, flags: ['DI'], maxActiveFaults: undefined });
  });

  it('the most specific level wins: weighted cluster, then route, then virtual host', () => {
    const vhostConfig = fault({ abort: httpAbort(500, pct(100)) });
    const clusterConfig = fault({ abort: httpAbort(502, pct(100)) });
    expect(faultConfigForRoute('envoy.filters.http.fault', filter, [entry(clusterConfig), entry(routeConfig), entry(vhostConfig)])).toBe(clusterConfig);
    expect(faultConfigForRoute('envoy.filters.http.fault', filter, [undefined, undefined, entry(vhostConfig)])).toBe(vhostConfig);
    expect(faultConfigForRoute('envoy.filters.http.fault', filter, [{}, {}, {}])).toBe(filterConfig);
    // Another filter's entry does not count.
    expect(faultConfigForRoute('other', filter, [entry(routeConfig)])).toBe(filterConfig);
  });

  it('a disabled entry turns the filter off; an entry without config enables a disabled filter', () => {
    expect(faultConfigForRoute('envoy.filters.http.fault', filter, [entry(routeConfig, true)])).toBeUndefined();
    const off = { config: filterConfig, disabled: true };
    expect(faultConfigForRoute('envoy.filters.http.fault', off, [])).toBeUndefined();
    expect(faultConfigForRoute('envoy.filters.http.fault', off, [entry(undefined)])).toBe(filterConfig);
    expect(faultConfigForRoute('envoy.filters.http.fault', undefined, [])).toBeUndefined();
  });

  it('compiles each config once', () => {
    expect(compileFault(routeConfig)).toBe(compileFault(routeConfig));
  });
});
