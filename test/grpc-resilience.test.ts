// @meshlet/grpc resilience per the gRFCs, through the real control plane to real grpc-js
// backends: timeouts (A31: max_stream_duration, grpc_timeout_header_max), retries (A44:
// gRPC retry_on codes, attempts capped at 5, retry_back_off as the back-off between attempts),
// fault injection (A33: grpc_status, mapped http_status, header-controlled abort, delay,
// fractional percentages, max_active_faults) and circuit breaking (A32: max_requests, over it
// UNAVAILABLE with UO).
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { ECHO_SERVICE } from './helpers/grpc-echo.js';
import { edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'resilience.grpc.test:8080';
const HCM_TARGET = 'hcm-timeout.grpc.test:8080';
const F = 'outbound|8080|flaky|resilience.grpc.test';
const BRK = 'outbound|8080|breaker|resilience.grpc.test';
const DROP = 'outbound|8080|drop|resilience.grpc.test';
const TIMED = 'outbound|8080|timed|resilience.grpc.test';
const FAULT = 'envoy.filters.http.fault';
const HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ALL = { numerator: 100, denominator: 'HUNDRED' };

function caseRoute(name: string, action: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: name } }] },
    route: { cluster: F, ...action },
    ...extra,
  };
}

function fault(config: Record<string, unknown>): Record<string, unknown> {
  return { typed_per_filter_config: { [FAULT]: { '@type': HTTP_FAULT, ...config } } };
}

/** A grpc-js backend that fails every attempt with UNAVAILABLE and records when each attempt of a call id arrived. */
interface TimedBackend {
  readonly port: number;
  /** performance.now() of each attempt, by x-call-id. */
  readonly arrivals: Map<string, number[]>;
  close(): Promise<void>;
}

