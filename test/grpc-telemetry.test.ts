// Istio telemetry of gRPC calls through @meshlet/grpc (reporter="source"): core's access log
// line and Prometheus aggregation for forwarded calls, local failures (NR), circuit breaker
// drops (UO), injected aborts (FI) and delays (DI); attempts counted per retry; the peer
// metadata header sent to the backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { startBehaviorBackend, type BehaviorBackend } from './helpers/grpc-backends.js';
import { startGrpcMesh, type EchoCaller, type GrpcMeshEnv } from './helpers/grpc-mesh.js';

const TARGET = 'telemetry.grpc.test:8080';
const C = 'outbound|8080||telemetry.grpc.test';
const FAULT = 'envoy.filters.http.fault';
const HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ALL = { numerator: 100, denominator: 'HUNDRED' };

function caseRoute(name: string, route: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, match: { prefix: '/meshlet.test.EchoService/', headers: [{ name: 'x-case', string_match: { exact: name } }] }, route, ...extra };
}

describe('@meshlet/grpc telemetry', () => {
  let env: GrpcMeshEnv;
  let backend: BehaviorBackend;
  let client: EchoCaller;
  const log: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    backend = await startBehaviorBackend('t1');
    env = await startGrpcMesh(
      {
        [TYPE_URLS.listener]: [
          listener(TARGET, 'rc-telemetry', {
            http_filters: [
              { name: FAULT, typed_config: { '@type': HTTP_FAULT } },
              { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
            ],
          }),
        ],
        [TYPE_URLS.routeConfiguration]: [
          {
            '@type': TYPE_URLS.routeConfiguration,
            name: 'rc-telemetry',
            virtual_hosts: [
              {
                name: 'telemetry',
                domains: [TARGET],
                routes: [
                  caseRoute('abort', { cluster: C }, { typed_per_filter_config: { [FAULT]: { '@type': HTTP_FAULT, abort: { grpc_status: 8, percentage: ALL } } } }),
                  caseRoute('delay', { cluster: C }, { typed_per_filter_config: { [FAULT]: { '@type': HTTP_FAULT, delay: { fixed_delay: '0.001s', percentage: ALL } } } }),
                  caseRoute('retry', { cluster: C, retry_policy: { retry_on: 'unavailable', num_retries: 2, retry_back_off: { base_interval: '0.001s' } } }),
                  { match: { prefix: '/meshlet.test.EchoService/' }, route: { cluster: C } },
                ],
              },
            ],
          },
        ],
        [TYPE_URLS.cluster]: [edsCluster(C)],
        [TYPE_URLS.clusterLoadAssignment]: [endpoints(C, [['127.0.0.1', backend.port]])],
      },
      { telemetry: { prometheus: true, accessLog: { write: (line: string) => log.push(JSON.parse(line) as Record<string, unknown>) } } },
    );
    client = env.client(TARGET);
  });

  afterAll(async () => {
    await env?.close();
    await backend?.close();
  });

  const last = (): Record<string, unknown> => log.at(-1)!;

  it('logs a forwarded call with its cluster, host, status and sizes, and sends peer metadata', async () => {
    expect((await client.call('hello')).ok).toBe(true);
    expect(last()).toMatchObject({
      reporter: 'source',
      method: 'POST',
      path: '/meshlet.test.EchoService/Echo',
      response_code: 200,
      response_flags: '-',
      grpc_status: 0,
      upstream_cluster: C,
      upstream_host: `127.0.0.1:${backend.port}`,
      authority: TARGET,
    });
    expect(last()['bytes_received']).toBeGreaterThan(0);
    expect(last()['bytes_sent']).toBeGreaterThan(0);
    // Istio's metadata exchange: the backend was told who is calling.
    expect(backend.metadata.at(-1)!.get('x-envoy-peer-metadata-id')[0]).toBeTruthy();
  });

  it('logs local failures and injected faults with their flags', async () => {
    const raw = client.client;
    await new Promise<void>((resolve) => raw.makeUnaryRequest('/other.Svc/M', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('x'), () => resolve()));
    expect(last()).toMatchObject({ response_code: 200, response_flags: 'NR', grpc_status: grpc.status.UNAVAILABLE, path: '/other.Svc/M' });
    expect((await client.call('x', { metadata: { 'x-case': 'abort' } })).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(last()).toMatchObject({ response_flags: 'FI', grpc_status: grpc.status.RESOURCE_EXHAUSTED, upstream_host: null });
    expect((await client.call('x', { metadata: { 'x-case': 'delay' } })).ok).toBe(true);
    expect(last()).toMatchObject({ response_flags: 'DI', grpc_status: 0, upstream_cluster: C });
  });

  it('counts the attempts of a retried call', async () => {
    expect((await client.call('x', { metadata: { 'x-case': 'retry', 'x-call-id': 'tr1', 'x-fail-times': '2' } })).ok).toBe(true);
    expect(last()).toMatchObject({ grpc_status: 0, upstream_request_attempt_count: 3 });
  });

  it('aggregates Istio metrics with the gRPC status', () => {
    const text = env.mesh.telemetry.prometheusText() ?? '';
    const lines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('request_protocol="grpc"'));
    expect(lines.some((l) => l.includes('grpc_response_status="0"') && l.includes('response_code="200"'))).toBe(true);
    expect(lines.some((l) => l.includes('response_flags="NR"'))).toBe(true);
    expect(lines.some((l) => l.includes('response_flags="FI"') && l.includes('grpc_response_status="8"'))).toBe(true);
  });
});
