// HTTP filters, registered by the type URL of their config (as grpc-js-xds's
// http-filter.ts does), and the gRFC A39 rules for the HttpConnectionManager's
// filter list and for typed_per_filter_config overrides.
import { protoType } from '../proto.js';
import type {
  envoy_config_rbac_v3_RBAC,
  envoy_config_route_v3_FilterConfig,
  envoy_extensions_filters_common_fault_v3_FaultDelay,
  envoy_extensions_filters_http_fault_v3_FaultAbort,
  envoy_extensions_filters_http_fault_v3_HTTPFault,
  envoy_extensions_filters_http_rbac_v3_RBAC,
  envoy_extensions_filters_http_rbac_v3_RBACPerRoute,
  envoy_extensions_filters_http_router_v3_Router,
  envoy_extensions_filters_network_http_connection_manager_v3_HttpFilter,
  envoy_extensions_filters_http_stateful_session_v3_StatefulSession,
  envoy_extensions_filters_http_stateful_session_v3_StatefulSessionPerRoute,
  envoy_extensions_http_stateful_session_cookie_v3_CookieBasedSessionState,
  google_protobuf_Any,
} from '../generated/pb.js';
import { durationMs, fail, fractionalPercent, headerMatchers, sub, u32Opt } from './common.js';
import { decodeBytes, runParser, typedConfigMessage, unwrapAny, type TypedConfig } from './typed-config.js';
import type {
  FaultAbort,
  FaultDelay,
  FaultFilterConfig,
  FilterConfigOverride,
  HttpFilter,
  JsonObject,
  RbacFilterConfig,
  RbacPerRouteConfig,
  RouterFilterConfig,
  StatefulSessionConfig,
  StatefulSessionPerRouteConfig,
  TypedPerFilterConfig,
} from './types.js';

export interface HttpFilterParser {
  /**
   * Parse the filter's config as it appears in http_filters. Throw (a ResourceError
   * with a path relative to the config, or any Error) to reject it.
   */
  parseTopLevel(config: TypedConfig): unknown;
  /** Parse a typed_per_filter_config override; absent = the filter takes none. */
  parseOverride?(config: TypedConfig): unknown;
  /** A terminal filter (the router) must be the last of the chain (gRFC A39). */
  readonly isTerminal?: boolean;
}

const registry = new Map<string, HttpFilterParser>();

/** Register (or replace) the parser for a filter config type URL. */
export function registerHttpFilter(typeUrl: string, parser: HttpFilterParser): void {
  registry.set(typeUrl, parser);
}

export function httpFilterForUrl(typeUrl: string): HttpFilterParser | undefined {
  return registry.get(typeUrl);
}

const FILTER_CONFIG_URL = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';

/** gRFC A39: filter names unique, unknown filters only when optional, a terminal filter last and only last. */
export function parseHttpFilters(
  list: readonly envoy_extensions_filters_network_http_connection_manager_v3_HttpFilter[],
  path: string,
): HttpFilter[] {
  const out: HttpFilter[] = [];
  const names = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const f = list[i]!;
    const p = `${path}[${i}]`;
    if (!f.name) fail(sub(p, 'name'), 'filter name must not be empty');
    if (names.has(f.name)) fail(sub(p, 'name'), `duplicate HTTP filter name "${f.name}"`);
    names.add(f.name);
    if (f.config_type !== 'typed_config') {
      // config_discovery (ECDS) is not supported: the filter is unknown.
      if (f.is_optional) continue;
      fail(p, `filter "${f.name}" has no typed_config (config_discovery is not supported)`);
    }
    const config = unwrapAny(f.typed_config, sub(p, 'typed_config'));
    const parser = registry.get(config.typeUrl);
    if (!parser) {
      if (f.is_optional) continue;
      fail(sub(p, 'typed_config'), `unsupported HTTP filter type ${config.typeUrl} for filter "${f.name}"`);
    }
    const parsed = runParser(() => parser.parseTopLevel(config), sub(p, 'typed_config'));
    out.push({ name: f.name, typeUrl: config.typeUrl, config: parsed, isOptional: f.is_optional, disabled: f.disabled });
    if (parser.isTerminal && i !== list.length - 1) {
      // Optional unknown filters after a terminal one would be skipped anyway, but
      // Envoy rejects any filter after the router, so meshlet does too.
      fail(p, `terminal filter "${f.name}" must be the last HTTP filter`);
    }
  }
  const last = out[out.length - 1];
  if (!last || !registry.get(last.typeUrl)?.isTerminal) {
    fail(path, 'the last HTTP filter must be a terminal filter (envoy.filters.http.router)');
  }
  return out;
}

