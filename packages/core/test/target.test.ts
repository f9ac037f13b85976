import { describe, expect, it } from 'vitest';
import { parseBootstrap } from '@meshlet/xds-client';
import { listenerNameFor, parseTarget, resolveTarget } from '../src/target.js';

describe('targets name Listeners the Istio way', () => {
  it('takes host:port, bare hosts, URLs and xds:/// targets', () => {
    expect(parseTarget('reviews.default.svc.cluster.local:9080').authority).toBe('reviews.default.svc.cluster.local:9080');
    expect(parseTarget('reviews').authority).toBe('reviews:80');
    expect(parseTarget('http://reviews/api?x=1').authority).toBe('reviews:80');
    expect(parseTarget('https://reviews/api').authority).toBe('reviews:443');
    expect(parseTarget('http://reviews:9080/').authority).toBe('reviews:9080');
    expect(parseTarget('xds:///echo:7070')).toEqual({ authority: 'echo:7070', xdsAuthority: undefined });
    expect(parseTarget('xds://td.example/echo:7070')).toEqual({ authority: 'echo:7070', xdsAuthority: 'td.example' });
    expect(parseTarget('[::1]:8080').authority).toBe('[::1]:8080');
  });
  it('rejects what is not a target, naming it', () => {
    expect(() => parseTarget('')).toThrow(/target: empty/);
    expect(() => parseTarget('a b')).toThrow(/want host:port/);
    expect(() => parseTarget('ftp://x/')).toThrow(/no default port/);
  });
  it('applies the listener name template', () => {
    expect(listenerNameFor('foo:80', undefined)).toBe('foo:80');
    expect(listenerNameFor('foo:80', 'outbound/%s')).toBe('outbound/foo:80');
    expect(listenerNameFor('foo bar:80', 'xdstp://auth/envoy.config.listener.v3.Listener/%s')).toBe(
      'xdstp://auth/envoy.config.listener.v3.Listener/foo%20bar:80',
    );
  });
});

describe('resolveTarget', () => {
  const bootstrap = parseBootstrap({
    xds_servers: [{ server_uri: '127.0.0.1:1', channel_creds: [{ type: 'insecure' }] }],
    node: { id: 'n' },
    client_default_listener_resource_name_template: 'outbound/%s',
    authorities: { 'td.example': {} },
  });
  it('uses the default template, or the named authority\'s (gRFC A47 default)', () => {
    expect(resolveTarget('svc:80', bootstrap)).toEqual({ authority: 'svc:80', listenerName: 'outbound/svc:80' });
    expect(resolveTarget('xds://td.example/svc:80', bootstrap)).toEqual({
      authority: 'svc:80',
      listenerName: 'xdstp://td.example/envoy.config.listener.v3.Listener/svc:80',
    });
  });
  it('names an authority the bootstrap does not list', () => {
    expect(() => resolveTarget('xds://nowhere/svc:80', bootstrap)).toThrow(/authority "nowhere" is not in the bootstrap's authorities/);
  });
});
