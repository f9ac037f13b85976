import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/random.js';
import { ClusterCircuitBreaker } from '../src/circuit-breaker.js';
import { retryAdmissionFrom, runWithRetries, type RetryAdmission, type RetryLoopOptions, type RetryResult } from '../src/retry-loop.js';
import type { AttemptOutcome, HostTagged } from '../src/retry-outcome.js';
import { compileRetryPolicy } from '../src/retry-policy.js';
import { PREVIOUS_HOSTS_PREDICATE, RetryHostSelector } from '../src/retry-host-predicate.js';
import { flush, ManualClock, request, response, retryPolicy } from './retry-fixtures.js';

type Outcome = AttemptOutcome & HostTagged;

interface Call {
  readonly n: number;
  readonly signal: AbortSignal;
  readonly exclude: ReadonlySet<string>;
  readonly at: number;
}

/** A scripted upstream: each attempt takes the next step (an outcome, or 'hang' until aborted). */
function script(clock: ManualClock, steps: (Outcome | 'hang')[]) {
  const calls: Call[] = [];
  const attempt = (n: number, signal: AbortSignal, exclude: ReadonlySet<string>): Promise<Outcome> => {
    calls.push({ n, signal, exclude: new Set(exclude), at: clock.now() });
    const step = steps[n - 1];
    if (step === undefined) throw new Error(`unexpected attempt ${n}`);
    if (step === 'hang') {
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
    }
    return Promise.resolve(step);
  };
  return { calls, attempt };
}

function start(
  clock: ManualClock,
  opts: Partial<RetryLoopOptions<Outcome>> & Pick<RetryLoopOptions<Outcome>, 'attempt'>,
): { result: Promise<RetryResult<Outcome>>; settled: () => RetryResult<Outcome> | undefined } {
  let value: RetryResult<Outcome> | undefined;
  const result = runWithRetries<Outcome>({
    request: request(),
    timeouts: { overall: 15_000, perTry: undefined },
    clock,
    random: seededRandom(7),
    ...opts,
  });
  result.then(
    (v) => (value = v),
    () => undefined,
  );
  return { result, settled: () => value };
}

const policy5xx = (p: Parameters<typeof retryPolicy>[0] = {}) => compileRetryPolicy(retryPolicy({ retryOn: ['5xx'], ...p }));