/** typed_per_filter_config: filter instance name → override, per gRFC A39. */
export function parseTypedPerFilterConfig(
  map: Readonly<Record<string, google_protobuf_Any>>,
  path: string,
): TypedPerFilterConfig {
  const keys = Object.keys(map);
  if (keys.length === 0) return EMPTY_OVERRIDES;
  const out: Record<string, FilterConfigOverride> = {};
  for (const key of keys) {
    const p = `${path}["${key}"]`;
    if (!key) fail(p, 'filter name must not be empty');
    let any = map[key]!;
    let isOptional = false;
    let disabled = false;
    if (any.type_url === FILTER_CONFIG_URL) {
      const fc = decodeBytes<envoy_config_route_v3_FilterConfig>('envoy.config.route.v3.FilterConfig', any.value, p);
      isOptional = fc.is_optional;
      disabled = fc.disabled;
      if (!fc.config) {
        // A FilterConfig with only `disabled` switches the filter off for this scope.
        if (disabled) {
          out[key] = { typeUrl: '', config: undefined, isOptional, disabled };
          continue;
        }
        fail(sub(p, 'config'), 'FilterConfig needs a config unless disabled');
      }
      any = fc.config;
    }
    const config = unwrapAny(any, p);
    const parser = registry.get(config.typeUrl);
    if (!parser) {
      if (isOptional) continue;
      fail(p, `unsupported filter override type ${config.typeUrl}`);
    }
    if (!parser.parseOverride) {
      if (isOptional) continue;
      fail(p, `filter type ${config.typeUrl} does not support per-route overrides`);
    }
    const parseOverride = parser.parseOverride.bind(parser);
    out[key] = { typeUrl: config.typeUrl, config: runParser(() => parseOverride(config), p), isOptional, disabled };
  }
  return out;
}

const EMPTY_OVERRIDES: TypedPerFilterConfig = Object.freeze({});

// ---------------------------------------------------------------- built-in filters

const ROUTER_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FAULT_URL = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const RBAC_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const RBAC_PER_ROUTE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

function parseRouter(config: TypedConfig): RouterFilterConfig {
  const r = typedConfigMessage<envoy_extensions_filters_http_router_v3_Router>(
    'envoy.extensions.filters.http.router.v3.Router',
    config,
    '',
  );
  return { suppressEnvoyHeaders: r.suppress_envoy_headers };
}

function parseFaultDelay(d: envoy_extensions_filters_common_fault_v3_FaultDelay, path: string): FaultDelay {
  const percentage = fractionalPercent(d.percentage, sub(path, 'percentage'));
  switch (d.fault_delay_secifier) {
    case 'fixed_delay': {
      const ms = durationMs(d.fixed_delay, sub(path, 'fixed_delay'));
      if (!ms) fail(sub(path, 'fixed_delay'), 'must be greater than 0');
      return { kind: 'fixed', fixedDelay: ms, percentage };
    }
    case 'header_delay':
      return { kind: 'header', fixedDelay: undefined, percentage };
    default:
      fail(path, 'one of fixed_delay or header_delay is required');
  }
}

function parseFaultAbort(a: envoy_extensions_filters_http_fault_v3_FaultAbort, path: string): FaultAbort {
  const percentage = fractionalPercent(a.percentage, sub(path, 'percentage'));
  switch (a.error_type) {
    case 'http_status': {
      const s = a.http_status ?? 0;
      if (s < 200 || s >= 600) fail(sub(path, 'http_status'), `HTTP status ${s} outside [200, 600)`);
      return { kind: 'http_status', httpStatus: s, grpcStatus: undefined, percentage };
    }
    case 'grpc_status':
      return { kind: 'grpc_status', httpStatus: undefined, grpcStatus: a.grpc_status ?? 0, percentage };
    case 'header_abort':
      return { kind: 'header', httpStatus: undefined, grpcStatus: undefined, percentage };
    default:
      fail(path, 'one of http_status, grpc_status or header_abort is required');
  }
}

function parseFault(config: TypedConfig): FaultFilterConfig {
  const f = typedConfigMessage<envoy_extensions_filters_http_fault_v3_HTTPFault>(
    'envoy.extensions.filters.http.fault.v3.HTTPFault',
    config,
    '',
  );
  return {
    delay: f.delay ? parseFaultDelay(f.delay, 'delay') : undefined,
    abort: f.abort ? parseFaultAbort(f.abort, 'abort') : undefined,
    maxActiveFaults: u32Opt(f.max_active_faults),
    headers: headerMatchers(f.headers, 'headers'),
    downstreamNodes: f.downstream_nodes.slice(),
    upstreamCluster: f.upstream_cluster,
  };
}

const RBAC_ACTIONS = ['ALLOW', 'DENY', 'LOG'] as const;

