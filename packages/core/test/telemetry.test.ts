// Telemetry without an OpenTelemetry SDK: label derivation (bootstrap node, cluster metadata,
// Istio cluster names, endpoint metadata), the in-process Prometheus text, trace header
// formats, the access log, and that nothing is handed out while nothing listens. The SDK
// (MeterProvider + Prometheus exporter, TracerProvider) is exercised in test/telemetry-*.test.ts.
import { describe, expect, it } from 'vitest';
import { TraceFlags, createTraceState, propagation, trace, type SpanContext, type TextMapPropagator } from '@opentelemetry/api';
import type { ClusterResource, NodeConfig } from '@meshlet/xds-client';
import { headersFromRecord } from '../src/request.js';
import {
  ENVOY_DEFAULT_BUCKETS,
  ISTIO_LABEL_NAMES,
  MeshTelemetry,
  decodePeerMetadata,
  peerMetadataHeaders,
  endpointWorkload,
  extractSpanContext,
  injectSpanContext,
  localWorkload,
  namespaceFromPrincipal,
  serviceFromAuthority,
  serviceFromCluster,
  serviceFromClusterName,
  type CallRecorder,
} from '../src/telemetry/index.js';

const ISTIO_NODE: NodeConfig = {
  id: 'sidecar~10.1.2.3~frontend-7d4b9c-xk2lp.shop~shop.svc.cluster.local',
  cluster: '',
  locality: { region: '', zone: '', sub_zone: '' },
  metadata: {
    NAMESPACE: 'shop',
    WORKLOAD_NAME: 'frontend',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'frontend', version: 'v2', 'service.istio.io/canonical-name': 'frontend-svc', 'service.istio.io/canonical-revision': 'v2' },
  },
};

function cluster(name: string, filterMetadata?: Record<string, unknown>): ClusterResource {
  return { name, metadata: filterMetadata ? { filterMetadata, typedFilterMetadata: {} } : undefined } as unknown as ClusterResource;
}

/** A clock that moves only when told. */
function manualClock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function endpoint(workload: string) {
  return { key: '10.0.0.7:8080', endpoint: { metadata: { filterMetadata: { istio: { workload } }, typedFilterMetadata: {} } } };
}

describe('Istio labels', () => {
  it('reads the local workload from an Istio agent node', () => {
    expect(localWorkload(ISTIO_NODE)).toEqual({
      workload: 'frontend',
      namespace: 'shop',
      app: 'frontend',
      version: 'v2',
      canonicalService: 'frontend-svc',
      canonicalRevision: 'v2',
      cluster: 'Kubernetes',
    });
  });

  it('falls back to the node id for the namespace, the app label for the canonical service, and unknown/latest', () => {
    const w = localWorkload({ ...ISTIO_NODE, metadata: { LABELS: { app: 'cart' }, OWNER: 'kubernetes://apis/apps/v1/namespaces/shop/deployments/cart' } });
    expect(w).toEqual({ workload: 'cart', namespace: 'shop', app: 'cart', version: 'unknown', canonicalService: 'cart', canonicalRevision: 'latest', cluster: 'unknown' });
    expect(localWorkload(undefined).workload).toBe('unknown');
    expect(localWorkload({ ...ISTIO_NODE, id: 'plain-id', metadata: {} }).namespace).toBe('unknown');
  });

  it('takes the destination service from cluster metadata, then the Istio cluster name, then the authority', () => {
    const meta = cluster('outbound|9080||reviews.bookinfo.svc.cluster.local', {
      istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }] },
    });
    expect(serviceFromCluster(meta, 'reviews:9080')).toEqual({ service: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' });
    expect(serviceFromCluster(cluster('outbound|9080|v2|ratings.bookinfo.svc.cluster.local'), 'x:1')).toEqual({
      service: 'ratings.bookinfo.svc.cluster.local',
      name: 'ratings',
      namespace: 'bookinfo',
    });
    expect(serviceFromCluster('outbound|80||example.com', 'x:1')).toEqual({ service: 'example.com', name: 'example', namespace: undefined });
    expect(serviceFromCluster('my-cluster', 'echo.test:8080')).toEqual({ service: 'echo.test', name: 'echo.test', namespace: undefined });
    expect(serviceFromCluster(undefined, '[::1]:8080')).toEqual({ service: '[::1]', name: '[::1]', namespace: undefined });
    expect(serviceFromClusterName('outbound|80|')).toBeUndefined();
    expect(serviceFromCluster('PassthroughCluster', 'example.com:443')).toEqual({ service: 'example.com', name: 'PassthroughCluster', namespace: undefined });
    expect(serviceFromCluster('BlackHoleCluster', 'nope:80')).toEqual({ service: 'nope', name: 'BlackHoleCluster', namespace: undefined });
    expect(serviceFromAuthority('api.prod.svc:80').namespace).toBe('prod');
  });

  it('decodes Istio endpoint metadata and SPIFFE namespaces', () => {
    expect(endpointWorkload({ filterMetadata: { istio: { workload: 'reviews-v2;bookinfo;reviews;v2;Kubernetes' } }, typedFilterMetadata: {} })).toEqual({
      workload: 'reviews-v2',
      namespace: 'bookinfo',
      app: 'unknown',
      version: 'unknown',
      canonicalService: 'reviews',
      canonicalRevision: 'v2',
      cluster: 'Kubernetes',
    });
    expect(endpointWorkload({ filterMetadata: { istio: { workload: 'a;b' } }, typedFilterMetadata: {} })).toBeUndefined();
    expect(namespaceFromPrincipal('spiffe://cluster.local/ns/bookinfo/sa/reviews')).toBe('bookinfo');
    expect(namespaceFromPrincipal('spiffe://cluster.local/sa/x')).toBeUndefined();
  });
});

