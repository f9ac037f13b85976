import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/random.js';
import { compileRouteTable } from '../src/route-table.js';
import type { RouteDecision } from '../src/route-decision.js';
import { oneHost, request, routeConfig, to } from './route-fixtures.js';

const rnd = seededRandom(1);

function clusterOf(d: RouteDecision): string | undefined {
  if (d.kind === 'no_route') return 'NR';
  return d.kind === 'forward' ? d.cluster : d.kind;
}

/** A table of one route with `match`, and a function telling whether a request matches it. */
function matcher(match: Record<string, unknown>) {
  const table = compileRouteTable(oneHost([to('hit', match)]));
  return (init: Parameters<typeof request>[0]) => clusterOf(table.route(request(init), rnd)) === 'hit';
}

describe('virtual host selection', () => {
  const table = compileRouteTable(
    routeConfig({
      virtual_hosts: [
        { name: 'star', domains: ['*'], routes: [to('star')] },
        { name: 'suffix', domains: ['*.foo.com'], routes: [to('suffix')] },
        { name: 'prefix', domains: ['foo.*'], routes: [to('prefix')] },
        { name: 'exact', domains: ['www.foo.com', 'reviews:9080'], routes: [to('exact')] },
      ],
    }),
  );
  it('prefers exact, then suffix, then prefix wildcards, then *', () => {
    expect(clusterOf(table.route(request({ authority: 'www.foo.com' }), rnd))).toBe('exact');
    expect(clusterOf(table.route(request({ authority: 'api.foo.com' }), rnd))).toBe('suffix');
    expect(clusterOf(table.route(request({ authority: 'foo.org' }), rnd))).toBe('prefix');
    expect(clusterOf(table.route(request({ authority: 'other' }), rnd))).toBe('star');
    expect(table.virtualHostFor('WWW.FOO.COM')?.name).toBe('exact');
  });
  it('keeps the port unless ignore_port_in_host_matching is set', () => {
    expect(clusterOf(table.route(request({ authority: 'reviews:9080' }), rnd))).toBe('exact');
    expect(clusterOf(table.route(request({ authority: 'www.foo.com:80' }), rnd))).toBe('star');
    const ignoring = compileRouteTable(
      routeConfig({
        ignore_port_in_host_matching: true,
        virtual_hosts: [{ name: 'a', domains: ['www.foo.com'], routes: [to('a')] }],
      }),
    );
    expect(clusterOf(ignoring.route(request({ authority: 'www.foo.com:8080' }), rnd))).toBe('a');
    const forced = compileRouteTable(
      routeConfig({ virtual_hosts: [{ name: 'a', domains: ['www.foo.com'], routes: [to('a')] }] }),
      { ignorePortInHostMatching: true },
    );
    expect(clusterOf(forced.route(request({ authority: 'www.foo.com:8080' }), rnd))).toBe('a');
  });
  it('answers no_route 404 NR without a virtual host or a route', () => {
    const t = compileRouteTable(routeConfig({ virtual_hosts: [{ name: 'a', domains: ['a'], routes: [to('a', { path: '/x' })] }] }));
    expect(t.route(request({ authority: 'b' }), rnd)).toEqual({ kind: 'no_route', status: 404, flag: 'NR', virtualHost: undefined });
    const d = t.route(request({ authority: 'a', path: '/y' }), rnd);
    expect(d).toMatchObject({ kind: 'no_route', status: 404, flag: 'NR' });
    expect(d.virtualHost?.name).toBe('a');
  });
});