async function startTimedBackend(): Promise<TimedBackend> {
  const server = new grpc.Server();
  const arrivals = new Map<string, number[]>();
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const at = performance.now();
      const id = String(call.metadata.get('x-call-id')[0]);
      arrivals.set(id, [...(arrivals.get(id) ?? []), at]);
      cb({ code: grpc.status.UNAVAILABLE, details: `timed fails attempt ${arrivals.get(id)!.length}` } as grpc.ServiceError);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, arrivals, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

/** The time between consecutive attempts. */
function gaps(arrivals: readonly number[]): number[] {
  return arrivals.slice(1).map((t, i) => t - arrivals[i]!);
}

// grpc-js (1.14) waits jitter × min(initialBackoff × 2^(n−1), maxBackoff) before the n-th
// retry, jitter uniform in [0.8, 1.2] (gRFC A6's ±20 %). A gap at the backend is that wait plus
// one loopback attempt: never below 0.8 × the cap (less a timer's millisecond), and above
// 1.2 × the cap only by scheduling latency, for which SLACK_MS leaves room on a loaded machine.
const SLACK_MS = 200;
function expectBackoffs(measured: readonly number[], caps: readonly number[]): void {
  expect(measured).toHaveLength(caps.length);
  measured.forEach((g, i) => {
    expect(g, `gap ${i + 1} (cap ${caps[i]} ms)`).toBeGreaterThanOrEqual(0.8 * caps[i]! - 3);
    expect(g, `gap ${i + 1} (cap ${caps[i]} ms)`).toBeLessThanOrEqual(1.2 * caps[i]! + SLACK_MS);
  });
}

/** What `start()` resolves to, and how many milliseconds that took. */
async function timed<T>(start: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await start();
  return [r, performance.now() - t0];
}

describe('@meshlet/grpc resilience', () => {
  let env: GrpcMeshEnv;
  let flaky: BehaviorBackend;
  let held: BehaviorBackend;
  let timedBackend: TimedBackend;
  let client: EchoCaller;
  let callId = 0;

  beforeAll(async () => {
    [flaky, held, timedBackend] = await Promise.all([startBehaviorBackend('flaky'), startBehaviorBackend('held'), startTimedBackend()]);
    env = await startGrpcMesh({
      [TYPE_URLS.listener]: [
        listener(TARGET, 'rc-resilience', {
          http_filters: [
            { name: FAULT, typed_config: { '@type': HTTP_FAULT } },
            { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
          ],
        }),
        // A31: with no route-level limit, the Listener's HCM max_stream_duration applies.
        listener(HCM_TARGET, 'rc-hcm', { common_http_protocol_options: { max_stream_duration: '0.15s' } }),
      ],
      [TYPE_URLS.routeConfiguration]: [
        {
          '@type': TYPE_URLS.routeConfiguration,
          name: 'rc-hcm',
          virtual_hosts: [{ name: 'hcm', domains: [HCM_TARGET], routes: [{ match: { prefix: '' }, route: { cluster: F } }] }],
        },
        {
          '@type': TYPE_URLS.routeConfiguration,
          name: 'rc-resilience',
          virtual_hosts: [
            {
              name: 'resilience',
              domains: [TARGET],
              routes: [
                caseRoute('timeout', { max_stream_duration: { max_stream_duration: '0.2s' } }),
                caseRoute('timeout-header-max', { max_stream_duration: { max_stream_duration: '5s', grpc_timeout_header_max: '0.4s' } }),
                caseRoute('timeout-header-max-above', { max_stream_duration: { max_stream_duration: '0.1s', grpc_timeout_header_max: '0.5s' } }),
                caseRoute('retry', { retry_policy: { retry_on: 'unavailable,cancelled', num_retries: 2, retry_back_off: { base_interval: '0.005s', max_interval: '0.01s' } } }),
                caseRoute('retry-many', { retry_policy: { retry_on: 'unavailable', num_retries: 10, retry_back_off: { base_interval: '0.001s' } } }),
                caseRoute('retry-other', { retry_policy: { retry_on: 'cancelled,5xx', num_retries: 3 } }),
                caseRoute('retry-backoff', {
                  cluster: TIMED,
                  retry_policy: { retry_on: 'unavailable', num_retries: 3, retry_back_off: { base_interval: '0.2s', max_interval: '0.3s' } },
                }),
                caseRoute('retry-default-backoff', { cluster: TIMED, retry_policy: { retry_on: 'unavailable', num_retries: 6 } }),
                caseRoute('fault-grpc', {}, fault({ abort: { grpc_status: 7, percentage: ALL } })),
                caseRoute('fault-http', {}, fault({ abort: { http_status: 503, percentage: ALL } })),
                caseRoute('fault-http-404', {}, fault({ abort: { http_status: 404, percentage: ALL } })),
                caseRoute('fault-header', {}, fault({ abort: { header_abort: {}, percentage: ALL } })),
                caseRoute('fault-delay', {}, fault({ delay: { fixed_delay: '0.3s', percentage: ALL }, max_active_faults: 1 })),
                caseRoute('fault-abort-quarter', {}, fault({ abort: { grpc_status: 7, percentage: { numerator: 25, denominator: 'HUNDRED' } } })),
                caseRoute('fault-delay-fraction', {}, fault({ delay: { fixed_delay: '0.5s', percentage: { numerator: 250_000, denominator: 'MILLION' } } })),
                caseRoute('fault-retry', { retry_policy: { retry_on: 'unavailable', num_retries: 3 } }, fault({ abort: { grpc_status: 14, percentage: ALL } })),
                { name: 'breaker', match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: 'breaker' } }] }, route: { cluster: BRK } },
                { name: 'drop', match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: 'drop' } }] }, route: { cluster: DROP } },
                { name: 'default', match: { prefix: '' }, route: { cluster: F } },
              ],
            },
          ],
        },
      ],
      [TYPE_URLS.cluster]: [
        edsCluster(F),
        edsCluster(BRK, { circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_requests: 2 }] } }),
        edsCluster(DROP),
        edsCluster(TIMED),
      ],
      [TYPE_URLS.clusterLoadAssignment]: [
        endpoints(F, [['127.0.0.1', flaky.port]]),
        endpoints(BRK, [['127.0.0.1', held.port]]),
        endpoints(DROP, [['127.0.0.1', flaky.port]], { policy: { drop_overloads: [{ category: 'shed', drop_percentage: ALL }] } }),
        endpoints(TIMED, [['127.0.0.1', timedBackend.port]]),
      ],
    });
    client = env.client(TARGET);
    await client.names(1);
  });

  afterAll(async () => {
    await env?.close();
    await Promise.all([flaky, held, timedBackend].map((b) => b?.close()));
  });

  const md = (c: string, extra: Record<string, string> = {}): Record<string, string> => ({ 'x-case': c, ...extra });

  it('limits the deadline by max_stream_duration (A31)', async () => {
    const before = flaky.deadlinesMs.length;
    const r = await client.call('t', { metadata: md('timeout', { 'x-delay-ms': '3000' }), deadlineMs: 30_000 });
    expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The backend saw the route's limit, not the caller's 30 s.
    expect(flaky.deadlinesMs[before]).toBeLessThanOrEqual(200);
  });

  it("falls back to the Listener's max_stream_duration (A31)", async () => {
    const hcm = env.client(HCM_TARGET);
    const before = flaky.deadlinesMs.length;
    const r = await hcm.call('t', { metadata: { 'x-delay-ms': '3000' }, deadlineMs: 30_000 });
    expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(flaky.deadlinesMs[before]).toBeLessThanOrEqual(150);
  });

  it('uses grpc_timeout_header_max over max_stream_duration when set (A31)', async () => {
    const before = flaky.deadlinesMs.length;
    const r = await client.call('t', { metadata: md('timeout-header-max', { 'x-delay-ms': '3000' }), deadlineMs: 30_000 });
    expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(flaky.deadlinesMs[before]).toBeLessThanOrEqual(400);
    // A shorter application deadline stays in force: the backend answers after 250 ms, inside
    // the 400 ms cap, and still the call ends at the application's 100 ms.
    const [short, elapsed] = await timed(() => client.call('t', { metadata: md('timeout-header-max', { 'x-delay-ms': '250' }), deadlineMs: 100 }));
    expect(short.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(flaky.deadlinesMs[before + 1]).toBeLessThanOrEqual(100);
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1000);
  });

  it('lets a grpc_timeout_header_max above max_stream_duration replace it, not the smaller of the two (A31)', async () => {
    // max_stream_duration 0.1 s, grpc_timeout_header_max 0.5 s: the limit is 0.5 s, so a call
    // the backend answers after 250 ms succeeds.
    const before = flaky.deadlinesMs.length;
    const r = await client.call('t', { metadata: md('timeout-header-max-above', { 'x-delay-ms': '250' }), deadlineMs: 30_000 });
    expect(r).toMatchObject({ ok: true, reply: 'flaky:t' });
    expect(flaky.deadlinesMs[before]).toBeGreaterThan(250);
    expect(flaky.deadlinesMs[before]).toBeLessThanOrEqual(500);
  });

  it('retries the gRPC codes retry_on names, up to num_retries (A44)', async () => {
    const id = `r${callId++}`;
    const ok = await client.call('x', { metadata: md('retry', { 'x-call-id': id, 'x-fail-times': '2' }) });
    expect(ok).toMatchObject({ ok: true, reply: 'flaky:x' });
    expect(flaky.attempts.get(id)).toBe(3);
    const id2 = `r${callId++}`;
    const failed = await client.call('x', { metadata: md('retry', { 'x-call-id': id2, 'x-fail-times': '5' }) });
    expect(failed.code).toBe(grpc.status.UNAVAILABLE);
    expect(flaky.attempts.get(id2)).toBe(3);
  });

  it('caps attempts at 5 (A44) and retries only the listed codes', async () => {
    const id = `r${callId++}`;
    const failed = await client.call('x', { metadata: md('retry-many', { 'x-call-id': id, 'x-fail-times': '20' }) });
    expect(failed.code).toBe(grpc.status.UNAVAILABLE);
    expect(flaky.attempts.get(id)).toBe(5);
    const id2 = `r${callId++}`;
    const notRetried = await client.call('x', { metadata: md('retry-other', { 'x-call-id': id2, 'x-fail-times': '1' }) });
    expect(notRetried.code).toBe(grpc.status.UNAVAILABLE);
    expect(flaky.attempts.get(id2)).toBe(1);
    const id3 = `r${callId++}`;
    const cancelled = await client.call('x', { metadata: md('retry-other', { 'x-call-id': id3, 'x-fail-times': '1', 'x-fail-code': String(grpc.status.CANCELLED) }) });
    expect(cancelled.ok).toBe(true);
    expect(flaky.attempts.get(id3)).toBe(2);
  });

  it("waits retry_back_off's base_interval, doubling up to max_interval, between attempts (A44)", async () => {
    // base 200 ms, max 300 ms, 4 attempts: the back-offs are capped at 200, 300 (not 400), 300 ms.
    const id = `b${callId++}`;
    const r = await client.call('x', { metadata: md('retry-backoff', { 'x-call-id': id }) });
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expectBackoffs(gaps(timedBackend.arrivals.get(id)!), [200, 300, 300]);
  });

  it('backs off 25 ms doubling up to 250 ms (10 × base) when the retry policy sets no retry_back_off (A44)', async () => {
    // grpc-js's own cap of 5 attempts raised to 7, so the back-off reaches the default max:
    // 25, 50, 100, 200, then 250 (not 400) and 250 (not 800).
    const many = env.client(TARGET, { 'grpc-node.retry_max_attempts_limit': 7 });
    const id = `b${callId++}`;
    const r = await many.call('x', { metadata: md('retry-default-backoff', { 'x-call-id': id }) });
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expectBackoffs(gaps(timedBackend.arrivals.get(id)!), [25, 50, 100, 200, 250, 250]);
  });

  it('aborts with the fault filter: grpc_status, http_status mapped, header-controlled (A33)', async () => {
    const before = flaky.calls;
    const g = await client.call('f', { metadata: md('fault-grpc') });
    expect(g.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(g.details).toBe('FI MESHLET_FAULT_INJECTED: fault filter abort');
    expect((await client.call('f', { metadata: md('fault-http') })).code).toBe(grpc.status.UNAVAILABLE);
    expect((await client.call('f', { metadata: md('fault-http-404') })).code).toBe(grpc.status.UNIMPLEMENTED);
    const h = await client.call('f', { metadata: md('fault-header', { 'x-envoy-fault-abort-grpc-request': '10' }) });
    expect(h.code).toBe(grpc.status.ABORTED);
    const hh = await client.call('f', { metadata: md('fault-header', { 'x-envoy-fault-abort-request': '429' }) });
    expect(hh.code).toBe(grpc.status.UNAVAILABLE);
    // header_abort with no header: no fault.
    expect((await client.call('f', { metadata: md('fault-header') })).ok).toBe(true);
    expect(flaky.calls).toBe(before + 1);
  });

  it('does not retry an injected abort (the call never reaches a load balancer)', async () => {
    const before = flaky.calls;
    const r = await client.call('f', { metadata: md('fault-retry') });
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toContain('FI');
    expect(flaky.calls).toBe(before);
  });

  it('delays, within max_active_faults (A33)', async () => {
    const gauge = env.mesh.activeFaults(`${TARGET}/${FAULT}`);
    const overflows = gauge.overflows;
    const first = timed(() => client.call('d1', { metadata: md('fault-delay') }));
    const second = timed(() => client.call('d2', { metadata: md('fault-delay') }));
    // Both were decided at once: the first holds the only slot, the second goes undelayed.
    expect(gauge.active).toBe(1);
    expect(gauge.overflows).toBe(overflows + 1);
    const [secondResult] = await second;
    expect(secondResult.ok).toBe(true);
    expect(gauge.active).toBe(1); // the first is still being delayed
    const [firstResult, firstElapsed] = await first;
    expect(firstResult.ok).toBe(true);
    // The fixed_delay is 0.3 s (less a timer's millisecond).
    expect(firstElapsed).toBeGreaterThanOrEqual(297);
    expect(firstElapsed).toBeLessThan(5000);
    expect(gauge.active).toBe(0);
  });

  it('aborts and delays the configured fraction of calls (A33, FractionalPercent)', async () => {
    // Wide binomial bounds: each fails with probability below 1e-7.
    // 25/HUNDRED abort over 400 calls: mean 100, σ ≈ 8.7; [50, 150] is ±5.8σ.
    const before = flaky.calls;
    const aborts = await Promise.all(Array.from({ length: 400 }, (_, i) => client.call(`q${i}`, { metadata: md('fault-abort-quarter') })));
    const aborted = aborts.filter((r) => r.code === grpc.status.PERMISSION_DENIED && r.details.startsWith('FI ')).length;
    const passed = aborts.filter((r) => r.ok).length;
    expect(aborted + passed).toBe(400);
    expect(aborted).toBeGreaterThanOrEqual(50);
    expect(aborted).toBeLessThanOrEqual(150);
    expect(flaky.calls - before).toBe(passed); // an aborted call never left

    // 250000/MILLION delay (25 %) of 0.5 s over 100 calls: mean 25, σ ≈ 4.3; [5, 50]. The
    // active-fault gauge counts the calls given a delay (decided as each call starts, so all
    // of them by the end of this loop); that many calls took the delay, and no other.
    const gauge = env.mesh.activeFaults(`${TARGET}/${FAULT}`);
    expect(gauge.active).toBe(0);
    const calls = Array.from({ length: 100 }, (_, i) => timed(() => client.call(`p${i}`, { metadata: md('fault-delay-fraction') })));
    const delayed = gauge.active;
    const results = await Promise.all(calls);
    expect(results.every(([r]) => r.ok)).toBe(true);
    expect(delayed).toBeGreaterThanOrEqual(5);
    expect(delayed).toBeLessThanOrEqual(50);
    const elapsed = results.map(([, ms]) => ms).sort((a, b) => b - a);
    expect(elapsed[delayed - 1]).toBeGreaterThanOrEqual(497); // the `delayed` slowest waited 0.5 s
    // The others did not (100 loopback calls take about 0.1 s).
    expect(elapsed[delayed]).toBeLessThan(497);
    expect(gauge.active).toBe(0);
  });

  it('drops calls of an EDS drop_overloads category with UNAVAILABLE and DO (A27)', async () => {
    const id = `d${callId++}`;
    const r = await client.call('x', { metadata: md('drop', { 'x-call-id': id }) });
    expect(r.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.details).toMatch(/DO MESHLET_DROP_OVERLOAD: .*shed/);
    expect(flaky.attempts.get(id)).toBeUndefined(); // never sent
  });

  it('drops calls over max_requests with UNAVAILABLE and UO (A32)', async () => {
    const a = client.call('h1', { metadata: md('breaker', { 'x-hold': '1' }) });
    const b = client.call('h2', { metadata: md('breaker', { 'x-hold': '1' }) });
    await held.waitInFlight(2);
    const over = await client.call('h3', { metadata: md('breaker') });
    expect(over.code).toBe(grpc.status.UNAVAILABLE);
    expect(over.details).toBe(`UO MESHLET_OVERFLOW: cluster "${BRK}": circuit breaker max_requests (2) reached`);
    held.release();
    expect((await a).ok && (await b).ok).toBe(true);
    expect((await client.call('h4', { metadata: md('breaker') })).reply).toBe('held:h4');
    expect(held.calls).toBe(3);
  });

  it('admits no more than max_requests of a burst picked at once (A32)', async () => {
    const before = held.calls;
    const burst = Array.from({ length: 10 }, (_, i) => client.call(`b${i}`, { metadata: md('breaker', { 'x-hold': '1' }) }));
    await held.waitInFlight(2);
    const settled: Array<{ ok: boolean; details: string }> = [];
    for (const p of burst) void p.then((r) => settled.push(r));
    const deadline = Date.now() + 5000;
    while (settled.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(settled).toHaveLength(8);
    expect(settled.every((r) => !r.ok && r.details.startsWith('UO MESHLET_OVERFLOW'))).toBe(true);
    expect(held.calls - before).toBe(2);
    held.release();
    const all = await Promise.all(burst);
    expect(all.filter((r) => r.ok)).toHaveLength(2);
    // Every slot was given back.
    expect((await client.call('after', { metadata: md('breaker') })).ok).toBe(true);
    expect(env.mesh.breakers.peek(BRK)?.active('request')).toBe(0);
  });
});
