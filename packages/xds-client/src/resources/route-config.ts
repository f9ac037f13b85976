// RouteConfiguration → RouteConfigurationResource: virtual hosts, routes, matchers
// and actions (route_components.proto; gRFC A28 routing, A31 timeouts, A39 filter
// overrides, A42 hash policies, A44 retries, A62 cluster specifier plugins).
import type {
  envoy_config_route_v3_ClusterSpecifierPlugin,
  envoy_config_route_v3_QueryParameterMatcher,
  envoy_config_route_v3_RedirectAction,
  envoy_config_route_v3_RetryPolicy,
  envoy_config_route_v3_Route,
  envoy_config_route_v3_RouteAction,
  envoy_config_route_v3_RouteAction_HashPolicy,
  envoy_config_route_v3_RouteAction_RequestMirrorPolicy,
  envoy_config_route_v3_RouteConfiguration,
  envoy_config_route_v3_RouteMatch,
  envoy_config_route_v3_VirtualHost,
  envoy_config_route_v3_WeightedCluster,
  envoy_config_route_v3_DirectResponseAction,
} from '../generated/pb.js';
import {
  durationMs,
  fail,
  headerMatchers,
  headerMutations,
  metadata,
  positiveDurationMs,
  regexMatcher,
  regexRewrite,
  runtimeFraction,
  stringMatcher,
  sub,
  u32,
} from './common.js';
import { parseTypedPerFilterConfig } from './http-filters.js';
import type {
  ClusterSpecifier,
  ClusterSpecifierPlugin,
  DirectResponseAction,
  ForwardAction,
  HashPolicy,
  PathMatcher,
  QueryParameterMatcher,
  RedirectAction,
  RequestMirrorPolicy,
  RetryPolicy,
  Route,
  RouteAction,
  RouteConfigurationResource,
  RouteMatch,
  VirtualHost,
  WeightedClusterEntry,
} from './types.js';

const UINT32_MAX = 0xffff_ffff;

export function parseRouteConfiguration(
  rc: envoy_config_route_v3_RouteConfiguration,
  path: string,
): RouteConfigurationResource {
  const plugins = clusterSpecifierPlugins(rc.cluster_specifier_plugins, sub(path, 'cluster_specifier_plugins'));
  const pluginNames = new Set(plugins.map((p) => p.name));
  const virtualHosts: VirtualHost[] = [];
  // Envoy rejects a RouteConfiguration in which two virtual hosts share a name or a
  // domain: host matching would be ambiguous.
  const vhostNames = new Set<string>();
  const domains = new Set<string>();
  for (let i = 0; i < rc.virtual_hosts.length; i++) {
    const p = `${sub(path, 'virtual_hosts')}[${i}]`;
    const vh = virtualHost(rc.virtual_hosts[i]!, p, pluginNames);
    if (vhostNames.has(vh.name)) fail(sub(p, 'name'), `duplicate virtual host name "${vh.name}"`);
    vhostNames.add(vh.name);
    for (let j = 0; j < vh.domains.length; j++) {
      const d = vh.domains[j]!;
      if (domains.has(d)) fail(`${sub(p, 'domains')}[${j}]`, `domain "${d}" appears in more than one virtual host`);
      domains.add(d);
    }
    virtualHosts.push(vh);
  }
  if (rc.vhds) fail(sub(path, 'vhds'), 'VHDS is not supported');
  return {
    name: rc.name,
    virtualHosts,
    headerMutations: headerMutations(rc, path),
    mostSpecificHeaderMutationsWins: rc.most_specific_header_mutations_wins,
    internalOnlyHeaders: rc.internal_only_headers.map((h) => h.toLowerCase()),
    typedPerFilterConfig: parseTypedPerFilterConfig(rc.typed_per_filter_config, sub(path, 'typed_per_filter_config')),
    clusterSpecifierPlugins: plugins,
    requestMirrorPolicies: mirrorPolicies(rc.request_mirror_policies, sub(path, 'request_mirror_policies')),
    ignorePortInHostMatching: rc.ignore_port_in_host_matching,
    metadata: metadata(rc.metadata),
  };
}