describe('path matching', () => {
  it('first matching route wins', () => {
    const t = compileRouteTable(oneHost([to('svc', { prefix: '/svc' }), to('method', { path: '/svc/method' }), to('all')]));
    expect(clusterOf(t.route(request({ path: '/svc/method' }), rnd))).toBe('svc');
    expect(clusterOf(t.route(request({ path: '/other' }), rnd))).toBe('all');
  });
  it('prefix matches the whole :path, query included', () => {
    const m = matcher({ prefix: '/a?x' });
    expect(m({ path: '/a?x=1' })).toBe(true);
    expect(m({ path: '/a' })).toBe(false);
    const all = matcher({ prefix: '' });
    expect(all({ path: '/anything' })).toBe(true);
  });
  it('path is exact and ignores the query and fragment', () => {
    const m = matcher({ path: '/a/b' });
    expect(m({ path: '/a/b' })).toBe(true);
    expect(m({ path: '/a/b?x=1' })).toBe(true);
    expect(m({ path: '/a/b#f' })).toBe(true);
    expect(m({ path: '/a/bc' })).toBe(false);
    expect(m({ path: '/a' })).toBe(false);
    expect(m({ path: '/A/B' })).toBe(false);
  });
  it('case_sensitive false folds ASCII case for prefix, path and path_separated_prefix', () => {
    expect(matcher({ prefix: '/Api', case_sensitive: false })({ path: '/aPI/x' })).toBe(true);
    expect(matcher({ path: '/Api', case_sensitive: false })({ path: '/API?q' })).toBe(true);
    expect(matcher({ path_separated_prefix: '/Api', case_sensitive: false })({ path: '/aPi/x' })).toBe(true);
    expect(matcher({ prefix: '/Api' })({ path: '/api' })).toBe(false);
  });
  it('safe_regex fully matches the path without the query; case_sensitive does not apply', () => {
    const m = matcher({ safe_regex: { regex: '/v[0-9]+/.*' } });
    expect(m({ path: '/v1/users' })).toBe(true);
    expect(m({ path: '/v1/users?x=/v2/' })).toBe(true);
    expect(m({ path: '/api/v1/users' })).toBe(false);
    const ci = matcher({ safe_regex: { regex: '/abc' }, case_sensitive: false });
    expect(ci({ path: '/ABC' })).toBe(false);
    expect(ci({ path: '/abc' })).toBe(true);
  });
  it('path_separated_prefix ends at a segment boundary', () => {
    const m = matcher({ path_separated_prefix: '/foo' });
    expect(m({ path: '/foo' })).toBe(true);
    expect(m({ path: '/foo/bar' })).toBe(true);
    expect(m({ path: '/foo?x=1' })).toBe(true);
    expect(m({ path: '/foobar' })).toBe(false);
  });
  it('grpc matches only gRPC requests', () => {
    const m = matcher({ prefix: '/', grpc: {} });
    expect(m({ grpc: true })).toBe(true);
    expect(m({})).toBe(false);
  });
});

