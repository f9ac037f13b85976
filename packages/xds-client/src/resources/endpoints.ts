// ClusterLoadAssignment → EndpointsResource (endpoint.proto, gRFC A27, A61).
// This is the hottest decoder (a mesh sends thousands of these), so it is one pass
// with no per-field reflection and builds field paths only when it fails.
//
// Locality weights: gRPC's weighted_target ignores a locality whose
// load_balancing_weight is absent or 0 (gRFC A27), while Envoy ignores locality
// weights altogether unless the cluster sets locality_weighted_lb_config. So the
// localities are all kept here, with weight 0 standing for "absent or 0", and each
// consumer applies its own rule; dropping them here would lose Envoy's behaviour.
import type {
  envoy_config_core_v3_Address,
  envoy_config_endpoint_v3_ClusterLoadAssignment,
  envoy_config_endpoint_v3_LbEndpoint,
} from '../generated/pb.js';
import { fail, fractionalPercent, metadata, sub } from './common.js';
import type { DropOverload, Endpoint, EndpointsResource, HealthStatus, LocalityEndpoints, SocketAddress } from './types.js';

const HEALTH = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'] as const;
const UINT32_MAX = 0xffff_ffff;
const MAX_PRIORITY = 128; // endpoint_components.proto: priority lte 128

function address(a: envoy_config_core_v3_Address | null | undefined, path: () => string): SocketAddress {
  if (!a || a.address !== 'socket_address') fail(path(), 'an endpoint needs a socket_address');
  const s = a.socket_address!;
  if (!s.address) fail(`${path()}.socket_address.address`, 'must not be empty');
  if (s.port_specifier !== 'port_value') fail(`${path()}.socket_address.port_value`, 'a numeric port_value is required');
  const port = s.port_value!;
  if (port < 1 || port > 65535) fail(`${path()}.socket_address.port_value`, `port ${port} is out of range [1, 65535]`);
  return { host: s.address, port };
}

function endpoint(lb: envoy_config_endpoint_v3_LbEndpoint, path: () => string): Endpoint {
  if (lb.host_identifier !== 'endpoint') fail(path(), 'lb_endpoint needs an endpoint (endpoint_name is not supported)');
  const e = lb.endpoint!;
  const primary = address(e.address, () => `${path()}.endpoint.address`);
  let addresses: SocketAddress[];
  const extra = e.additional_addresses;
  if (extra.length === 0) {
    addresses = [primary];
  } else {
    addresses = [primary];
    for (let k = 0; k < extra.length; k++) {
      addresses.push(address(extra[k]!.address, () => `${path()}.endpoint.additional_addresses[${k}].address`));
    }
  }
  let weight = 1;
  if (lb.load_balancing_weight) {
    weight = lb.load_balancing_weight.value;
    // endpoint_components.proto: gte 1.
    if (weight < 1) fail(`${path()}.load_balancing_weight`, 'must be at least 1');
  }
  const healthStatus: HealthStatus | undefined = HEALTH[lb.health_status];
  if (healthStatus === undefined) fail(`${path()}.health_status`, `unknown health status ${lb.health_status}`);
  return {
    addresses,
    hostname: e.hostname,
    healthStatus,
    weight,
    metadata: lb.metadata ? metadata(lb.metadata) : undefined,
  };
}

