import { describe, expect, it } from 'vitest';
import type { HashPolicy } from '@meshlet/xds-client';
import { compileHashPolicies, computeRequestHash, cookieValue, queryValue } from '../src/hash-policy.js';
import { headersFromRecord, type MeshRequest } from '../src/request.js';
import { xxhash64 } from '../src/xxhash.js';

const req = (headers: Record<string, string> = {}, extra: Partial<MeshRequest> = {}): MeshRequest => ({
  method: 'GET',
  path: '/p?a=1&user=bob&flag&x=%20y',
  authority: 'svc:80',
  scheme: 'http',
  headers: headersFromRecord(headers),
  sourceIp: '10.1.2.3',
  ...extra,
});
const header = (name: string, terminal = false, regexRewrite?: { pattern: string; substitution: string }): HashPolicy => ({
  kind: 'header',
  name,
  regexRewrite,
  terminal,
});
const rotl1 = (h: bigint) => ((h << 1n) | (h >> 63n)) & ((1n << 64n) - 1n);

describe('hash policies (Envoy HashPolicyImpl)', () => {
  it('header: xxHash64 of the value; absent header gives no hash', () => {
    expect(computeRequestHash([header('x-user')], req({ 'x-user': 'alice' }))).toBe(xxhash64('alice'));
    expect(computeRequestHash([header('X-User')], req({ 'x-user': 'alice' }))).toBe(xxhash64('alice'));
    expect(computeRequestHash([header('x-user')], req())).toBeUndefined();
    expect(computeRequestHash([], req())).toBeUndefined();
  });

  it('header: pseudo-headers read the request line', () => {
    expect(computeRequestHash([header(':authority')], req())).toBe(xxhash64('svc:80'));
    expect(computeRequestHash([header(':path')], req())).toBe(xxhash64('/p?a=1&user=bob&flag&x=%20y'));
    expect(computeRequestHash([header(':method')], req())).toBe(xxhash64('GET'));
  });

  it('header: regex_rewrite applied with RE2 and Envoy’s \\N substitution', () => {
    const p = header('x-session', false, { pattern: '^([a-z]+)-\\d+$', substitution: '\\1' });
    expect(computeRequestHash([p], req({ 'x-session': 'abc-123' }))).toBe(xxhash64('abc'));
    // Every match is replaced; "$1" is literal.
    const q = header('x-v', false, { pattern: 'o', substitution: '$1\\\\' });
    expect(computeRequestHash([q], req({ 'x-v': 'foo' }))).toBe(xxhash64('f$1\\$1\\'));
  });

  it('cookie: the value; absent with a ttl asks the HTTP layer to set one', () => {
    const p: HashPolicy = { kind: 'cookie', name: 'sid', ttl: 60_000, path: '/', terminal: false };
    expect(computeRequestHash([p], req({ cookie: 'a=1; sid="xyz"; b=2' }))).toBe(xxhash64('xyz'));
    expect(computeRequestHash([p], req())).toBeUndefined();
    const calls: unknown[] = [];
    const h = computeRequestHash([p], req(), {
      addCookie: (name, path, ttl) => {
        calls.push([name, path, ttl]);
        return 'generated';
      },
    });
    expect(h).toBe(xxhash64('generated'));
    expect(calls).toEqual([['sid', '/', 60_000]]);
    // No ttl: no cookie is generated.
    const noTtl: HashPolicy = { ...p, ttl: undefined };
    expect(computeRequestHash([noTtl], req(), { addCookie: () => 'x' })).toBeUndefined();
  });

  it('connection_properties: the source IP', () => {
    const p: HashPolicy = { kind: 'connection_properties', sourceIp: true, terminal: false };
    expect(computeRequestHash([p], req())).toBe(xxhash64('10.1.2.3'));
    expect(computeRequestHash([p], req({}, { sourceIp: undefined }))).toBeUndefined();
    expect(computeRequestHash([{ ...p, sourceIp: false }], req())).toBeUndefined();
  });

  it('query_parameter: the first raw value', () => {
    const p = (name: string): HashPolicy => ({ kind: 'query_parameter', name, terminal: false });
    expect(computeRequestHash([p('user')], req())).toBe(xxhash64('bob'));
    expect(computeRequestHash([p('x')], req())).toBe(xxhash64('%20y'));
    expect(computeRequestHash([p('flag')], req())).toBe(xxhash64(''));
    expect(computeRequestHash([p('missing')], req())).toBeUndefined();
  });

  it('filter_state: ignored', () => {
    expect(computeRequestHash([{ kind: 'filter_state', key: 'k', terminal: true }], req())).toBeUndefined();
  });

  it('combines policies as rotl64(hash, 1) XOR h', () => {
    const r = req({ a: 'x', b: 'y' });
    expect(computeRequestHash([header('a'), header('b')], r)).toBe(rotl1(xxhash64('x')) ^ xxhash64('y'));
    // Two equal policies do not cancel out.
    expect(computeRequestHash([header('a'), header('a')], r)).toBe(rotl1(xxhash64('x')) ^ xxhash64('x'));
    // A policy with no value is skipped.
    expect(computeRequestHash([header('a'), header('none'), header('b')], r)).toBe(rotl1(xxhash64('x')) ^ xxhash64('y'));
  });

  it('terminal stops at the first policy that produced a hash', () => {
    const r = req({ a: 'x', b: 'y' });
    expect(computeRequestHash([header('a', true), header('b')], r)).toBe(xxhash64('x'));
    // A terminal policy without a value does not stop the list.
    expect(computeRequestHash([header('none', true), header('b')], r)).toBe(xxhash64('y'));
    // A later terminal policy stops once any hash exists.
    expect(computeRequestHash([header('none'), header('a', true), header('b')], r)).toBe(xxhash64('x'));
  });

  it('compiles once and is reusable', () => {
    const hasher = compileHashPolicies([header('a')]);
    expect(hasher(req({ a: '1' }))).toBe(xxhash64('1'));
    expect(hasher(req({ a: '2' }))).toBe(xxhash64('2'));
  });
});

describe('helpers', () => {
  it('cookieValue follows Envoy’s parseCookieValue', () => {
    expect(cookieValue('a=1;b=2', 'b')).toBe('2');
    expect(cookieValue('  a=1;   b=2', 'b')).toBe('2');
    expect(cookieValue('a=1,b=2', 'b')).toBe('2'); // repeated Cookie headers joined by the request view
    expect(cookieValue('a=1; b', 'b')).toBeUndefined();
    expect(cookieValue('ab=1', 'b')).toBeUndefined();
    expect(cookieValue('b=""', 'b')).toBe('');
    expect(cookieValue(undefined, 'b')).toBeUndefined();
  });
  it('queryValue stops at a fragment', () => {
    expect(queryValue('/x?a=1#b=2', 'b')).toBeUndefined();
    expect(queryValue('/x', 'a')).toBeUndefined();
    expect(queryValue('/x?a=1&a=2', 'a')).toBe('1');
  });
});
