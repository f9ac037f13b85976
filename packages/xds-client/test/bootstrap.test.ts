import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  formatResourceNameTemplate,
  loadBootstrap,
  parseBootstrap,
  parseBootstrapJson,
  parseDurationMs,
} from '../src/bootstrap.js';
import { BootstrapError, MeshletError } from '../src/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
// /work/shared is ../shared of the repo root; the repo root is three levels up.
const ISTIO_FIXTURE = resolve(here, '../../../../shared/fixtures/istio/grpc-agent-bootstrap.json');

const minimal = { xds_servers: [{ server_uri: 'localhost:15010', channel_creds: [{ type: 'insecure' }] }] };

function tmpFile(contents: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-bootstrap-'));
  const path = join(dir, 'bootstrap.json');
  writeFileSync(path, contents);
  return path;
}

function withServer(server: Record<string, unknown>): unknown {
  return { xds_servers: [{ server_uri: 'localhost:15010', channel_creds: [{ type: 'insecure' }], ...server }] };
}

function expectField(json: unknown, field: string, reason?: RegExp): void {
  let caught: unknown;
  try {
    parseBootstrap(json);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a BootstrapError for ${field}`).toBeInstanceOf(BootstrapError);
  const error = caught as BootstrapError;
  expect(error.field).toBe(field);
  expect(error.code).toBe('MESHLET_BOOTSTRAP_INVALID');
  expect(error).toBeInstanceOf(MeshletError);
  if (reason) expect(error.message).toMatch(reason);
}

describe('bootstrap lookup order', () => {
  const fileBootstrap = { ...minimal, node: { id: 'from-file' } };
  const inlineBootstrap = { ...minimal, node: { id: 'from-inline' } };

  it('takes the explicit option first (object or JSON text)', () => {
    const env = { GRPC_XDS_BOOTSTRAP: tmpFile(JSON.stringify(fileBootstrap)), GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(inlineBootstrap) };
    expect(loadBootstrap({ bootstrap: { ...minimal, node: { id: 'explicit' } }, env }).node.id).toBe('explicit');
    expect(loadBootstrap({ bootstrap: JSON.stringify({ ...minimal, node: { id: 'text' } }), env }).node.id).toBe('text');
  });

  it('passes a parsed Bootstrap through unchanged', () => {
    const parsed = parseBootstrap(minimal);
    expect(loadBootstrap({ bootstrap: parsed, env: {} })).toBe(parsed);
  });

  it('then GRPC_XDS_BOOTSTRAP (a file), before GRPC_XDS_BOOTSTRAP_CONFIG', () => {
    const env = { GRPC_XDS_BOOTSTRAP: tmpFile(JSON.stringify(fileBootstrap)), GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(inlineBootstrap) };
    expect(loadBootstrap({ env }).node.id).toBe('from-file');
  });

  it('then GRPC_XDS_BOOTSTRAP_CONFIG (inline JSON)', () => {
    expect(loadBootstrap({ env: { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(inlineBootstrap) } }).node.id).toBe('from-inline');
  });

  it('none: MESHLET_BOOTSTRAP_NOT_FOUND', () => {
    expect(() => loadBootstrap({ env: {} })).toThrow(expect.objectContaining({ code: 'MESHLET_BOOTSTRAP_NOT_FOUND' }));
  });

  it('an unreadable GRPC_XDS_BOOTSTRAP file is an error naming the path, not a fallback', () => {
    const env = { GRPC_XDS_BOOTSTRAP: '/nonexistent/meshlet/bootstrap.json', GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(inlineBootstrap) };
    expect(() => loadBootstrap({ env })).toThrow(/\/nonexistent\/meshlet\/bootstrap\.json/);
  });

  it('bad JSON names the source', () => {
    expect(() => loadBootstrap({ env: { GRPC_XDS_BOOTSTRAP_CONFIG: '{nope' } })).toThrow(/GRPC_XDS_BOOTSTRAP_CONFIG is not valid JSON/);
    expect(() => parseBootstrapJson('[')).toThrow(BootstrapError);
  });
});

describe('the Istio agent bootstrap', () => {
  it('loads unchanged from the file, with its unix: server, file_watcher provider and server template', () => {
    const b = loadBootstrap({ env: { GRPC_XDS_BOOTSTRAP: ISTIO_FIXTURE } });
    expect(b.xdsServers).toHaveLength(1);
    expect(b.xdsServers[0]).toMatchObject({
      serverUri: 'unix:///etc/istio/XDS',
      channelCredentials: { type: 'insecure' },
      serverFeatures: ['xds_v3'],
      ignoreResourceDeletion: false,
    });
    expect(b.node.id).toBe('sidecar~127.0.0.1~pod1.fake-namespace~fake-namespace.svc.cluster.local');
    expect(b.node.metadata).toMatchObject({ GENERATOR: 'grpc', PILOT_SAN: ['istiod.istio-system.svc'] });
    expect(b.node.locality).toEqual({ region: '', zone: '', sub_zone: '' });
    expect(b.certificateProviders.default).toMatchObject({
      pluginName: 'file_watcher',
      fileWatcher: {
        certificateFile: '/cert/path/cert-chain.pem',
        privateKeyFile: '/cert/path/key.pem',
        caCertificateFile: '/cert/path/root-cert.pem',
        refreshIntervalMs: 900_000,
      },
    });
    expect(b.serverListenerResourceNameTemplate).toBe('xds.istio.io/grpc/lds/inbound/%s');
    expect(b.clientDefaultListenerResourceNameTemplate).toBe('%s');
    // The explicit-option path takes the same text.
    expect(loadBootstrap({ bootstrap: readFileSync(ISTIO_FIXTURE, 'utf8') })).toEqual(b);
  });
});

describe('bootstrap fields', () => {
  const full = {
    xds_servers: [
      {
        server_uri: 'dns:///istiod.istio-system.svc:15012',
        channel_creds: [{ type: 'google_default' }, { type: 'tls', config: { ca_certificate_file: '/ca.pem', certificate_file: '/c.pem', private_key_file: '/k.pem', refresh_interval: '30s' } }, { type: 'insecure' }],
        server_features: ['xds_v3', 'ignore_resource_deletion'],
        some_future_field: 1,
      },
      { server_uri: 'unix:///var/run/xds.sock', channel_creds: [{ type: 'insecure' }] },
    ],
    node: {
      id: 'node-1',
      cluster: 'c1',
      locality: { region: 'r', zone: 'z', sub_zone: 's' },
      metadata: { A: 'b', N: 1, L: [true, null], O: { x: 'y' } },
      user_agent_name: 'ignored',
    },
    authorities: {
      'xds.example.com': {
        client_listener_resource_name_template: 'xdstp://xds.example.com/envoy.config.listener.v3.Listener/grpc/%s',
        xds_servers: [{ server_uri: '[::1]:18000', channel_creds: [{ type: 'insecure' }] }],
      },
      'other.example.com': {},
    },
    certificate_providers: {
      ca_only: { plugin_name: 'file_watcher', config: { ca_certificate_file: '/ca.pem' } },
      custom: { plugin_name: 'my_plugin', config: { anything: [1, 2] } },
    },
    client_default_listener_resource_name_template: 'xdstp://xds.example.com/envoy.config.listener.v3.Listener/%s',
    server_listener_resource_name_template: 'grpc/server?xds.resource.listening_address=%s',
    unknown_top_level: { whatever: true },
  };

  it('reads every field', () => {
    const b = parseBootstrap(full);
    expect(b.xdsServers[0]).toEqual({
      serverUri: 'dns:///istiod.istio-system.svc:15012',
      // google_default is skipped (unsupported); the first supported entry wins.
      channelCredentials: { type: 'tls', caCertificateFile: '/ca.pem', certificateFile: '/c.pem', privateKeyFile: '/k.pem', refreshIntervalMs: 30_000 },
      serverFeatures: ['xds_v3', 'ignore_resource_deletion'],
      ignoreResourceDeletion: true,
    });
    expect(b.xdsServers[1]).toMatchObject({ serverUri: 'unix:///var/run/xds.sock', channelCredentials: { type: 'insecure' }, serverFeatures: [] });
    expect(b.node).toEqual({
      id: 'node-1',
      cluster: 'c1',
      locality: { region: 'r', zone: 'z', sub_zone: 's' },
      metadata: { A: 'b', N: 1, L: [true, null], O: { x: 'y' } },
    });
    expect(b.authorities['xds.example.com']).toMatchObject({
      name: 'xds.example.com',
      clientListenerResourceNameTemplate: 'xdstp://xds.example.com/envoy.config.listener.v3.Listener/grpc/%s',
      xdsServers: [{ serverUri: '[::1]:18000' }],
    });
    expect(b.authorities['other.example.com']).toEqual({
      name: 'other.example.com',
      clientListenerResourceNameTemplate: 'xdstp://other.example.com/envoy.config.listener.v3.Listener/%s',
      xdsServers: [],
    });
    expect(b.certificateProviders.ca_only).toEqual({
      pluginName: 'file_watcher',
      config: { ca_certificate_file: '/ca.pem' },
      fileWatcher: { caCertificateFile: '/ca.pem', refreshIntervalMs: 600_000 },
    });
    expect(b.certificateProviders.custom).toEqual({ pluginName: 'my_plugin', config: { anything: [1, 2] } });
    expect(b.clientDefaultListenerResourceNameTemplate).toBe('xdstp://xds.example.com/envoy.config.listener.v3.Listener/%s');
    expect(b.serverListenerResourceNameTemplate).toBe('grpc/server?xds.resource.listening_address=%s');
  });

  it('is frozen, all the way down', () => {
    const b = parseBootstrap(full);
    expect(Object.isFrozen(b)).toBe(true);
    expect(Object.isFrozen(b.xdsServers)).toBe(true);
    expect(Object.isFrozen(b.xdsServers[0]!.channelCredentials)).toBe(true);
    expect(Object.isFrozen(b.node.metadata)).toBe(true);
    expect(Object.isFrozen(b.authorities)).toBe(true);
    expect(Object.isFrozen(b.certificateProviders.custom!.config)).toBe(true);
  });

  it('does not alias the input', () => {
    const input = structuredClone(full);
    const b = parseBootstrap(input);
    input.node.metadata.A = 'changed';
    expect(b.node.metadata.A).toBe('b');
  });

  it('accepts the server URI forms grpc-js resolves', () => {
    for (const uri of ['localhost:15010', '127.0.0.1:15010', '[::1]:15010', 'istiod.istio-system.svc', 'dns:///istiod:15010', 'dns:istiod:15010', 'unix:///etc/istio/XDS', 'unix:relative.sock', 'unix-abstract:xds', 'ipv4:127.0.0.1:1']) {
      expect(parseBootstrap(withServer({ server_uri: uri })).xdsServers[0]!.serverUri).toBe(uri);
    }
  });

  it('defaults: no node, no templates, no authorities', () => {
    const b = parseBootstrap(minimal);
    expect(b.node).toEqual({ id: '', cluster: '', locality: { region: '', zone: '', sub_zone: '' }, metadata: {} });
    expect(b.clientDefaultListenerResourceNameTemplate).toBe('%s');
    expect(b.serverListenerResourceNameTemplate).toBeUndefined();
    expect(b.authorities).toEqual({});
    expect(b.certificateProviders).toEqual({});
  });
});

describe('malformed bootstraps name their field', () => {
  const cases: Array<[string, unknown, string, RegExp?]> = [
    ['not an object', [], '$'],
    ['no xds_servers', {}, 'xds_servers', /required/],
    ['xds_servers not an array', { xds_servers: {} }, 'xds_servers'],
    ['empty xds_servers', { xds_servers: [] }, 'xds_servers', /at least one/],
    ['server not an object', { xds_servers: ['x'] }, 'xds_servers[0]'],
    ['no server_uri', { xds_servers: [{ channel_creds: [{ type: 'insecure' }] }] }, 'xds_servers[0].server_uri', /required/],
    ['server_uri not a string', withServer({ server_uri: 7 }), 'xds_servers[0].server_uri'],
    ['empty server_uri', withServer({ server_uri: '' }), 'xds_servers[0].server_uri'],
    ['unix: without a path', withServer({ server_uri: 'unix:' }), 'xds_servers[0].server_uri'],
    ['unsupported scheme', withServer({ server_uri: 'http://x:1/path' }), 'xds_servers[0].server_uri', /not a supported URI/],
    ['port out of range', withServer({ server_uri: 'istiod:99999' }), 'xds_servers[0].server_uri', /"99999" is not a port/],
    ['dns: port out of range', withServer({ server_uri: 'dns:///istiod:70000' }), 'xds_servers[0].server_uri', /"70000" is not a port/],
    ['no channel_creds', { xds_servers: [{ server_uri: 'x:1' }] }, 'xds_servers[0].channel_creds', /required/],
    ['channel_creds not an array', withServer({ channel_creds: { type: 'insecure' } }), 'xds_servers[0].channel_creds'],
    ['no supported creds', withServer({ channel_creds: [{ type: 'google_default' }, { type: 'alts' }] }), 'xds_servers[0].channel_creds', /no supported channel credentials type.*google_default, alts/],
    ['empty creds', withServer({ channel_creds: [] }), 'xds_servers[0].channel_creds'],
    ['creds entry without type', withServer({ channel_creds: [{}] }), 'xds_servers[0].channel_creds[0].type'],
    ['creds config not an object', withServer({ channel_creds: [{ type: 'insecure', config: 'x' }] }), 'xds_servers[0].channel_creds[0].config'],
    ['tls cert without key', withServer({ channel_creds: [{ type: 'tls', config: { certificate_file: '/c' } }] }), 'xds_servers[0].channel_creds[0].config', /together/],
    ['tls ca file not a string', withServer({ channel_creds: [{ type: 'tls', config: { ca_certificate_file: 1 } }] }), 'xds_servers[0].channel_creds[0].config.ca_certificate_file'],
    ['server_features not an array', withServer({ server_features: 'xds_v3' }), 'xds_servers[0].server_features'],
    ['server_features entry', withServer({ server_features: ['xds_v3', 3] }), 'xds_servers[0].server_features[1]'],
    ['node not an object', { ...minimal, node: 'n' }, 'node'],
    ['node.id', { ...minimal, node: { id: 1 } }, 'node.id'],
    ['node.cluster', { ...minimal, node: { cluster: [] } }, 'node.cluster'],
    ['node.locality', { ...minimal, node: { locality: 'eu' } }, 'node.locality'],
    ['node.locality.zone', { ...minimal, node: { locality: { zone: 1 } } }, 'node.locality.zone'],
    ['node.metadata', { ...minimal, node: { metadata: [1] } }, 'node.metadata'],
    ['authorities not an object', { ...minimal, authorities: [] }, 'authorities'],
    ['authority not an object', { ...minimal, authorities: { a: 1 } }, 'authorities["a"]'],
    ['authority template of another authority', { ...minimal, authorities: { a: { client_listener_resource_name_template: 'xdstp://b/x/%s' } } }, 'authorities["a"].client_listener_resource_name_template', /xdstp:\/\/a\//],
    ['authority servers', { ...minimal, authorities: { a: { xds_servers: [{ server_uri: 'x:1', channel_creds: [{ type: 'nope' }] }] } } }, 'authorities["a"].xds_servers[0].channel_creds'],
    ['certificate_providers not an object', { ...minimal, certificate_providers: 'x' }, 'certificate_providers'],
    ['provider without plugin_name', { ...minimal, certificate_providers: { p: { config: {} } } }, 'certificate_providers["p"].plugin_name'],
    ['provider config not an object', { ...minimal, certificate_providers: { p: { plugin_name: 'x', config: 1 } } }, 'certificate_providers["p"].config'],
    ['file_watcher with nothing to watch', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: {} } } }, 'certificate_providers["p"].config', /ca_certificate_file/],
    ['file_watcher key without cert', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: { private_key_file: '/k' } } } }, 'certificate_providers["p"].config', /together/],
    ['file_watcher file not a string', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: { ca_certificate_file: true } } } }, 'certificate_providers["p"].config.ca_certificate_file'],
    ['file_watcher refresh_interval not a duration', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: { ca_certificate_file: '/ca', refresh_interval: '10m' } } } }, 'certificate_providers["p"].config.refresh_interval', /not a duration/],
    ['file_watcher refresh_interval a number', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: { ca_certificate_file: '/ca', refresh_interval: 900 } } } }, 'certificate_providers["p"].config.refresh_interval'],
    ['file_watcher refresh_interval zero', { ...minimal, certificate_providers: { p: { plugin_name: 'file_watcher', config: { ca_certificate_file: '/ca', refresh_interval: '0s' } } } }, 'certificate_providers["p"].config.refresh_interval', /positive/],
    ['client template', { ...minimal, client_default_listener_resource_name_template: 1 }, 'client_default_listener_resource_name_template'],
    ['server template', { ...minimal, server_listener_resource_name_template: {} }, 'server_listener_resource_name_template'],
  ];
  it.each(cases)('%s', (_label, json, field, reason) => expectField(json, field, reason));

  it('the message carries the field', () => {
    expect(() => parseBootstrap(withServer({ channel_creds: [] }))).toThrow(/invalid xDS bootstrap: xds_servers\[0\]\.channel_creds: /);
  });
});

describe('helpers', () => {
  it('parses proto3 JSON durations', () => {
    expect(parseDurationMs('900s', 'f')).toBe(900_000);
    expect(parseDurationMs('1.5s', 'f')).toBe(1500);
    expect(parseDurationMs('0.000001s', 'f')).toBe(0.001);
    expect(() => parseDurationMs('1h', 'f')).toThrow(BootstrapError);
  });

  it('fills resource name templates, percent-encoding for xdstp (gRFC A47)', () => {
    expect(formatResourceNameTemplate('%s', 'foo.ns:8080')).toBe('foo.ns:8080');
    expect(formatResourceNameTemplate('xds.istio.io/grpc/lds/inbound/%s', '10.0.0.1:80')).toBe('xds.istio.io/grpc/lds/inbound/10.0.0.1:80');
    expect(formatResourceNameTemplate('xdstp://a/envoy.config.listener.v3.Listener/%s', 'svc a?b#c:80')).toBe(
      'xdstp://a/envoy.config.listener.v3.Listener/svc%20a%3Fb%23c:80',
    );
  });
});
