// Child process: an HTTP server, and @meshlet/control-plane serving Listeners to it:
// plain.mesh.test:80 (a route to a cluster, nothing else: Envoy's defaults, so its 15 s route
// timeout), policy.mesh.test:80 (the same with a retry policy, per-try and route timeouts,
// circuit breakers and outlier detection configured), and the policy's parts apart:
// retry.mesh.test:80 (the retry policy and route timeout), pertry.mesh.test:80 (the same with a
// per-try timeout) and guard.mesh.test:80 (the breakers and outlier detection). Prints {"address", "port"} when ready.
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { HCM, ROUTER, startBenchBackend } from './bench-backend.mjs';

const { server, port } = await startBenchBackend();
const listener = (name, rc) => ({
  name,
  api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: rc, config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] } },
});
const eds = (name, extra = {}) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN', ...extra });
const cla = (name) => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] });
const cp = new ControlPlane();
cp.setResources(TYPE_URLS.listener, [
  listener('plain.mesh.test:80', 'rc-plain'),
  listener('policy.mesh.test:80', 'rc-policy'),
  listener('retry.mesh.test:80', 'rc-retry'),
  listener('guard.mesh.test:80', 'rc-guard'),
  listener('pertry.mesh.test:80', 'rc-pertry'),
]);
const routeConfigs = [
  { name: 'rc-plain', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'plain' } }] }] },
  {
    name: 'rc-policy',
    virtual_hosts: [
      {
        name: 'v',
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            route: {
              cluster: 'policy',
              timeout: '10s',
              retry_policy: { retry_on: '5xx,reset,connect-failure,refused-stream', num_retries: 2, per_try_timeout: '5s' },
            },
          },
        ],
      },
    ],
  },
];
// The policy's parts apart, to see which one costs what: `retry` (the retry policy and route
// timeout, no per-try timeout, no breakers or outlier detection), `pertry` (the same with the
// per-try timeout) and `guard` (the circuit breakers and outlier detection alone).
const one = (name, cluster, extra = {}) => ({ name, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, ...extra } }] }] });
cp.setResources(TYPE_URLS.routeConfiguration, [
  ...routeConfigs,
  one('rc-retry', 'plain', { timeout: '10s', retry_policy: { retry_on: '5xx,reset,connect-failure,refused-stream', num_retries: 2 } }),
  one('rc-guard', 'policy'),
  one('rc-pertry', 'plain', { timeout: '10s', retry_policy: { retry_on: '5xx,reset,connect-failure,refused-stream', num_retries: 2, per_try_timeout: '5s' } }),
]);
cp.setResources(TYPE_URLS.cluster, [
  eds('plain'),
  eds('policy', {
    circuit_breakers: { thresholds: [{ max_connections: 10000, max_pending_requests: 10000, max_requests: 10000, max_retries: 100 }] },
    outlier_detection: { consecutive_5xx: 5, interval: '10s', base_ejection_time: '30s', max_ejection_percent: 50, enforcing_success_rate: 100 },
  }),
]);
cp.setResources(TYPE_URLS.clusterLoadAssignment, [cla('plain'), cla('policy')]);
const { address } = await cp.start();
process.stdout.write(JSON.stringify({ address, port }) + '\n');
process.on('SIGTERM', async () => {
  await cp.stop();
  server.close();
  process.exit(0);
});
