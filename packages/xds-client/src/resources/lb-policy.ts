// Load-balancing policy configs: a registry of parsers keyed by the type URL of a
// load_balancing_policy entry (gRFC A52), the built-in Envoy policies, and the
// conversion of the legacy lb_policy enum (+ its *_lb_config) into the same form.
import type {
  envoy_config_cluster_v3_Cluster,
  envoy_config_cluster_v3_LoadBalancingPolicy_Policy,
  envoy_extensions_load_balancing_policies_client_side_weighted_round_robin_v3_ClientSideWeightedRoundRobin as Wrr,
  envoy_extensions_load_balancing_policies_least_request_v3_LeastRequest,
  envoy_extensions_load_balancing_policies_maglev_v3_Maglev,
  envoy_extensions_load_balancing_policies_pick_first_v3_PickFirst,
  envoy_extensions_load_balancing_policies_ring_hash_v3_RingHash,
  envoy_extensions_load_balancing_policies_wrr_locality_v3_WrrLocality,
  envoy_config_core_v3_RuntimeDouble,
  google_protobuf_UInt64Value,
} from '../generated/pb.js';
import { durationMs, fail, sub, u32 } from './common.js';
import { runParser, typedConfigMessage, unwrapAny, type TypedConfig } from './typed-config.js';
import type {
  LbPolicyConfig,
  LeastRequestConfig,
  MaglevConfig,
  PickFirstConfig,
  RingHashConfig,
  WeightedRoundRobinConfig,
  WrrLocalityConfig,
} from './types.js';

export interface LbPolicyParseContext {
  /**
   * Parse a nested policy list (a wrapping policy's child, as in wrr_locality):
   * the supported entries in order; none supported is an error.
   */
  parsePolicies(policies: readonly envoy_config_cluster_v3_LoadBalancingPolicy_Policy[], path: string): LbPolicyConfig[];
}

/**
 * Parse one policy's config. Throw (a ResourceError with a path relative to the
 * config, or any Error) to reject the cluster; the returned name is what the
 * consumer's LB registry is keyed by.
 */
export type LbPolicyParser = (config: TypedConfig, context: LbPolicyParseContext) => LbPolicyConfig;

const registry = new Map<string, LbPolicyParser>();

export function registerLbPolicyParser(typeUrl: string, parser: LbPolicyParser): void {
  registry.set(typeUrl, parser);
}

/** gRFC A52: nesting deeper than this is rejected. */
const MAX_DEPTH = 16;

function parsePolicies(
  policies: readonly envoy_config_cluster_v3_LoadBalancingPolicy_Policy[],
  path: string,
  depth: number,
): LbPolicyConfig[] {
  if (depth > MAX_DEPTH) fail(path, `load balancing policy nesting exceeds ${MAX_DEPTH} levels`);
  const out: LbPolicyConfig[] = [];
  const context: LbPolicyParseContext = { parsePolicies: (list, p) => parsePolicies(list, p, depth + 1) };
  const seen: string[] = [];
  for (let i = 0; i < policies.length; i++) {
    const p = `${path}[${i}].typed_extension_config`;
    const ext = policies[i]!.typed_extension_config;
    if (!ext) fail(p, 'is required');
    const config = unwrapAny(ext.typed_config, sub(p, 'typed_config'));
    const parser = registry.get(config.typeUrl);
    // gRFC A52: unsupported entries are skipped; the first supported one wins.
    if (!parser) {
      seen.push(config.typeUrl);
      continue;
    }
    out.push(runParser(() => parser(config, context), sub(p, 'typed_config')));
  }
  if (out.length === 0) {
    fail(path, `no supported load balancing policy${seen.length ? ` (got ${seen.join(', ')})` : ''}`);
  }
  return out;
}

// ---------------------------------------------------------------- built-ins

const PREFIX = 'type.googleapis.com/envoy.extensions.load_balancing_policies.';
const MAX_RING_SIZE = 8_388_608; // cluster.proto / ring_hash.proto: lte 8M
const MAX_MAGLEV_TABLE = 5_000_011; // maglev.proto: lte 5000011