describe('header matching (HeaderUtility::matchHeaders)', () => {
  const h = (name: string, rest: Record<string, unknown>) => matcher({ prefix: '/', headers: [{ name, ...rest }] });
  it('string matchers with and without ignore_case', () => {
    const exact = h('x-env', { string_match: { exact: 'Prod' } });
    expect(exact({ headers: { 'x-env': 'Prod' } })).toBe(true);
    expect(exact({ headers: { 'x-env': 'prod' } })).toBe(false);
    expect(exact({})).toBe(false);
    expect(h('X-Env', { string_match: { exact: 'Prod', ignore_case: true } })({ headers: { 'x-env': 'PROD' } })).toBe(true);
    const prefix = h('x', { string_match: { prefix: 'ab', ignore_case: true } });
    expect(prefix({ headers: { x: 'ABc' } })).toBe(true);
    expect(prefix({ headers: { x: 'cab' } })).toBe(false);
    const suffix = h('x', { string_match: { suffix: 'yz' } });
    expect(suffix({ headers: { x: 'xyz' } })).toBe(true);
    expect(suffix({ headers: { x: 'xYZ' } })).toBe(false);
    const contains = h('x', { string_match: { contains: 'mid' } });
    expect(contains({ headers: { x: 'a-mid-b' } })).toBe(true);
    expect(contains({ headers: { x: 'a-b' } })).toBe(false);
    const regex = h('x', { string_match: { safe_regex: { regex: '[0-9]{3}' }, ignore_case: true } });
    expect(regex({ headers: { x: '123' } })).toBe(true);
    expect(regex({ headers: { x: '1234' } })).toBe(false);
  });
  it('the deprecated direct fields', () => {
    expect(h('x', { exact_match: 'a' })({ headers: { x: 'a' } })).toBe(true);
    expect(h('x', { prefix_match: 'a' })({ headers: { x: 'ab' } })).toBe(true);
    expect(h('x', { suffix_match: 'b' })({ headers: { x: 'ab' } })).toBe(true);
    expect(h('x', { contains_match: 'b' })({ headers: { x: 'abc' } })).toBe(true);
    expect(h('x', { safe_regex_match: { regex: 'a.c' } })({ headers: { x: 'abc' } })).toBe(true);
  });
  it('several values are matched joined with ","', () => {
    expect(h('x', { string_match: { exact: 'a,b' } })({ headers: { x: ['a', 'b'] } })).toBe(true);
  });
  it('present_match, absent headers and invert_match', () => {
    const present = h('x', { present_match: true });
    expect(present({ headers: { x: '' } })).toBe(true);
    expect(present({})).toBe(false);
    const absent = h('x', { present_match: false });
    expect(absent({})).toBe(true);
    expect(absent({ headers: { x: '1' } })).toBe(false);
    const notPresent = h('x', { present_match: true, invert_match: true });
    expect(notPresent({})).toBe(true);
    expect(notPresent({ headers: { x: '1' } })).toBe(false);
    // A missing header fails an inverted value matcher (Envoy), it does not "not equal".
    const notA = h('x', { string_match: { exact: 'a' }, invert_match: true });
    expect(notA({ headers: { x: 'b' } })).toBe(true);
    expect(notA({ headers: { x: 'a' } })).toBe(false);
    expect(notA({})).toBe(false);
    // No specifier: presence.
    expect(h('x', {})({ headers: { x: 'v' } })).toBe(true);
    expect(h('x', {})({})).toBe(false);
  });
  it('treat_missing_header_as_empty', () => {
    const empty = h('x', { string_match: { exact: '' }, treat_missing_header_as_empty: true });
    expect(empty({})).toBe(true);
    const notA = h('x', { string_match: { exact: 'a' }, invert_match: true, treat_missing_header_as_empty: true });
    expect(notA({})).toBe(true);
  });
  it('range_match is [start, end) over a signed 64-bit integer value', () => {
    const r = h('x', { range_match: { start: '-10', end: '0' } });
    expect(r({ headers: { x: '-1' } })).toBe(true);
    expect(r({ headers: { x: '-10' } })).toBe(true);
    expect(r({ headers: { x: '0' } })).toBe(false);
    expect(r({ headers: { x: '-1.5' } })).toBe(false);
    expect(r({ headers: { x: 'abc' } })).toBe(false);
    expect(r({ headers: { x: '-99999999999999999999' } })).toBe(false);
    expect(r({})).toBe(false);
    const inv = h('x', { range_match: { start: '-10', end: '0' }, invert_match: true });
    expect(inv({ headers: { x: '-1' } })).toBe(false);
    expect(inv({ headers: { x: '5' } })).toBe(true);
  });
  it('all header matchers must match', () => {
    const m = matcher({ prefix: '/', headers: [{ name: 'a', present_match: true }, { name: 'b', string_match: { exact: '1' } }] });
    expect(m({ headers: { a: 'x', b: '1' } })).toBe(true);
    expect(m({ headers: { a: 'x', b: '2' } })).toBe(false);
    expect(m({ headers: { b: '1' } })).toBe(false);
  });
  it('pseudo-headers are matchable', () => {
    expect(h(':method', { string_match: { exact: 'POST' } })({ method: 'POST' })).toBe(true);
    expect(h(':method', { string_match: { exact: 'POST' } })({ method: 'GET' })).toBe(false);
    expect(h(':authority', { string_match: { prefix: 'api.' } })({ authority: 'api.x' })).toBe(true);
    expect(h(':scheme', { string_match: { exact: 'https' } })({ scheme: 'https' })).toBe(true);
    expect(h(':path', { string_match: { contains: 'q=1' } })({ path: '/a?q=1' })).toBe(true);
  });
  it('gRPC (A28): -bin headers are absent, content-type is matchable', () => {
    const bin = h('x-data-bin', { present_match: true });
    expect(bin({ grpc: true, headers: { 'x-data-bin': 'AAEC' } })).toBe(false);
    expect(bin({ headers: { 'x-data-bin': 'AAEC' } })).toBe(true);
    expect(h('x-data-bin', { present_match: false })({ grpc: true, headers: { 'x-data-bin': 'AAEC' } })).toBe(true);
    const ct = h('content-type', { string_match: { prefix: 'application/grpc' } });
    expect(ct({ grpc: true })).toBe(true);
    expect(ct({ grpc: true, headers: { 'content-type': 'application/grpc+proto' } })).toBe(true);
    expect(ct({})).toBe(false);
  });
});

