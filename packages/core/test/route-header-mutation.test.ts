import { describe, expect, it } from 'vitest';
import { compileHeaderValue, mutableHeadersFromRecord } from '../src/header-mutation.js';
import { seededRandom } from '../src/random.js';
import { applyRequestHeaderMutations, applyResponseHeaderMutations } from '../src/route-apply.js';
import type { RouteDecision } from '../src/route-decision.js';
import { compileRouteTable } from '../src/route-table.js';
import { request, routeConfig } from './route-fixtures.js';

const add = (key: string, value: string, extra: Record<string, unknown> = {}) => ({ header: { key, value }, ...extra });

/** Route config with one header to add at each level (all the same name unless told). */
function levels(opts: { mostSpecificWins?: boolean; action?: string; weighted?: boolean } = {}) {
  const action = opts.action ?? 'OVERWRITE_IF_EXISTS_OR_ADD';
  const at = (level: string) => ({
    request_headers_to_add: [add('x-level', level, { append_action: action })],
    response_headers_to_add: [add('x-level', level, { append_action: action })],
  });
  const routeAction = opts.weighted
    ? { weighted_clusters: { clusters: [{ name: 'c', weight: 1, ...at('cluster') }] } }
    : { cluster: 'c' };
  return compileRouteTable(
    routeConfig({
      most_specific_header_mutations_wins: opts.mostSpecificWins === true,
      ...at('config'),
      virtual_hosts: [{ name: 'vh', domains: ['*'], ...at('vhost'), routes: [{ match: { prefix: '/' }, route: routeAction, ...at('route') }] }],
    }),
  );
}

function forwardOf(d: RouteDecision) {
  if (d.kind !== 'forward') throw new Error(d.kind);
  return d;
}

describe('header mutation order', () => {
  it('by default the most specific level goes first, so the route configuration wins', () => {
    const d = forwardOf(levels().route(request(), seededRandom(1)));
    const req: Record<string, string | string[]> = {};
    applyRequestHeaderMutations(d, mutableHeadersFromRecord(req));
    expect(req['x-level']).toBe('config');
    const res: Record<string, string | string[]> = {};
    applyResponseHeaderMutations(d, mutableHeadersFromRecord(res));
    expect(res['x-level']).toBe('config');
  });
  it('most_specific_header_mutations_wins: the route wins', () => {
    const d = forwardOf(levels({ mostSpecificWins: true }).route(request(), seededRandom(1)));
    const req: Record<string, string | string[]> = {};
    applyRequestHeaderMutations(d, mutableHeadersFromRecord(req));
    expect(req['x-level']).toBe('route');
  });
  it('appends show the order: weighted cluster, route, virtual host, route configuration', () => {
    const d = forwardOf(levels({ action: 'APPEND_IF_EXISTS_OR_ADD', weighted: true }).route(request(), seededRandom(1)));
    const req: Record<string, string | string[]> = {};
    applyRequestHeaderMutations(d, mutableHeadersFromRecord(req));
    expect(req['x-level']).toEqual(['cluster', 'route', 'vhost', 'config']);
    const flipped = forwardOf(
      levels({ action: 'APPEND_IF_EXISTS_OR_ADD', weighted: true, mostSpecificWins: true }).route(request(), seededRandom(1)),
    );
    const req2: Record<string, string | string[]> = {};
    applyRequestHeaderMutations(flipped, mutableHeadersFromRecord(req2));
    // The weighted cluster's own mutations always come first (Envoy's WeightedClusterEntry).
    expect(req2['x-level']).toEqual(['cluster', 'config', 'vhost', 'route']);
  });
  it('direct responses and redirects get response mutations', () => {
    const t = compileRouteTable(
      routeConfig({
        response_headers_to_add: [add('x-rc', '1')],
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [{ match: { prefix: '/' }, direct_response: { status: 204 }, response_headers_to_add: [add('x-route', '1')] }],
          },
        ],
      }),
    );
    const d = t.route(request(), seededRandom(1));
    if (d.kind !== 'direct_response') throw new Error(d.kind);
    const res: Record<string, string | string[]> = {};
    applyResponseHeaderMutations(d, mutableHeadersFromRecord(res));
    expect(res).toEqual({ 'x-route': '1', 'x-rc': '1' });
  });
});

