// Telemetry of real calls through MeshAgent (issue 6): a real MeterProvider with the
// Prometheus exporter, scraped over HTTP after traffic to real backends on loopback;
// the response codes and Envoy flags of successes, 5xx, fault aborts (FI), breaker
// overflow (UO), exhausted retries (URX), timeouts (UT), no route (NR) and pass-through;
// trace headers seen by the backend; the access log's lines.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Agent, Pool, request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { createMesh, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { parseExposition } from './helpers/prometheus-exposition.js';

const HOST = 'reviews.bookinfo.svc.cluster.local';
const CLUSTER = `outbound|80||${HOST}`;
const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

describe('MeshAgent telemetry: Istio metrics, traces and access log of real calls', () => {
  let cp: ControlPlane;
  let backend: Server;
  let outside: Server;
  let scrapeServer: Server;
  let exporter: PrometheusExporter;
  let provider: MeterProvider;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const log: string[] = [];
  const seenTraceparent: string[] = [];
  /** Istio's metadata exchange headers as each server saw them: [id, value] (undefined when absent). */
  const seenExchange: Array<[string | undefined, string | undefined]> = [];
  const exchangeOf = (req: IncomingMessage) => seenExchange.push([req.headers['x-envoy-peer-metadata-id'] as string | undefined, req.headers['x-envoy-peer-metadata'] as string | undefined]);
  const hanging = new Set<ServerResponse>();
  let scrapeUrl = '';
  let outsidePort = 0;

  beforeAll(async () => {
    exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ readers: [exporter] });
    scrapeServer = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => scrapeServer.listen(0, '127.0.0.1', resolve));
    scrapeUrl = `http://127.0.0.1:${(scrapeServer.address() as AddressInfo).port}/metrics`;

    backend = createServer((req, res) => {
      seenTraceparent.push(String(req.headers['traceparent'] ?? ''));
      exchangeOf(req);
      if (req.url?.startsWith('/e503')) {
        res.writeHead(503);
        res.end('no');
      } else if (req.url?.startsWith('/reset')) {
        req.socket.destroy();
      } else if (req.url?.includes('/hang')) {
        hanging.add(res);
      } else {
        res.end('hello');
      }
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    outside = createServer((req, res) => {
      exchangeOf(req);
      res.end('outside');
    });
    await new Promise<void>((resolve) => outside.listen(0, '127.0.0.1', resolve));
    outsidePort = (outside.address() as AddressInfo).port;

    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [
      listener(`${HOST}:80`, 'rc', {
        http_filters: [
          { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
        ],
      }),
    ]);
    const retry = { retry_on: 'reset,5xx', num_retries: 2, retry_back_off: { base_interval: '0.001s', max_interval: '0.002s' } };
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc',
        virtual_hosts: [
          {
            name: 'reviews',
            domains: [HOST, `${HOST}:80`],
            routes: [
              {
                match: { prefix: '/fault' },
                route: { cluster: CLUSTER },
                typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FAULT, abort: { http_status: 418, percentage: { numerator: 100 } } } },
              },
              { match: { prefix: '/reset' }, route: { cluster: CLUSTER, retry_policy: retry } },
              { match: { prefix: '/hang' }, route: { cluster: CLUSTER, timeout: '0.2s' } },
              { match: { prefix: '/busy' }, route: { cluster: 'busy' } },
              { match: { prefix: '/' }, route: { cluster: CLUSTER } },
            ],
          },
        ],
      },
    ]);
    const port = (backend.address() as AddressInfo).port;
    cp.setResources(TYPE_URLS.cluster, [
      edsCluster(CLUSTER, {
        metadata: { filter_metadata: { istio: { services: [{ host: HOST, name: 'reviews', namespace: 'bookinfo' }] } } },
      }),
      edsCluster('busy', { circuit_breakers: { thresholds: [{ max_requests: 1 }] } }),
    ]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints(CLUSTER, [['127.0.0.1', port]]), endpoints('busy', [['127.0.0.1', port]])]);
    mesh = createMesh({
      bootstrap: {
        xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }] }],
        node: {
          id: 'sidecar~127.0.0.1~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local',
          metadata: { NAMESPACE: 'bookinfo', WORKLOAD_NAME: 'productpage-v1', LABELS: { app: 'productpage', version: 'v1' } },
        },
      },
      telemetry: { meterProvider: provider, tracerProvider, accessLog: { write: (line: string) => log.push(line) } },
    });
    agent = new MeshAgent({ mesh });
  });

  afterAll(async () => {
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    for (const r of hanging) r.destroy();
    backend.closeAllConnections();
    for (const s of [backend, outside, scrapeServer]) await new Promise<void>((resolve) => s.close(() => resolve()));
    await provider.shutdown();
    await tracerProvider.shutdown();
    metrics.disable();
  });

  const call = async (url: string): Promise<number | string> => {
    try {
      const res = await request(url, { dispatcher: agent });
      await res.body.text();
      return res.statusCode;
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  };

  it('reports each outcome with its response code and Envoy flags', async () => {
    const base = `http://${HOST}`;
    expect(await call(`${base}/ok`)).toBe(200);
    expect(await call(`${base}/ok`)).toBe(200);
    expect(await call(`${base}/e503`)).toBe(503);
    expect(await call(`${base}/fault`)).toBe(418);
    expect(await call(`${base}/reset`)).toBe('MESHLET_RETRY_LIMIT_EXCEEDED');
    expect(await call(`${base}/hang`)).toBe('MESHLET_UPSTREAM_TIMEOUT');
    const blocked = call(`${base}/hang/2`);
    expect(await call(`http://127.0.0.1:${outsidePort}/x`)).toBe(200);
    await blocked;

    const text = await (await fetch(scrapeUrl)).text();
    const samples = parseExposition(text).samples;
    const total = samples.filter((s) => s.name === 'istio_requests_total');
    const count = (code: string, flags: string, service = HOST): number =>
      total.filter((s) => s.labels['response_code'] === code && s.labels['response_flags'] === flags && s.labels['destination_service'] === service).reduce((n, s) => n + s.value, 0);
    expect(count('200', '-')).toBe(2);
    expect(count('503', '-')).toBe(1);
    expect(count('418', 'FI')).toBe(1);
    expect(count('503', 'URX')).toBe(1);
    expect(count('504', 'UT')).toBe(2);
    const ok = total.find((s) => s.labels['response_code'] === '200' && s.labels['destination_service'] === HOST)!;
    expect(ok.labels).toMatchObject({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_workload_namespace: 'bookinfo',
      source_app: 'productpage',
      destination_service_name: 'reviews',
      destination_service_namespace: 'bookinfo',
      request_protocol: 'http',
    });
    // Pass-through traffic is reported against Istio's PassthroughCluster.
    expect(total.some((s) => s.labels['response_code'] === '200' && s.labels['destination_service'] !== HOST)).toBe(true);
    // Envoy's default buckets on the duration histogram.
    const buckets = samples.filter((s) => s.name === 'istio_request_duration_milliseconds_bucket').map((s) => s.labels['le']);
    expect(buckets).toContain('0.5');
    expect(buckets).toContain('3600000');
  });

  it('reports a breaker overflow as 503 UO', async () => {
    const first = call(`http://${HOST}/busy/hang`);
    await new Promise((r) => setTimeout(r, 50));
    expect(await call(`http://${HOST}/busy/x`)).toBe('MESHLET_OVERFLOW');
    for (const r of hanging) if (!r.writableEnded) r.end('late');
    expect(await first).toBe(200);
    const samples = parseExposition(await (await fetch(scrapeUrl)).text()).samples;
    const uo = samples.filter((s) => s.name === 'istio_requests_total' && s.labels['response_flags'] === 'UO');
    expect(uo.reduce((n, s) => n + s.value, 0)).toBe(1);
    expect(uo[0]!.labels['response_code']).toBe('503');
  });

  it('counts request body bytes (routed and pass-through) in istio_request_bytes', async () => {
    const bytesSum = async (): Promise<number> =>
      parseExposition(await (await fetch(scrapeUrl)).text())
        .samples.filter((s) => s.name === 'istio_request_bytes_sum')
        .reduce((n, s) => n + s.value, 0);
    const before = await bytesSum();
    const post = async (url: string, body: string | Buffer): Promise<void> => {
      const res = await request(url, { dispatcher: agent, method: 'POST', body });
      await res.body.text();
      expect(res.statusCode).toBe(200);
    };
    await post(`http://${HOST}/upload`, Buffer.alloc(1000, 1));
    await post(`http://${HOST}/upload`, 'é'.repeat(100)); // 200 bytes in UTF-8
    await post(`http://127.0.0.1:${outsidePort}/upload`, 'x'.repeat(77));
    expect((await bytesSum()) - before).toBe(1277);
  });

  it('counts request bytes through composed dispatchers too (whose handler wrapper drops onBodySent)', async () => {
    const bytesSum = async (): Promise<number> =>
      parseExposition(await (await fetch(scrapeUrl)).text())
        .samples.filter((s) => s.name === 'istio_request_bytes_sum')
        .reduce((n, s) => n + s.value, 0);
    const composed = new MeshAgent({
      mesh,
      poolFactory: (origin) => new Pool(origin).compose((dispatch) => dispatch),
      passthrough: new Agent().compose((dispatch) => dispatch),
    });
    try {
      const before = await bytesSum();
      for (const url of [`http://${HOST}/upload`, `http://127.0.0.1:${outsidePort}/upload`]) {
        const res = await request(url, { dispatcher: composed, method: 'POST', body: Buffer.alloc(500, 2) });
        await res.body.text();
        expect(res.statusCode).toBe(200);
      }
      expect((await bytesSum()) - before).toBe(1000);
    } finally {
      await composed.destroy();
    }
  });

  it('propagates W3C trace context to the backend, one span per call and per attempt', async () => {
    spans.reset();
    seenTraceparent.length = 0;
    expect(await call(`http://${HOST}/traced`)).toBe(200);
    expect(seenTraceparent[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const finished = spans.getFinishedSpans();
    expect(finished.length).toBeGreaterThanOrEqual(2);
    const traceId = seenTraceparent[0]!.split('-')[1];
    expect(finished.every((s) => s.spanContext().traceId === traceId)).toBe(true);
  });

  it("sends Istio's metadata exchange headers to a mesh cluster, not to a pass-through host", async () => {
    seenExchange.length = 0;
    expect(await call(`http://${HOST}/mx`)).toBe(200);
    expect(await call(`http://127.0.0.1:${outsidePort}/mx`)).toBe(200);
    expect(seenExchange).toHaveLength(2);
    const [id, value] = seenExchange[0]!;
    expect(id).toBe('sidecar~127.0.0.1~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local');
    expect(value).toBe(mesh.telemetry.exchange!.value);
    // The value is Istio's: a base64 protobuf Struct naming this workload.
    expect(Buffer.from(value!, 'base64').toString('latin1')).toContain('productpage-v1');
    expect(seenExchange[1]).toEqual([undefined, undefined]);
  });

  it('writes one JSON access log line per call with Envoy fields', () => {
    const lines = log.map((l) => JSON.parse(l) as Record<string, unknown>);
    const urx = lines.find((l) => l['response_flags'] === 'URX')!;
    expect(urx).toBeDefined();
    expect(urx['response_code']).toBe(503);
    expect(urx['upstream_cluster']).toBe(CLUSTER);
    expect(urx['method']).toBe('GET');
    expect(JSON.stringify(urx)).toContain('/reset');
    const ok = lines.find((l) => l['response_code'] === 200 && l['upstream_cluster'] === CLUSTER)!;
    expect(typeof ok['duration']).toBe('number');
    expect(String(ok['upstream_host'])).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});