describe('query parameters', () => {
  const q = (name: string, rest: Record<string, unknown>) => matcher({ prefix: '/', query_parameters: [{ name, ...rest }] });
  it('string_match on the first value, not percent-decoded (Envoy parseQueryString)', () => {
    const m = q('debug', { string_match: { exact: '1' } });
    expect(m({ path: '/a?debug=1' })).toBe(true);
    expect(m({ path: '/a?x=2&debug=1' })).toBe(true);
    expect(m({ path: '/a?debug=2&debug=1' })).toBe(false);
    expect(m({ path: '/a?debug=0' })).toBe(false);
    expect(m({ path: '/a?xdebug=1' })).toBe(false);
    expect(m({ path: '/a' })).toBe(false);
    const enc = q('q', { string_match: { exact: 'a%20b' } });
    expect(enc({ path: '/?q=a%20b' })).toBe(true);
    expect(q('q', { string_match: { exact: 'A B', ignore_case: true } })({ path: '/?q=a b' })).toBe(true);
    // Envoy's parser runs to the end of :path: a "#" belongs to the value.
    expect(q('q', { string_match: { exact: '1#f' } })({ path: '/?q=1#f' })).toBe(true);
  });
  it('present_match and a parameter without a value', () => {
    const m = q('flag', { present_match: true });
    expect(m({ path: '/?flag' })).toBe(true);
    expect(m({ path: '/?flag=' })).toBe(true);
    expect(m({ path: '/?other=flag' })).toBe(false);
    expect(q('flag', {})({ path: '/?a=1&flag&b' })).toBe(true);
    expect(q('flag', { string_match: { exact: '' } })({ path: '/?flag' })).toBe(true);
  });
});

describe('runtime_fraction', () => {
  it('matches with probability numerator/denominator over 10,000 draws', () => {
    const t = compileRouteTable(
      oneHost([
        to('canary', { prefix: '/', runtime_fraction: { default_value: { numerator: 25, denominator: 'HUNDRED' } } }),
        to('stable'),
      ]),
    );
    const random = seededRandom(42);
    let canary = 0;
    const n = 10_000;
    for (let i = 0; i < n; i++) if (clusterOf(t.route(request(), random)) === 'canary') canary++;
    // 25 %: the standard deviation is ~43, so ±250 is about 6 sigma.
    expect(canary).toBeGreaterThan(2_250);
    expect(canary).toBeLessThan(2_750);
  });
  it('uses one random value per request for every route, as Envoy does', () => {
    // 50 % then 50 %: the second fraction sees the same value, so it never matches.
    const half = { default_value: { numerator: 50, denominator: 'HUNDRED' } };
    const t = compileRouteTable(
      oneHost([to('a', { prefix: '/', runtime_fraction: half }), to('b', { prefix: '/', runtime_fraction: half }), to('c')]),
    );
    const random = seededRandom(7);
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 1_000; i++) seen.add(clusterOf(t.route(request(), random)));
    expect([...seen].sort()).toEqual(['a', 'c']);
  });
  it('gRPC requests draw independently for every fraction (gRFC A28)', () => {
    const half = { default_value: { numerator: 50, denominator: 'HUNDRED' } };
    const t = compileRouteTable(
      oneHost([to('a', { prefix: '/', runtime_fraction: half }), to('b', { prefix: '/', runtime_fraction: half }), to('c')]),
    );
    const random = seededRandom(8);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) {
      const c = clusterOf(t.route(request({ grpc: true }), random))!;
      counts[c] = (counts[c] ?? 0) + 1;
    }
    // a 50 %, b 25 %, c 25 % (sigma about 50 and 43).
    expect(counts['a']).toBeGreaterThan(4_700);
    expect(counts['a']).toBeLessThan(5_300);
    expect(counts['b']).toBeGreaterThan(2_250);
    expect(counts['b']).toBeLessThan(2_750);
    expect(counts['c']).toBeGreaterThan(2_250);
    expect(counts['c']).toBeLessThan(2_750);
  });
  it('0 never matches, a full fraction always does, MILLION denominators work', () => {
    const never = matcher({ prefix: '/', runtime_fraction: { default_value: { numerator: 0 } } });
    const always = matcher({ prefix: '/', runtime_fraction: { default_value: { numerator: 1_000_000, denominator: 'MILLION' } } });
    for (let i = 0; i < 100; i++) {
      expect(never({})).toBe(false);
      expect(always({})).toBe(true);
    }
  });
});