describe('runWithRetries', () => {
  it('returns the first success without retrying or waiting', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(200)]);
    const r = await start(clock, { policy: policy5xx(), attempt: s.attempt }).result;
    expect(r).toMatchObject({ attempts: 1, flags: [] });
    expect(r.outcome).toMatchObject({ kind: 'response', status: 200 });
    expect(clock.timers.size).toBe(0);
  });

  it('retries a 503 after a back-off within [0, 25) ms, and discards the retried response', async () => {
    const clock = new ManualClock();
    const first = response(503);
    const s = script(clock, [first, response(200)]);
    const discarded: Outcome[] = [];
    const run = start(clock, { policy: policy5xx(), attempt: s.attempt, discard: (o) => discarded.push(o) });
    await flush();
    expect(s.calls).toHaveLength(1);
    // The overall timer and the back-off timer.
    const [, backoff] = clock.pending();
    expect(backoff).toBeGreaterThanOrEqual(0);
    expect(backoff).toBeLessThan(25);
    await clock.advance(25);
    const r = await run.result;
    expect(r).toMatchObject({ attempts: 2, flags: [] });
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(discarded).toEqual([first]);
    expect(clock.timers.size).toBe(0);
  });

  it('does not retry an outcome the policy does not name', async () => {
    const clock = new ManualClock();
    for (const o of [response(404), response(409), { kind: 'overflow' } as const]) {
      const s = script(clock, [o]);
      const r = await start(clock, { policy: policy5xx(), attempt: s.attempt }).result;
      expect(r).toMatchObject({ attempts: 1, flags: [] });
      expect(r.outcome).toBe(o);
    }
  });

  it('stops after num_retries with flag URX; exponential bounds grow per retry', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(503), response(503), response(503), response(503)]);
    const run = start(clock, { policy: policy5xx({ numRetries: 3 }), attempt: s.attempt });
    await clock.advance(1000);
    const r = await run.result;
    expect(r).toMatchObject({ attempts: 4, flags: ['URX'] });
    expect(r.outcome).toMatchObject({ status: 503 });
    const backoffs = clock.requested.slice(1);
    expect(backoffs).toHaveLength(3);
    [25, 50, 100].forEach((bound, i) => {
      expect(backoffs[i]).toBeGreaterThanOrEqual(0);
      expect(backoffs[i]).toBeLessThan(bound);
    });
  });

  it('num_retries 0 allows no retry (URX); no retry policy retries nothing (no flag)', async () => {
    const clock = new ManualClock();
    const zero = await start(clock, { policy: policy5xx({ numRetries: 0 }), attempt: script(clock, [response(503)]).attempt }).result;
    expect(zero).toMatchObject({ attempts: 1, flags: ['URX'] });
    const none = await start(clock, { policy: undefined, attempt: script(clock, [response(503)]).attempt }).result;
    expect(none).toMatchObject({ attempts: 1, flags: [] });
  });

  it('x-envoy-max-retries and x-envoy-retry-on from the request override the policy', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(503), response(503), response(503)]);
    const run = start(clock, {
      policy: undefined,
      request: request({ 'x-envoy-retry-on': 'gateway-error', 'x-envoy-max-retries': '2' }),
      attempt: s.attempt,
    });
    await clock.advance(1000);
    expect(await run.result).toMatchObject({ attempts: 3, flags: ['URX'] });
  });

  it('each reset kind is retried under its condition', async () => {
    const cases: [string, Outcome, boolean][] = [
      ['connect-failure', { kind: 'connect_failure' }, true],
      ['connect-failure', { kind: 'reset' }, false],
      ['refused-stream', { kind: 'refused_stream' }, true],
      ['reset', { kind: 'reset' }, true],
      ['reset-before-request', { kind: 'reset', requestSent: false }, true],
      ['reset-before-request', { kind: 'reset' }, false],
    ];
    for (const [on, failure, retried] of cases) {
      const clock = new ManualClock();
      const s = script(clock, [failure, response(200)]);
      const run = start(clock, { policy: compileRetryPolicy(retryPolicy({ retryOn: [on] })), attempt: s.attempt });
      await clock.advance(100);
      expect(await run.result, `${on} ${failure.kind}`).toMatchObject({ attempts: retried ? 2 : 1 });
    }
  });

  it('reset-before-request stays off once an attempt has sent the request', async () => {
    const clock = new ManualClock();
    const s = script(clock, [{ kind: 'reset' }, { kind: 'connect_failure' }]);
    const run = start(clock, { policy: compileRetryPolicy(retryPolicy({ retryOn: ['reset-before-request', 'retriable-4xx'] })), attempt: s.attempt });
    await clock.advance(100);
    expect(await run.result).toMatchObject({ attempts: 1 });
    // And a connect failure first, then a reset after sending: retried once, then not.
    const c2 = new ManualClock();
    const s2 = script(c2, [{ kind: 'connect_failure' }, { kind: 'reset' }]);
    const run2 = start(c2, { policy: compileRetryPolicy(retryPolicy({ retryOn: ['reset-before-request'], numRetries: 5 })), attempt: s2.attempt });
    await c2.advance(100);
    expect(await run2.result).toMatchObject({ attempts: 2, flags: [] });
  });

  it('per-try timeout aborts the attempt, then the retry succeeds', async () => {
    const clock = new ManualClock();
    const s = script(clock, ['hang', response(200)]);
    const run = start(clock, {
      policy: policy5xx({ perTryTimeout: 100 }),
      timeouts: { overall: 1000, perTry: 100 },
      attempt: s.attempt,
    });
    await clock.advance(99);
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]!.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(s.calls[0]!.signal.aborted).toBe(true);
    await clock.advance(25);
    const r = await run.result;
    expect(r).toMatchObject({ attempts: 2, flags: [] });
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(s.calls[1]!.signal.aborted).toBe(false);
    expect(clock.timers.size).toBe(0);
  });

  it('a per-try timeout is not retried under connect-failure alone: 504-style timeout with UT', async () => {
    const clock = new ManualClock();
    const s = script(clock, ['hang']);
    const run = start(clock, {
      policy: compileRetryPolicy(retryPolicy({ retryOn: ['connect-failure'] })),
      timeouts: { overall: 1000, perTry: 100 },
      attempt: s.attempt,
    });
    await clock.advance(100);
    const r = await run.result;
    expect(r).toMatchObject({ attempts: 1, flags: ['UT'], outcome: { kind: 'timeout' } });
  });

  it('per-try timeouts until retries run out: UT and URX', async () => {
    const clock = new ManualClock();
    const s = script(clock, ['hang', 'hang']);
    const run = start(clock, { policy: policy5xx(), timeouts: { overall: 10_000, perTry: 100 }, attempt: s.attempt });
    await clock.advance(500);
    expect(await run.result).toMatchObject({ attempts: 2, flags: ['UT', 'URX'], outcome: { kind: 'timeout' } });
  });

  it('the overall timeout aborts the attempt in flight and stops retries (UT)', async () => {
    const clock = new ManualClock();
    const s = script(clock, ['hang', 'hang', 'hang', 'hang']);
    const run = start(clock, {
      policy: policy5xx({ numRetries: 10 }),
      timeouts: { overall: 250, perTry: 100 },
      attempt: s.attempt,
    });
    await clock.advance(10_000);
    const r = await run.result;
    expect(r.flags).toEqual(['UT']);
    expect(r.outcome).toEqual({ kind: 'timeout' });
    // Attempts started at 0, ~100+, ~200+; none at or after the 250 ms deadline.
    expect(s.calls.length).toBeGreaterThanOrEqual(2);
    for (const c of s.calls) {
      expect(c.at).toBeLessThan(250);
      expect(c.signal.aborted).toBe(true);
    }
    expect(r.attempts).toBe(s.calls.length);
    expect(clock.timers.size).toBe(0);
  });

  it('the overall timeout ends a back-off without another attempt', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(429, { 'retry-after': '10' }), response(200)]);
    const policy = compileRetryPolicy(
      retryPolicy({
        retryOn: ['retriable-status-codes'],
        retriableStatusCodes: [429],
        rateLimitedRetryBackOff: { resetHeaders: [{ name: 'retry-after', format: 'SECONDS' }], maxInterval: 300_000 },
      }),
    );
    const run = start(clock, { policy, timeouts: { overall: 1000, perTry: undefined }, attempt: s.attempt });
    await clock.advance(60_000);
    expect(await run.result).toMatchObject({ attempts: 1, flags: ['UT'], outcome: { kind: 'timeout' } });
    expect(s.calls).toHaveLength(1);
  });

  it('rate-limited back-off from Retry-After seconds: [2 s, 3 s)', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(503, { 'retry-after': '2' }), response(200)]);
    const policy = policy5xx({ rateLimitedRetryBackOff: { resetHeaders: [{ name: 'retry-after', format: 'SECONDS' }], maxInterval: 300_000 } });
    const run = start(clock, { policy, attempt: s.attempt });
    await flush();
    const delay = clock.requested[1]!;
    expect(delay).toBeGreaterThanOrEqual(2000);
    expect(delay).toBeLessThan(3000);
    await clock.advance(1999);
    expect(s.calls).toHaveLength(1);
    await clock.advance(1001);
    expect(await run.result).toMatchObject({ attempts: 2, flags: [] });
  });

  it('rate-limited back-off from a Unix timestamp, and the exponential fallback', async () => {
    // A clock with no wallNow() (this one) is read with now() for the date.
    const start0 = 1_700_000_000_000;
    const clock = new ManualClock(start0);
    const s = script(clock, [
      response(503, { 'x-ratelimit-reset': String(start0 / 1000 + 30) }),
      response(503, { 'x-ratelimit-reset': 'soon' }),
      response(200),
    ]);
    const policy = policy5xx({
      numRetries: 2,
      rateLimitedRetryBackOff: { resetHeaders: [{ name: 'x-ratelimit-reset', format: 'UNIX_TIMESTAMP' }], maxInterval: 60_000 },
    });
    const run = start(clock, { policy, timeouts: { overall: 120_000, perTry: undefined }, attempt: s.attempt });
    await clock.advance(100_000);
    expect(await run.result).toMatchObject({ attempts: 3, flags: [] });
    const [, first, second] = clock.requested;
    expect(first).toBeGreaterThanOrEqual(30_000);
    expect(first).toBeLessThan(45_000);
    // The unparsable header falls back to the first exponential draw.
    expect(second).toBeLessThan(25);
  });

  it('rate-limited back-off from a Unix timestamp reads the wall clock, not the monotonic now()', async () => {
    // now() is monotonic and far from the date here; only wallNow() gives the epoch seconds
    // that x-ratelimit-reset is compared with.
    const wall0 = 1_700_000_000_000;
    const clock = new ManualClock(5_000, wall0);
    const s = script(clock, [response(503, { 'x-ratelimit-reset': String(wall0 / 1000 + 30) }), response(200)]);
    const policy = policy5xx({
      rateLimitedRetryBackOff: { resetHeaders: [{ name: 'x-ratelimit-reset', format: 'UNIX_TIMESTAMP' }], maxInterval: 60_000 },
    });
    const run = start(clock, { policy, timeouts: { overall: 120_000, perTry: undefined }, attempt: s.attempt });
    await clock.advance(100_000);
    expect(await run.result).toMatchObject({ attempts: 2, flags: [] });
    const [, delay] = clock.requested;
    expect(delay).toBeGreaterThanOrEqual(30_000);
    expect(delay).toBeLessThan(45_000);
  });

  it('previous_hosts: later attempts exclude the hosts already tried', async () => {
    const clock = new ManualClock();
    const s = script(clock, [response(503, {}, 'a:80'), response(503, {}, 'b:80'), response(200, {}, 'c:80')]);
    const policy = policy5xx({ numRetries: 2, retryHostPredicates: [PREVIOUS_HOSTS_PREDICATE], hostSelectionRetryMaxAttempts: 3 });
    const run = start(clock, { policy, attempt: s.attempt });
    await clock.advance(1000);
    expect(await run.result).toMatchObject({ attempts: 3 });
    expect(s.calls.map((c) => [...c.exclude])).toEqual([[], ['a:80'], ['a:80', 'b:80']]);
    // Without the predicate nothing is excluded.
    const c2 = new ManualClock();
    const s2 = script(c2, [response(503, {}, 'a:80'), response(200, {}, 'a:80')]);
    const run2 = start(c2, { policy: policy5xx(), attempt: s2.attempt });
    await c2.advance(1000);
    await run2.result;
    expect(s2.calls.map((c) => c.exclude.size)).toEqual([0, 0]);
  });

  it('previous_hosts: a host picked through hosts.select counts even when its attempt times out', async () => {
    const clock = new ManualClock();
    const all = ['a:80', 'b:80'].map((key) => ({ key }));
    const picked: string[] = [];
    const policy = policy5xx({ retryHostPredicates: [PREVIOUS_HOSTS_PREDICATE] });
    const run = start(clock, {
      policy,
      timeouts: { overall: 1000, perTry: 100 },
      attempt: (n, signal, _exclude, hosts) => {
        const h = hosts.select(({ exclude }) => all.find((x) => !exclude?.has(x.key)));
        picked.push(h!.key);
        if (n === 2) return Promise.resolve(response(200));
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
    });
    await clock.advance(200);
    expect(await run.result).toMatchObject({ attempts: 2, outcome: { status: 200 } });
    expect(picked).toEqual(['a:80', 'b:80']);
  });

  it('host selection re-picks a rejected host up to the limit, then takes the last', () => {
    const hosts = ['a', 'b', 'c'].map((key) => ({ key }));
    const sel = new RetryHostSelector(true, 2);
    expect(sel.maxPicks).toBe(3);
    sel.attempted('a');
    sel.attempted('b');
    // A picker honouring exclude.
    expect(sel.select(({ exclude }) => hosts.find((h) => !exclude?.has(h.key)))?.key).toBe('c');
    // Every host excluded: pick without exclusions.
    sel.attempted('c');
    expect(sel.select(({ exclude }) => hosts.find((h) => !exclude?.has(h.key)) ?? (exclude?.size ? undefined : hosts[0]))?.key).toBe('a');
    // A picker ignoring exclude: picked maxPicks times, the last kept.
    const seq = ['a', 'b', 'a', 'c'];
    let i = 0;
    const ignoring = () => ({ key: seq[i++]! });
    const sel2 = new RetryHostSelector(true, 2);
    sel2.attempted('a');
    sel2.attempted('b');
    expect(sel2.select(ignoring)!.key).toBe('a');
    expect(i).toBe(3);
    // Default host_selection_retry_max_attempts (0 in the resource) means one re-pick.
    expect(new RetryHostSelector(true, 0).maxPicks).toBe(2);
  });

  it('circuit-breaker admission: a refused retry ends with UO; admitted retries are counted while active', async () => {
    const clock = new ManualClock();
    const events: string[] = [];
    let allow = 1;
    const admission: RetryAdmission = {
      canRetry: () => allow-- > 0,
      retryStarted: () => events.push('start'),
      retryFinished: () => events.push('finish'),
    };
    const s = script(clock, [response(503), response(503), response(200)]);
    const run = start(clock, { policy: policy5xx({ numRetries: 5 }), attempt: s.attempt, admission });
    await clock.advance(1000);
    const r = await run.result;
    expect(r).toMatchObject({ attempts: 2, flags: ['UO'], outcome: { status: 503 } });
    expect(events).toEqual(['start', 'finish']);
  });

  it('an attempt that settles after its per-try timeout is discarded', async () => {
    const clock = new ManualClock();
    let late: ((o: Outcome) => void) | undefined;
    const discarded: Outcome[] = [];
    const lateResponse = response(200);
    const run = start(clock, {
      policy: policy5xx(),
      timeouts: { overall: 1000, perTry: 50 },
      attempt: (n) => (n === 1 ? new Promise<Outcome>((resolve) => (late = resolve)) : Promise.resolve(response(201))),
      discard: (o) => discarded.push(o),
    });
    await clock.advance(50);
    late?.(lateResponse);
    await clock.advance(100);
    expect(await run.result).toMatchObject({ attempts: 2, outcome: { status: 201 } });
    expect(discarded).toEqual([lateResponse]);
  });

  it('the caller aborting cancels the attempt and rejects', async () => {
    const clock = new ManualClock();
    const s = script(clock, ['hang']);
    const caller = new AbortController();
    const run = start(clock, { policy: policy5xx(), attempt: s.attempt, signal: caller.signal });
    await flush();
    const reason = new Error('downstream gone');
    caller.abort(reason);
    await expect(run.result).rejects.toBe(reason);
    expect(s.calls[0]!.signal.aborted).toBe(true);
    expect(clock.timers.size).toBe(0);
  });

  it('an attempt that throws rejects the run', async () => {
    const clock = new ManualClock();
    const boom = new Error('bug');
    await expect(start(clock, { policy: policy5xx(), attempt: () => Promise.reject(boom) }).result).rejects.toBe(boom);
    expect(clock.timers.size).toBe(0);
  });
});

