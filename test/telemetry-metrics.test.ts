// Istio metrics through a real OpenTelemetry MeterProvider (@opentelemetry/sdk-metrics) and
// the Prometheus exporter, scraped over HTTP on loopback: names, types, label sets, values
// and bucket boundaries for calls recorded through the CallRecorder API with the outcomes a
// mesh reports (success, 5xx, FI, UO, URX, UT), and a gRPC call's message counters.
// (End-to-end calls through MeshAgent are tested where the recorder is wired in.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { createMesh, ENVOY_DEFAULT_BUCKETS, MeshTelemetry } from '@meshlet/core';
import type { ClusterResource } from '@meshlet/xds-client';
import type { NodeConfig } from '@meshlet/xds-client';
import { parseExposition, type Sample } from './helpers/prometheus-exposition.js';

const NODE: NodeConfig = {
  id: 'sidecar~127.0.0.1~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local',
  cluster: '',
  locality: { region: '', zone: '', sub_zone: '' },
  metadata: { NAMESPACE: 'bookinfo', WORKLOAD_NAME: 'productpage-v1', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'productpage', version: 'v1' } },
};

const REVIEWS = {
  name: 'outbound|9080||reviews.bookinfo.svc.cluster.local',
  metadata: {
    filterMetadata: { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }] } },
    typedFilterMetadata: {},
  },
} as unknown as ClusterResource;

