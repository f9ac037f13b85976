import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/random.js';
import type { ForwardDecision, RouteDecision } from '../src/route-decision.js';
import { selectMirrorClusters } from '../src/route-mirror.js';
import { compileRouteTable } from '../src/route-table.js';
import { oneHost, request, routeConfig, to } from './route-fixtures.js';

function forward(d: RouteDecision): ForwardDecision {
  if (d.kind !== 'forward') throw new Error(`expected forward, got ${d.kind}`);
  return d;
}

describe('cluster selection', () => {
  it('cluster passes the route data through', () => {
    const t = compileRouteTable(
      oneHost(
        [
          {
            match: { prefix: '/' },
            route: {
              cluster: 'c',
              timeout: '2.5s',
              hash_policy: [{ header: { header_name: 'x-user' } }],
              retry_policy: { retry_on: '5xx', num_retries: 3 },
            },
          },
        ],
        { retry_policy: { retry_on: 'reset' } },
      ),
    );
    const d = forward(t.route(request(), seededRandom(1)));
    expect(d.cluster).toBe('c');
    expect(d.timeout).toBe(2500);
    expect(d.retryPolicy?.retryOn).toEqual(['5xx']);
    expect(d.retryPolicy?.numRetries).toBe(3);
    expect(d.hashPolicies).toMatchObject([{ kind: 'header', name: 'x-user' }]);
    expect(d.clusterNotFound).toBeUndefined();
  });
  it('the virtual host retry policy applies when the route has none', () => {
    const t = compileRouteTable(oneHost([to('c')], { retry_policy: { retry_on: 'reset', num_retries: 2 } }));
    const d = forward(t.route(request(), seededRandom(1)));
    expect(d.retryPolicy?.retryOn).toEqual(['reset']);
    expect(d.timeout).toBeUndefined();
  });
  it('weighted_clusters splits by weight within statistical bounds', () => {
    const t = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/' },
          route: { weighted_clusters: { clusters: [{ name: 'a', weight: 70 }, { name: 'b', weight: 20 }, { name: 'c', weight: 10 }, { name: 'z', weight: 0 }] } },
        },
      ]),
    );
    const random = seededRandom(99);
    const counts: Record<string, number> = {};
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const c = forward(t.route(request(), random)).cluster!;
      counts[c] = (counts[c] ?? 0) + 1;
    }
    // Binomial standard deviations: a ~46, b ~40, c ~30; bounds are about 6 sigma.
    expect(counts['a']).toBeGreaterThan(6_700);
    expect(counts['a']).toBeLessThan(7_300);
    expect(counts['b']).toBeGreaterThan(1_750);
    expect(counts['b']).toBeLessThan(2_250);
    expect(counts['c']).toBeGreaterThan(820);
    expect(counts['c']).toBeLessThan(1_180);
    expect(counts['z']).toBeUndefined();
  });
  it('weighted picks correlate with runtime_fraction for HTTP (one stream value, as Envoy) but not for gRPC', () => {
    // A 50 % route with a 50/50 split: Envoy's shared value makes the split all "a".
    const t = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/', runtime_fraction: { default_value: { numerator: 50, denominator: 'HUNDRED' } } },
          route: { weighted_clusters: { clusters: [{ name: 'a', weight: 50 }, { name: 'b', weight: 50 }] } },
        },
        { match: { prefix: '/' }, route: { cluster: 'rest' } },
      ]),
    );
    const random = seededRandom(4);
    const http = new Set<string | undefined>();
    const grpc = new Set<string | undefined>();
    for (let i = 0; i < 500; i++) {
      http.add(forward(t.route(request(), random)).cluster);
      grpc.add(forward(t.route(request({ grpc: true }), random)).cluster);
    }
    expect([...http].sort()).toEqual(['a', 'rest']);
    expect([...grpc].sort()).toEqual(['a', 'b', 'rest']);
  });
  it('weighted_clusters header_name: a numeric header value replaces the random value', () => {
    const t = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/' },
          route: { weighted_clusters: { header_name: 'X-Pick', clusters: [{ name: 'a', weight: 30 }, { name: 'b', weight: 70 }] } },
        },
      ]),
    );
    const r = seededRandom(5);
    const pick = (v?: string | string[]) => forward(t.route(request({ headers: v === undefined ? {} : { 'x-pick': v } }), r)).cluster;
    expect(pick('0')).toBe('a');
    expect(pick('29')).toBe('a');
    expect(pick('30')).toBe('b');
    expect(pick('99')).toBe('b');
    expect(pick('129')).toBe('a');
    expect(pick('18446744073709551615')).toBe(['a', 'b'][18446744073709551615n % 100n < 30n ? 0 : 1]);
    // Not a number, or several values: the random value is used; both clusters appear.
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 200; i++) seen.add(pick(i % 2 ? 'x' : ['1', '2']));
    expect([...seen].sort()).toEqual(['a', 'b']);
  });
  it('weighted cluster entries carry their header mutations and host rewrite', () => {
    const t = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/' },
          route: {
            weighted_clusters: {
              header_name: 'x-pick',
              clusters: [{ name: 'a', weight: 1, host_rewrite_literal: 'a.internal', request_headers_to_add: [{ header: { key: 'x-c', value: 'a' } }] }],
            },
          },
        },
      ]),
    );
    const d = forward(t.route(request({ headers: { 'x-pick': '0' } }), seededRandom(1)));
    expect(d.weightedCluster?.name).toBe('a');
    expect(d.clusterHostRewrite).toBe('a.internal');
    expect(d.requestHeaderOps).toHaveLength(1);
  });
  it('cluster_header takes the cluster from the request; absent or empty is NC with cluster_not_found_response_code', () => {
    const t = compileRouteTable(
      oneHost([
        { match: { prefix: '/a' }, route: { cluster_header: 'X-Cluster' } },
        { match: { prefix: '/b' }, route: { cluster_header: 'x-cluster', cluster_not_found_response_code: 'NOT_FOUND' } },
      ]),
    );
    const r = seededRandom(1);
    expect(forward(t.route(request({ path: '/a', headers: { 'x-cluster': 'svc' } }), r)).cluster).toBe('svc');
    const missing = forward(t.route(request({ path: '/a' }), r));
    expect(missing.cluster).toBeUndefined();
    expect(missing.clusterNotFound).toEqual({ status: 503, flag: 'NC' });
    const empty = forward(t.route(request({ path: '/b', headers: { 'x-cluster': '' } }), r));
    expect(empty.clusterNotFound).toEqual({ status: 404, flag: 'NC' });
  });
  it('cluster_specifier_plugin leaves the choice to the named plugin', () => {
    const t = compileRouteTable(
      routeConfig({
        cluster_specifier_plugins: [
          { extension: { name: 'rls', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } }, is_optional: true },
        ],
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster_specifier_plugin: 'rls' } }] }],
      }),
    );
    const d = forward(t.route(request(), seededRandom(1)));
    expect(d.cluster).toBeUndefined();
    expect(d.clusterSpecifierPlugin).toBe('rls');
  });
});