function clusterSpecifierPlugins(
  list: readonly envoy_config_route_v3_ClusterSpecifierPlugin[],
  path: string,
): ClusterSpecifierPlugin[] {
  const out: ClusterSpecifierPlugin[] = [];
  const names = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const p = `${path}[${i}]`;
    const ext = list[i]!.extension;
    if (!ext) fail(sub(p, 'extension'), 'is required');
    // gRFC A62: plugin names are unique within a RouteConfiguration.
    if (names.has(ext.name)) fail(sub(p, 'extension.name'), `duplicate cluster specifier plugin "${ext.name}"`);
    names.add(ext.name);
    out.push({ name: ext.name, typeUrl: ext.typed_config?.type_url ?? '', isOptional: list[i]!.is_optional });
  }
  return out;
}

function virtualHost(vh: envoy_config_route_v3_VirtualHost, path: string, plugins: ReadonlySet<string>): VirtualHost {
  if (!vh.name) fail(sub(path, 'name'), 'virtual host name must not be empty');
  if (vh.domains.length === 0) fail(sub(path, 'domains'), 'at least one domain is required');
  for (let i = 0; i < vh.domains.length; i++) {
    const d = vh.domains[i]!;
    if (!d) fail(`${sub(path, 'domains')}[${i}]`, 'domain must not be empty');
    // A28: a wildcard is only allowed as the whole domain, a prefix or a suffix.
    const star = d.indexOf('*');
    if (star >= 0 && d !== '*' && !(star === 0 && d.indexOf('*', 1) < 0) && star !== d.length - 1) {
      fail(`${sub(path, 'domains')}[${i}]`, `invalid domain pattern "${d}": wildcard must be at the start or the end`);
    }
  }
  if (vh.matcher) fail(sub(path, 'matcher'), 'the matcher tree API is not supported; use routes');
  const routes: Route[] = [];
  for (let i = 0; i < vh.routes.length; i++) {
    routes.push(route(vh.routes[i]!, `${sub(path, 'routes')}[${i}]`, plugins));
  }
  return {
    name: vh.name,
    domains: vh.domains.map((d) => d.toLowerCase()),
    routes,
    retryPolicy: vh.retry_policy ? retryPolicy(vh.retry_policy, sub(path, 'retry_policy')) : undefined,
    // VirtualHost has no hash_policy in v3; kept for a uniform shape with routes.
    hashPolicies: [],
    headerMutations: headerMutations(vh, path),
    typedPerFilterConfig: parseTypedPerFilterConfig(vh.typed_per_filter_config, sub(path, 'typed_per_filter_config')),
    includeRequestAttemptCount: vh.include_request_attempt_count,
    includeAttemptCountInResponse: vh.include_attempt_count_in_response,
    requestMirrorPolicies: mirrorPolicies(vh.request_mirror_policies, sub(path, 'request_mirror_policies')),
    metadata: metadata(vh.metadata),
  };
}

function route(r: envoy_config_route_v3_Route, path: string, plugins: ReadonlySet<string>): Route {
  const match = routeMatch(r.match, sub(path, 'match'));
  let action: RouteAction;
  switch (r.action) {
    case 'route':
      action = forwardAction(r.route!, sub(path, 'route'), plugins);
      break;
    case 'redirect':
      action = redirectAction(r.redirect!, sub(path, 'redirect'));
      break;
    case 'direct_response':
      action = directResponse(r.direct_response!, sub(path, 'direct_response'));
      break;
    case 'non_forwarding_action':
      action = { kind: 'non_forwarding' };
      break;
    case 'filter_action':
      fail(sub(path, 'filter_action'), 'filter_action is not supported');
    default:
      fail(path, 'route has no action (route, redirect, direct_response or non_forwarding_action)');
  }
  return {
    name: r.name,
    match,
    action,
    headerMutations: headerMutations(r, path),
    typedPerFilterConfig: parseTypedPerFilterConfig(r.typed_per_filter_config, sub(path, 'typed_per_filter_config')),
    metadata: metadata(r.metadata),
  };
}

