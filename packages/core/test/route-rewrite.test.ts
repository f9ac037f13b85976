import { describe, expect, it } from 'vitest';
import { mutableHeadersFromRecord } from '../src/header-mutation.js';
import { seededRandom } from '../src/random.js';
import { finalizeForwardRequest, rewriteForwardPath } from '../src/route-apply.js';
import type { ForwardDecision } from '../src/route-decision.js';
import { compileRegexRewrite, replaceAll } from '../src/route-regex.js';
import { compileRouteTable } from '../src/route-table.js';
import { oneHost, request } from './route-fixtures.js';

function decide(routes: unknown[], init: Parameters<typeof request>[0]): ForwardDecision {
  const d = compileRouteTable(oneHost(routes)).route(request(init), seededRandom(1));
  if (d.kind !== 'forward') throw new Error(d.kind);
  return d;
}

const rewrite = (match: Record<string, unknown>, route: Record<string, unknown>, path: string) =>
  rewriteForwardPath(decide([{ match, route: { cluster: 'c', ...route } }], { path }));

describe('prefix_rewrite', () => {
  it("Envoy's documented example: two routes strip /prefix", () => {
    const routes = [
      { match: { prefix: '/prefix/' }, route: { cluster: 'c', prefix_rewrite: '/' } },
      { match: { prefix: '/prefix' }, route: { cluster: 'c', prefix_rewrite: '/' } },
    ];
    expect(rewriteForwardPath(decide(routes, { path: '/prefix' }))).toBe('/');
    expect(rewriteForwardPath(decide(routes, { path: '/prefix/etc' }))).toBe('/etc');
    // With only the second route, /prefix/etc would become //etc.
    expect(rewrite({ prefix: '/prefix' }, { prefix_rewrite: '/' }, '/prefix/etc')).toBe('//etc');
  });
  it('keeps the query, replaces only the matched part', () => {
    expect(rewrite({ prefix: '/api/' }, { prefix_rewrite: '/v2/' }, '/api/users?id=1')).toBe('/v2/users?id=1');
    expect(rewrite({ prefix: '/API', case_sensitive: false }, { prefix_rewrite: '/x' }, '/api/y')).toBe('/x/y');
  });
  it('with path, path_separated_prefix and safe_regex matchers', () => {
    expect(rewrite({ path: '/old' }, { prefix_rewrite: '/new' }, '/old?q=1')).toBe('/new?q=1');
    expect(rewrite({ path_separated_prefix: '/svc' }, { prefix_rewrite: '/backend' }, '/svc/a/b')).toBe('/backend/a/b');
    expect(rewrite({ path_separated_prefix: '/svc' }, { prefix_rewrite: '/backend' }, '/svc?x')).toBe('/backend?x');
    expect(rewrite({ safe_regex: { regex: '/v[0-9]/.*' } }, { prefix_rewrite: '/all' }, '/v1/a/b?q=1')).toBe('/all?q=1');
  });
  it('no rewrite configured leaves the path alone', () => {
    expect(rewrite({ prefix: '/' }, {}, '/a')).toBeUndefined();
  });
});

describe('regex_rewrite (RE2::GlobalReplace)', () => {
  const rx = (regex: string, substitution: string, path: string) =>
    rewrite({ prefix: '/' }, { regex_rewrite: { pattern: { regex }, substitution } }, path);
  it("Envoy's documented examples", () => {
    expect(rx('^/service/([^/]+)(/.*)$', '\\2/instance/\\1', '/service/foo/v1/api')).toBe('/v1/api/instance/foo');
    expect(rx('one', 'two', '/xxx/one/yyy/one/zzz')).toBe('/xxx/two/yyy/two/zzz');
    expect(rx('^(.*?)one(.*)$', '\\1two\\2', '/xxx/one/yyy/one/zzz')).toBe('/xxx/two/yyy/one/zzz');
    expect(rx('(?i)/xxx/', '/yyy/', '/aaa/XxX/bbb')).toBe('/aaa/yyy/bbb');
  });
  it('keeps the query and fragment out of the rewrite', () => {
    expect(rx('one', 'two', '/one?one=1')).toBe('/two?one=1');
  });
  it('\\0 is the whole match, \\\\ a backslash; empty matches follow RE2', () => {
    const r = (p: string, s: string, input: string) => replaceAll(compileRegexRewrite({ pattern: p, substitution: s }), input);
    expect(r('b+', '[\\0]', 'abbbc')).toBe('a[bbb]c');
    expect(r('b', '\\\\', 'abc')).toBe('a\\c');
    // RE2 skips an empty match right after the previous match (Java would give -b--c-).
    expect(r('a*', '-', 'baaac')).toBe('-b-c-');
    expect(r('x', 'y', 'abc')).toBe('abc');
    expect(r('(a)|(b)', '<\\1\\2>', 'ab')).toBe('<a><b>');
  });
});

