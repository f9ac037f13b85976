// The xDS bootstrap: gRPC's JSON format and lookup order, so a pod configured for
// grpc-js-xds (or by Istio's agent) works unchanged.
//   gRFC A27: xds_servers, node, channel_creds, server_features, lookup by GRPC_XDS_BOOTSTRAP
//             then GRPC_XDS_BOOTSTRAP_CONFIG.
//   gRFC A47: authorities, xdstp:// names, *_listener_resource_name_template.
//   gRFC A29: certificate_providers, the file_watcher plugin.
//   gRFC A65: `tls` channel credentials for the xDS server itself.
//   gRFC A71: more than one entry in xds_servers (fallback order).
// Every malformed field throws a BootstrapError naming its JSON path; unknown fields are
// ignored, because control planes (Istio's agent among them) write extra ones.
import { readFileSync } from 'node:fs';
import { BootstrapError, MeshletError } from './errors.js';
import { parseServerUri } from './grpc-stream.js';

/** How the client authenticates to an xDS server: the first supported channel_creds entry. */
export type ChannelCredentialsConfig =
  | { readonly type: 'insecure' }
  | {
      readonly type: 'tls';
      /** gRFC A65: all optional; no CA file means the system roots. */
      readonly caCertificateFile?: string;
      readonly certificateFile?: string;
      readonly privateKeyFile?: string;
      readonly refreshIntervalMs?: number;
    };

export interface XdsServerConfig {
  /** As written in the bootstrap: `unix:///path`, `dns:///host:port`, `host:port`, ... */
  readonly serverUri: string;
  readonly channelCredentials: ChannelCredentialsConfig;
  readonly serverFeatures: readonly string[];
  /** gRFC A53: the server asks clients not to delete LDS/CDS resources by omission. */
  readonly ignoreResourceDeletion: boolean;
}

export interface NodeLocality {
  readonly region: string;
  readonly zone: string;
  readonly sub_zone: string;
}

export interface NodeConfig {
  readonly id: string;
  readonly cluster: string;
  readonly locality: NodeLocality;
  /** JSON object, sent as a google.protobuf.Struct. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface AuthorityConfig {
  readonly name: string;
  /** Defaults to `xdstp://<authority>/envoy.config.listener.v3.Listener/%s` (gRFC A47). */
  readonly clientListenerResourceNameTemplate: string;
  /** Empty means the top-level xds_servers (gRFC A47). */
  readonly xdsServers: readonly XdsServerConfig[];
}

export interface FileWatcherConfig {
  readonly certificateFile?: string;
  readonly privateKeyFile?: string;
  readonly caCertificateFile?: string;
  readonly refreshIntervalMs: number;
}

export interface CertificateProviderConfig {
  readonly pluginName: string;
  /** The plugin's config as written. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The validated config when pluginName is `file_watcher`. */
  readonly fileWatcher?: FileWatcherConfig;
}

export interface Bootstrap {
  readonly xdsServers: readonly XdsServerConfig[];
  readonly node: NodeConfig;
  readonly authorities: Readonly<Record<string, AuthorityConfig>>;
  readonly certificateProviders: Readonly<Record<string, CertificateProviderConfig>>;
  readonly clientDefaultListenerResourceNameTemplate: string;
  readonly serverListenerResourceNameTemplate?: string;
}

/** Where loadBootstrap looks, in order. Tests pass their own env. */
export interface BootstrapSource {
  readonly bootstrap?: Bootstrap | object | string;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

const SUPPORTED_CHANNEL_CREDS = new Set(['insecure', 'tls']);
const SUPPORTED_URI_SCHEMES = new Set(['unix', 'unix-abstract', 'dns', 'ipv4', 'ipv6']);
// gRFC A29's file_watcher default refresh interval.
const DEFAULT_REFRESH_INTERVAL_MS = 600_000;

const BOOTSTRAP_BRAND = Symbol.for('meshlet.bootstrap');

function isBootstrap(value: unknown): value is Bootstrap {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BOOTSTRAP_BRAND] === true;
}

/**
 * Find and parse the bootstrap: the explicit value first (a parsed Bootstrap, a JSON
 * object or JSON text), else the file named by GRPC_XDS_BOOTSTRAP, else the JSON in
 * GRPC_XDS_BOOTSTRAP_CONFIG (gRFC A27).
 */