function routeMatch(m: envoy_config_route_v3_RouteMatch | null | undefined, path: string): RouteMatch {
  if (!m) fail(path, 'route match is required');
  let pathMatcher: PathMatcher;
  switch (m.path_specifier) {
    case 'prefix':
      pathMatcher = { kind: 'prefix', value: m.prefix ?? '' };
      break;
    case 'path':
      pathMatcher = { kind: 'path', value: m.path ?? '' };
      break;
    case 'safe_regex':
      pathMatcher = { kind: 'safe_regex', regex: regexMatcher(m.safe_regex, sub(path, 'safe_regex')) };
      break;
    case 'path_separated_prefix': {
      const v = m.path_separated_prefix ?? '';
      // route_components.proto: must start with '/', and must not end with one or hold '?' or '#'.
      if (!/^\/[^?#]*$/.test(v) || (v.length > 1 && v.endsWith('/'))) {
        fail(sub(path, 'path_separated_prefix'), `invalid path_separated_prefix "${v}"`);
      }
      pathMatcher = { kind: 'path_separated_prefix', value: v };
      break;
    }
    case 'connect_matcher':
      fail(sub(path, 'connect_matcher'), 'CONNECT matching is not supported');
    case 'path_match_policy':
      fail(sub(path, 'path_match_policy'), 'path_match_policy (URI templates) is not supported');
    default:
      fail(path, 'route match has no path specifier (prefix, path, safe_regex or path_separated_prefix)');
  }
  if (m.tls_context) fail(sub(path, 'tls_context'), 'TLS context matching is not supported');
  if (m.dynamic_metadata.length > 0) fail(sub(path, 'dynamic_metadata'), 'dynamic metadata matching is not supported');
  return {
    path: pathMatcher,
    caseSensitive: m.case_sensitive ? m.case_sensitive.value : true,
    headers: headerMatchers(m.headers, sub(path, 'headers')),
    queryParameters: queryParameters(m.query_parameters, sub(path, 'query_parameters')),
    runtimeFraction: runtimeFraction(m.runtime_fraction, sub(path, 'runtime_fraction')),
    grpc: m.grpc != null,
  };
}

function queryParameters(
  list: readonly envoy_config_route_v3_QueryParameterMatcher[],
  path: string,
): QueryParameterMatcher[] {
  const out: QueryParameterMatcher[] = [];
  for (let i = 0; i < list.length; i++) {
    const q = list[i]!;
    const p = `${path}[${i}]`;
    if (!q.name) fail(sub(p, 'name'), 'query parameter name must not be empty');
    if (q.query_parameter_match_specifier === 'string_match') {
      out.push({ name: q.name, match: stringMatcher(q.string_match, sub(p, 'string_match')) });
    } else {
      // present_match, or neither (Envoy then matches on presence).
      out.push({ name: q.name, match: { kind: 'present', present: q.present_match ?? true } });
    }
  }
  return out;
}

function clusterSpecifier(
  a: envoy_config_route_v3_RouteAction,
  path: string,
  plugins: ReadonlySet<string>,
): ClusterSpecifier {
  switch (a.cluster_specifier) {
    case 'cluster':
      if (!a.cluster) fail(sub(path, 'cluster'), 'cluster name must not be empty');
      return { kind: 'cluster', name: a.cluster };
    case 'cluster_header':
      if (!a.cluster_header) fail(sub(path, 'cluster_header'), 'header name must not be empty');
      return { kind: 'cluster_header', header: a.cluster_header.toLowerCase() };
    case 'weighted_clusters':
      return weightedClusters(a.weighted_clusters!, sub(path, 'weighted_clusters'));
    case 'cluster_specifier_plugin': {
      const name = a.cluster_specifier_plugin ?? '';
      // gRFC A62: a reference to a plugin the RouteConfiguration does not define is a NACK.
      if (!plugins.has(name)) fail(sub(path, 'cluster_specifier_plugin'), `unknown cluster specifier plugin "${name}"`);
      return { kind: 'cluster_specifier_plugin', name };
    }
    case 'inline_cluster_specifier_plugin':
      fail(sub(path, 'inline_cluster_specifier_plugin'), 'inline cluster specifier plugins are not supported');
    default:
      fail(path, 'route action has no cluster specifier');
  }
}

function weightedClusters(w: envoy_config_route_v3_WeightedCluster, path: string): ClusterSpecifier {
  if (w.clusters.length === 0) fail(sub(path, 'clusters'), 'at least one cluster is required');
  const clusters: WeightedClusterEntry[] = [];
  let total = 0;
  for (let i = 0; i < w.clusters.length; i++) {
    const c = w.clusters[i]!;
    const p = `${sub(path, 'clusters')}[${i}]`;
    if (!c.name) {
      fail(sub(p, c.cluster_header ? 'cluster_header' : 'name'), c.cluster_header ? 'cluster_header in weighted clusters is not supported' : 'cluster name must not be empty');
    }
    const weight = c.weight ? c.weight.value : 0;
    total += weight;
    clusters.push({
      name: c.name,
      weight,
      headerMutations: headerMutations(c, p),
      typedPerFilterConfig: parseTypedPerFilterConfig(c.typed_per_filter_config, sub(p, 'typed_per_filter_config')),
      hostRewriteLiteral: c.host_rewrite_literal ?? undefined,
    });
  }
  // gRFC A28: the sum must be positive and fit in a uint32; total_weight is ignored
  // (it is deprecated; Envoy too derives the total from the weights).
  if (total === 0) fail(sub(path, 'clusters'), 'the sum of the cluster weights is 0');
  if (total > UINT32_MAX) fail(sub(path, 'clusters'), `the sum of the cluster weights ${total} exceeds ${UINT32_MAX}`);
  return {
    kind: 'weighted_clusters',
    clusters,
    totalWeight: total,
    headerName: w.header_name ? w.header_name.toLowerCase() : undefined,
  };
}

const NOT_FOUND_CODES = [503, 404, 500] as const;

function forwardAction(a: envoy_config_route_v3_RouteAction, path: string, plugins: ReadonlySet<string>): ForwardAction {
  const cluster = clusterSpecifier(a, path, plugins);
  const msd = a.max_stream_duration;
  const notFound = NOT_FOUND_CODES[a.cluster_not_found_response_code];
  if (notFound === undefined) {
    fail(sub(path, 'cluster_not_found_response_code'), `unknown code ${a.cluster_not_found_response_code}`);
  }
  if (a.prefix_rewrite && a.regex_rewrite) fail(sub(path, 'regex_rewrite'), 'prefix_rewrite and regex_rewrite cannot both be set');
  if (a.path_rewrite_policy) fail(sub(path, 'path_rewrite_policy'), 'path_rewrite_policy is not supported');
  const hostRewriteHeader = a.host_rewrite_specifier === 'host_rewrite_header' ? a.host_rewrite_header ?? '' : undefined;
  if (hostRewriteHeader === '') fail(sub(path, 'host_rewrite_header'), 'header name must not be empty');
  return {
    kind: 'route',
    cluster,
    timeout: durationMs(a.timeout, sub(path, 'timeout')),
    idleTimeout: durationMs(a.idle_timeout, sub(path, 'idle_timeout')),
    maxStreamDuration: msd
      ? {
          maxStreamDuration: durationMs(msd.max_stream_duration, sub(path, 'max_stream_duration.max_stream_duration')),
          grpcTimeoutHeaderMax: durationMs(msd.grpc_timeout_header_max, sub(path, 'max_stream_duration.grpc_timeout_header_max')),
          grpcTimeoutHeaderOffset: durationMs(
            msd.grpc_timeout_header_offset,
            sub(path, 'max_stream_duration.grpc_timeout_header_offset'),
          ),
        }
      : undefined,
    retryPolicy: a.retry_policy ? retryPolicy(a.retry_policy, sub(path, 'retry_policy')) : undefined,
    hashPolicies: hashPolicies(a.hash_policy, sub(path, 'hash_policy')),
    prefixRewrite: a.prefix_rewrite || undefined,
    regexRewrite: regexRewrite(a.regex_rewrite, sub(path, 'regex_rewrite')),
    hostRewriteLiteral: a.host_rewrite_specifier === 'host_rewrite_literal' ? a.host_rewrite_literal ?? '' : undefined,
    autoHostRewrite: a.host_rewrite_specifier === 'auto_host_rewrite' ? a.auto_host_rewrite?.value === true : false,
    hostRewriteHeader: hostRewriteHeader?.toLowerCase(),
    hostRewritePathRegex:
      a.host_rewrite_specifier === 'host_rewrite_path_regex'
        ? regexRewrite(a.host_rewrite_path_regex, sub(path, 'host_rewrite_path_regex'))
        : undefined,
    appendXForwardedHost: a.append_x_forwarded_host,
    requestMirrorPolicies: mirrorPolicies(a.request_mirror_policies, sub(path, 'request_mirror_policies')),
    clusterNotFoundResponseCode: notFound,
  };
}

const MAX_RETRY_BACKOFF_FACTOR = 10; // router filter doc: max_interval defaults to 10 × base_interval

function retryPolicy(r: envoy_config_route_v3_RetryPolicy, path: string): RetryPolicy {
  const retryOn = r.retry_on
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  let retryBackOff: RetryPolicy['retryBackOff'];
  if (r.retry_back_off) {
    const bp = sub(path, 'retry_back_off');
    // gRFC A44 and route_components.proto: base_interval is required and > 0;
    // max_interval, when set, is > 0 and not below the base.
    const base = durationMs(r.retry_back_off.base_interval, sub(bp, 'base_interval'));
    if (base === undefined) fail(sub(bp, 'base_interval'), 'is required');
    if (base === 0) fail(sub(bp, 'base_interval'), 'must be greater than 0');
    const max = durationMs(r.retry_back_off.max_interval, sub(bp, 'max_interval'));
    if (max !== undefined) {
      if (max === 0) fail(sub(bp, 'max_interval'), 'must be greater than 0');
      if (max < base) fail(sub(bp, 'max_interval'), `max_interval ${max} ms is less than base_interval ${base} ms`);
    }
    retryBackOff = { baseInterval: base, maxInterval: max ?? base * MAX_RETRY_BACKOFF_FACTOR };
  }
  let rateLimitedRetryBackOff: RetryPolicy['rateLimitedRetryBackOff'];
  const rl = r.rate_limited_retry_back_off;
  if (rl) {
    const rp = sub(path, 'rate_limited_retry_back_off');
    if (rl.reset_headers.length === 0) fail(sub(rp, 'reset_headers'), 'at least one reset header is required');
    const resetHeaders = rl.reset_headers.map((h, i) => {
      if (!h.name) fail(`${sub(rp, 'reset_headers')}[${i}].name`, 'header name must not be empty');
      return { name: h.name.toLowerCase(), format: h.format === 1 ? ('UNIX_TIMESTAMP' as const) : ('SECONDS' as const) };
    });
    const maxInterval = positiveDurationMs(rl.max_interval, sub(rp, 'max_interval')) ?? 300_000;
    rateLimitedRetryBackOff = { resetHeaders, maxInterval };
  }
  for (let i = 0; i < r.retriable_status_codes.length; i++) {
    const c = r.retriable_status_codes[i]!;
    if (c < 100 || c > 599) fail(`${sub(path, 'retriable_status_codes')}[${i}]`, `invalid HTTP status ${c}`);
  }
  // num_retries defaults to 1. gRPC C-core NACKs an explicit 0, but Envoy reads it as
  // "no retries" and the same resource serves HTTP clients, which follow Envoy, so 0
  // is accepted here; the gRPC layer treats it as no retry policy (gRFC A44 converts
  // num_retries to maxAttempts = num_retries + 1).
  const numRetries = u32(r.num_retries, 1);
  return {
    retryOn,
    numRetries,
    perTryTimeout: durationMs(r.per_try_timeout, sub(path, 'per_try_timeout')),
    perTryIdleTimeout: durationMs(r.per_try_idle_timeout, sub(path, 'per_try_idle_timeout')),
    retriableStatusCodes: r.retriable_status_codes.slice(),
    retriableHeaders: headerMatchers(r.retriable_headers, sub(path, 'retriable_headers')),
    retriableRequestHeaders: headerMatchers(r.retriable_request_headers, sub(path, 'retriable_request_headers')),
    retryBackOff,
    rateLimitedRetryBackOff,
    retryHostPredicates: r.retry_host_predicate.map((p) => p.name),
    hostSelectionRetryMaxAttempts: r.host_selection_retry_max_attempts,
  };
}

function hashPolicies(list: readonly envoy_config_route_v3_RouteAction_HashPolicy[], path: string): HashPolicy[] {
  const out: HashPolicy[] = [];
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    const p = `${path}[${i}]`;
    const terminal = h.terminal;
    switch (h.policy_specifier) {
      case 'header': {
        const hh = h.header!;
        if (!hh.header_name) fail(sub(p, 'header.header_name'), 'header name must not be empty');
        out.push({
          kind: 'header',
          name: hh.header_name.toLowerCase(),
          regexRewrite: regexRewrite(hh.regex_rewrite, sub(p, 'header.regex_rewrite')),
          terminal,
        });
        break;
      }
      case 'cookie': {
        const c = h.cookie!;
        if (!c.name) fail(sub(p, 'cookie.name'), 'cookie name must not be empty');
        out.push({ kind: 'cookie', name: c.name, ttl: durationMs(c.ttl, sub(p, 'cookie.ttl')), path: c.path, terminal });
        break;
      }
      case 'connection_properties':
        out.push({ kind: 'connection_properties', sourceIp: h.connection_properties!.source_ip, terminal });
        break;
      case 'query_parameter': {
        const q = h.query_parameter!;
        if (!q.name) fail(sub(p, 'query_parameter.name'), 'parameter name must not be empty');
        out.push({ kind: 'query_parameter', name: q.name, terminal });
        break;
      }
      case 'filter_state': {
        const f = h.filter_state!;
        if (!f.key) fail(sub(p, 'filter_state.key'), 'key must not be empty');
        out.push({ kind: 'filter_state', key: f.key, terminal });
        break;
      }
      default:
        fail(p, 'hash policy has no policy specifier');
    }
  }
  return out;
}

