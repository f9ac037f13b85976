// The scale scenario shared by the benchmarks: one Listener, one route table with one
// virtual host of N routes, each to its own EDS cluster of E endpoints. Route 0's
// cluster points at a real backend (so an RPC can complete); the rest at closed ports
// on loopback addresses (127.1.x.y), never anything off the machine.
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TARGET = 'scale.meshlet.test:8080';

export function scaleResources(n, endpointsPerCluster, realBackendPort) {
  const clusterName = (i) => `outbound|8080|c${i}|scale.meshlet.test`;
  const listener = {
    name: TARGET,
    api_listener: {
      api_listener: {
        '@type': HCM,
        rds: { route_config_name: 'rc-scale', config_source: { ads: {} } },
        http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }],
      },
    },
  };
  const routes = [];
  for (let i = 1; i < n; i++) routes.push({ match: { path: `/meshlet.test.EchoService/M${i}` }, route: { cluster: clusterName(i) } });
  // The catch-all last: route 0 (any other path, Echo among them) goes to the real backend.
  routes.push({ match: { prefix: '' }, route: { cluster: clusterName(0) } });
  const routeConfig = { name: 'rc-scale', virtual_hosts: [{ name: 'scale', domains: [TARGET], routes }] };
  const clusters = [];
  const clas = [];
  for (let i = 0; i < n; i++) {
    clusters.push({ name: clusterName(i), type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' });
    const lb = [];
    for (let j = 0; j < endpointsPerCluster; j++) {
      const port = i === 0 && j === 0 ? realBackendPort : 1;
      const host = i === 0 && j === 0 ? '127.0.0.1' : `127.1.${(i >> 8) & 255}.${i & 255}`;
      lb.push({ endpoint: { address: { socket_address: { address: host, port_value: port === 1 ? 20000 + j : port } } } });
    }
    clas.push({ cluster_name: clusterName(i), endpoints: [{ locality: { zone: 'z1' }, load_balancing_weight: 1, lb_endpoints: i === 0 ? lb.slice(0, 1) : lb }] });
  }
  return { listener, routeConfig, clusters, clas };
}