describe('MeshTelemetry', () => {
  it('hands out no recorder while nothing listens', () => {
    const t = new MeshTelemetry({ node: ISTIO_NODE });
    expect(t.active).toBe(false);
    expect(t.wantsCalls()).toBe(false);
    expect(t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:80' })).toBeUndefined();
    expect(t.prometheusText()).toBeUndefined();
    t.configure({ prometheus: true });
    expect(t.active).toBe(true);
    expect(t.wantsCalls()).toBe(true);
    expect(t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:80' })).toBeDefined();
  });

  it('looks for providers on every 1024th call, whether the caller asks wantsCalls() first or not', () => {
    const t = new MeshTelemetry({ node: ISTIO_NODE });
    const span = { end() {}, setAttribute() {}, setAttributes() {}, setStatus() {}, addEvent() {}, recordException() {}, isRecording: () => true, spanContext: () => ({ traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 }) };
    const provider = { getTracer: () => ({ startSpan: () => span, startActiveSpan: () => undefined }) };
    const askAndStart = (): boolean => t.wantsCalls() && t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:80' }) !== undefined;
    try {
      trace.setGlobalTracerProvider(provider as unknown as Parameters<typeof trace.setGlobalTracerProvider>[0]);
      // Inactive: the 1024th call after the mesh's last look finds the provider.
      let calls = 0;
      while (!askAndStart()) calls++;
      expect(calls + 1).toBe(1024);
      // Active: wantsCalls() and startCall() together still count each call once, so the
      // provider's removal is seen on the 1024th call too, not the 512th.
      trace.disable();
      calls = 0;
      while (askAndStart()) calls++;
      // (The call that found the provider was counted by wantsCalls() and then by startCall().)
      expect(calls + 1).toBe(1023);
    } finally {
      trace.disable();
    }
  });

  it('aggregates Istio metrics in Prometheus text with every standard label and Envoy buckets', () => {
    const clock = manualClock();
    const t = new MeshTelemetry({ node: ISTIO_NODE, prometheus: true, now: clock.now, wallClock: () => 0 });
    const reviews = cluster('outbound|9080||reviews.bookinfo.svc.cluster.local');
    const call = (status: number, flags: string | undefined, ms: number, attempts = 1): void => {
      const r = t.startCall({ reporter: 'source', protocol: 'http', method: 'GET', path: '/r/1?x=2', authority: 'reviews:9080' })!;
      r.route(reviews);
      for (let i = 0; i < attempts; i++) r.attempt(endpoint('reviews-v1;bookinfo;reviews;v1;Kubernetes'));
      r.requestBytes(10);
      r.responseBytes(300);
      clock.advance(ms);
      r.end({ status, flags });
    };
    call(200, undefined, 3);
    call(200, '-', 7);
    call(503, 'URX', 40, 3);
    const text = t.prometheusText()!;
    const ok =
      'reporter="source",source_workload="frontend",source_canonical_service="frontend-svc",source_canonical_revision="v2",' +
      'source_workload_namespace="shop",source_principal="unknown",source_app="frontend",source_version="v2",source_cluster="Kubernetes",' +
      'destination_workload="reviews-v1",destination_workload_namespace="bookinfo",destination_principal="unknown",destination_app="unknown",' +
      'destination_version="unknown",destination_service="reviews.bookinfo.svc.cluster.local",destination_canonical_service="reviews",' +
      'destination_canonical_revision="v1",destination_service_name="reviews",destination_service_namespace="bookinfo",destination_cluster="Kubernetes",' +
      'request_protocol="http",response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="unknown"';
    const failed = ok.replace('response_code="200"', 'response_code="503"').replace('response_flags="-"', 'response_flags="URX"');
    expect(text).toContain('# TYPE istio_requests_total counter\n');
    expect(text).toContain(`istio_requests_total{${ok}} 2\n`);
    expect(text).toContain(`istio_requests_total{${failed}} 1\n`);
    expect(text).toContain('# TYPE istio_request_duration_milliseconds histogram\n');
    // 3 ms and 7 ms: none in le=1, one in le=5, both in le=10.
    expect(text).toContain(`istio_request_duration_milliseconds_bucket{${ok},le="1"} 0\n`);
    expect(text).toContain(`istio_request_duration_milliseconds_bucket{${ok},le="5"} 1\n`);
    expect(text).toContain(`istio_request_duration_milliseconds_bucket{${ok},le="10"} 2\n`);
    expect(text).toContain(`istio_request_duration_milliseconds_bucket{${ok},le="+Inf"} 2\n`);
    expect(text).toContain(`istio_request_duration_milliseconds_sum{${ok}} 10\n`);
    expect(text).toContain(`istio_request_duration_milliseconds_count{${ok}} 2\n`);
    expect(text).toContain(`istio_response_bytes_bucket{${ok},le="250"} 0\n`);
    expect(text).toContain(`istio_response_bytes_bucket{${ok},le="500"} 2\n`);
    expect(text).toContain(`istio_request_bytes_sum{${failed}} 10\n`);
    const les = [...text.matchAll(new RegExp(`istio_request_duration_milliseconds_bucket\\{${escapeRe(ok)},le="([^"]+)"\\}`, 'g'))].map((m) => m[1]);
    expect(les).toEqual([...ENVOY_DEFAULT_BUCKETS.map(String), '+Inf']);
    expect(text).not.toContain('istio_request_messages_total');
    expect(text).not.toContain('/r/1');
  });

  it('reports a server call (reporter=destination) with the local workload as destination and gRPC message counts', () => {
    const t = new MeshTelemetry({ node: ISTIO_NODE, prometheus: true, now: manualClock().now });
    const r = t.startCall({ reporter: 'destination', protocol: 'grpc', method: 'POST', path: '/echo.Echo/Say', authority: 'frontend.shop.svc.cluster.local:8080' })!;
    r.messages(1, 2);
    r.end({ status: 200, grpcStatus: 14, securityPolicy: 'mutual_tls', peerPrincipal: 'spiffe://cluster.local/ns/other/sa/caller', localPrincipal: 'spiffe://cluster.local/ns/shop/sa/frontend' });
    const text = t.prometheusText()!;
    const labels =
      'reporter="destination",source_workload="unknown",source_canonical_service="unknown",source_canonical_revision="latest",' +
      'source_workload_namespace="other",source_principal="spiffe://cluster.local/ns/other/sa/caller",source_app="unknown",source_version="unknown",' +
      'source_cluster="unknown",destination_workload="frontend",destination_workload_namespace="shop",' +
      'destination_principal="spiffe://cluster.local/ns/shop/sa/frontend",destination_app="frontend",destination_version="v2",' +
      'destination_service="frontend.shop.svc.cluster.local",destination_canonical_service="frontend-svc",destination_canonical_revision="v2",' +
      'destination_service_name="frontend.shop.svc.cluster.local",destination_service_namespace="shop",destination_cluster="Kubernetes",' +
      'request_protocol="grpc",response_code="200",grpc_response_status="14",response_flags="-",connection_security_policy="mutual_tls"';
    expect(text).toContain(`istio_requests_total{${labels}} 1\n`);
    expect(text).toContain(`istio_request_messages_total{${labels}} 1\n`);
    expect(text).toContain(`istio_response_messages_total{${labels}} 2\n`);
  });

  it('labels name exactly Istio\'s standard set, in its order', () => {
    const t = new MeshTelemetry({ prometheus: true });
    t.startCall({ reporter: 'source', protocol: 'http', authority: 'x:1' })!.end({ status: 0, flags: 'UH' });
    const line = t.prometheusText()!.split('\n').find((l) => l.startsWith('istio_requests_total{'))!;
    const names = [...line.matchAll(/([a-z_]+)="/g)].map((m) => m[1]);
    expect(names).toEqual([...ISTIO_LABEL_NAMES]);
    expect(line).toContain('response_code="0"');
    expect(line).toContain('response_flags="UH"');
    expect(line).toContain('destination_service="x"');
  });

  it('leaves out disabled metrics, and names a misspelt one', () => {
    const t = new MeshTelemetry({ prometheus: true, disabledMetrics: ['istio_request_bytes', 'istio_response_bytes'] });
    t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })!.end({ status: 200 });
    const text = t.prometheusText()!;
    expect(text).toContain('istio_requests_total{');
    expect(text).toContain('istio_request_duration_milliseconds_bucket{');
    expect(text).not.toContain('istio_request_bytes');
    expect(text).not.toContain('istio_response_bytes');
    expect(() => new MeshTelemetry({ disabledMetrics: ['istio_request_size' as never] })).toThrow(/disabledMetrics: "istio_request_size"/);
  });

  it('writes one JSON access log line per call with Envoy\'s fields', () => {
    const lines: string[] = [];
    const clock = manualClock();
    const t = new MeshTelemetry({ node: ISTIO_NODE, accessLog: { write: (l) => lines.push(l) }, now: clock.now });
    const headers = headersFromRecord({ 'user-agent': 'curl/8', 'x-request-id': 'req-1', 'x-forwarded-for': '10.9.9.9' });
    const r = t.startCall({ reporter: 'source', protocol: 'http', method: 'POST', path: '/orders?id=7', authority: 'orders:80', startTimeMs: Date.UTC(2026, 10, 26, 5, 0, 0, 123), headers })!;
    r.route('outbound|80||orders.shop.svc.cluster.local');
    r.attempt('10.0.0.1:80');
    r.attempt('10.0.0.2:80');
    r.requestBytes(42);
    r.responseBytes(7);
    clock.advance(12.7);
    r.end({ status: 200 });
    r.end({ status: 500 }); // ignored
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      start_time: '2026-11-26T05:00:00.123Z',
      reporter: 'source',
      method: 'POST',
      path: '/orders?id=7',
      response_code: 200,
      response_flags: '-',
      grpc_status: null,
      bytes_received: 42,
      bytes_sent: 7,
      duration: 12,
      authority: 'orders:80',
      upstream_host: '10.0.0.2:80',
      upstream_cluster: 'outbound|80||orders.shop.svc.cluster.local',
      upstream_request_attempt_count: 2,
      x_forwarded_for: '10.9.9.9',
      user_agent: 'curl/8',
      request_id: 'req-1',
      trace_id: null,
    });
  });

  it('a throwing access log stream does not fail the call', () => {
    const t = new MeshTelemetry({ accessLog: { write: () => { throw new Error('disk full'); } } });
    const r: CallRecorder = t.startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })!;
    expect(() => r.end({ status: 200 })).not.toThrow();
  });

  it('keeps one series per label set across config changes (new cluster objects) and Istio names', () => {
    const t = new MeshTelemetry({ prometheus: true });
    const meta = { istio: { services: [{ host: 'reviews.bookinfo.svc.cluster.local', name: 'reviews', namespace: 'bookinfo' }] } };
    for (const c of [cluster('outbound|9080||reviews.bookinfo.svc.cluster.local', meta), cluster('outbound|9080||reviews.bookinfo.svc.cluster.local', meta), 'outbound|9080||reviews.bookinfo.svc.cluster.local']) {
      const r = t.startCall({ reporter: 'source', protocol: 'http', authority: 'reviews:9080' })!;
      r.route(c);
      r.end({ status: 200 });
    }
    const lines = t.prometheusText()!.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ 3$/);
  });

  it('a cluster that names no service stands for each call\'s authority (and Passthrough/BlackHole keep theirs)', () => {
    const t = new MeshTelemetry({ prometheus: true });
    const plain = cluster('c');
    for (const [c, authority] of [
      [plain, 'a.test:80'],
      [plain, 'b.test:80'],
      ['c', 'b.test:80'],
      ['PassthroughCluster', 'example.com:443'],
      ['PassthroughCluster', 'example.org:443'],
    ] as const) {
      const r = t.startCall({ reporter: 'source', protocol: 'http', authority })!;
      r.route(c);
      r.end({ status: 200 });
    }
    const services = t
      .prometheusText()!
      .split('\n')
      .filter((l) => l.startsWith('istio_requests_total{'))
      .map((l) => `${/destination_service="([^"]*)"/.exec(l)![1]} ${/destination_service_name="([^"]*)"/.exec(l)![1]} ${l.split(' ').at(-1)}`)
      .sort();
    expect(services).toEqual(['a.test a.test 1', 'b.test b.test 2', 'example.com PassthroughCluster 1', 'example.org PassthroughCluster 1']);
  });

  it('folds authorities past its bound into destination_service="unknown" instead of growing', () => {
    const t = new MeshTelemetry({ prometheus: true });
    for (let i = 0; i < 4200; i++) t.startCall({ reporter: 'source', protocol: 'http', authority: `host-${i}:80` })!.end({ status: 200 });
    const lines = t.prometheusText()!.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    expect(lines.length).toBeLessThanOrEqual(4097);
    const unknown = lines.find((l) => l.includes('destination_service="unknown"'))!;
    expect(unknown).toMatch(/ 104$/);
  });

  it('bounds label cardinality: the path never becomes a label', () => {
    const t = new MeshTelemetry({ prometheus: true });
    for (let i = 0; i < 50; i++) t.startCall({ reporter: 'source', protocol: 'http', method: 'GET', path: `/item/${i}`, authority: 'shop:80' })!.end({ status: 200 });
    const text = t.prometheusText()!;
    expect(text.match(/^istio_requests_total\{/gm)).toHaveLength(1);
    expect(text).toMatch(/istio_requests_total\{[^}]*\} 50\n/);
  });
});