export function loadBootstrap(source: BootstrapSource = {}): Bootstrap {
  const env = source.env ?? process.env;
  if (source.bootstrap !== undefined) {
    if (isBootstrap(source.bootstrap)) return source.bootstrap;
    if (typeof source.bootstrap === 'string') return parseBootstrapJson(source.bootstrap, 'the bootstrap option');
    return parseBootstrap(source.bootstrap);
  }
  const path = env.GRPC_XDS_BOOTSTRAP;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      throw new MeshletError(
        'MESHLET_BOOTSTRAP_INVALID',
        `cannot read the xDS bootstrap file ${path} named by GRPC_XDS_BOOTSTRAP: ${(cause as Error).message}`,
        { cause },
      );
    }
    return parseBootstrapJson(text, `GRPC_XDS_BOOTSTRAP file ${path}`);
  }
  const inline = env.GRPC_XDS_BOOTSTRAP_CONFIG;
  if (inline) return parseBootstrapJson(inline, 'GRPC_XDS_BOOTSTRAP_CONFIG');
  throw new MeshletError(
    'MESHLET_BOOTSTRAP_NOT_FOUND',
    'no xDS bootstrap: pass one explicitly, or set GRPC_XDS_BOOTSTRAP (a file) or GRPC_XDS_BOOTSTRAP_CONFIG (JSON)',
  );
}

/** Parse bootstrap JSON text. */
export function parseBootstrapJson(text: string, origin = 'bootstrap'): Bootstrap {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new BootstrapError('$', `${origin} is not valid JSON: ${(cause as Error).message}`);
  }
  return parseBootstrap(json);
}

/** Validate a bootstrap JSON object into a frozen, typed Bootstrap. */
export function parseBootstrap(json: unknown): Bootstrap {
  const root = requireObject(json, '$');
  const xdsServers = parseServerList(root.xds_servers, 'xds_servers', true);
  const node = parseNode(root.node, 'node');
  const clientDefaultListenerResourceNameTemplate =
    optionalString(root.client_default_listener_resource_name_template, 'client_default_listener_resource_name_template') ??
    '%s';
  const serverListenerResourceNameTemplate = optionalString(
    root.server_listener_resource_name_template,
    'server_listener_resource_name_template',
  );
  const authorities: Record<string, AuthorityConfig> = {};
  if (root.authorities !== undefined && root.authorities !== null) {
    const map = requireObject(root.authorities, 'authorities');
    for (const [name, value] of Object.entries(map)) {
      authorities[name] = parseAuthority(name, value, `authorities[${JSON.stringify(name)}]`);
    }
  }
  const certificateProviders: Record<string, CertificateProviderConfig> = {};
  if (root.certificate_providers !== undefined && root.certificate_providers !== null) {
    const map = requireObject(root.certificate_providers, 'certificate_providers');
    for (const [name, value] of Object.entries(map)) {
      certificateProviders[name] = parseCertificateProvider(value, `certificate_providers[${JSON.stringify(name)}]`);
    }
  }
  const bootstrap: Bootstrap = {
    xdsServers,
    node,
    authorities: Object.freeze(authorities),
    certificateProviders: Object.freeze(certificateProviders),
    clientDefaultListenerResourceNameTemplate,
    ...(serverListenerResourceNameTemplate !== undefined ? { serverListenerResourceNameTemplate } : {}),
  };
  Object.defineProperty(bootstrap, BOOTSTRAP_BRAND, { value: true });
  return Object.freeze(bootstrap);
}

function parseServerList(value: unknown, field: string, required: boolean): readonly XdsServerConfig[] {
  if (value === undefined || value === null) {
    if (required) throw new BootstrapError(field, 'is required');
    return Object.freeze([]);
  }
  if (!Array.isArray(value)) throw new BootstrapError(field, `expected an array, got ${describe(value)}`);
  if (required && value.length === 0) throw new BootstrapError(field, 'must name at least one xDS server');
  return Object.freeze(value.map((server, i) => parseServer(server, `${field}[${i}]`)));
}

function parseServer(value: unknown, field: string): XdsServerConfig {
  const obj = requireObject(value, field);
  const serverUri = requireString(obj.server_uri, `${field}.server_uri`);
  validateServerUri(serverUri, `${field}.server_uri`);
  const channelCredentials = parseChannelCreds(obj.channel_creds, `${field}.channel_creds`);
  let serverFeatures: string[] = [];
  if (obj.server_features !== undefined && obj.server_features !== null) {
    if (!Array.isArray(obj.server_features)) {
      throw new BootstrapError(`${field}.server_features`, `expected an array, got ${describe(obj.server_features)}`);
    }
    serverFeatures = obj.server_features.map((f, i) => requireString(f, `${field}.server_features[${i}]`));
  }
  return Object.freeze({
    serverUri,
    channelCredentials,
    serverFeatures: Object.freeze(serverFeatures),
    ignoreResourceDeletion: serverFeatures.includes('ignore_resource_deletion'),
  });
}

