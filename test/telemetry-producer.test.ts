// Istio's metrics through MeshTelemetry.metricProducer(): a real MeterProvider whose
// PrometheusExporter takes the producer in `metricProducers`, real calls through MeshAgent to
// a real backend and the real control plane on loopback, scraped over HTTP. The scrape must
// say what the API instruments say for the same traffic (names, types, help, units, label
// sets, buckets, values), and once the producer exists the instruments record nothing, so a
// provider that is also the global one (or the mesh's `meterProvider`) exports no series twice.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, MeterProvider, type MetricProducer } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { AGGREGATION_TEMPORALITY, DATA_POINT_TYPE, ENVOY_DEFAULT_BUCKETS, type TelemetryOptions } from '@meshlet/core';
import { createMesh, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { parseExposition, sampleLine, type Exposition, type Sample } from './helpers/prometheus-exposition.js';
import { edsCluster, listener, routeConfig } from './helpers/xds-resources.js';

const HOST = 'reviews.bookinfo.svc.cluster.local';
const CLUSTER = `outbound|80||${HOST}`;
const NODE = {
  id: 'sidecar~127.0.0.1~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local',
  metadata: { NAMESPACE: 'bookinfo', WORKLOAD_NAME: 'productpage-v1', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'productpage', version: 'v1' } },
};
const ISTIO_FAMILIES = [
  'istio_requests_total',
  'istio_request_duration_milliseconds',
  'istio_request_bytes',
  'istio_response_bytes',
];

/** A monotonic clock that moves 7 ms each time it is read: the same traffic gets the same durations in every mesh. */
function steppingClock(): () => number {
  let t = 0;
  return () => (t += 7);
}