function mirrorPolicies(
  list: readonly envoy_config_route_v3_RouteAction_RequestMirrorPolicy[],
  path: string,
): RequestMirrorPolicy[] {
  const out: RequestMirrorPolicy[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    const p = `${path}[${i}]`;
    if (!m.cluster && !m.cluster_header) fail(p, 'one of cluster or cluster_header is required');
    if (m.cluster && m.cluster_header) fail(p, 'only one of cluster and cluster_header may be set');
    out.push({
      cluster: m.cluster,
      clusterHeader: m.cluster_header.toLowerCase(),
      runtimeFraction: runtimeFraction(m.runtime_fraction, sub(p, 'runtime_fraction')),
    });
  }
  return out;
}

const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

function redirectAction(r: envoy_config_route_v3_RedirectAction, path: string): RedirectAction {
  const responseCode = REDIRECT_CODES[r.response_code];
  if (responseCode === undefined) fail(sub(path, 'response_code'), `unknown redirect response code ${r.response_code}`);
  if (r.port_redirect > 65535) fail(sub(path, 'port_redirect'), `port ${r.port_redirect} is out of range`);
  return {
    kind: 'redirect',
    httpsRedirect: r.scheme_rewrite_specifier === 'https_redirect' ? r.https_redirect === true : false,
    schemeRedirect: r.scheme_rewrite_specifier === 'scheme_redirect' ? (r.scheme_redirect ?? '').toLowerCase() : undefined,
    hostRedirect: r.host_redirect || undefined,
    portRedirect: r.port_redirect || undefined,
    pathRedirect: r.path_rewrite_specifier === 'path_redirect' ? r.path_redirect ?? '' : undefined,
    prefixRewrite: r.path_rewrite_specifier === 'prefix_rewrite' ? r.prefix_rewrite ?? '' : undefined,
    regexRewrite:
      r.path_rewrite_specifier === 'regex_rewrite' ? regexRewrite(r.regex_rewrite, sub(path, 'regex_rewrite')) : undefined,
    responseCode,
    stripQuery: r.strip_query,
  };
}

function directResponse(d: envoy_config_route_v3_DirectResponseAction, path: string): DirectResponseAction {
  // route_components.proto: status in [200, 600).
  if (d.status < 200 || d.status >= 600) fail(sub(path, 'status'), `HTTP status ${d.status} outside [200, 600)`);
  let body: string | undefined;
  const b = d.body;
  if (b) {
    switch (b.specifier) {
      case 'inline_string':
        body = b.inline_string ?? '';
        break;
      case 'inline_bytes':
        body = Buffer.from(b.inline_bytes ?? new Uint8Array()).toString('utf8');
        break;
      case undefined:
        break;
      default:
        fail(sub(path, `body.${b.specifier}`), 'only inline_string and inline_bytes bodies are supported');
    }
  }
  return { kind: 'direct_response', status: d.status, body };
}