function rbacRules(
  rules: envoy_config_rbac_v3_RBAC | null | undefined,
  path: string,
): RbacFilterConfig['rules'] {
  if (!rules) return undefined;
  const action = RBAC_ACTIONS[rules.action];
  if (!action) fail(sub(path, 'action'), `unknown action ${rules.action}`);
  const policyType = protoType('envoy.config.rbac.v3.Policy');
  const policies: Record<string, JsonObject> = {};
  for (const name of Object.keys(rules.policies)) {
    const p = rules.policies[name]!;
    const pp = `${path}.policies["${name}"]`;
    // rbac.proto: both lists need at least one entry.
    if (p.permissions.length === 0) fail(sub(pp, 'permissions'), 'at least one permission is required');
    if (p.principals.length === 0) fail(sub(pp, 'principals'), 'at least one principal is required');
    // gRFC A41: CEL conditions are not supported, so a policy with one is rejected.
    if (p.condition || p.checked_condition) fail(pp, 'CEL conditions are not supported');
    policies[name] = policyType.toObject(p as never, { enums: String, bytes: String, longs: Number }) as JsonObject;
  }
  return { action, policies };
}

function rbacConfig(r: envoy_extensions_filters_http_rbac_v3_RBAC, path: string): RbacFilterConfig {
  if (r.matcher || r.shadow_matcher) fail(sub(path, r.matcher ? 'matcher' : 'shadow_matcher'), 'RBAC matchers are not supported; use rules');
  return {
    rules: rbacRules(r.rules, sub(path, 'rules')),
    shadowRules: rbacRules(r.shadow_rules, sub(path, 'shadow_rules')),
    rulesStatPrefix: r.rules_stat_prefix,
    shadowRulesStatPrefix: r.shadow_rules_stat_prefix,
  };
}

function parseRbac(config: TypedConfig): RbacFilterConfig {
  return rbacConfig(
    typedConfigMessage<envoy_extensions_filters_http_rbac_v3_RBAC>('envoy.extensions.filters.http.rbac.v3.RBAC', config, ''),
    '',
  );
}

function parseRbacOverride(config: TypedConfig): RbacPerRouteConfig {
  const r = typedConfigMessage<envoy_extensions_filters_http_rbac_v3_RBACPerRoute>(
    'envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
    config,
    '',
  );
  return { rbac: r.rbac ? rbacConfig(r.rbac, 'rbac') : undefined };
}

const STATEFUL_SESSION_URL = 'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession';
const STATEFUL_SESSION_PER_ROUTE_URL =
  'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute';
const COOKIE_SESSION_STATE_URL =
  'type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState';

function statefulSession(m: envoy_extensions_filters_http_stateful_session_v3_StatefulSession, path: string): StatefulSessionConfig {
  const st = m.session_state;
  if (!st) return { cookie: undefined, strict: m.strict };
  const p = sub(path, 'session_state.typed_config');
  // gRFC A55: cookie-based session state is the one supported kind.
  if (st.typed_config?.type_url !== COOKIE_SESSION_STATE_URL) {
    fail(p, `unsupported session state ${st.typed_config?.type_url ?? '(none)'}`);
  }
  const c = decodeBytes<envoy_extensions_http_stateful_session_cookie_v3_CookieBasedSessionState>(
    'envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState',
    st.typed_config.value,
    p,
  );
  if (!c.cookie?.name) fail(sub(p, 'cookie.name'), 'must not be empty');
  return {
    cookie: { name: c.cookie.name, ttl: durationMs(c.cookie.ttl, sub(p, 'cookie.ttl')), path: c.cookie.path },
    strict: m.strict,
  };
}

function parseStatefulSession(config: TypedConfig): StatefulSessionConfig {
  return statefulSession(
    typedConfigMessage<envoy_extensions_filters_http_stateful_session_v3_StatefulSession>(
      'envoy.extensions.filters.http.stateful_session.v3.StatefulSession',
      config,
      '',
    ),
    '',
  );
}

function parseStatefulSessionOverride(config: TypedConfig): StatefulSessionPerRouteConfig {
  const m = typedConfigMessage<envoy_extensions_filters_http_stateful_session_v3_StatefulSessionPerRoute>(
    'envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute',
    config,
    '',
  );
  if (m.override === 'stateful_session') {
    return { disabled: false, statefulSession: statefulSession(m.stateful_session!, 'stateful_session') };
  }
  return { disabled: m.disabled === true, statefulSession: undefined };
}

registerHttpFilter(ROUTER_URL, { parseTopLevel: parseRouter, isTerminal: true });
registerHttpFilter(STATEFUL_SESSION_URL, { parseTopLevel: parseStatefulSession });
registerHttpFilter(STATEFUL_SESSION_PER_ROUTE_URL, {
  parseTopLevel: () => fail('', 'StatefulSessionPerRoute is only valid in typed_per_filter_config'),
  parseOverride: parseStatefulSessionOverride,
});
registerHttpFilter(FAULT_URL, { parseTopLevel: parseFault, parseOverride: parseFault });
// Filters whose override has its own message type register that type separately;
// gRFC A39: the top-level type is then not accepted as an override, nor the
// override type at top level.
registerHttpFilter(RBAC_URL, { parseTopLevel: parseRbac });
registerHttpFilter(RBAC_PER_ROUTE_URL, {
  parseTopLevel: () => fail('', 'RBACPerRoute is only valid in typed_per_filter_config'),
  parseOverride: parseRbacOverride,
});
