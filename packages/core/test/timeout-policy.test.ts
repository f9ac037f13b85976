import { describe, expect, it } from 'vitest';
import type { MaxStreamDuration, Millis, RetryPolicy } from '@meshlet/xds-client';
import {
  formatGrpcTimeout,
  grpcCallTimeout,
  parseGrpcTimeout,
  resolveTimeouts,
  type TimeoutSource,
} from '../src/timeout-policy.js';
import { request, retryPolicy } from './retry-fixtures.js';

function source(timeout: Millis | undefined, rp?: RetryPolicy, msd?: MaxStreamDuration): TimeoutSource {
  return { action: { maxStreamDuration: msd }, timeout, retryPolicy: rp };
}
const msd = (p: Partial<MaxStreamDuration>): MaxStreamDuration => ({
  maxStreamDuration: undefined,
  grpcTimeoutHeaderMax: undefined,
  grpcTimeoutHeaderOffset: undefined,
  ...p,
});

describe('route timeouts (Envoy)', () => {
  it('overall: 15 s by default, as configured, 0 disables', () => {
    expect(resolveTimeouts(source(undefined), request()).overall).toBe(15_000);
    expect(resolveTimeouts(source(2500), request()).overall).toBe(2500);
    expect(resolveTimeouts(source(0), request()).overall).toBeUndefined();
    // Whole milliseconds, as Envoy reads durations: below 1 ms is 0, disabled.
    expect(resolveTimeouts(source(2500.7), request()).overall).toBe(2500);
    expect(resolveTimeouts(source(0.5), request()).overall).toBeUndefined();
  });

  it('per-try: from the retry policy, ignored unless below a non-zero overall timeout', () => {
    expect(resolveTimeouts(source(undefined, retryPolicy({ perTryTimeout: 500 })), request()).perTry).toBe(500);
    expect(resolveTimeouts(source(500, retryPolicy({ perTryTimeout: 500 })), request()).perTry).toBeUndefined();
    expect(resolveTimeouts(source(0, retryPolicy({ perTryTimeout: 60_000 })), request()).perTry).toBe(60_000);
    expect(resolveTimeouts(source(undefined, retryPolicy({ perTryIdleTimeout: 100 })), request()).perTryIdle).toBe(100);
    expect(resolveTimeouts(source(undefined), request()).perTry).toBeUndefined();
  });

  it('x-envoy-upstream-rq-timeout-ms and x-envoy-upstream-rq-per-try-timeout-ms override', () => {
    const s = source(1000, retryPolicy({ perTryTimeout: 300 }));
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-timeout-ms': '5000' }))).toMatchObject({ overall: 5000, perTry: 300 });
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-timeout-ms': '0' })).overall).toBeUndefined();
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-per-try-timeout-ms': '200' })).perTry).toBe(200);
    // A per-try header not below the overall timeout is ignored.
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-per-try-timeout-ms': '1000' })).perTry).toBeUndefined();
    // Unparsable values change nothing.
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-timeout-ms': '1s' })).overall).toBe(1000);
    // Not honoured when switched off.
    expect(resolveTimeouts(s, request({ 'x-envoy-upstream-rq-timeout-ms': '5000' }), { honorEnvoyHeaders: false }).overall).toBe(1000);
  });

  it('a route with max_stream_duration uses it instead of timeout', () => {
    const t = resolveTimeouts(source(1000, undefined, msd({ maxStreamDuration: 3000 })), request());
    expect(t.overall).toBeUndefined();
    expect(t.maxStreamDuration).toBe(3000);
    // The header still sets an overall timeout.
    expect(resolveTimeouts(source(1000, undefined, msd({})), request({ 'x-envoy-upstream-rq-timeout-ms': '700' })).overall).toBe(700);
  });

  it('max_stream_duration: route value, 0 disables, else the Listener default', () => {
    expect(resolveTimeouts(source(undefined), request(), { hcmMaxStreamDuration: 9000 }).maxStreamDuration).toBe(9000);
    expect(resolveTimeouts(source(undefined), request()).maxStreamDuration).toBeUndefined();
    expect(resolveTimeouts(source(undefined, undefined, msd({ maxStreamDuration: 0 })), request(), { hcmMaxStreamDuration: 9000 }).maxStreamDuration).toBeUndefined();
    expect(resolveTimeouts(source(undefined, undefined, msd({})), request(), { hcmMaxStreamDuration: 9000 }).maxStreamDuration).toBe(9000);
  });

  it('grpc_timeout_header_max and offset apply to a grpc-timeout header', () => {
    const grpc = (v: string) => request({ 'grpc-timeout': v }, { grpc: true, method: 'POST' });
    const s = source(undefined, undefined, msd({ maxStreamDuration: 60_000, grpcTimeoutHeaderMax: 10_000, grpcTimeoutHeaderOffset: 50 }));
    expect(resolveTimeouts(s, grpc('2S'))).toMatchObject({ maxStreamDuration: 1950, grpcTimeoutHeader: '1950m', overall: undefined });
    expect(resolveTimeouts(s, grpc('1M')).maxStreamDuration).toBe(9950);
    expect(resolveTimeouts(s, grpc('40m')).maxStreamDuration).toBe(0);
    // No header: max_stream_duration.
    expect(resolveTimeouts(s, request({}, { grpc: true })).maxStreamDuration).toBe(60_000);
    // A max of 0 leaves the header uncapped.
    const uncapped = source(undefined, undefined, msd({ grpcTimeoutHeaderMax: 0 }));
    expect(resolveTimeouts(uncapped, grpc('2H')).maxStreamDuration).toBe(7_200_000);
    // Without grpc_timeout_header_max the header is not used.
    expect(resolveTimeouts(source(undefined, undefined, msd({ maxStreamDuration: 5000 })), grpc('2S')).maxStreamDuration).toBe(5000);
  });
});

