#!/usr/bin/env node
// Telemetry, wired the way an application wires it (docs/telemetry.md):
//
//   1. the application sets up OpenTelemetry: a MeterProvider with the Prometheus exporter
//      (and, if it likes, a TracerProvider), registered globally;
//   2. meshlet records Istio's standard metrics on it: reporter="source" for the calls made
//      through meshFetch, reporter="destination" for the requests a server wrapped with
//      withServerTelemetry takes;
//   3. Prometheus (here: this script) scrapes /metrics.
//
// Everything runs in this process on loopback: meshlet's control plane, two "reviews"
// backends (each reporting as its own workload), and a "productpage" client.
//
//   node examples/telemetry.mjs            # print the scraped Istio metrics and exit
//   node examples/telemetry.mjs --serve    # keep serving /metrics until Ctrl-C
import { createServer } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { ControlPlane } from '@meshlet/control-plane';
import { MeshTelemetry } from '@meshlet/core';
import { createMesh, createMeshFetch, withServerTelemetry } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';

const serve = process.argv.includes('--serve');
const step = (text) => console.log(`\n\x1b[1m▶ ${text}\x1b[0m`);

// 1. OpenTelemetry, as the application sets it up. An app would usually let the exporter
// serve on its own port (`new PrometheusExporter({ port: 9464 })`); the example serves the
// exporter's handler on a free port so it never collides with anything.
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
metrics.setGlobalMeterProvider(meterProvider);
const metricsServer = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
await new Promise((resolve) => metricsServer.listen(serve ? 9464 : 0, '127.0.0.1', resolve));
const metricsUrl = `http://127.0.0.1:${metricsServer.address().port}/metrics`;
step(`OpenTelemetry MeterProvider + Prometheus exporter at ${metricsUrl}`);

// 2. Two reviews backends. Each reports its inbound requests as its own workload (in a real
// mesh each is its own process whose bootstrap node names it; here each gets a MeshTelemetry).
const SERVICE = 'reviews.default.svc.cluster.local';
const backends = [];
for (const version of ['v1', 'v2']) {
  const telemetry = new MeshTelemetry({
    node: {
      id: `sidecar~127.0.0.1~reviews-${version}-5c7b.default~default.svc.cluster.local`,
      cluster: '',
      locality: { region: '', zone: '', sub_zone: '' },
      metadata: { NAMESPACE: 'default', WORKLOAD_NAME: `reviews-${version}`, CLUSTER_ID: 'Kubernetes', LABELS: { app: 'reviews', version } },
    },
  });
  const server = createServer(
    withServerTelemetry(
      (req, res) => {
        const status = req.url === '/reviews/broken' ? 503 : 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ version, path: req.url }));
      },
      { telemetry, service: SERVICE },
    ),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  backends.push({ version, server, port: server.address().port });
}

// 3. The control plane: istiod's shapes (Listener host:port, cluster outbound|port||fqdn with
// Istio's cluster metadata, endpoints with Istio's workload metadata).
const cp = new ControlPlane();
const { address } = await cp.start();
const CLUSTER = `outbound|9080||${SERVICE}`;
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
cp.setResources(TYPE_URLS.listener, [
  {
    '@type': TYPE_URLS.listener,
    name: `${SERVICE}:9080`,
    api_listener: {
      api_listener: {
        '@type': HCM,
        rds: { route_config_name: 'reviews-routes', config_source: { ads: {}, resource_api_version: 'V3' } },
        http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
      },
    },
  },
]);
cp.setResources(TYPE_URLS.routeConfiguration, [
  {
    '@type': TYPE_URLS.routeConfiguration,
    name: 'reviews-routes',
    virtual_hosts: [{ name: 'reviews', domains: [`${SERVICE}:9080`, 'reviews:9080'], routes: [{ match: { prefix: '/' }, route: { cluster: CLUSTER } }] }],
  },
]);
cp.setResources(TYPE_URLS.cluster, [
  {
    '@type': TYPE_URLS.cluster,
    name: CLUSTER,
    type: 'EDS',
    eds_cluster_config: { service_name: CLUSTER, eds_config: { ads: {}, resource_api_version: 'V3' } },
    lb_policy: 'ROUND_ROBIN',
    metadata: { filter_metadata: { istio: { services: [{ host: SERVICE, name: 'reviews', namespace: 'default' }] } } },
  },
]);
cp.setResources(TYPE_URLS.clusterLoadAssignment, [
  {
    '@type': TYPE_URLS.clusterLoadAssignment,
    cluster_name: CLUSTER,
    endpoints: [
      {
        locality: { region: 'r1', zone: 'z1' },
        lb_endpoints: backends.map((b) => ({
          endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: b.port } } },
          health_status: 'HEALTHY',
          metadata: { filter_metadata: { istio: { workload: `reviews-${b.version};default;reviews;${b.version};Kubernetes` } } },
        })),
      },
    ],
  },
]);
step(`control plane on ${address}: ${SERVICE}:9080 → ${CLUSTER} → ${backends.length} endpoints`);

// 4. The productpage client: its bootstrap node is its workload (source_* labels). The mesh
// records on the global MeterProvider registered above; the access log goes to stdout.
const mesh = createMesh({
  bootstrap: {
    xds_servers: [{ server_uri: address, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: 'sidecar~127.0.0.1~productpage-v1-6b746f.default~default.svc.cluster.local',
      metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'productpage-v1', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'productpage', version: 'v1' } },
    },
  },
  telemetry: { accessLog: { write: (line) => process.stdout.write(`  access log: ${line}`) } },
});
const fetch = createMeshFetch({ mesh });
step(`6 calls from productpage through meshFetch to http://${SERVICE}:9080`);
for (const path of ['/reviews/1', '/reviews/2', '/reviews/3', '/reviews/4', '/reviews/broken', '/reviews/5']) {
  const res = await fetch(`http://${SERVICE}:9080${path}`);
  console.log(`  GET ${path} → ${res.status} ${await res.text()}`);
}

// 5. Scrape, as Prometheus would, and show the Istio series.
step(`curl ${metricsUrl} | grep istio_requests_total`);
const text = await (await globalThis.fetch(metricsUrl)).text();
const short = (line) =>
  line
    .replace(/,?otel_scope_name="[^"]*"/, '')
    .replace(/(source|destination)_(canonical_revision|cluster|app|version|principal)="[^"]*",?/g, '')
    .replace(/,}/, '}');
const requests = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
for (const line of requests) console.log(`  ${short(line)}`);
if (!requests.some((l) => l.includes('reporter="source"'))) {
  console.log('  (no reporter="source" series: this build of @meshlet/http does not record client calls yet)');
}
const buckets = text.split('\n').filter((l) => l.startsWith('istio_request_duration_milliseconds_bucket{') && l.includes('reporter="destination"')).length;
console.log(`  … and ${buckets} istio_request_duration_milliseconds_bucket lines (Envoy's 19 buckets + Inf per series), istio_request_bytes, istio_response_bytes`);

if (serve) {
  step(`serving ${metricsUrl} until Ctrl-C`);
  await new Promise((resolve) => process.once('SIGINT', resolve));
}
mesh.close();
await fetch.agent.close?.();
for (const b of backends) {
  b.server.closeAllConnections();
  b.server.close();
}
metricsServer.close();
await meterProvider.shutdown();
await cp.stop();
