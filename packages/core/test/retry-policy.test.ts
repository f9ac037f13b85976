import { describe, expect, it } from 'vitest';
import type { AttemptOutcome } from '../src/retry-outcome.js';
import { failureReply } from '../src/retry-outcome.js';
import { compileRetryPolicy, parseRetryOn, RetryOn } from '../src/retry-policy.js';
import { exactHeader, request, response, retryPolicy } from './retry-fixtures.js';

const reset: AttemptOutcome = { kind: 'reset' };
const resetBeforeSend: AttemptOutcome = { kind: 'reset', requestSent: false };
const connectFailure: AttemptOutcome = { kind: 'connect_failure' };
const refused: AttemptOutcome = { kind: 'refused_stream' };
const perTryTimeout: AttemptOutcome = { kind: 'timeout' };
const overflow: AttemptOutcome = { kind: 'overflow' };

function conditions(retryOn: string, extra: Parameters<typeof retryPolicy>[0] = {}) {
  const c = compileRetryPolicy(retryPolicy({ retryOn: retryOn.split(','), ...extra })).forRequest(request());
  if (c === undefined) throw new Error('no retry conditions');
  return c;
}

// Each row: retry_on, outcomes retried, outcomes not retried (Envoy retry_state_impl.cc).
const table: [string, AttemptOutcome[], AttemptOutcome[]][] = [
  ['5xx', [response(500), response(503), response(599), reset, connectFailure, refused, perTryTimeout], [response(200), response(404), response(409), response(429), overflow]],
  ['gateway-error', [response(502), response(503), response(504), reset, connectFailure, refused, perTryTimeout], [response(500), response(501), response(505), response(409), overflow]],
  ['reset', [reset, connectFailure, refused, perTryTimeout], [response(500), response(503), overflow]],
  ['connect-failure', [connectFailure], [reset, refused, perTryTimeout, response(503), overflow]],
  ['refused-stream', [refused], [reset, connectFailure, perTryTimeout, response(503), overflow]],
  ['retriable-4xx', [response(409)], [response(400), response(404), response(429), response(503), reset]],
  ['envoy-ratelimited', [response(429, { 'x-envoy-ratelimited': 'true' })], [response(429), response(503), reset]],
  ['http3-post-connect-failure', [], [reset, connectFailure, response(503)]],
];