describe('Istio metrics through the OpenTelemetry SDK and the Prometheus exporter', () => {
  let exporter: PrometheusExporter;
  let provider: MeterProvider;
  let scrapeServer: Server;
  let scrapeUrl: string;
  let clockMs = 0;
  let telemetry: MeshTelemetry;

  beforeAll(async () => {
    exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ readers: [exporter] });
    // The global provider, as an application's SDK setup registers it.
    metrics.setGlobalMeterProvider(provider);
    scrapeServer = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => scrapeServer.listen(0, '127.0.0.1', resolve));
    scrapeUrl = `http://127.0.0.1:${(scrapeServer.address() as AddressInfo).port}/metrics`;
    telemetry = new MeshTelemetry({ node: NODE, now: () => clockMs });
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => scrapeServer.close(() => resolve()));
    await provider.shutdown();
    metrics.disable();
  });

  async function scrape(): Promise<ReturnType<typeof parseExposition>> {
    const res = await fetch(scrapeUrl);
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  }

  /** One call as the mesh records it: route, attempts, bytes, outcome. */
  function call(o: { status: number; flags?: string; ms: number; attempts?: number; grpcStatus?: number; protocol?: 'http' | 'grpc' }): void {
    const r = telemetry.startCall({ reporter: 'source', protocol: o.protocol ?? 'http', method: 'GET', path: '/reviews/0', authority: 'reviews:9080' });
    expect(r).toBeDefined();
    const start = clockMs;
    r!.route(REVIEWS);
    for (let i = 0; i < (o.attempts ?? 1); i++) {
      r!.attempt({ key: `10.0.0.${i + 1}:9080`, endpoint: { metadata: { filterMetadata: { istio: { workload: 'reviews-v2;bookinfo;reviews;v2;Kubernetes' } }, typedFilterMetadata: {} } } });
    }
    r!.requestBytes(20);
    r!.responseBytes(1000);
    if (o.protocol === 'grpc') r!.messages(1, 1);
    clockMs = start + o.ms;
    r!.end({ status: o.status, ...(o.flags ? { flags: o.flags } : {}), ...(o.grpcStatus !== undefined ? { grpcStatus: o.grpcStatus } : {}) });
  }

  it('records nothing until a MeterProvider is registered, then picks it up on refresh', async () => {
    metrics.disable();
    const t = new MeshTelemetry({ node: NODE });
    // Active for its access log only: the provider registered below is found all the same.
    const logging = new MeshTelemetry({ node: NODE, accessLog: { write: () => {} } });
    expect(t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })).toBeUndefined();
    metrics.setGlobalMeterProvider(provider);
    // Still the old view until the next refresh (a config change, or every 1024th call).
    expect(t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })).toBeUndefined();
    let skipped = 0;
    while (!t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' }) && skipped < 2000) skipped++;
    expect(skipped).toBeLessThan(1024);
    expect(t.active).toBe(true);
    expect(t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })).toBeDefined();
    expect(new MeshTelemetry({ node: NODE }).active).toBe(true);
    for (let i = 0; i < 1100; i++) logging.startCall({ reporter: 'source', protocol: 'http', authority: 'late.test:80' })!.end({ status: 200 });
    const late = (await scrape()).samples.find((s) => s.name === 'istio_requests_total' && s.labels['destination_service'] === 'late.test');
    expect(late?.value).toBeGreaterThan(0);
  });

  it('exports Istio names, types, label sets, values and Envoy buckets for success, 5xx, FI, UO, URX, UT', async () => {
    call({ status: 200, ms: 4 });
    call({ status: 200, ms: 30 });
    call({ status: 500, ms: 8 });
    call({ status: 503, flags: 'FI', ms: 0 });
    call({ status: 503, flags: 'UO', ms: 0, attempts: 0 });
    call({ status: 503, flags: 'URX', ms: 120, attempts: 3 });
    call({ status: 504, flags: 'UT', ms: 15000 });
    const { samples, types } = await scrape();

    expect(types.get('istio_requests_total')).toBe('counter');
    expect(types.get('istio_request_duration_milliseconds')).toBe('histogram');
    expect(types.get('istio_request_bytes')).toBe('histogram');
    expect(types.get('istio_response_bytes')).toBe('histogram');

    const requests = samples.filter((s) => s.name === 'istio_requests_total' && s.labels['destination_service_name'] === 'reviews');
    const byOutcome = new Map(requests.map((s) => [`${s.labels['response_code']} ${s.labels['response_flags']}`, s.value]));
    expect(Object.fromEntries(byOutcome)).toEqual({ '200 -': 2, '500 -': 1, '503 FI': 1, '503 UO': 1, '503 URX': 1, '504 UT': 1 });

    const ok = requests.find((s) => s.labels['response_code'] === '200')!;
    const { otel_scope_name, ...istio } = ok.labels;
    expect(otel_scope_name).toBe('@meshlet/core');
    expect(istio).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'bookinfo',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'unknown',
      destination_app: 'unknown',
      destination_version: 'unknown',
      destination_service: 'reviews.bookinfo.svc.cluster.local',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
    // An overflow never reached a host: no endpoint metadata, so the peer is unknown.
    const uo = requests.find((s) => s.labels['response_flags'] === 'UO')!;
    expect(uo.labels['destination_workload']).toBe('unknown');
    expect(uo.labels['destination_canonical_revision']).toBe('latest');

    // Duration histogram: Envoy's buckets, cumulative counts, sum and count.
    const reviews = (s: Sample) => s.labels['destination_service_name'] === 'reviews';
    const okBuckets = samples.filter((s) => s.name === 'istio_request_duration_milliseconds_bucket' && s.labels['response_code'] === '200' && reviews(s));
    expect(okBuckets.map((s) => s.labels['le'])).toEqual([...ENVOY_DEFAULT_BUCKETS.map(String), '+Inf']);
    const le = (v: string) => okBuckets.find((s) => s.labels['le'] === v)!.value;
    expect([le('1'), le('5'), le('25'), le('50'), le('+Inf')]).toEqual([0, 1, 1, 2, 2]);
    const sumOf = (name: string, code: string) => samples.find((s) => s.name === name && s.labels['response_code'] === code && reviews(s))!.value;
    expect(sumOf('istio_request_duration_milliseconds_sum', '200')).toBe(34);
    expect(sumOf('istio_request_duration_milliseconds_count', '200')).toBe(2);
    expect(sumOf('istio_request_duration_milliseconds_sum', '504')).toBe(15000);
    const ut = samples.filter((s) => s.name === 'istio_request_duration_milliseconds_bucket' && s.labels['response_code'] === '504');
    expect(ut.find((s) => s.labels['le'] === '10000')!.value).toBe(0);
    expect(ut.find((s) => s.labels['le'] === '30000')!.value).toBe(1);
    expect(sumOf('istio_request_bytes_sum', '200')).toBe(40);
    expect(sumOf('istio_response_bytes_sum', '200')).toBe(2000);
    const respBuckets = samples.filter((s) => s.name === 'istio_response_bytes_bucket' && s.labels['response_code'] === '200' && reviews(s));
    expect(respBuckets.map((s) => s.labels['le'])).toEqual([...ENVOY_DEFAULT_BUCKETS.map(String), '+Inf']);
    // No label carries the path.
    expect(samples.some((s) => Object.values(s.labels).some((v) => v.includes('/reviews/0')))).toBe(false);
  });

  it('counts gRPC messages and labels grpc_response_status', async () => {
    call({ protocol: 'grpc', status: 200, grpcStatus: 0, ms: 2 });
    call({ protocol: 'grpc', status: 200, grpcStatus: 14, ms: 2 });
    const { samples, types } = await scrape();
    expect(types.get('istio_request_messages_total')).toBe('counter');
    expect(types.get('istio_response_messages_total')).toBe('counter');
    const grpc = samples.filter((s) => s.name === 'istio_requests_total' && s.labels['request_protocol'] === 'grpc');
    expect(grpc.map((s) => s.labels['grpc_response_status']).sort()).toEqual(['0', '14']);
    const sent = samples.filter((s) => s.name === 'istio_request_messages_total');
    expect(sent.map((s) => s.value)).toEqual([1, 1]);
    expect(sent.every((s) => s.labels['request_protocol'] === 'grpc')).toBe(true);
  });

  it('the in-process Prometheus text says exactly what the SDK\'s exporter says for the same calls', async () => {
    const own = new PrometheusExporter({ preventServerStart: true });
    const ownProvider = new MeterProvider({ readers: [own] });
    let now = 0;
    const both = new MeshTelemetry({ node: NODE, meterProvider: ownProvider, prometheus: true, now: () => now });
    const outcomes = [
      { status: 200, ms: 0.3, bytes: 0 },
      { status: 200, ms: 12, bytes: 900 },
      { status: 503, flags: 'UO', ms: 0, bytes: 0 },
      { status: 504, flags: 'UT', ms: 15000, bytes: 0 },
      { status: 200, ms: 1, bytes: 5000, grpc: 0 },
      { status: 200, ms: 2, bytes: 10, grpc: 14 },
    ];
    for (const o of outcomes) {
      const r = both.startCall({ reporter: 'source', protocol: o.grpc === undefined ? 'http' : 'grpc', authority: 'reviews:9080' })!;
      r.route(REVIEWS);
      r.attempt({ key: '10.0.0.1:9080', endpoint: { metadata: { filterMetadata: { istio: { workload: 'reviews-v1;bookinfo;reviews;v1;Kubernetes' } }, typedFilterMetadata: {} } } });
      r.responseBytes(o.bytes);
      if (o.grpc !== undefined) r.messages(1, 3);
      const start = now;
      now = start + o.ms;
      r.end({ status: o.status, ...(o.flags ? { flags: o.flags } : {}), ...(o.grpc !== undefined ? { grpcStatus: o.grpc } : {}) });
    }
    const server = createServer((req, res) => own.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const sdkText = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text();
      const normalize = (text: string) => {
        const { samples, types } = parseExposition(text);
        const lines = samples
          .filter((s) => s.name.startsWith('istio_'))
          .map((s) => {
            const { otel_scope_name: _scope, ...labels } = s.labels;
            return `${s.name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}} ${s.value}`;
          })
          .sort();
        return { lines, types: [...types].filter(([n]) => n.startsWith('istio_')).sort() };
      };
      const fromSdk = normalize(sdkText);
      const fromOwn = normalize(both.prometheusText()!);
      expect(fromOwn.lines.length).toBeGreaterThan(100);
      expect(fromOwn).toEqual(fromSdk);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ownProvider.shutdown();
    }
  });

  it('disabled metrics are not created on the MeterProvider', async () => {
    const own = new PrometheusExporter({ preventServerStart: true });
    const ownProvider = new MeterProvider({ readers: [own] });
    const t = new MeshTelemetry({ node: NODE, meterProvider: ownProvider, disabledMetrics: ['istio_request_bytes', 'istio_response_bytes'] });
    t.startCall({ reporter: 'source', protocol: 'http', authority: 'reviews:9080' })!.end({ status: 200 });
    const { resourceMetrics } = await own.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((m) => m.metrics.map((x) => x.descriptor.name)).sort();
    expect(names).toEqual(['istio_request_duration_milliseconds', 'istio_requests_total']);
    await ownProvider.shutdown();
  });

  it('a Mesh reads its source_* labels from its bootstrap node', () => {
    const mesh = createMesh({
      bootstrap: { xds_servers: [{ server_uri: '127.0.0.1:1', channel_creds: [{ type: 'insecure' }] }], node: NODE },
      listenerCatalog: false,
    });
    try {
      expect(mesh.telemetry.localWorkload).toMatchObject({ workload: 'productpage-v1', namespace: 'bookinfo', app: 'productpage', canonicalService: 'productpage' });
      expect(mesh.telemetry.active).toBe(true);
    } finally {
      mesh.close();
    }
  });
});
