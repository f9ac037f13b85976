import { describe, expect, it } from 'vitest';
import { routeConfigurationResourceType as R } from '../src/resources/index.js';
import type { ForwardAction, HeaderMatcher, RetryPolicy, Route, RouteConfigurationResource } from '../src/resources/index.js';
import { encodeMessage, typeUrlOf } from '../src/proto.js';
import { bad, ctx, ok, T, url } from './fixtures/resources.js';

function rc(routes: unknown[], vhExtra: Record<string, unknown> = {}, rcExtra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'rc', virtual_hosts: [{ name: 'vh', domains: ['svc', '*.svc.cluster.local'], routes, ...vhExtra }], ...rcExtra };
}

function oneRoute(route: unknown): Route {
  return ok(R, T.route, rc([route])).virtualHosts[0]!.routes[0]!;
}

function forward(route: Record<string, unknown>, match: Record<string, unknown> = { prefix: '/' }): ForwardAction {
  const r = oneRoute({ match, route });
  if (r.action.kind !== 'route') throw new Error('not a route action');
  return r.action;
}

const NO_MUTATIONS = { requestHeadersToAdd: [], requestHeadersToRemove: [], responseHeadersToAdd: [], responseHeadersToRemove: [] };

describe('RouteConfiguration', () => {
  it('is not required in SotW', () => {
    expect(R.allResourcesRequiredInSotW).toBe(false);
  });

  it('decodes a minimal route with every default', () => {
    const v = ok(R, T.route, rc([{ name: 'r0', match: { prefix: '/' }, route: { cluster: 'c1' } }]));
    expect(v).toEqual<RouteConfigurationResource>({
      name: 'rc',
      virtualHosts: [
        {
          name: 'vh',
          domains: ['svc', '*.svc.cluster.local'],
          routes: [
            {
              name: 'r0',
              match: { path: { kind: 'prefix', value: '/' }, caseSensitive: true, headers: [], queryParameters: [], runtimeFraction: undefined, grpc: false },
              action: {
                kind: 'route',
                cluster: { kind: 'cluster', name: 'c1' },
                timeout: undefined,
                idleTimeout: undefined,
                maxStreamDuration: undefined,
                retryPolicy: undefined,
                hashPolicies: [],
                prefixRewrite: undefined,
                regexRewrite: undefined,
                hostRewriteLiteral: undefined,
                autoHostRewrite: false,
                hostRewriteHeader: undefined,
                hostRewritePathRegex: undefined,
                appendXForwardedHost: false,
                requestMirrorPolicies: [],
                clusterNotFoundResponseCode: 503,
              },
              headerMutations: NO_MUTATIONS,
              typedPerFilterConfig: {},
              metadata: undefined,
            },
          ],
          retryPolicy: undefined,
          hashPolicies: [],
          headerMutations: NO_MUTATIONS,
          typedPerFilterConfig: {},
          includeRequestAttemptCount: false,
          includeAttemptCountInResponse: false,
          requestMirrorPolicies: [],
          metadata: undefined,
        },
      ],
      headerMutations: NO_MUTATIONS,
      mostSpecificHeaderMutationsWins: false,
      internalOnlyHeaders: [],
      typedPerFilterConfig: {},
      clusterSpecifierPlugins: [],
      requestMirrorPolicies: [],
      ignorePortInHostMatching: false,
      metadata: undefined,
    });
  });

  it('decodes every path matcher kind and case sensitivity', () => {
    expect(oneRoute({ match: { path: '/a/b', case_sensitive: false }, route: { cluster: 'c' } }).match).toMatchObject({
      path: { kind: 'path', value: '/a/b' },
      caseSensitive: false,
    });
    expect(oneRoute({ match: { safe_regex: { regex: '/v[0-9]+/.*' } }, route: { cluster: 'c' } }).match.path).toEqual({
      kind: 'safe_regex',
      regex: '/v[0-9]+/.*',
    });
    expect(oneRoute({ match: { path_separated_prefix: '/api' }, route: { cluster: 'c' } }).match.path).toEqual({
      kind: 'path_separated_prefix',
      value: '/api',
    });
  });

  it('decodes every header matcher kind', () => {
    const r = oneRoute({
      match: {
        prefix: '/',
        headers: [
          { name: 'A', string_match: { exact: 'x', ignore_case: true } },
          { name: 'b', string_match: { prefix: 'p' } },
          { name: 'c', string_match: { suffix: 's' } },
          { name: 'd', string_match: { contains: 'c' } },
          { name: 'e', string_match: { safe_regex: { regex: 'a+' } } },
          { name: 'f', exact_match: 'x' },
          { name: 'g', prefix_match: 'p' },
          { name: 'h', suffix_match: 's' },
          { name: 'i', contains_match: 'c' },
          { name: 'j', safe_regex_match: { regex: 'b+' } },
          { name: 'k', present_match: true, invert_match: true },
          { name: 'l', range_match: { start: 10, end: 20 } },
          { name: 'm', string_match: { exact: '' }, treat_missing_header_as_empty: true },
        ],
        query_parameters: [{ name: 'q', string_match: { exact: 'v' } }, { name: 'p', present_match: true }],
        runtime_fraction: { default_value: { numerator: 30, denominator: 'HUNDRED' } },
        grpc: {},
      },
      route: { cluster: 'c' },
    });
    const m = (name: string, match: HeaderMatcher['match'], invertMatch = false, treatMissingHeaderAsEmpty = false): HeaderMatcher => ({
      name,
      match,
      invertMatch,
      treatMissingHeaderAsEmpty,
    });
    expect(r.match.headers).toEqual([
      m('a', { kind: 'exact', value: 'x', ignoreCase: true }),
      m('b', { kind: 'prefix', value: 'p', ignoreCase: false }),
      m('c', { kind: 'suffix', value: 's', ignoreCase: false }),
      m('d', { kind: 'contains', value: 'c', ignoreCase: false }),
      m('e', { kind: 'safe_regex', regex: 'a+', ignoreCase: false }),
      m('f', { kind: 'exact', value: 'x', ignoreCase: false }),
      m('g', { kind: 'prefix', value: 'p', ignoreCase: false }),
      m('h', { kind: 'suffix', value: 's', ignoreCase: false }),
      m('i', { kind: 'contains', value: 'c', ignoreCase: false }),
      m('j', { kind: 'safe_regex', regex: 'b+', ignoreCase: false }),
      m('k', { kind: 'present', present: true }, true),
      m('l', { kind: 'range', start: 10, end: 20 }),
      m('m', { kind: 'exact', value: '', ignoreCase: false }, false, true),
    ]);
    expect(r.match.queryParameters).toEqual([
      { name: 'q', match: { kind: 'exact', value: 'v', ignoreCase: false } },
      { name: 'p', match: { kind: 'present', present: true } },
    ]);
    expect(r.match.runtimeFraction).toEqual({ numerator: 30, denominator: 'HUNDRED', perMillion: 300_000 });
    expect(r.match.grpc).toBe(true);
  });

  it('decodes a full route action', () => {
    const a = forward({
      weighted_clusters: {
        clusters: [
          {
            name: 'a',
            weight: 30,
            request_headers_to_add: [{ header: { key: 'X-A', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
            typed_per_filter_config: {
              fault: { '@type': url(T.fault), abort: { http_status: 503, percentage: { numerator: 100 } } },
            },
          },
          { name: 'b', weight: 70, host_rewrite_literal: 'b.example' },
        ],
      },
      timeout: '0s',
      idle_timeout: '30s',
      max_stream_duration: { max_stream_duration: '5s', grpc_timeout_header_max: '3s', grpc_timeout_header_offset: '0.010s' },
      retry_policy: {
        retry_on: '5xx, reset,,connect-failure',
        num_retries: 3,
        per_try_timeout: '0.5s',
        retriable_status_codes: [503, 504],
        retriable_headers: [{ name: 'x-retry', present_match: true }],
        retriable_request_headers: [{ name: 'x-idem', string_match: { exact: '1' } }],
        retry_back_off: { base_interval: '0.1s' },
        rate_limited_retry_back_off: { reset_headers: [{ name: 'Retry-After' }, { name: 'x-reset', format: 'UNIX_TIMESTAMP' }] },
        retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }],
        host_selection_retry_max_attempts: 3,
      },
      hash_policy: [
        { header: { header_name: 'X-User', regex_rewrite: { pattern: { regex: '^(.*)$' }, substitution: '\\1' } } },
        { cookie: { name: 'sess', ttl: '60s', path: '/' }, terminal: true },
        { connection_properties: { source_ip: true } },
        { query_parameter: { name: 'u' } },
        { filter_state: { key: 'k' } },
      ],
      regex_rewrite: { pattern: { regex: '^/old' }, substitution: '/new' },
      auto_host_rewrite: true,
      request_mirror_policies: [{ cluster: 'shadow', runtime_fraction: { default_value: { numerator: 5 } } }],
      cluster_not_found_response_code: 'NOT_FOUND',
    });
    expect(a.cluster).toMatchObject({ kind: 'weighted_clusters', totalWeight: 100, headerName: undefined });
    if (a.cluster.kind !== 'weighted_clusters') throw new Error();
    expect(a.cluster.clusters[0]).toMatchObject({
      name: 'a',
      weight: 30,
      headerMutations: { requestHeadersToAdd: [{ name: 'x-a', value: '1', appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: false }] },
      typedPerFilterConfig: { fault: { typeUrl: url(T.fault), isOptional: false, disabled: false, config: { abort: { httpStatus: 503 } } } },
    });
    expect(a.cluster.clusters[1]).toMatchObject({ name: 'b', hostRewriteLiteral: 'b.example' });
    expect(a.timeout).toBe(0);
    expect(a.idleTimeout).toBe(30_000);
    expect(a.maxStreamDuration).toEqual({ maxStreamDuration: 5000, grpcTimeoutHeaderMax: 3000, grpcTimeoutHeaderOffset: 10 });
    expect(a.retryPolicy).toEqual<RetryPolicy>({
      retryOn: ['5xx', 'reset', 'connect-failure'],
      numRetries: 3,
      perTryTimeout: 500,
      perTryIdleTimeout: undefined,
      retriableStatusCodes: [503, 504],
      retriableHeaders: [{ name: 'x-retry', match: { kind: 'present', present: true }, invertMatch: false, treatMissingHeaderAsEmpty: false }],
      retriableRequestHeaders: [{ name: 'x-idem', match: { kind: 'exact', value: '1', ignoreCase: false }, invertMatch: false, treatMissingHeaderAsEmpty: false }],
      retryBackOff: { baseInterval: 100, maxInterval: 1000 },
      rateLimitedRetryBackOff: {
        resetHeaders: [
          { name: 'retry-after', format: 'SECONDS' },
          { name: 'x-reset', format: 'UNIX_TIMESTAMP' },
        ],
        maxInterval: 300_000,
      },
      retryHostPredicates: ['envoy.retry_host_predicates.previous_hosts'],
      hostSelectionRetryMaxAttempts: 3,
    });
    expect(a.hashPolicies).toEqual([
      { kind: 'header', name: 'x-user', regexRewrite: { pattern: '^(.*)$', substitution: '\\1' }, terminal: false },
      { kind: 'cookie', name: 'sess', ttl: 60_000, path: '/', terminal: true },
      { kind: 'connection_properties', sourceIp: true, terminal: false },
      { kind: 'query_parameter', name: 'u', terminal: false },
      { kind: 'filter_state', key: 'k', terminal: false },
    ]);
    expect(a.regexRewrite).toEqual({ pattern: '^/old', substitution: '/new' });
    expect(a.autoHostRewrite).toBe(true);
    expect(a.requestMirrorPolicies).toEqual([
      { cluster: 'shadow', clusterHeader: '', runtimeFraction: { numerator: 5, denominator: 'HUNDRED', perMillion: 50_000 } },
    ]);
    expect(a.clusterNotFoundResponseCode).toBe(404);
  });

  it('defaults num_retries to 1 and decodes the other cluster specifiers and host rewrites', () => {
    expect(forward({ cluster: 'c', retry_policy: { retry_on: 'unavailable' } }).retryPolicy).toMatchObject({ numRetries: 1, retryBackOff: undefined });
    expect(forward({ cluster_header: 'X-Cluster', host_rewrite_header: 'X-Host' })).toMatchObject({
      cluster: { kind: 'cluster_header', header: 'x-cluster' },
      hostRewriteHeader: 'x-host',
    });
    expect(forward({ cluster: 'c', host_rewrite_literal: 'h', prefix_rewrite: '/p' })).toMatchObject({ hostRewriteLiteral: 'h', prefixRewrite: '/p' });
    expect(forward({ cluster: 'c', host_rewrite_path_regex: { pattern: { regex: '^/(.+)/' }, substitution: '\\1' } }).hostRewritePathRegex).toEqual({
      pattern: '^/(.+)/',
      substitution: '\\1',
    });
    const withPlugin = ok(
      R,
      T.route,
      rc([{ match: { prefix: '/' }, route: { cluster_specifier_plugin: 'rls' } }], {}, {
        cluster_specifier_plugins: [{ extension: { name: 'rls', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } }],
      }),
    );
    expect(withPlugin.clusterSpecifierPlugins).toEqual([{ name: 'rls', typeUrl: 'type.googleapis.com/google.protobuf.Empty', isOptional: false }]);
    expect(withPlugin.virtualHosts[0]!.routes[0]!.action).toMatchObject({ cluster: { kind: 'cluster_specifier_plugin', name: 'rls' } });
  });

  it('decodes redirect, direct_response and non_forwarding actions', () => {
    expect(
      oneRoute({
        match: { prefix: '/' },
        redirect: { https_redirect: true, host_redirect: 'h', port_redirect: 8443, prefix_rewrite: '/x', response_code: 'TEMPORARY_REDIRECT', strip_query: true },
      }).action,
    ).toEqual({
      kind: 'redirect',
      httpsRedirect: true,
      schemeRedirect: undefined,
      hostRedirect: 'h',
      portRedirect: 8443,
      pathRedirect: undefined,
      prefixRewrite: '/x',
      regexRewrite: undefined,
      responseCode: 307,
      stripQuery: true,
    });
    expect(oneRoute({ match: { prefix: '/' }, redirect: { path_redirect: '/p' } }).action).toMatchObject({ responseCode: 301, pathRedirect: '/p', httpsRedirect: false });
    expect(oneRoute({ match: { prefix: '/' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } }).action).toEqual({
      kind: 'direct_response',
      status: 418,
      body: 'teapot',
    });
    expect(oneRoute({ match: { prefix: '/' }, non_forwarding_action: {} }).action).toEqual({ kind: 'non_forwarding' });
  });

  it('decodes header mutations at every level, with append_action and the deprecated append', () => {
    const v = ok(
      R,
      T.route,
      rc(
        [
          {
            match: { prefix: '/' },
            route: { cluster: 'c' },
            response_headers_to_add: [{ header: { key: 'x-r', value: 'v' }, append: false }],
            response_headers_to_remove: ['X-Gone'],
          },
        ],
        {
          request_headers_to_add: [{ header: { key: 'x-vh', value: 'v' }, append_action: 'ADD_IF_ABSENT', keep_empty_value: true }],
          retry_policy: { retry_on: '5xx', num_retries: 2 },
          typed_per_filter_config: {
            fault: {
              '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig',
              config: { '@type': url(T.fault), delay: { fixed_delay: '1s' } },
              is_optional: true,
            },
            unknown: {
              '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig',
              config: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
              is_optional: true,
            },
            off: { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', disabled: true },
          },
        },
        { request_headers_to_remove: ['x-internal'], internal_only_headers: ['X-Only'], most_specific_header_mutations_wins: true },
      ),
    );
    const vh = v.virtualHosts[0]!;
    expect(v.headerMutations.requestHeadersToRemove).toEqual(['x-internal']);
    expect(v.internalOnlyHeaders).toEqual(['x-only']);
    expect(v.mostSpecificHeaderMutationsWins).toBe(true);
    expect(vh.headerMutations.requestHeadersToAdd).toEqual([{ name: 'x-vh', value: 'v', appendAction: 'ADD_IF_ABSENT', keepEmptyValue: true }]);
    expect(vh.retryPolicy).toMatchObject({ retryOn: ['5xx'], numRetries: 2 });
    expect(Object.keys(vh.typedPerFilterConfig).sort()).toEqual(['fault', 'off']);
    expect(vh.typedPerFilterConfig.fault).toMatchObject({ isOptional: true, config: { delay: { fixedDelay: 1000 } } });
    expect(vh.typedPerFilterConfig.off).toEqual({ typeUrl: '', config: undefined, isOptional: false, disabled: true });
    expect(vh.routes[0]!.headerMutations).toEqual({
      requestHeadersToAdd: [],
      requestHeadersToRemove: [],
      responseHeadersToAdd: [{ name: 'x-r', value: 'v', appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD', keepEmptyValue: false }],
      responseHeadersToRemove: ['x-gone'],
    });
  });

  describe('rejects', () => {
    const route = (r: unknown): Record<string, unknown> => rc([r]);
    it('a route without a path specifier', () => {
      bad(R, T.route, route({ match: {}, route: { cluster: 'c' } }), 'virtual_hosts[0].routes[0].match', 'no path specifier');
    });
    it('a route without an action', () => {
      bad(R, T.route, route({ match: { prefix: '/' } }), 'virtual_hosts[0].routes[0]', 'no action');
    });
    it('an invalid RE2 path regex, naming the field', () => {
      const fine = { match: { prefix: '/' }, route: { cluster: 'c' } };
      const e = bad(R, T.route, rc([fine, fine, fine, { match: { safe_regex: { regex: '(' } }, route: { cluster: 'c' } }]));
      expect(e).toBe('virtual_hosts[0].routes[3].match.safe_regex.regex: invalid RE2 pattern "(": missing closing )');
    });
    it('RE2-invalid patterns everywhere, including ones JS RegExp would accept', () => {
      // Lookahead and backreferences are JS-only syntax.
      bad(R, T.route, route({ match: { prefix: '/', headers: [{ name: 'h', string_match: { safe_regex: { regex: 'a(?=b)' } } }] }, route: { cluster: 'c' } }), 'headers[0].string_match.safe_regex.regex', 'invalid RE2 pattern');
      bad(R, T.route, route({ match: { prefix: '/', headers: [{ name: 'h', safe_regex_match: { regex: '(a)\\1' } }] }, route: { cluster: 'c' } }), 'headers[0].safe_regex_match.regex');
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '[' }, substitution: '' } } }), 'route.regex_rewrite.pattern.regex');
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', hash_policy: [{ header: { header_name: 'h', regex_rewrite: { pattern: { regex: '*' } } } }] } }), 'hash_policy[0].header.regex_rewrite.pattern.regex');
      bad(R, T.route, route({ match: { prefix: '/', query_parameters: [{ name: 'q', string_match: { safe_regex: { regex: '(?<n>x)\\k<n>' } } }] }, route: { cluster: 'c' } }), 'query_parameters[0].string_match.safe_regex.regex');
      bad(R, T.route, route({ match: { safe_regex: { regex: '' } }, route: { cluster: 'c' } }), 'match.safe_regex.regex', 'must not be empty');
    });
    it('weighted_clusters with zero total weight', () => {
      bad(R, T.route, route({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a' }, { name: 'b', weight: 0 }] } } }), 'route.weighted_clusters.clusters', 'sum of the cluster weights is 0');
    });
    it('weighted_clusters whose total overflows uint32', () => {
      bad(R, T.route, route({ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 4294967295 }, { name: 'b', weight: 1 }] } } }), 'route.weighted_clusters.clusters', 'exceeds 4294967295');
    });
    it('retry_back_off with a zero base_interval or max below base', () => {
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_back_off: { base_interval: '0s' } } } }), 'route.retry_policy.retry_back_off.base_interval', 'greater than 0');
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_back_off: {} } } }), 'retry_back_off.base_interval', 'required');
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { retry_back_off: { base_interval: '1s', max_interval: '0.5s' } } } }), 'retry_back_off.max_interval', 'less than base_interval');
    });
    it('accepts num_retries of 0 as Envoy does ("no retries"), where gRPC C-core would NACK', () => {
      const zero = ok(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', retry_policy: { num_retries: 0 } } }));
      const action = zero.virtualHosts[0]!.routes[0]!.action;
      expect(action.kind === 'route' && action.retryPolicy?.numRetries).toBe(0);
    });
    it('negative and overflowing durations', () => {
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster: 'c', timeout: '-2s' } }), 'routes[0].route.timeout', 'outside [0, 315576000000]');
      // nanos out of range cannot be written in proto3 JSON, so encode directly.
      const bytes = encodeMessage(T.route, {
        name: 'rc',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', idle_timeout: { seconds: 1, nanos: 1_000_000_000 } } }] }],
      });
      const r = R.decode(ctx, { type_url: typeUrlOf(T.route), value: bytes });
      expect(r.name).toBe('rc');
      expect(r.error).toContain('route.idle_timeout: duration nanos 1000000000 outside [0, 1e9)');
      const big = encodeMessage(T.route, {
        name: 'rc',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c', timeout: { seconds: 315576000001 } } }] }],
      });
      expect(R.decode(ctx, { type_url: typeUrlOf(T.route), value: big }).error).toContain('route.timeout: duration seconds');
    });
    it('a typed_per_filter_config of an unknown type unless optional', () => {
      bad(R, T.route, rc([], { typed_per_filter_config: { x: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } }), 'virtual_hosts[0].typed_per_filter_config["x"]', 'unsupported filter override type');
      bad(R, T.route, rc([], { typed_per_filter_config: { r: { '@type': url(T.router) } } }), 'typed_per_filter_config["r"]', 'does not support per-route overrides');
      // RBAC's override type is RBACPerRoute; its top-level type is not an override.
      bad(R, T.route, rc([], { typed_per_filter_config: { r: { '@type': url(T.rbac) } } }), 'typed_per_filter_config["r"]', 'does not support per-route overrides');
      const ok2 = ok(R, T.route, rc([], {
        typed_per_filter_config: {
          r: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { action: 'ALLOW' } } },
          none: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute' },
        },
      }));
      expect(ok2.virtualHosts[0]!.typedPerFilterConfig.r?.config).toMatchObject({ rbac: { rules: { action: 'ALLOW', policies: {} } } });
      expect(ok2.virtualHosts[0]!.typedPerFilterConfig.none?.config).toEqual({ rbac: undefined });
    });
    it('an unknown cluster specifier plugin', () => {
      bad(R, T.route, route({ match: { prefix: '/' }, route: { cluster_specifier_plugin: 'nope' } }), 'route.cluster_specifier_plugin', 'unknown cluster specifier plugin "nope"');
    });
    it('a virtual host without domains and a malformed wildcard', () => {
      bad(R, T.route, { name: 'rc', virtual_hosts: [{ name: 'vh', domains: [] }] }, 'virtual_hosts[0].domains', 'at least one domain');
      bad(R, T.route, { name: 'rc', virtual_hosts: [{ name: 'vh', domains: ['a.*.b'] }] }, 'virtual_hosts[0].domains[0]', 'wildcard');
    });
    it('duplicate virtual host names or domains', () => {
      const vh = (name: string, domains: string[]): unknown => ({ name, domains });
      bad(R, T.route, { name: 'rc', virtual_hosts: [vh('a', ['x']), vh('a', ['y'])] }, 'virtual_hosts[1].name', 'duplicate virtual host name');
      bad(R, T.route, { name: 'rc', virtual_hosts: [vh('a', ['x', '*']), vh('b', ['y', '*'])] }, 'virtual_hosts[1].domains[1]', 'more than one virtual host');
    });
    it('an invalid range or direct response status', () => {
      bad(R, T.route, route({ match: { prefix: '/', headers: [{ name: 'h', range_match: { start: 5, end: 1 } }] }, route: { cluster: 'c' } }), 'headers[0].range_match');
      bad(R, T.route, route({ match: { prefix: '/' }, direct_response: { status: 99 } }), 'direct_response.status');
    });
    it('a header mutation without a key', () => {
      bad(R, T.route, rc([], { request_headers_to_add: [{ header: { value: 'v' } }] }), 'virtual_hosts[0].request_headers_to_add[0].header.key');
    });
  });
});