describe('direct responses and non-forwarding routes', () => {
  it('direct_response carries status and body; Location for 3xx and 201', () => {
    const t = compileRouteTable(
      oneHost([
        { match: { path: '/health' }, direct_response: { status: 200, body: { inline_string: 'ok' } } },
        { match: { path: '/moved' }, direct_response: { status: 301 } },
        { match: { prefix: '/' }, non_forwarding_action: {} },
      ]),
    );
    const r = seededRandom(1);
    expect(t.route(request({ path: '/health' }), r)).toMatchObject({ kind: 'direct_response', status: 200, body: 'ok', location: undefined });
    expect(t.route(request({ path: '/moved?x=1', authority: 'h:8080' }), r)).toMatchObject({
      kind: 'direct_response',
      status: 301,
      body: undefined,
      location: 'http://h:8080/moved?x=1',
    });
    expect(t.route(request({ path: '/x' }), r).kind).toBe('non_forwarding');
  });
});

describe('redirects (Http::Utility::newUri)', () => {
  const redirect = (action: Record<string, unknown>, init: Parameters<typeof request>[0], match: Record<string, unknown> = { prefix: '/' }) => {
    const t = compileRouteTable(oneHost([{ match, redirect: action }]));
    const d = t.route(request(init), seededRandom(1));
    if (d.kind !== 'redirect') throw new Error(d.kind);
    return d;
  };
  it('defaults to 301 to the same URL', () => {
    const d = redirect({}, { authority: 'a.com', path: '/p?q=1' });
    expect(d.status).toBe(301);
    expect(d.location).toBe('http://a.com/p?q=1');
  });
  it('response_code', () => {
    expect(redirect({ response_code: 'FOUND' }, {}).status).toBe(302);
    expect(redirect({ response_code: 'SEE_OTHER' }, {}).status).toBe(303);
    expect(redirect({ response_code: 'TEMPORARY_REDIRECT' }, {}).status).toBe(307);
    expect(redirect({ response_code: 'PERMANENT_REDIRECT' }, {}).status).toBe(308);
  });
  it('https_redirect drops the default http port, keeps others', () => {
    expect(redirect({ https_redirect: true }, { authority: 'a.com:80', path: '/x' }).location).toBe('https://a.com/x');
    expect(redirect({ https_redirect: true }, { authority: 'a.com:8080', path: '/x' }).location).toBe('https://a.com:8080/x');
    expect(redirect({ https_redirect: true }, { authority: '[::1]:80', path: '/x' }).location).toBe('https://[::1]/x');
  });
  it('scheme_redirect drops the default https port when leaving https', () => {
    expect(redirect({ scheme_redirect: 'http' }, { scheme: 'https', authority: 'a.com:443' }).location).toBe('http://a.com/');
    expect(redirect({ scheme_redirect: 'https' }, { scheme: 'https', authority: 'a.com:443' }).location).toBe('https://a.com:443/');
  });
  it('host_redirect and port_redirect', () => {
    expect(redirect({ host_redirect: 'b.com' }, { authority: 'a.com:8080', path: '/x' }).location).toBe('http://b.com/x');
    expect(redirect({ port_redirect: 9000 }, { authority: 'a.com:8080', path: '/x' }).location).toBe('http://a.com:9000/x');
    expect(redirect({ host_redirect: 'b.com', port_redirect: 9000 }, { authority: 'a.com', path: '/x' }).location).toBe('http://b.com:9000/x');
  });
  it('path_redirect keeps the request query unless it has its own', () => {
    expect(redirect({ path_redirect: '/new' }, { path: '/old?q=1' }).location).toBe('http://example.com/new?q=1');
    expect(redirect({ path_redirect: '/new?z=2' }, { path: '/old?q=1' }).location).toBe('http://example.com/new?z=2');
    expect(redirect({ path_redirect: '/new?z=2', strip_query: true }, { path: '/old?q=1' }).location).toBe('http://example.com/new?z=2');
    expect(redirect({ path_redirect: 'new' }, { path: '/old' }).location).toBe('http://example.com/new');
  });
  it('strip_query', () => {
    expect(redirect({ strip_query: true }, { path: '/p?q=1' }).location).toBe('http://example.com/p');
    expect(redirect({ path_redirect: '/n', strip_query: true }, { path: '/p?q=1' }).location).toBe('http://example.com/n');
  });
  it('prefix_rewrite and regex_rewrite rewrite the path first', () => {
    expect(redirect({ prefix_rewrite: '/v2/' }, { path: '/v1/users?x=1' }, { prefix: '/v1/' }).location).toBe(
      'http://example.com/v2/users?x=1',
    );
    expect(
      redirect(
        { regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' } },
        { path: '/service/foo/v1/api' },
      ).location,
    ).toBe('http://example.com/v1/api/instance/foo');
  });
});

describe('request mirroring', () => {
  it('the most specific non-empty policy list wins; cluster_header and fractions apply', () => {
    const rc = routeConfig({
      request_mirror_policies: [{ cluster: 'rc-mirror' }],
      virtual_hosts: [
        {
          name: 'v1',
          domains: ['v1'],
          request_mirror_policies: [{ cluster: 'vh-mirror' }, { cluster_header: 'x-mirror' }],
          routes: [
            { match: { prefix: '/route' }, route: { cluster: 'c', request_mirror_policies: [{ cluster: 'route-mirror' }] } },
            to('c'),
          ],
        },
        { name: 'v2', domains: ['v2'], routes: [to('c')] },
      ],
    });
    const t = compileRouteTable(rc);
    const r = seededRandom(1);
    expect(selectMirrorClusters(forward(t.route(request({ authority: 'v1', path: '/route' }), r)))).toEqual(['route-mirror']);
    expect(selectMirrorClusters(forward(t.route(request({ authority: 'v1', path: '/x' }), r)))).toEqual(['vh-mirror']);
    expect(selectMirrorClusters(forward(t.route(request({ authority: 'v1', headers: { 'x-mirror': 'hm' } }), r)))).toEqual([
      'vh-mirror',
      'hm',
    ]);
    expect(selectMirrorClusters(forward(t.route(request({ authority: 'v2' }), r)))).toEqual(['rc-mirror']);
  });
  it('runtime_fraction mirrors that share of requests', () => {
    const t = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/' },
          route: {
            cluster: 'c',
            request_mirror_policies: [{ cluster: 'm', runtime_fraction: { default_value: { numerator: 10, denominator: 'HUNDRED' } } }],
          },
        },
      ]),
    );
    const random = seededRandom(11);
    let mirrored = 0;
    for (let i = 0; i < 10_000; i++) mirrored += selectMirrorClusters(forward(t.route(request(), random))).length;
    // 10 %: sigma = 30.
    expect(mirrored).toBeGreaterThan(820);
    expect(mirrored).toBeLessThan(1_180);
  });
});