describe('Istio metadata exchange', () => {
  // A ratings-v1 sidecar's response header (Istio 1.14), as published in a walkthrough of
  // Istio's metrics: extra labels, PLATFORM_METADATA as an empty struct, INSTANCE_IPS...
  const RATINGS =
    'ChsKDkFQUF9DT05UQUlORVJTEgkaB3JhdGluZ3MKGgoKQ0xVU1RFUl9JRBIMGgpLdWJlcm5ldGVzCh0KDElOU1RBTkNFX0lQUxINGgsxNzIuMTYuMC42OQoZCg1JU1RJT19WRVJTSU9OEggaBjEuMTQuNQrVAQoGTEFCRUxTEsoBKscBChAKA2FwcBIJGgdyYXRpbmdzCiEKEXBvZC10ZW1wbGF0ZS1oYXNoEgwaCjg1Y2M0NmI2ZDQKJAoZc2VjdXJpdHkuaXN0aW8uaW8vdGxzTW9kZRIHGgVpc3RpbwosCh9zZXJ2aWNlLmlzdGlvLmlvL2Nhbm9uaWNhbC1uYW1lEgkaB3JhdGluZ3MKKwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SBBoCdjEKDwoHdmVyc2lvbhIEGgJ2MQoaCgdNRVNIX0lEEg8aDWNsdXN0ZXIubG9jYWwKJQoETkFNRRIdGhtyYXRpbmdzLXYxLTg1Y2M0NmI2ZDQtbjdxZGcKFgoJTkFNRVNQQUNFEgkaB2RlZmF1bHQKTgoFT1dORVISRRpDa3ViZXJuZXRlczovL2FwaXMvYXBwcy92MS9uYW1lc3BhY2VzL2RlZmF1bHQvZGVwbG95bWVudHMvcmF0aW5ncy12MQoXChFQTEFURk9STV9NRVRBREFUQRICKgAKHQoNV09SS0xPQURfTkFNRRIMGgpyYXRpbmdzLXYx';

  it('decodes an Envoy sidecar\'s x-envoy-peer-metadata', () => {
    expect(decodePeerMetadata(RATINGS)).toEqual({
      workload: 'ratings-v1',
      namespace: 'default',
      app: 'ratings',
      version: 'v1',
      canonicalService: 'ratings',
      canonicalRevision: 'v1',
      cluster: 'Kubernetes',
    });
    expect(decodePeerMetadata('not base64 protobuf!!')).toBeUndefined();
    expect(decodePeerMetadata('')).toBeUndefined();
  });

  it('encodes this workload so that it decodes to the same labels', () => {
    const h = peerMetadataHeaders(ISTIO_NODE, localWorkload(ISTIO_NODE))!;
    expect(h.id).toBe(ISTIO_NODE.id);
    expect(decodePeerMetadata(h.value)).toEqual(localWorkload(ISTIO_NODE));
    // Deterministic, as Istio serializes: the same node gives the same bytes.
    expect(peerMetadataHeaders(ISTIO_NODE, localWorkload(ISTIO_NODE))!.value).toBe(h.value);
    expect(Buffer.from(h.value, 'base64').toString('latin1')).toContain('frontend-7d4b9c-xk2lp');
  });

  it('a client sends it on calls routed into the mesh, and names the destination from the answer', () => {
    const t = new MeshTelemetry({ node: ISTIO_NODE, prometheus: true });
    const headersOf = (r: CallRecorder) => {
      const h: Record<string, string> = {};
      r.injectHeaders((k, v) => (h[k] = v));
      return h;
    };
    const routed = t.startCall({ reporter: 'source', protocol: 'http', authority: 'ratings:9080' })!;
    routed.route('outbound|9080||ratings.default.svc.cluster.local');
    routed.attempt('10.0.0.9:9080');
    expect(Object.keys(headersOf(routed)).sort()).toEqual(['x-envoy-peer-metadata', 'x-envoy-peer-metadata-id']);
    routed.receivedHeaders((n) => (n === 'x-envoy-peer-metadata' ? RATINGS : undefined));
    routed.end({ status: 200 });
    expect(t.prometheusText()).toContain('destination_workload="ratings-v1",destination_workload_namespace="default"');
    expect(t.prometheusText()).toContain('destination_app="ratings",destination_version="v1"');

    const unrouted = t.startCall({ reporter: 'source', protocol: 'http', authority: 'example.com:443' })!;
    expect(headersOf(unrouted)).toEqual({});
    const external = t.startCall({ reporter: 'source', protocol: 'http', authority: 'api:443' })!;
    external.route(cluster('outbound|443||api.example.com', { istio: { external: true } }));
    expect(headersOf(external)).toEqual({});
    const off = new MeshTelemetry({ node: ISTIO_NODE, prometheus: true, metadataExchange: false }).startCall({ reporter: 'source', protocol: 'http', authority: 'a:1' })!;
    off.route('outbound|1||a.default.svc.cluster.local');
    expect(headersOf(off)).toEqual({});
  });

  it('a server names its caller from the exchange and answers only a caller that started it', () => {
    const t = new MeshTelemetry({ node: ISTIO_NODE, prometheus: true });
    const answered: Record<string, string> = {};
    const r = t.startCall({ reporter: 'destination', protocol: 'http', authority: 'frontend:8080', headers: headersFromRecord({ 'x-envoy-peer-metadata': RATINGS }) })!;
    r.injectHeaders((k, v) => (answered[k] = v));
    r.end({ status: 200 });
    expect(Object.keys(answered).sort()).toEqual(['x-envoy-peer-metadata', 'x-envoy-peer-metadata-id']);
    expect(t.prometheusText()).toContain('reporter="destination",source_workload="ratings-v1",source_canonical_service="ratings",source_canonical_revision="v1",source_workload_namespace="default"');
    const silent: Record<string, string> = {};
    t.startCall({ reporter: 'destination', protocol: 'http', authority: 'frontend:8080', headers: headersFromRecord({}) })!.injectHeaders((k, v) => (silent[k] = v));
    expect(silent).toEqual({});
  });
});

