import { describe, expect, it } from 'vitest';
import { compileDomainMatcher, stripPort } from '../src/vhost-match.js';

const m = compileDomainMatcher([
  { value: 'star', domains: ['*'] },
  { value: 'suffix-short', domains: ['*.com'] },
  { value: 'suffix-long', domains: ['*.foo.com', '*-bar.foo.com'] },
  { value: 'prefix', domains: ['foo.*'] },
  { value: 'prefix-long', domains: ['foo.bar.*'] },
  { value: 'exact', domains: ['www.foo.com', 'Reviews:9080'] },
]);

describe('virtual host selection (Envoy / gRFC A28 order)', () => {
  it('prefers exact, then longest suffix, then longest prefix, then *', () => {
    expect(m.match('www.foo.com')).toBe('exact');
    expect(m.match('api.foo.com')).toBe('suffix-long');
    expect(m.match('x-bar.foo.com')).toBe('suffix-long');
    expect(m.match('example.com')).toBe('suffix-short');
    expect(m.match('foo.org')).toBe('prefix');
    expect(m.match('foo.bar.org')).toBe('prefix-long');
    expect(m.match('nothing.here')).toBe('star');
  });
  it('answers repeated and alternating authorities alike (the last answer is remembered)', () => {
    const none = compileDomainMatcher([{ value: 'exact', domains: ['a.test'] }]);
    for (let i = 0; i < 3; i++) {
      expect(none.match('a.test')).toBe('exact');
      expect(none.match('a.test')).toBe('exact');
      expect(none.match('b.test')).toBeUndefined();
      expect(m.match(i % 2 ? 'api.foo.com' : 'foo.org')).toBe(i % 2 ? 'suffix-long' : 'prefix');
    }
  });

  it('never lets a wildcard match an empty string', () => {
    const w = compileDomainMatcher([{ value: 1, domains: ['*.foo.com'] }, { value: 2, domains: ['foo.*'] }]);
    expect(w.match('.foo.com')).toBeUndefined();
    expect(w.match('foo.')).toBeUndefined();
    expect(w.match('a.foo.com')).toBe(1);
  });
  it('is case-insensitive and keeps the port unless told to ignore it', () => {
    expect(m.match('REVIEWS:9080')).toBe('exact');
    expect(m.match('reviews')).toBe('star');
    const ip = compileDomainMatcher([{ value: 'r', domains: ['reviews'] }], { ignorePort: true });
    expect(ip.match('reviews:9080')).toBe('r');
  });
  it('first virtual host to claim a domain keeps it; no match without *', () => {
    const d = compileDomainMatcher([{ value: 'a', domains: ['x'] }, { value: 'b', domains: ['x', 'y'] }]);
    expect(d.match('x')).toBe('a');
    expect(d.match('y')).toBe('b');
    expect(d.match('z')).toBeUndefined();
  });
  it('strips ports but not IPv6 literals', () => {
    expect(stripPort('a.b:80')).toBe('a.b');
    expect(stripPort('[::1]:80')).toBe('[::1]');
    expect(stripPort('::1')).toBe('::1');
    expect(stripPort('a.b')).toBe('a.b');
  });
});