export function parseClusterLoadAssignment(
  cla: envoy_config_endpoint_v3_ClusterLoadAssignment,
  path: string,
): EndpointsResource {
  const priorities: LocalityEndpoints[][] = [];
  const seenLocalities: Set<string>[] = [];
  const seenAddresses = new Set<string>();
  const list = cla.endpoints;
  for (let i = 0; i < list.length; i++) {
    const le = list[i]!;
    const lpath = (): string => `${sub(path, 'endpoints')}[${i}]`;
    const priority = le.priority;
    if (priority > MAX_PRIORITY) fail(`${lpath()}.priority`, `priority ${priority} exceeds ${MAX_PRIORITY}`);
    const loc = le.locality;
    const locality = { region: loc ? loc.region : '', zone: loc ? loc.zone : '', subZone: loc ? loc.sub_zone : '' };
    // gRFC A27: a locality may appear only once within a priority.
    const key = `${locality.region}\u0000${locality.zone}\u0000${locality.subZone}`;
    let seen = seenLocalities[priority];
    if (!seen) seenLocalities[priority] = seen = new Set();
    if (seen.has(key)) {
      fail(`${lpath()}.locality`, `duplicate locality {region: "${locality.region}", zone: "${locality.zone}", sub_zone: "${locality.subZone}"} in priority ${priority}`);
    }
    seen.add(key);
    if (le.lb_config === 'leds_cluster_locality_config') fail(`${lpath()}.leds_cluster_locality_config`, 'LEDS is not supported');
    const lbEndpoints =
      le.lb_config === 'load_balancer_endpoints' && le.lb_endpoints.length === 0
        ? le.load_balancer_endpoints!.lb_endpoints
        : le.lb_endpoints;
    const endpoints: Endpoint[] = new Array(lbEndpoints.length);
    for (let j = 0; j < lbEndpoints.length; j++) {
      const ep = endpoint(lbEndpoints[j]!, () => `${lpath()}.lb_endpoints[${j}]`);
      endpoints[j] = ep;
      // gRFC A61: an address may belong to only one endpoint of the assignment.
      for (let k = 0; k < ep.addresses.length; k++) {
        const a = ep.addresses[k]!;
        const ak = `${a.host}:${a.port}`;
        if (seenAddresses.has(ak)) fail(`${lpath()}.lb_endpoints[${j}]`, `duplicate endpoint address ${ak}`);
        seenAddresses.add(ak);
      }
    }
    const entry: LocalityEndpoints = {
      locality,
      weight: le.load_balancing_weight ? le.load_balancing_weight.value : 0,
      priority,
      endpoints,
      metadata: le.metadata ? metadata(le.metadata) : undefined,
    };
    const bucket = priorities[priority];
    if (bucket) bucket.push(entry);
    else priorities[priority] = [entry];
  }
  // gRFC A27: priorities are 0..N with no gaps, and the locality weights of one
  // priority sum to at most 2^32 - 1.
  for (let p = 0; p < priorities.length; p++) {
    const bucket = priorities[p];
    if (!bucket) fail(sub(path, 'endpoints'), `priority ${p} has no localities but priority ${priorities.length - 1} does (priorities must have no gaps)`);
    let sum = 0;
    for (let k = 0; k < bucket.length; k++) sum += bucket[k]!.weight;
    if (sum > UINT32_MAX) fail(sub(path, 'endpoints'), `the locality weights of priority ${p} sum to ${sum}, above ${UINT32_MAX}`);
  }
  const dropOverloads: DropOverload[] = [];
  let overprovisioningFactor = 140;
  let weightedPriorityHealth = false;
  const policy = cla.policy;
  if (policy) {
    const pp = sub(path, 'policy');
    for (let i = 0; i < policy.drop_overloads.length; i++) {
      const d = policy.drop_overloads[i]!;
      const dp = `${sub(pp, 'drop_overloads')}[${i}]`;
      if (!d.category) fail(sub(dp, 'category'), 'must not be empty');
      dropOverloads.push({ category: d.category, ppm: fractionalPercent(d.drop_percentage, sub(dp, 'drop_percentage')).perMillion });
    }
    if (policy.overprovisioning_factor) {
      overprovisioningFactor = policy.overprovisioning_factor.value;
      if (overprovisioningFactor === 0) fail(sub(pp, 'overprovisioning_factor'), 'must be greater than 0');
    }
    weightedPriorityHealth = policy.weighted_priority_health;
  }
  return { clusterName: cla.cluster_name, priorities, dropOverloads, overprovisioningFactor, weightedPriorityHealth };
}