describe('trace headers', () => {
  const sc: SpanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };

  function inject(formats: Parameters<typeof injectSpanContext>[1], ctx: SpanContext = sc): Record<string, string> {
    const out: Record<string, string> = {};
    injectSpanContext(ctx, formats, (k, v) => (out[k] = v));
    return out;
  }

  it('writes W3C traceparent/tracestate, single b3 and multi-header B3', () => {
    expect(inject(['tracecontext'])).toEqual({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    expect(inject(['tracecontext'], { ...sc, traceFlags: TraceFlags.NONE, traceState: createTraceState('vendor=x') })).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
      tracestate: 'vendor=x',
    });
    expect(inject(['b3'])).toEqual({ b3: '4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1' });
    expect(inject(['b3multi'])).toEqual({ 'x-b3-traceid': '4bf92f3577b34da6a3ce929d0e0e4736', 'x-b3-spanid': '00f067aa0ba902b7', 'x-b3-sampled': '1' });
    expect(inject(['tracecontext'], { ...sc, traceId: '0'.repeat(32) })).toEqual({});
  });

  it('hands the span to the application\'s global propagator with "global"', () => {
    // A propagator of the application's own (as NodeSDK registers W3C + baggage).
    const custom: TextMapPropagator = {
      inject(ctx, carrier, setter) {
        const s = trace.getSpanContext(ctx);
        if (s) setter.set(carrier, 'x-custom-trace', `${s.traceId}:${s.spanId}`);
      },
      extract(ctx, carrier, getter) {
        const v = getter.get(carrier, 'x-custom-trace');
        const [traceId, spanId] = typeof v === 'string' ? v.split(':') : [];
        return traceId && spanId ? trace.setSpanContext(ctx, { traceId, spanId, traceFlags: 1, isRemote: true }) : ctx;
      },
      fields: () => ['x-custom-trace'],
    };
    propagation.setGlobalPropagator(custom);
    try {
      expect(inject(['global'])).toEqual({ 'x-custom-trace': `${sc.traceId}:${sc.spanId}` });
      expect(extractSpanContext(headersFromRecord({ 'x-custom-trace': `${sc.traceId}:${sc.spanId}` }), ['global'])).toMatchObject({ traceId: sc.traceId, spanId: sc.spanId });
      expect(extractSpanContext(headersFromRecord({}), ['global'])).toBeUndefined();
    } finally {
      propagation.disable();
    }
  });

  it('reads them back, rejecting malformed ones', () => {
    const h = (r: Record<string, string>) => headersFromRecord(r);
    expect(extractSpanContext(h({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'a=b' }), ['tracecontext'])).toMatchObject({
      traceId: sc.traceId,
      spanId: sc.spanId,
      traceFlags: 1,
      isRemote: true,
    });
    expect(extractSpanContext(h({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01' }), ['tracecontext'])).toBeUndefined();
    expect(extractSpanContext(h({ traceparent: 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), ['tracecontext'])).toBeUndefined();
    expect(extractSpanContext(h({ traceparent: 'garbage' }), ['tracecontext'])).toBeUndefined();
    expect(extractSpanContext(h({ b3: '80f198ee56343ba8-e457b5a2e4d86bd1-1' }), ['b3'])).toMatchObject({
      traceId: '000000000000000080f198ee56343ba8',
      spanId: 'e457b5a2e4d86bd1',
      traceFlags: 1,
    });
    expect(extractSpanContext(h({ 'x-b3-traceid': sc.traceId, 'x-b3-spanid': sc.spanId, 'x-b3-sampled': '0' }), ['b3multi'])).toMatchObject({
      traceId: sc.traceId,
      traceFlags: 0,
    });
    // Only the formats asked for are read.
    expect(extractSpanContext(h({ b3: '80f198ee56343ba8-e457b5a2e4d86bd1-1' }), ['tracecontext'])).toBeUndefined();
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
