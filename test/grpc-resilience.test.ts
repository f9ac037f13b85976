// @meshlet/grpc resilience per the gRFCs, through the real control plane to real grpc-js
// backends: timeouts (A31: max_stream_duration, grpc_timeout_header_max), retries (A44:
// gRPC retry_on codes, attempts capped at 5), fault injection (A33: grpc_status, mapped
// http_status, header-controlled abort, delay, max_active_faults) and circuit breaking
// (A32: max_requests, over it UNAVAILABLE with UO).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'resilience.grpc.test:8080';
const HCM_TARGET = 'hcm-timeout.grpc.test:8080';
const F = 'outbound|8080|flaky|resilience.grpc.test';
const BRK = 'outbound|8080|breaker|resilience.grpc.test';
const DROP = 'outbound|8080|drop|resilience.grpc.test';
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

describe('@meshlet/grpc resilience', () => {
  let env: GrpcMeshEnv;
  let flaky: BehaviorBackend;
  let held: BehaviorBackend;
  let client: EchoCaller;
  let callId = 0;

  beforeAll(async () => {
    [flaky, held] = await Promise.all([startBehaviorBackend('flaky'), startBehaviorBackend('held')]);
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
                caseRoute('timeout-header-max', { max_stream_duration: { max_stream_duration: '5s', grpc_timeout_header_max: '0.1s' } }),
                caseRoute('retry', { retry_policy: { retry_on: 'unavailable,cancelled', num_retries: 2, retry_back_off: { base_interval: '0.005s', max_interval: '0.01s' } } }),
                caseRoute('retry-many', { retry_policy: { retry_on: 'unavailable', num_retries: 10, retry_back_off: { base_interval: '0.001s' } } }),
                caseRoute('retry-other', { retry_policy: { retry_on: 'cancelled,5xx', num_retries: 3 } }),
                caseRoute('fault-grpc', {}, fault({ abort: { grpc_status: 7, percentage: ALL } })),
                caseRoute('fault-http', {}, fault({ abort: { http_status: 503, percentage: ALL } })),
                caseRoute('fault-http-404', {}, fault({ abort: { http_status: 404, percentage: ALL } })),
                caseRoute('fault-header', {}, fault({ abort: { header_abort: {}, percentage: ALL } })),
                caseRoute('fault-delay', {}, fault({ delay: { fixed_delay: '0.3s', percentage: ALL }, max_active_faults: 1 })),
                caseRoute('fault-retry', { retry_policy: { retry_on: 'unavailable', num_retries: 3 } }, fault({ abort: { grpc_status: 14, percentage: ALL } })),
                { name: 'breaker', match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: 'breaker' } }] }, route: { cluster: BRK } },
                { name: 'drop', match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: 'drop' } }] }, route: { cluster: DROP } },
                { name: 'default', match: { prefix: '' }, route: { cluster: F } },
              ],
            },
          ],
        },
      ],
      [TYPE_URLS.cluster]: [edsCluster(F), edsCluster(BRK, { circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_requests: 2 }] } }), edsCluster(DROP)],
      [TYPE_URLS.clusterLoadAssignment]: [
        endpoints(F, [['127.0.0.1', flaky.port]]),
        endpoints(BRK, [['127.0.0.1', held.port]]),
        endpoints(DROP, [['127.0.0.1', flaky.port]], { policy: { drop_overloads: [{ category: 'shed', drop_percentage: ALL }] } }),
      ],
    });
    client = env.client(TARGET);
    await client.names(1);
  });

  afterAll(async () => {
    await env?.close();
    await Promise.all([flaky, held].map((b) => b?.close()));
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
    expect(flaky.deadlinesMs[before]).toBeLessThanOrEqual(100);
    // A shorter application deadline stays in force.
    const short = await client.call('t', { metadata: md('timeout-header-max'), deadlineMs: 20_000 });
    expect(short.ok).toBe(true);
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
    const first = client.call('d1', { metadata: md('fault-delay') });
    const second = client.call('d2', { metadata: md('fault-delay') });
    // Both were decided at once: the first holds the only slot, the second goes undelayed.
    expect(gauge.active).toBe(1);
    expect(gauge.overflows).toBe(overflows + 1);
    const secondResult = await second;
    expect(secondResult.ok).toBe(true);
    expect(gauge.active).toBe(1); // the first is still being delayed
    expect((await first).ok).toBe(true);
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