describe('Istio metrics through MeshTelemetry.metricProducer() and an SDK reader', () => {
  let cp: ControlPlane;
  let backend: Server;
  let xdsAddress = '';
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    backend = createServer((req, res) => {
      if (req.url?.startsWith('/api/e503')) {
        res.writeHead(503);
        res.end('unavailable');
      } else {
        res.end(req.url?.startsWith('/api/big') ? 'x'.repeat(700) : 'hello');
      }
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    cp = new ControlPlane();
    xdsAddress = (await cp.start()).address;
    cp.setResources(TYPE_URLS.listener, [listener(`${HOST}:80`, 'rc')]);
    // Only /api is routed: anything else is a no-route (NR) call.
    cp.setResources(TYPE_URLS.routeConfiguration, [routeConfig('rc', [{ domains: [HOST, `${HOST}:80`], routes: [{ prefix: '/api', cluster: CLUSTER }] }])]);
    cp.setResources(TYPE_URLS.cluster, [
      edsCluster(CLUSTER, { metadata: { filter_metadata: { istio: { services: [{ host: HOST, name: 'reviews', namespace: 'bookinfo' }] } } } }),
    ]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      {
        '@type': TYPE_URLS.clusterLoadAssignment,
        cluster_name: CLUSTER,
        endpoints: [
          {
            locality: { region: 'r1', zone: 'z1' },
            lb_endpoints: [
              {
                endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: (backend.address() as AddressInfo).port } } },
                health_status: 'HEALTHY',
                metadata: { filter_metadata: { istio: { workload: 'reviews-v1;bookinfo;reviews;v1;Kubernetes' } } },
              },
            ],
          },
        ],
      },
    ]);
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await cp?.stop();
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
    metrics.disable();
  });

  function meshWith(telemetry: TelemetryOptions): { mesh: ReturnType<typeof createMesh>; agent: MeshAgent } {
    const mesh = createMesh({ bootstrap: { xds_servers: [{ server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }] }], node: NODE }, telemetry });
    const agent = new MeshAgent({ mesh });
    closers.push(async () => {
      await agent.destroy();
      mesh.close();
    });
    return { mesh, agent };
  }

  function providerWith(exporter: PrometheusExporter): MeterProvider {
    const provider = new MeterProvider({ readers: [exporter] });
    closers.push(() => provider.shutdown());
    return provider;
  }

  async function scrapeUrl(exporter: PrometheusExporter): Promise<string> {
    const server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }

  async function scrape(url: string): Promise<Exposition> {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  }

  /** The same traffic for every mesh: two successes, a 503 from the backend, a no-route call. */
  async function traffic(agent: MeshAgent): Promise<Array<number | string>> {
    const out: Array<number | string> = [];
    for (const path of ['/api/ok', '/api/big', '/api/e503', '/none']) {
      try {
        const res = await request(`http://${HOST}${path}`, { dispatcher: agent });
        await res.body.text();
        out.push(res.statusCode);
      } catch (err) {
        out.push((err as { code?: string }).code ?? String(err));
      }
    }
    return out;
  }

  /** Istio's families only, scope label dropped, as sorted comparable lines. */
  function istio(e: Exposition) {
    const family = (name: string) => ISTIO_FAMILIES.find((f) => name === f || name.startsWith(`${f}_`));
    const samples = e.samples.filter((s) => family(s.name)).map((s) => {
      const { otel_scope_name: scope, ...labels } = s.labels;
      expect(scope).toBe('@meshlet/core');
      return { ...s, labels };
    });
    const meta = (m: Map<string, string>) => [...m].filter(([n]) => family(n)).sort();
    return { lines: samples.map(sampleLine).sort(), types: meta(e.types), help: meta(e.help), units: meta(e.units), samples };
  }

  it("uses the SDK's enum values (core declares them itself, not depending on the SDK)", () => {
    expect({ ...AGGREGATION_TEMPORALITY }).toEqual({ DELTA: AggregationTemporality.DELTA, CUMULATIVE: AggregationTemporality.CUMULATIVE });
    expect({ ...DATA_POINT_TYPE }).toEqual({
      HISTOGRAM: DataPointType.HISTOGRAM,
      EXPONENTIAL_HISTOGRAM: DataPointType.EXPONENTIAL_HISTOGRAM,
      GAUGE: DataPointType.GAUGE,
      SUM: DataPointType.SUM,
    });
  });

  it('exports what the API instruments export for the same traffic, each series once', async () => {
    // The API path: instruments on a provider of its own.
    const apiExporter = new PrometheusExporter({ preventServerStart: true });
    const api = meshWith({ meterProvider: providerWith(apiExporter), now: steppingClock() });

    // The producer path. The provider is also the global one and the mesh's meterProvider:
    // were the instruments still recording, every series would be there twice.
    const prod = meshWith({ now: steppingClock() });
    const producer = prod.mesh.telemetry.metricProducer();
    expect(prod.mesh.telemetry.metricProducer()).toBe(producer);
    const sdkProducer: MetricProducer = producer; // satisfies the SDK's interface as declared
    const prodExporter = new PrometheusExporter({ preventServerStart: true, metricProducers: [sdkProducer] });
    const prodProvider = providerWith(prodExporter);
    metrics.setGlobalMeterProvider(prodProvider);
    prod.mesh.telemetry.configure({ meterProvider: prodProvider });

    expect(await traffic(api.agent)).toEqual([200, 200, 503, 'MESHLET_NO_ROUTE']);
    expect(await traffic(prod.agent)).toEqual([200, 200, 503, 'MESHLET_NO_ROUTE']);

    const fromProducer = istio(await scrape(await scrapeUrl(prodExporter)));
    const fromApi = istio(await scrape(await scrapeUrl(apiExporter)));

    expect(Object.fromEntries(fromProducer.types)).toEqual({
      istio_requests_total: 'counter',
      istio_request_duration_milliseconds: 'histogram',
      istio_request_bytes: 'histogram',
      istio_response_bytes: 'histogram',
    });
    expect(Object.fromEntries(fromProducer.units)).toEqual({ istio_request_duration_milliseconds: 'ms', istio_request_bytes: 'By', istio_response_bytes: 'By' });
    // No sample twice (the parser also rejects a family's # TYPE twice).
    expect(new Set(fromProducer.lines).size).toBe(fromProducer.lines.length);

    const s = fromProducer.samples;
    const requests = s.filter((x) => x.name === 'istio_requests_total');
    const outcome = (x: Sample) => `${x.labels['response_code']} ${x.labels['response_flags']}`;
    expect(Object.fromEntries(requests.map((x) => [outcome(x), x.value]))).toEqual({ '200 -': 2, '503 -': 1, '404 NR': 1 });
    const ok = requests.find((x) => x.labels['response_code'] === '200')!;
    expect(ok.labels).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'bookinfo',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v1',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'unknown',
      destination_app: 'unknown',
      destination_version: 'unknown',
      destination_service: HOST,
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v1',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    });
    // Every histogram has Envoy's boundaries, one label set per series.
    for (const family of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) {
      for (const code of ['200', '503', '404']) {
        const buckets = s.filter((x) => x.name === `${family}_bucket` && x.labels['response_code'] === code);
        expect(buckets.map((x) => x.labels['le'])).toEqual([...ENVOY_DEFAULT_BUCKETS.map(String), '+Inf']);
      }
    }
    const value = (name: string, code: string, le?: string) =>
      s.find((x) => x.name === name && x.labels['response_code'] === code && (le === undefined || x.labels['le'] === le))!.value;
    // Response bodies of 5 and 700 bytes, then "unavailable"; no request bodies.
    const responseBuckets = ['1', '5', '500', '1000', '+Inf'].map((le) => value('istio_response_bytes_bucket', '200', le));
    expect(responseBuckets).toEqual([0, 1, 1, 2, 2]);
    expect(value('istio_response_bytes_sum', '200')).toBe(705);
    expect(value('istio_response_bytes_count', '200')).toBe(2);
    expect(value('istio_response_bytes_sum', '503')).toBe(11);
    expect(value('istio_response_bytes_sum', '404')).toBe(0);
    expect(value('istio_request_bytes_sum', '200')).toBe(0);
    expect(value('istio_request_bytes_bucket', '200', '0.5')).toBe(2);
    // The clock moves 7 ms a read and a call reads it at its start and end.
    const durationBuckets = ['5', '10', '+Inf'].map((le) => value('istio_request_duration_milliseconds_bucket', '200', le));
    expect(durationBuckets).toEqual([0, 2, 2]);
    expect(value('istio_request_duration_milliseconds_sum', '200')).toBe(14);
    expect(value('istio_request_duration_milliseconds_count', '200')).toBe(2);
    expect(value('istio_request_duration_milliseconds_sum', '404')).toBe(7);

    // And the API instruments said exactly the same.
    expect(fromProducer.lines.length).toBeGreaterThan(60);
    expect({ lines: fromProducer.lines, types: fromProducer.types, help: fromProducer.help, units: fromProducer.units }).toEqual({
      lines: fromApi.lines,
      types: fromApi.types,
      help: fromApi.help,
      units: fromApi.units,
    });
  });

  it('closes instruments that were recording: the provider keeps what they had, the producer counts from then on; tracing goes on', async () => {
    const before = new PrometheusExporter({ preventServerStart: true });
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    closers.push(() => tracerProvider.shutdown());
    const { mesh, agent } = meshWith({ meterProvider: providerWith(before), tracerProvider, now: steppingClock() });
    const ok = async () => {
      const res = await request(`http://${HOST}/api/ok`, { dispatcher: agent });
      await res.body.text();
      return res.statusCode;
    };
    expect(await ok()).toBe(200);
    const durationCount = async () => {
      const { resourceMetrics } = await before.collect();
      const metric = resourceMetrics.scopeMetrics.flatMap((m) => m.metrics).find((m) => m.descriptor.name === 'istio_request_duration_milliseconds');
      return metric?.dataPoints.reduce((n, p) => n + (p.value as { count: number }).count, 0);
    };
    expect(await durationCount()).toBe(1);

    const producer = mesh.telemetry.metricProducer();
    const spansBefore = spans.getFinishedSpans().length;
    expect(await ok()).toBe(200);
    expect(await ok()).toBe(200);
    // The instruments recorded nothing more; the producer has the two calls since it was made.
    expect(await durationCount()).toBe(1);
    const { resourceMetrics, errors } = await producer.collect();
    expect(errors).toEqual([]);
    const total = resourceMetrics.scopeMetrics[0]!.metrics.find((m) => m.descriptor.name === 'istio_requests_total')!;
    expect(total.dataPoints.map((p) => p.value)).toEqual([2]);
    // A call and its attempt: two spans each.
    expect(spans.getFinishedSpans().length - spansBefore).toBe(4);

    // Switching the aggregation off would empty the producer: it stays on, with its data.
    mesh.telemetry.configure({ prometheus: false });
    expect(await ok()).toBe(200);
    const again = await producer.collect();
    const total2 = again.resourceMetrics.scopeMetrics[0]!.metrics.find((m) => m.descriptor.name === 'istio_requests_total')!;
    expect(total2.dataPoints.map((p) => p.value)).toEqual([3]);
    expect(mesh.telemetry.prometheusText()).toContain('istio_requests_total{');
  });
});