describe('retry_on conditions', () => {
  for (const [on, yes, no] of table) {
    it(`${on}: retries what it names and nothing else`, () => {
      const c = conditions(on);
      for (const o of yes) expect(c.shouldRetry(o), `${on} ${JSON.stringify(o)}`).toBe(true);
      for (const o of no) expect(c.shouldRetry(o), `${on} ${JSON.stringify(o)}`).toBe(false);
    });
  }

  it('reset-before-request: only while no attempt has sent a byte', () => {
    const c = conditions('reset-before-request');
    expect(c.shouldRetry(connectFailure, false)).toBe(true);
    expect(c.shouldRetry(resetBeforeSend, false)).toBe(true);
    expect(c.shouldRetry(reset, true)).toBe(false);
    // Sticky: a connect failure after an earlier attempt sent bytes is not retried.
    expect(c.shouldRetry(connectFailure, true)).toBe(false);
    expect(c.shouldRetry(perTryTimeout, true)).toBe(false);
    expect(c.shouldRetry(response(503), false)).toBe(false);
    expect(c.shouldRetry(overflow, false)).toBe(false);
  });

  it('retriable-status-codes: the listed codes only', () => {
    const c = conditions('retriable-status-codes', { retriableStatusCodes: [418, 503] });
    expect(c.shouldRetry(response(418))).toBe(true);
    expect(c.shouldRetry(response(503))).toBe(true);
    expect(c.shouldRetry(response(500))).toBe(false);
    expect(c.shouldRetry(reset)).toBe(false);
    // The codes alone do nothing without the condition.
    expect(conditions('5xx', { retriableStatusCodes: [418] }).shouldRetry(response(418))).toBe(false);
  });

  it('retriable-headers: any matcher on the response headers, :status included', () => {
    const c = conditions('retriable-headers', {
      retriableHeaders: [exactHeader('x-upstream-retry', 'yes'), exactHeader(':status', '299')],
    });
    expect(c.shouldRetry(response(200, { 'x-upstream-retry': 'yes' }))).toBe(true);
    expect(c.shouldRetry(response(200, { 'x-upstream-retry': 'no' }))).toBe(false);
    expect(c.shouldRetry(response(299))).toBe(true);
    expect(c.shouldRetry(response(503))).toBe(false);
    expect(c.shouldRetry(reset)).toBe(false);
  });

  it('x-envoy-ratelimited: retried only under envoy-ratelimited, even when 5xx', () => {
    const limited = response(503, { 'x-envoy-ratelimited': 'true' });
    expect(conditions('5xx,gateway-error').shouldRetry(limited)).toBe(false);
    expect(conditions('5xx,envoy-ratelimited').shouldRetry(limited)).toBe(true);
  });

  it('gRPC names read grpc-status from response headers', () => {
    const c = conditions('unavailable,cancelled');
    expect(c.shouldRetry(response(200, { 'grpc-status': '14' }))).toBe(true);
    expect(c.shouldRetry(response(200, { 'grpc-status': '1' }))).toBe(true);
    expect(c.shouldRetry(response(200, { 'grpc-status': '4' }))).toBe(false);
    expect(c.shouldRetry(response(200))).toBe(false);
    const all = conditions('deadline-exceeded,internal,resource-exhausted');
    for (const s of ['4', '13', '8']) expect(all.shouldRetry(response(200, { 'grpc-status': s }))).toBe(true);
    expect(all.shouldRetry(response(200, { 'grpc-status': '14' }))).toBe(false);
  });

  it('parses names exactly, trimming and skipping unknown ones', () => {
    expect(parseRetryOn(' 5xx , bogus,,reset ')).toBe(RetryOn.FIVE_XX | RetryOn.RESET);
    expect(parseRetryOn('5XX')).toBe(0);
    expect(parseRetryOn('unavailable', 'http')).toBe(0);
    expect(parseRetryOn('5xx', 'grpc')).toBe(0);
  });

  it('maps failures to Envoy local replies and flags', () => {
    expect(failureReply(connectFailure)).toEqual({ status: 503, flag: 'UF' });
    expect(failureReply(reset)).toEqual({ status: 503, flag: 'UR' });
    expect(failureReply({ kind: 'reset', reason: 'protocol_error' })).toEqual({ status: 502, flag: 'UPE' });
    expect(failureReply(perTryTimeout)).toEqual({ status: 504, flag: 'UT' });
    expect(failureReply(overflow)).toEqual({ status: 503, flag: 'UO' });
  });
});