describe('host rewrites and x-forwarded-host', () => {
  const finalize = (route: Record<string, unknown>, init: Parameters<typeof request>[0], headers: Record<string, string | string[]> = {}) => {
    const d = decide([{ match: { prefix: '/' }, route: { cluster: 'c', ...route } }], { ...init, headers });
    const record = { ...headers };
    const target = finalizeForwardRequest(d, mutableHeadersFromRecord(record));
    return { ...target, headers: record, decision: d };
  };
  it('host_rewrite_literal', () => {
    expect(finalize({ host_rewrite_literal: 'backend.internal' }, { authority: 'a.com' }).authority).toBe('backend.internal');
    expect(finalize({}, { authority: 'a.com' }).authority).toBe('a.com');
  });
  it('host_rewrite_header: the first value, ignored when absent or empty', () => {
    expect(finalize({ host_rewrite_header: 'X-Host' }, { authority: 'a.com' }, { 'x-host': 'b.com' }).authority).toBe('b.com');
    expect(finalize({ host_rewrite_header: 'x-host' }, { authority: 'a.com' }, { 'x-host': ['b.com', 'c.com'] }).authority).toBe('b.com');
    expect(finalize({ host_rewrite_header: 'x-host' }, { authority: 'a.com' }, { 'x-host': '' }).authority).toBe('a.com');
    expect(finalize({ host_rewrite_header: 'x-host' }, { authority: 'a.com' }).authority).toBe('a.com');
  });
  it('host_rewrite_header reads the header after request header mutations', () => {
    const d = compileRouteTable(
      oneHost([
        {
          match: { prefix: '/' },
          route: { cluster: 'c', host_rewrite_header: 'x-host' },
          request_headers_to_add: [{ header: { key: 'x-host', value: 'added.com' } }],
        },
      ]),
    ).route(request({ authority: 'a.com' }), seededRandom(1));
    if (d.kind !== 'forward') throw new Error(d.kind);
    expect(finalizeForwardRequest(d, mutableHeadersFromRecord({})).authority).toBe('added.com');
  });
  it('host_rewrite_path_regex works on the path before the path rewrite', () => {
    const r = finalize(
      {
        host_rewrite_path_regex: { pattern: { regex: '^/(.+)/.+$' }, substitution: '\\1' },
        prefix_rewrite: '/x/',
      },
      { authority: 'a.com', path: '/prefix/abc?q=1' },
    );
    expect(r.authority).toBe('prefix');
    // The route matched prefix "/", so "/" becomes "/x/".
    expect(r.path).toBe('/x/prefix/abc?q=1');
  });
  it('append_x_forwarded_host appends the replaced host', () => {
    const r = finalize({ host_rewrite_literal: 'b.com', append_x_forwarded_host: true }, { authority: 'a.com' }, { 'x-forwarded-host': 'z.com' });
    expect(r.authority).toBe('b.com');
    expect(r.headers['x-forwarded-host']).toBe('z.com,a.com');
    const fresh = finalize({ host_rewrite_literal: 'b.com', append_x_forwarded_host: true }, { authority: 'a.com' });
    expect(fresh.headers['x-forwarded-host']).toBe('a.com');
    const off = finalize({ host_rewrite_literal: 'b.com' }, { authority: 'a.com' });
    expect(off.headers['x-forwarded-host']).toBeUndefined();
    // Idempotent (Envoy's append_xfh_idempotent): the host is not appended twice in a row.
    const again = finalize({ host_rewrite_literal: 'b.com', append_x_forwarded_host: true }, { authority: 'a.com' }, { 'x-forwarded-host': 'z.com,a.com' });
    expect(again.headers['x-forwarded-host']).toBe('z.com,a.com');
  });
  it('x-envoy-original-path records a rewritten path unless turned off', () => {
    const r = finalize({ prefix_rewrite: '/v2/' }, { path: '/old?q=1' });
    expect(r.path).toBe('/v2/old?q=1');
    expect(r.headers['x-envoy-original-path']).toBe('/old?q=1');
    expect(finalize({}, { path: '/old' }).headers['x-envoy-original-path']).toBeUndefined();
    const d = decide([{ match: { prefix: '/' }, route: { cluster: 'c', prefix_rewrite: '/v2/' } }], { path: '/old' });
    const h: Record<string, string | string[]> = {};
    expect(finalizeForwardRequest(d, mutableHeadersFromRecord(h), { insertEnvoyOriginalPath: false }).path).toBe('/v2/old');
    expect(h).toEqual({});
  });
  it('auto_host_rewrite is a flag for the caller', () => {
    const r = finalize({ auto_host_rewrite: true, append_x_forwarded_host: true }, { authority: 'a.com' });
    expect(r.decision.autoHostRewrite).toBe(true);
    expect(r.decision.appendXForwardedHost).toBe(true);
    expect(r.authority).toBe('a.com');
  });
  it("a weighted cluster's host_rewrite_literal applies first, the route's wins", () => {
    const routes = (routeRewrite: Record<string, unknown>) => [
      {
        match: { prefix: '/' },
        route: { weighted_clusters: { clusters: [{ name: 'a', weight: 1, host_rewrite_literal: 'wc.com' }] }, ...routeRewrite },
      },
    ];
    const d1 = decide(routes({}), { authority: 'a.com' });
    expect(finalizeForwardRequest(d1, mutableHeadersFromRecord({})).authority).toBe('wc.com');
    const d2 = decide(routes({ host_rewrite_literal: 'route.com', append_x_forwarded_host: true }), { authority: 'a.com' });
    const h: Record<string, string | string[]> = {};
    expect(finalizeForwardRequest(d2, mutableHeadersFromRecord(h)).authority).toBe('route.com');
    expect(h['x-forwarded-host']).toBe('wc.com');
  });
});