describe('grpc-timeout header', () => {
  it('parses every unit, rounding up to whole ms', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('3S')).toBe(3000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(2);
    expect(parseGrpcTimeout('1n')).toBe(1);
    expect(parseGrpcTimeout('0m')).toBe(0);
    expect(parseGrpcTimeout('12345678S')).toBe(12_345_678_000);
  });

  it('rejects malformed values', () => {
    for (const v of ['', 'S', '10', '10s', '123456789S', '-1S', ' 1S', '1.5S']) expect(parseGrpcTimeout(v), v).toBeUndefined();
  });

  it('formats in the finest unit within 8 digits', () => {
    expect(formatGrpcTimeout(1950)).toBe('1950m');
    expect(formatGrpcTimeout(99_999_999)).toBe('99999999m');
    expect(formatGrpcTimeout(100_000_000)).toBe('100000S');
    expect(formatGrpcTimeout(1e12)).toBe('16666666M');
    expect(formatGrpcTimeout(1e14)).toBe('27777777H');
    expect(formatGrpcTimeout(1e18)).toBe('99999999H');
  });
});

describe('gRPC call timeout (gRFC A31 table)', () => {
  const m = (max: Millis | undefined, dur: Millis | undefined) =>
    ({ maxStreamDuration: max === undefined && dur === undefined ? undefined : msd({ grpcTimeoutHeaderMax: max, maxStreamDuration: dur }) });
  // [application deadline, grpc_timeout_header_max, max_stream_duration, effective]
  const rows: [Millis | undefined, Millis | undefined, Millis | undefined, Millis | undefined][] = [
    [undefined, undefined, undefined, undefined],
    [undefined, undefined, 0, undefined],
    [undefined, undefined, 10_000, 10_000],
    [undefined, 0, 10_000, undefined],
    [undefined, 10_000, 30_000, 10_000],
    [20_000, undefined, undefined, 20_000],
    [20_000, undefined, 0, 20_000],
    [20_000, undefined, 10_000, 10_000],
    [20_000, 0, 10_000, 20_000],
    [20_000, 10_000, 5000, 10_000],
  ];
  for (const [app, max, dur, want] of rows) {
    it(`deadline ${app ?? 'unset'}, header max ${max ?? 'unset'}, max_stream_duration ${dur ?? 'unset'} → ${want ?? 'infinite'}`, () => {
      expect(grpcCallTimeout(m(max, dur), app)).toBe(want);
    });
  }

  it('falls back to the Listener max_stream_duration', () => {
    expect(grpcCallTimeout({ maxStreamDuration: undefined }, undefined, 8000)).toBe(8000);
    expect(grpcCallTimeout({ maxStreamDuration: msd({ maxStreamDuration: 0 }) }, undefined, 8000)).toBeUndefined();
  });
});