describe('append_action and removes within one level', () => {
  function apply(adds: unknown[], existing: Record<string, string | string[]>, removes: string[] = []) {
    const t = compileRouteTable(
      routeConfig({
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: adds, request_headers_to_remove: removes }],
          },
        ],
      }),
    );
    const d = forwardOf(t.route(request(), seededRandom(1)));
    const record = { ...existing };
    applyRequestHeaderMutations(d, mutableHeadersFromRecord(record));
    return record;
  }
  it('APPEND_IF_EXISTS_OR_ADD (the default) adds another value', () => {
    expect(apply([add('x', 'b')], { x: 'a' })).toEqual({ x: ['a', 'b'] });
    expect(apply([add('x', 'b')], {})).toEqual({ x: 'b' });
  });
  it('ADD_IF_ABSENT', () => {
    expect(apply([add('x', 'b', { append_action: 'ADD_IF_ABSENT' })], { x: 'a' })).toEqual({ x: 'a' });
    expect(apply([add('x', 'b', { append_action: 'ADD_IF_ABSENT' })], {})).toEqual({ x: 'b' });
  });
  it('OVERWRITE_IF_EXISTS_OR_ADD', () => {
    expect(apply([add('x', 'b', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })], { x: ['a', 'a2'] })).toEqual({ x: 'b' });
    expect(apply([add('x', 'b', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })], {})).toEqual({ x: 'b' });
  });
  it('OVERWRITE_IF_EXISTS', () => {
    expect(apply([add('x', 'b', { append_action: 'OVERWRITE_IF_EXISTS' })], { x: 'a' })).toEqual({ x: 'b' });
    expect(apply([add('x', 'b', { append_action: 'OVERWRITE_IF_EXISTS' })], {})).toEqual({});
  });
  it('the deprecated append flag', () => {
    expect(apply([add('x', 'b', { append: false })], { x: 'a' })).toEqual({ x: 'b' });
    expect(apply([add('x', 'b', { append: true })], { x: 'a' })).toEqual({ x: ['a', 'b'] });
  });
  it('removes run first; existence checks see the headers before this level adds', () => {
    expect(apply([add('x', 'new', { append_action: 'ADD_IF_ABSENT' })], { x: 'old' }, ['x'])).toEqual({ x: 'new' });
    expect(
      apply([add('y', '1', { append_action: 'ADD_IF_ABSENT' }), add('y', '2', { append_action: 'ADD_IF_ABSENT' })], {}),
    ).toEqual({ y: ['1', '2'] });
    // Overwrites are set before appends.
    expect(apply([add('z', 'appended'), add('z', 'set', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })], { z: 'old' })).toEqual({
      z: ['set', 'appended'],
    });
  });
  it('empty values are skipped unless keep_empty_value', () => {
    expect(apply([add('x', '')], {})).toEqual({});
    expect(apply([add('x', '', { keep_empty_value: true })], {})).toEqual({ x: '' });
  });
  it('header names are lower-cased', () => {
    expect(apply([add('X-Up', 'v')], {}, ['X-Gone'])).toEqual({ 'x-up': 'v' });
    expect(apply([], { 'x-gone': '1' }, ['X-Gone'])).toEqual({});
  });
});

describe('%FORMATTER% values', () => {
  function format(value: string, init: Parameters<typeof request>[0] = {}, upstream?: string) {
    const t = compileRouteTable(
      routeConfig({
        virtual_hosts: [
          { name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' }, request_headers_to_add: [add('x', value)] }] },
        ],
      }),
    );
    const d = forwardOf(t.route(request(init), seededRandom(1)));
    const record: Record<string, string | string[]> = {};
    applyRequestHeaderMutations(d, mutableHeadersFromRecord(record), upstream === undefined ? {} : { upstreamRemoteAddress: upstream });
    return record['x'];
  }
  it('plain values and %% escapes', () => {
    expect(format('plain')).toBe('plain');
    expect(format('100%%')).toBe('100%');
    expect(compileHeaderValue('no percent')).toBe('no percent');
  });
  it('supported commands', () => {
    expect(format('%DOWNSTREAM_REMOTE_ADDRESS%', { sourceIp: '10.0.0.1' })).toBe('10.0.0.1');
    expect(format('ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', { sourceIp: '10.0.0.1' })).toBe('ip=10.0.0.1');
    expect(format('%REQ(X-User)%', { headers: { 'x-user': 'alice' } })).toBe('alice');
    expect(format('%REQ(x-missing?x-user)%', { headers: { 'x-user': 'bob' } })).toBe('bob');
    expect(format('%REQ(x-user):3%', { headers: { 'x-user': 'alice' } })).toBe('ali');
    expect(format('%REQ(:path)%', { path: '/p' })).toBe('/p');
    expect(format('%UPSTREAM_REMOTE_ADDRESS%', {}, '10.1.1.1:80')).toBe('10.1.1.1:80');
    expect(typeof format('%HOSTNAME%')).toBe('string');
  });
  it('a command that yields nothing leaves an empty value, which is skipped', () => {
    expect(format('%REQ(x-none)%')).toBeUndefined();
  });
  it('unsupported commands are kept as written', () => {
    expect(format('%START_TIME%')).toBe('%START_TIME%');
    expect(format('50% off')).toBe('50% off');
  });
});