// grpc-js resolves these forms; anything else would only fail later, at connect time.
function validateServerUri(uri: string, field: string): void {
  if (uri.length === 0) throw new BootstrapError(field, 'must not be empty');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(uri);
  if (scheme && SUPPORTED_URI_SCHEMES.has(scheme[1]!.toLowerCase())) {
    if ((scheme[2] ?? '').replace(/^\/\/[^/]*\/?/, '').length === 0) {
      throw new BootstrapError(field, `${JSON.stringify(uri)} names no address`);
    }
    readableServerUri(uri, field);
    return;
  }
  // Plain host:port, [v6]:port or a bare host (port 443 then, as grpc-js's DNS resolver does).
  if (/^(\[[0-9A-Fa-f:.]+(%[^\]]+)?\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/.test(uri)) {
    readableServerUri(uri, field);
    return;
  }
  throw new BootstrapError(
    field,
    `${JSON.stringify(uri)} is not a supported URI (use host:port, dns:///host:port or unix:///path)`,
  );
}

/** The ADS stream reads the URI when it connects (grpc-stream.ts): fail here instead, naming the field. */
function readableServerUri(uri: string, field: string): void {
  try {
    parseServerUri(uri);
  } catch (err) {
    throw new BootstrapError(field, (err as Error).message);
  }
}

function parseChannelCreds(value: unknown, field: string): ChannelCredentialsConfig {
  if (!Array.isArray(value)) {
    throw new BootstrapError(field, value === undefined ? 'is required' : `expected an array, got ${describe(value)}`);
  }
  const seen: string[] = [];
  for (const [i, entry] of value.entries()) {
    const obj = requireObject(entry, `${field}[${i}]`);
    const type = requireString(obj.type, `${field}[${i}].type`);
    if (obj.config !== undefined && obj.config !== null) requireObject(obj.config, `${field}[${i}].config`);
    seen.push(type);
    // gRFC A27: the first entry of a supported type wins; later ones are not looked at.
    if (!SUPPORTED_CHANNEL_CREDS.has(type)) continue;
    if (type === 'insecure') return Object.freeze({ type: 'insecure' });
    return parseTlsCreds(obj.config, `${field}[${i}].config`);
  }
  throw new BootstrapError(
    field,
    `no supported channel credentials type (supported: ${[...SUPPORTED_CHANNEL_CREDS].join(', ')}; got ${
      seen.length ? seen.join(', ') : 'none'
    })`,
  );
}

// gRFC A65: the same keys as the file_watcher plugin, all optional.
function parseTlsCreds(value: unknown, field: string): ChannelCredentialsConfig {
  const obj = value === undefined || value === null ? {} : requireObject(value, field);
  const caCertificateFile = optionalString(obj.ca_certificate_file, `${field}.ca_certificate_file`);
  const certificateFile = optionalString(obj.certificate_file, `${field}.certificate_file`);
  const privateKeyFile = optionalString(obj.private_key_file, `${field}.private_key_file`);
  if ((certificateFile === undefined) !== (privateKeyFile === undefined)) {
    throw new BootstrapError(field, 'certificate_file and private_key_file must be set together');
  }
  const refreshIntervalMs =
    obj.refresh_interval === undefined ? undefined : parseDurationMs(obj.refresh_interval, `${field}.refresh_interval`);
  return Object.freeze({
    type: 'tls' as const,
    ...(caCertificateFile !== undefined ? { caCertificateFile } : {}),
    ...(certificateFile !== undefined ? { certificateFile } : {}),
    ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
    ...(refreshIntervalMs !== undefined ? { refreshIntervalMs } : {}),
  });
}

function parseNode(value: unknown, field: string): NodeConfig {
  const obj = value === undefined || value === null ? {} : requireObject(value, field);
  const id = optionalString(obj.id, `${field}.id`) ?? '';
  const cluster = optionalString(obj.cluster, `${field}.cluster`) ?? '';
  const loc = obj.locality === undefined || obj.locality === null ? {} : requireObject(obj.locality, `${field}.locality`);
  const locality = Object.freeze({
    region: optionalString(loc.region, `${field}.locality.region`) ?? '',
    zone: optionalString(loc.zone, `${field}.locality.zone`) ?? '',
    sub_zone: optionalString(loc.sub_zone, `${field}.locality.sub_zone`) ?? '',
  });
  const metadata =
    obj.metadata === undefined || obj.metadata === null
      ? {}
      : deepFreeze(structuredClone(requireObject(obj.metadata, `${field}.metadata`)));
  return Object.freeze({ id, cluster, locality, metadata });
}

function parseAuthority(name: string, value: unknown, field: string): AuthorityConfig {
  const obj = requireObject(value, field);
  const template = optionalString(
    obj.client_listener_resource_name_template,
    `${field}.client_listener_resource_name_template`,
  );
  // gRFC A47: an authority's template must name that authority.
  if (template !== undefined && !template.startsWith(`xdstp://${name}/`)) {
    throw new BootstrapError(`${field}.client_listener_resource_name_template`, `must start with "xdstp://${name}/"`);
  }
  return Object.freeze({
    name,
    clientListenerResourceNameTemplate: template ?? `xdstp://${name}/envoy.config.listener.v3.Listener/%s`,
    xdsServers: parseServerList(obj.xds_servers, `${field}.xds_servers`, false),
  });
}

function parseCertificateProvider(value: unknown, field: string): CertificateProviderConfig {
  const obj = requireObject(value, field);
  const pluginName = requireString(obj.plugin_name, `${field}.plugin_name`);
  const config = obj.config === undefined || obj.config === null ? {} : requireObject(obj.config, `${field}.config`);
  const frozenConfig = deepFreeze(structuredClone(config));
  if (pluginName !== 'file_watcher') return Object.freeze({ pluginName, config: frozenConfig });
  return Object.freeze({ pluginName, config: frozenConfig, fileWatcher: parseFileWatcher(config, `${field}.config`) });
}

// gRFC A29: the file_watcher plugin reads a certificate/key pair, a CA bundle, or both.
function parseFileWatcher(obj: Record<string, unknown>, field: string): FileWatcherConfig {
  const certificateFile = optionalString(obj.certificate_file, `${field}.certificate_file`);
  const privateKeyFile = optionalString(obj.private_key_file, `${field}.private_key_file`);
  const caCertificateFile = optionalString(obj.ca_certificate_file, `${field}.ca_certificate_file`);
  if ((certificateFile === undefined) !== (privateKeyFile === undefined)) {
    throw new BootstrapError(field, 'certificate_file and private_key_file must be set together');
  }
  if (certificateFile === undefined && caCertificateFile === undefined) {
    throw new BootstrapError(field, 'needs certificate_file and private_key_file, or ca_certificate_file');
  }
  const refreshIntervalMs =
    obj.refresh_interval === undefined
      ? DEFAULT_REFRESH_INTERVAL_MS
      : parseDurationMs(obj.refresh_interval, `${field}.refresh_interval`);
  if (refreshIntervalMs <= 0) throw new BootstrapError(`${field}.refresh_interval`, 'must be positive');
  return Object.freeze({
    ...(certificateFile !== undefined ? { certificateFile } : {}),
    ...(privateKeyFile !== undefined ? { privateKeyFile } : {}),
    ...(caCertificateFile !== undefined ? { caCertificateFile } : {}),
    refreshIntervalMs,
  });
}

/** A proto3 JSON Duration string ("900s", "1.5s") in milliseconds. */
export function parseDurationMs(value: unknown, field: string): number {
  if (typeof value !== 'string') throw new BootstrapError(field, `expected a duration string like "10s", got ${describe(value)}`);
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(value);
  if (!m) throw new BootstrapError(field, `${JSON.stringify(value)} is not a duration (expected e.g. "900s" or "1.5s")`);
  const ms = Number(m[2]) * 1000 + Number(((m[3] ?? '') + '000000000').slice(0, 9)) / 1e6;
  return m[1] ? -ms : ms;
}

/**
 * Fill a listener resource name template (gRFC A47): `%s` is replaced by the target;
 * for an xdstp:// template the target is percent-encoded as a URI path.
 */
export function formatResourceNameTemplate(template: string, value: string): string {
  const replacement = template.startsWith('xdstp:')
    ? value.replace(/[^A-Za-z0-9._~!$&'()*+,;=:@/-]/g, (c) => encodeURIComponent(c))
    : value;
  return template.split('%s').join(replacement);
}

function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BootstrapError(field, value === undefined ? 'is required' : `expected an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') {
    throw new BootstrapError(field, value === undefined ? 'is required' : `expected a string, got ${describe(value)}`);
  }
  return value;
}

// JSON null counts as absent: some writers emit null for unset fields.
function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requireString(value, field);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
