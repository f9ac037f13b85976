// Tracing and inbound telemetry with real servers and clients on loopback: a client call
// recorded through the CallRecorder API injects trace headers that a real node:http backend
// (wrapped with withServerTelemetry) receives; the backend's server span continues the
// trace under the attempt span; the server reports reporter="destination" metrics (scraped
// from the Prometheus exporter) and access log lines; a client that resets mid-response is
// DC; mTLS with Istio's SPIFFE certificates is mutual_tls with the peer's principal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as http2Connect, createServer as createHttp2Server } from 'node:http2';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { context, metrics, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeshTelemetry } from '@meshlet/core';
import { withServerTelemetry } from '@meshlet/http';
import type { NodeConfig } from '@meshlet/xds-client';

const SERVER_NODE: NodeConfig = {
  id: 'sidecar~127.0.0.1~backend-v1-xyz.default~default.svc.cluster.local',
  cluster: '',
  locality: { region: '', zone: '', sub_zone: '' },
  metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'backend-v1', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'backend', version: 'v1' } },
};

interface Seen {
  headers: IncomingHttpHeaders;
  activeSpanId: string | undefined;
  body: string;
}

const certs = fileURLToPath(new URL('../../shared/fixtures/istio/certs/', import.meta.url));

describe('tracing and server telemetry over real HTTP', () => {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const serverLog: string[] = [];
  let logWaiters: Array<() => void> = [];
  const seen: Seen[] = [];
  let client: MeshTelemetry;
  let serverTelemetry: MeshTelemetry;
  let backend: Server;
  let port: number;
  let scrape: Server;
  let scrapeUrl: string;

  function handler(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ headers: req.headers, activeSpanId: trace.getActiveSpan()?.spanContext().spanId, body });
      if (req.url === '/hang') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        return; // never ends: the client resets
      }
      res.writeHead(req.url === '/fail' ? 503 : 201, { 'content-type': 'text/plain' });
      res.write('hello ');
      res.end(Buffer.from('world'));
    });
  }

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(tracerProvider);
    metrics.setGlobalMeterProvider(meterProvider);
    client = new MeshTelemetry({ propagation: ['tracecontext', 'b3multi'] });
    serverTelemetry = new MeshTelemetry({
      node: SERVER_NODE,
      propagation: ['tracecontext', 'b3multi'],
      accessLog: {
        write: (l) => {
          serverLog.push(l);
          for (const w of logWaiters.splice(0)) w();
        },
      },
    });
    backend = createServer(withServerTelemetry(handler, { telemetry: serverTelemetry, service: 'backend.default.svc.cluster.local' }));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    port = (backend.address() as AddressInfo).port;
    scrape = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => scrape.listen(0, '127.0.0.1', resolve));
    scrapeUrl = `http://127.0.0.1:${(scrape.address() as AddressInfo).port}/metrics`;
  });

  afterAll(async () => {
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
    await new Promise<void>((resolve) => scrape.close(() => resolve()));
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
    trace.disable();
    metrics.disable();
    context.disable();
  });

  /** The next server access log line (the server ends its call after the client has its response). */
  function nextServerLog(count: number): Promise<void> {
    if (serverLog.length >= count) return Promise.resolve();
    return new Promise((resolve) => logWaiters.push(() => (serverLog.length >= count ? resolve() : void nextServerLog(count).then(resolve))));
  }

  /** A client call recorded as the mesh would: one recorder, one span per attempt, trace headers per attempt. */
  async function clientCall(path: string, attempts: number): Promise<{ status: number; body: string }> {
    const r = client.startCall({ reporter: 'source', protocol: 'http', method: 'POST', path, authority: `127.0.0.1:${port}` })!;
    expect(r).toBeDefined();
    r.route('outbound|80||backend.default.svc.cluster.local');
    let last = { status: 0, body: '' };
    for (let i = 0; i < attempts; i++) {
      r.attempt(`127.0.0.1:${port}`);
      const headers: Record<string, string> = {};
      r.injectTraceHeaders((k, v) => (headers[k] = v));
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: 'ping' });
      r.requestBytes(4);
      last = { status: res.status, body: await res.text() };
      r.responseBytes(Buffer.byteLength(last.body));
      if (i < attempts - 1) r.attemptEnd({ status: res.status });
    }
    r.end({ status: last.status, flags: last.status >= 500 && attempts > 1 ? 'URX' : '-' });
    return last;
  }

  it('propagates traceparent and B3 per attempt; the server span is the attempt span\'s child and active in the handler', async () => {
    const before = serverLog.length;
    const res = await clientCall('/ok', 1);
    expect(res).toEqual({ status: 201, body: 'hello world' });
    await nextServerLog(before + 1);
    const got = seen.at(-1)!;
    const finished = spans.getFinishedSpans();
    const attempt = finished.find((s) => s.kind === SpanKind.CLIENT && s.attributes['meshlet.attempt'] === 1)!;
    const call = finished.find((s) => s.kind === SpanKind.CLIENT && s.attributes['upstream_cluster'] !== undefined && s !== attempt && s.spanContext().traceId === attempt.spanContext().traceId)!;
    const server = finished.find((s) => s.kind === SpanKind.SERVER)!;
    const { traceId, spanId } = attempt.spanContext();
    expect(got.headers['traceparent']).toBe(`00-${traceId}-${spanId}-01`);
    expect(got.headers['x-b3-traceid']).toBe(traceId);
    expect(got.headers['x-b3-spanid']).toBe(spanId);
    expect(got.headers['x-b3-sampled']).toBe('1');
    expect(attempt.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    expect(server.spanContext().traceId).toBe(traceId);
    expect(server.parentSpanContext?.spanId).toBe(spanId);
    expect(got.activeSpanId).toBe(server.spanContext().spanId);
    expect(server.attributes['http.response.status_code']).toBe(201);
    expect(call.attributes['http.response.status_code']).toBe(201);
    expect(call.attributes['response_flags']).toBe('-');
  });

  it('a retried call has one span per attempt, each sent with its own span id', async () => {
    spans.reset();
    const before = seen.length;
    const res = await clientCall('/fail', 3);
    expect(res.status).toBe(503);
    const attempts = spans.getFinishedSpans().filter((s) => s.attributes['meshlet.attempt'] !== undefined);
    expect(attempts.map((s) => s.attributes['http.request.resend_count'])).toEqual([undefined, 1, 2]);
    expect(attempts.map((s) => [s.attributes['http.response.status_code'], s.status.code])).toEqual([
      [503, 2],
      [503, 2],
      [503, 2],
    ]);
    const sent = seen.slice(before).map((s) => String(s.headers['traceparent']).split('-')[2]);
    expect(sent).toEqual(attempts.map((s) => s.spanContext().spanId));
    const call = spans.getFinishedSpans().find((s) => s.attributes['meshlet.attempts'] === 3 && s.kind === SpanKind.CLIENT && s.attributes['meshlet.attempt'] === undefined) as ReadableSpan;
    expect(call.status.code).toBe(2); // ERROR
    expect(call.status.message).toBe('URX');
  });

  it('the server reports reporter="destination" metrics and access log lines', async () => {
    await nextServerLog(4);
    const text = await (await fetch(scrapeUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes('response_code="201"'))!;
    expect(line).toBeDefined();
    for (const label of [
      'source_workload="unknown"',
      'source_canonical_revision="latest"',
      'source_principal="unknown"',
      'destination_workload="backend-v1"',
      'destination_workload_namespace="default"',
      'destination_app="backend"',
      'destination_version="v1"',
      'destination_service="backend.default.svc.cluster.local"',
      'destination_service_name="backend"',
      'destination_service_namespace="default"',
      'destination_canonical_service="backend"',
      'destination_cluster="Kubernetes"',
      'request_protocol="http"',
      'response_flags="-"',
      'connection_security_policy="none"',
    ]) {
      expect(line).toContain(label);
    }
    expect(line.endsWith(' 1')).toBe(true);
    expect(text).toMatch(/istio_requests_total\{[^}]*reporter="destination"[^}]*response_code="503"[^}]*\} 3/);
    expect(text).toMatch(/istio_request_bytes_sum\{[^}]*reporter="destination"[^}]*response_code="201"[^}]*\} 4/);
    expect(text).toMatch(/istio_response_bytes_sum\{[^}]*reporter="destination"[^}]*response_code="201"[^}]*\} 11/);
    const first = JSON.parse(serverLog[0]!);
    expect(first).toMatchObject({ reporter: 'destination', method: 'POST', path: '/ok', response_code: 201, response_flags: '-', bytes_received: 4, bytes_sent: 11 });
    expect(first.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('Istio metadata exchange over real HTTP: each side names the other\'s workload', async () => {
    const clientNode: NodeConfig = {
      id: 'sidecar~127.0.0.1~frontend-v3-abc.shop~shop.svc.cluster.local',
      cluster: '',
      locality: { region: '', zone: '', sub_zone: '' },
      metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'frontend-v3', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'frontend', version: 'v3' } },
    };
    const mxClient = new MeshTelemetry({ node: clientNode, prometheus: true });
    const before = serverLog.length;
    const r = mxClient.startCall({ reporter: 'source', protocol: 'http', method: 'GET', path: '/ok', authority: `127.0.0.1:${port}` })!;
    r.route('outbound|80||backend.default.svc.cluster.local');
    r.attempt(`127.0.0.1:${port}`);
    const headers: Record<string, string> = {};
    r.injectHeaders((k, v) => (headers[k] = v));
    const res = await fetch(`http://127.0.0.1:${port}/ok`, { headers });
    await res.text();
    r.receivedHeaders((name) => res.headers.get(name) ?? undefined);
    r.end({ status: res.status });
    expect(res.headers.get('x-envoy-peer-metadata-id')).toBe(SERVER_NODE.id);
    expect(mxClient.prometheusText()).toContain(
      'destination_workload="backend-v1",destination_workload_namespace="default",destination_principal="unknown",destination_app="backend",destination_version="v1"',
    );
    await nextServerLog(before + 1);
    const text = await (await fetch(scrapeUrl)).text();
    expect(text).toMatch(/istio_requests_total\{reporter="destination",source_workload="frontend-v3",source_canonical_service="frontend",source_canonical_revision="v3",source_workload_namespace="shop",source_principal="unknown",source_app="frontend",source_version="v3",source_cluster="Kubernetes",[^}]*\} 1/);
  });

  it('a client that resets mid-response is DC', async () => {
    const before = serverLog.length;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/hang', method: 'GET' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    await nextServerLog(before + 1);
    expect(JSON.parse(serverLog.at(-1)!)).toMatchObject({ path: '/hang', response_code: 200, response_flags: 'DC', bytes_sent: 7 });
  });

  it('node:http2\'s compatibility API, with a gRPC status in the trailers', async () => {
    const h2Telemetry = new MeshTelemetry({ node: SERVER_NODE, prometheus: true, now: () => 0 });
    const server = createHttp2Server(
      withServerTelemetry(
        (req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/grpc' });
            res.addTrailers({ 'grpc-status': '5', 'grpc-message': 'not found' });
            res.end(Buffer.from([0, 0, 0, 0, 0]));
          });
        },
        { telemetry: h2Telemetry },
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/echo.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
        stream.on('trailers', (t) => resolve(t));
        stream.on('error', reject);
        stream.resume();
        // Two messages (bodies of 2 and 1 bytes) split across writes at awkward places.
        stream.write(Buffer.from([0, 0, 0]));
        stream.write(Buffer.from([0, 2, 8, 1, 0, 0]));
        stream.end(Buffer.from([0, 0, 1, 9]));
      });
      expect(trailers['grpc-status']).toBe('5');
      while (!h2Telemetry.prometheusText()!.includes('istio_requests_total{')) await new Promise((r) => setImmediate(r));
      const text = h2Telemetry.prometheusText()!;
      expect(text).toMatch(/istio_requests_total\{reporter="destination",[^}]*destination_service="127\.0\.0\.1",[^}]*request_protocol="grpc",response_code="200",grpc_response_status="5",response_flags="-",connection_security_policy="none"\} 1/);
      expect(text).toMatch(/istio_request_bytes_sum\{[^}]*\} 13\n/);
      expect(text).toMatch(/istio_response_bytes_sum\{[^}]*\} 5\n/);
      expect(text).toMatch(/istio_request_messages_total\{[^}]*\} 2\n/);
      expect(text).toMatch(/istio_response_messages_total\{[^}]*\} 1\n/);
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('mTLS with SPIFFE certificates is mutual_tls, with the peer principal and its namespace', async () => {
    const key = readFileSync(`${certs}key.pem`);
    const cert = readFileSync(`${certs}cert-chain.pem`);
    const ca = readFileSync(`${certs}root-cert.pem`);
    const tlsLog: string[] = [];
    const tlsTelemetry = new MeshTelemetry({ node: SERVER_NODE, prometheus: true, accessLog: { write: (l) => tlsLog.push(l) } });
    const server = createHttpsServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, withServerTelemetry((_req, res) => res.end('secure'), { telemetry: tlsTelemetry }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const tlsPort = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: tlsPort, path: '/', key, cert, ca, checkServerIdentity: () => undefined, headers: { host: 'backend.default.svc.cluster.local' } },
          (res) => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (b += c));
            res.on('end', () => resolve(b));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(body).toBe('secure');
      while (tlsLog.length === 0) await new Promise((r) => setImmediate(r));
      const text = tlsTelemetry.prometheusText()!;
      expect(text).toContain('connection_security_policy="mutual_tls"');
      expect(text).toContain('source_principal="spiffe://cluster.local/ns/default/sa/default"');
      expect(text).toContain('source_workload_namespace="default"');
      expect(text).toContain('destination_principal="spiffe://cluster.local/ns/default/sa/default"');
      expect(text).toContain('destination_service="backend.default.svc.cluster.local"');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