describe('retryAdmissionFrom', () => {
  it('holds the breaker retry resource while a retry is active and overflows at max_retries', async () => {
    const t = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 1, retryBudget: undefined, trackRemaining: false, maxConnectionPools: undefined };
    const breaker = new ClusterCircuitBreaker({ default: t, high: t });
    const admission = () => retryAdmissionFrom(() => breaker.tryAcquire('retry'));
    const clock = new ManualClock();
    // Two requests at once: the first holds the only retry; the second overflows (UO).
    const a = script(clock, [response(503), 'hang']);
    const b = script(clock, [response(503)]);
    const runA = start(clock, { policy: policy5xx(), timeouts: { overall: 1000, perTry: undefined }, attempt: a.attempt, admission: admission() });
    await flush();
    expect(breaker.active('retry')).toBe(1);
    const rb = await start(clock, { policy: policy5xx(), attempt: b.attempt, admission: admission() }).result;
    expect(rb).toMatchObject({ attempts: 1, flags: ['UO'] });
    await clock.advance(1000);
    expect((await runA.result).flags).toEqual(['UT']);
    expect(breaker.active('retry')).toBe(0);
  });
});

describe('requestClock', () => {
  it('runs a real retry loop end to end with zero back-off bounds', async () => {
    const { requestClock } = await import('../src/retry-loop.js');
    const outcomes = [response(503), response(200)];
    const r = await runWithRetries({
      policy: compileRetryPolicy(retryPolicy({ retryOn: ['5xx'], retryBackOff: { baseInterval: 1, maxInterval: 1 } })),
      request: request(),
      timeouts: { overall: 5000, perTry: undefined },
      clock: requestClock,
      random: seededRandom(1),
      attempt: (n) => Promise.resolve(outcomes[n - 1]!),
    });
    expect(r).toMatchObject({ attempts: 2, flags: [], outcome: { status: 200 } });
  });
});