describe('compiled policy per request', () => {
  it('is compiled once per policy object', () => {
    const p = retryPolicy({ retryOn: ['5xx'] });
    expect(compileRetryPolicy(p)).toBe(compileRetryPolicy(p));
    expect(compileRetryPolicy(retryPolicy({ retryOn: ['5xx'] }))).not.toBe(compileRetryPolicy(p));
    // Without request headers the compiled conditions are used as they are.
    expect(compileRetryPolicy(p).forRequest(request())).toBe(compileRetryPolicy(p));
  });

  it('nothing is retriable without retry_on', () => {
    expect(compileRetryPolicy(retryPolicy()).forRequest(request())).toBeUndefined();
    expect(compileRetryPolicy(undefined).forRequest(request())).toBeUndefined();
  });

  it('retriable_request_headers must match the request', () => {
    const c = compileRetryPolicy(retryPolicy({ retryOn: ['5xx'], retriableRequestHeaders: [exactHeader('x-idempotent', '1')] }));
    expect(c.forRequest(request())).toBeUndefined();
    expect(c.forRequest(request({ 'x-idempotent': '0' }))).toBeUndefined();
    expect(c.forRequest(request({ 'x-idempotent': '1' }))?.shouldRetry(response(503))).toBe(true);
    // Matched against :method too.
    const post = compileRetryPolicy(retryPolicy({ retryOn: ['5xx'], retriableRequestHeaders: [exactHeader(':method', 'GET')] }));
    expect(post.forRequest(request({}, { method: 'POST' }))).toBeUndefined();
    expect(post.forRequest(request({}, { method: 'GET' }))).toBeDefined();
  });

  it('x-envoy-retry-on enables retries with no policy (default one retry)', () => {
    const c = compileRetryPolicy(undefined).forRequest(request({ 'x-envoy-retry-on': 'connect-failure' }));
    expect(c?.numRetries).toBe(1);
    expect(c?.shouldRetry(connectFailure)).toBe(true);
    expect(c?.shouldRetry(response(503))).toBe(false);
    // Only HTTP names in x-envoy-retry-on, only gRPC names in x-envoy-retry-grpc-on.
    expect(compileRetryPolicy(undefined).forRequest(request({ 'x-envoy-retry-on': 'unavailable' }))).toBeUndefined();
    const g = compileRetryPolicy(undefined).forRequest(request({ 'x-envoy-retry-grpc-on': 'unavailable' }));
    expect(g?.shouldRetry(response(200, { 'grpc-status': '14' }))).toBe(true);
  });

  it('x-envoy-retry-on adds to the policy; x-envoy-max-retries replaces num_retries', () => {
    const p = compileRetryPolicy(retryPolicy({ retryOn: ['connect-failure'], numRetries: 2 }));
    const c = p.forRequest(request({ 'x-envoy-retry-on': 'retriable-4xx', 'x-envoy-max-retries': '5' }));
    expect(c?.shouldRetry(connectFailure)).toBe(true);
    expect(c?.shouldRetry(response(409))).toBe(true);
    expect(c?.numRetries).toBe(5);
    expect(p.forRequest(request({ 'x-envoy-max-retries': '0' }))?.numRetries).toBe(0);
    // An unparsable value leaves num_retries alone.
    expect(p.forRequest(request({ 'x-envoy-max-retries': '-1' }))?.numRetries).toBe(2);
    expect(p.forRequest(request({ 'x-envoy-max-retries': 'x' }))?.numRetries).toBe(2);
  });

  it('x-envoy-retriable-status-codes and x-envoy-retriable-header-names extend the lists', () => {
    const p = compileRetryPolicy(retryPolicy({ retryOn: ['retriable-status-codes', 'retriable-headers'], retriableStatusCodes: [418] }));
    const c = p.forRequest(request({ 'x-envoy-retriable-status-codes': '409, 429,x', 'x-envoy-retriable-header-names': 'X-Try-Again, x-other' }));
    expect(c?.shouldRetry(response(418))).toBe(true);
    expect(c?.shouldRetry(response(409))).toBe(true);
    expect(c?.shouldRetry(response(429))).toBe(true);
    expect(c?.shouldRetry(response(200, { 'x-try-again': '' }))).toBe(true);
    expect(c?.shouldRetry(response(200, { 'x-other': '1' }))).toBe(true);
    expect(c?.shouldRetry(response(200))).toBe(false);
  });

  it('honorEnvoyHeaders: false ignores every x-envoy retry header', () => {
    const p = compileRetryPolicy(retryPolicy({ retryOn: ['5xx'], numRetries: 2 }));
    const c = p.forRequest(request({ 'x-envoy-retry-on': 'retriable-4xx', 'x-envoy-max-retries': '9' }), { honorEnvoyHeaders: false });
    expect(c).toBe(p);
    expect(c?.shouldRetry(response(409))).toBe(false);
    expect(compileRetryPolicy(undefined).forRequest(request({ 'x-envoy-retry-on': '5xx' }), { honorEnvoyHeaders: false })).toBeUndefined();
  });
});