function ringHash(min: google_protobuf_UInt64Value | null | undefined, max: google_protobuf_UInt64Value | null | undefined, xxHash: boolean, hashPath: string): RingHashConfig {
  // gRFC A42: only XX_HASH is supported.
  if (!xxHash) fail(hashPath, 'only XX_HASH is supported');
  const minRingSize = min ? min.value : 1024;
  const maxRingSize = max ? max.value : MAX_RING_SIZE;
  if (minRingSize > MAX_RING_SIZE) fail('minimum_ring_size', `${minRingSize} exceeds ${MAX_RING_SIZE}`);
  if (maxRingSize > MAX_RING_SIZE) fail('maximum_ring_size', `${maxRingSize} exceeds ${MAX_RING_SIZE}`);
  if (minRingSize > maxRingSize) fail('minimum_ring_size', `minimum_ring_size ${minRingSize} is greater than maximum_ring_size ${maxRingSize}`);
  return { minRingSize, maxRingSize, hashFunction: 'XX_HASH' };
}

function leastRequest(
  choiceCount: { value: number } | null | undefined,
  bias: envoy_config_core_v3_RuntimeDouble | null | undefined,
): LeastRequestConfig {
  const c = u32(choiceCount, 2);
  if (c < 2) fail('choice_count', `must be at least 2, got ${c}`);
  const activeRequestBias = bias ? bias.default_value : 1.0;
  if (!(activeRequestBias >= 0)) fail('active_request_bias', `must be non-negative, got ${activeRequestBias}`);
  return { choiceCount: c, activeRequestBias };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function maglev(tableSize: google_protobuf_UInt64Value | null | undefined): MaglevConfig {
  const size = tableSize ? tableSize.value : 65537;
  if (size > MAX_MAGLEV_TABLE) fail('table_size', `${size} exceeds ${MAX_MAGLEV_TABLE}`);
  if (!isPrime(size)) fail('table_size', `${size} is not a prime number`);
  return { tableSize: size };
}

const WRR_MIN_UPDATE_PERIOD = 100; // gRFC A58: weight_update_period is at least 100 ms

registerLbPolicyParser(`${PREFIX}round_robin.v3.RoundRobin`, () => ({ name: 'round_robin', config: {} }));
registerLbPolicyParser(`${PREFIX}random.v3.Random`, () => ({ name: 'random', config: {} }));
registerLbPolicyParser(`${PREFIX}least_request.v3.LeastRequest`, (tc) => {
  const m = typedConfigMessage<envoy_extensions_load_balancing_policies_least_request_v3_LeastRequest>(
    'envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest', tc, '');
  return { name: 'least_request', config: leastRequest(m.choice_count, m.active_request_bias) };
});
registerLbPolicyParser(`${PREFIX}ring_hash.v3.RingHash`, (tc) => {
  const m = typedConfigMessage<envoy_extensions_load_balancing_policies_ring_hash_v3_RingHash>(
    'envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash', tc, '');
  // ring_hash.proto: DEFAULT_HASH (0) is XX_HASH (1).
  return { name: 'ring_hash', config: ringHash(m.minimum_ring_size, m.maximum_ring_size, m.hash_function <= 1, 'hash_function') };
});
registerLbPolicyParser(`${PREFIX}maglev.v3.Maglev`, (tc) => {
  const m = typedConfigMessage<envoy_extensions_load_balancing_policies_maglev_v3_Maglev>(
    'envoy.extensions.load_balancing_policies.maglev.v3.Maglev', tc, '');
  return { name: 'maglev', config: maglev(m.table_size) };
});
registerLbPolicyParser(`${PREFIX}pick_first.v3.PickFirst`, (tc) => {
  const m = typedConfigMessage<envoy_extensions_load_balancing_policies_pick_first_v3_PickFirst>(
    'envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst', tc, '');
  const config: PickFirstConfig = { shuffleAddressList: m.shuffle_address_list };
  return { name: 'pick_first', config };
});
registerLbPolicyParser(`${PREFIX}wrr_locality.v3.WrrLocality`, (tc, context) => {
  const m = typedConfigMessage<envoy_extensions_load_balancing_policies_wrr_locality_v3_WrrLocality>(
    'envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality', tc, '');
  if (!m.endpoint_picking_policy) fail('endpoint_picking_policy', 'is required');
  const config: WrrLocalityConfig = {
    childPolicy: context.parsePolicies(m.endpoint_picking_policy.policies, 'endpoint_picking_policy.policies'),
  };
  return { name: 'wrr_locality', config };
});
registerLbPolicyParser(`${PREFIX}client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin`, (tc) => {
  const m = typedConfigMessage<Wrr>(
    'envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin', tc, '');
  const penalty = m.error_utilization_penalty ? m.error_utilization_penalty.value : 1.0;
  if (!(penalty >= 0)) fail('error_utilization_penalty', `must be non-negative, got ${penalty}`);
  const config: WeightedRoundRobinConfig = {
    enableOobLoadReport: m.enable_oob_load_report ? m.enable_oob_load_report.value : false,
    oobReportingPeriod: durationMs(m.oob_reporting_period, 'oob_reporting_period') ?? 10_000,
    blackoutPeriod: durationMs(m.blackout_period, 'blackout_period') ?? 10_000,
    weightExpirationPeriod: durationMs(m.weight_expiration_period, 'weight_expiration_period') ?? 180_000,
    weightUpdatePeriod: Math.max(WRR_MIN_UPDATE_PERIOD, durationMs(m.weight_update_period, 'weight_update_period') ?? 1_000),
    errorUtilizationPenalty: penalty,
  };
  return { name: 'client_side_weighted_round_robin', config };
});

// ---------------------------------------------------------------- the cluster's policy

const LEGACY = { ROUND_ROBIN: 0, LEAST_REQUEST: 1, RING_HASH: 2, RANDOM: 3, MAGLEV: 5, CLUSTER_PROVIDED: 6, LOAD_BALANCING_POLICY_CONFIG: 7 };

/**
 * The cluster's LB policy as an ordered list of supported policies.
 * load_balancing_policy supersedes lb_policy (cluster.proto); the legacy enum maps
 * to the same policy names, each with its *_lb_config (gRFC A42, A48).
 */
export function parseClusterLbPolicy(c: envoy_config_cluster_v3_Cluster): LbPolicyConfig[] {
  if (c.load_balancing_policy) {
    return parsePolicies(c.load_balancing_policy.policies, 'load_balancing_policy.policies', 1);
  }
  const within = <T>(path: string, f: () => T): T => runParser(f, path);
  switch (c.lb_policy) {
    case LEGACY.ROUND_ROBIN:
      return [{ name: 'round_robin', config: {} }];
    case LEGACY.RANDOM:
      return [{ name: 'random', config: {} }];
    case LEGACY.LEAST_REQUEST: {
      const l = c.least_request_lb_config;
      return [{ name: 'least_request', config: within('least_request_lb_config', () => leastRequest(l?.choice_count, l?.active_request_bias)) }];
    }
    case LEGACY.RING_HASH: {
      const r = c.ring_hash_lb_config;
      // Cluster.RingHashLbConfig.HashFunction: XX_HASH = 0, MURMUR_HASH_2 = 1.
      return [{
        name: 'ring_hash',
        config: within('ring_hash_lb_config', () => ringHash(r?.minimum_ring_size, r?.maximum_ring_size, (r?.hash_function ?? 0) === 0, 'hash_function')),
      }];
    }
    case LEGACY.MAGLEV:
      return [{ name: 'maglev', config: within('maglev_lb_config', () => maglev(c.maglev_lb_config?.table_size)) }];
    case LEGACY.LOAD_BALANCING_POLICY_CONFIG:
      fail('load_balancing_policy', 'lb_policy LOAD_BALANCING_POLICY_CONFIG needs load_balancing_policy');
    default:
      fail('lb_policy', `unsupported lb_policy ${c.lb_policy}`);
  }
}
