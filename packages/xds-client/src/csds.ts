// The client's xDS state in the shape of CSDS, the Client Status Discovery Service
// (envoy/service/status/v3/csds.proto; gRFC A40): one ClientConfig per xDS client, one
// GenericXdsConfig per resource, read from the client's cache.
//
// What each field holds, per A40 and the proto's comments:
// - xds_config is the resource as last accepted (never the NACKed one), as received;
// - version_info and last_updated belong to that accepted value;
// - error_state is set while the resource's last update was rejected: the rejected version,
//   when, why, and the rejected resource (failed_configuration) when it could be named;
// - config_status is left UNKNOWN: the proto reserves it for management servers;
// - node matchers in a request are ignored (A40, "Node Matching").
// The cache already keeps all of this, so nothing here costs the ingest path anything.
import type {
  envoy_config_core_v3_Node as Node,
  envoy_service_status_v3_ClientConfig as ClientConfig,
  envoy_service_status_v3_ClientConfig_GenericXdsConfig as GenericXdsConfig,
  envoy_service_status_v3_ClientStatusResponse as ClientStatusResponse,
  google_protobuf_Timestamp as Timestamp,
} from './generated/pb.js';
import { envoy_admin_v3_ClientResourceStatus as ClientResourceStatus } from './generated/pb.js';
import { protoType } from './proto.js';
import { toProto3Json } from './proto-json.js';
import type { ResourceSnapshot, ResourceState } from './watchers.js';
import type { XdsClient } from './xds-client.js';

export type { ClientConfig, GenericXdsConfig, ClientStatusResponse };

/** An xDS client to report, with the scope it serves (CSDS's client_scope; "" when unnamed). */
export interface CsdsClientEntry {
  readonly client: XdsClient;
  readonly scope?: string;
}

export type CsdsClient = XdsClient | CsdsClientEntry;

/**
 * The clients a CSDS view reports: one, a list, or a function asked on every request (for
 * clients created later, such as a mesh's listener catalog).
 */
export type CsdsClients = CsdsClient | Iterable<CsdsClient> | (() => Iterable<CsdsClient>);

export interface ClientStatusOptions {
  /** Leave xds_config out (ClientStatusRequest.exclude_resource_contents). */
  readonly excludeResourceContents?: boolean;
}

const RESPONSE_TYPE = 'envoy.service.status.v3.ClientStatusResponse';

const STATUS: Record<ResourceState, number> = {
  requested: ClientResourceStatus.REQUESTED,
  does_not_exist: ClientResourceStatus.DOES_NOT_EXIST,
  acked: ClientResourceStatus.ACKED,
  nacked: ClientResourceStatus.NACKED,
};

// Listeners first, then what they lead to, as a reader follows the chain.
const TYPE_ORDER = [
  'type.googleapis.com/envoy.config.listener.v3.Listener',
  'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
];

function typeRank(typeUrl: string): number {
  const i = TYPE_ORDER.indexOf(typeUrl);
  return i < 0 ? TYPE_ORDER.length : i;
}

function timestamp(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

function genericConfig(r: ResourceSnapshot, options: ClientStatusOptions): GenericXdsConfig {
  const out: GenericXdsConfig = {
    type_url: r.typeUrl,
    name: r.name,
    version_info: r.version,
    config_status: 0, // UNKNOWN: a management server's view, not a client's
    client_status: STATUS[r.state],
    is_static_resource: false,
  };
  if (r.raw && !options.excludeResourceContents) out.xds_config = r.raw;
  if (r.lastUpdated !== undefined) out.last_updated = timestamp(r.lastUpdated);
  if (r.state === 'nacked' && r.error) {
    out.error_state = {
      details: r.error.message,
      version_info: r.error.version,
      last_update_attempt: timestamp(r.error.time),
      ...(r.rejected && !options.excludeResourceContents ? { failed_configuration: r.rejected } : {}),
    };
  }
  return out;
}

/** One xDS client's state as a CSDS ClientConfig (field names as in the .proto). */
export function buildClientConfig(client: XdsClient, options: ClientStatusOptions & { readonly scope?: string } = {}): ClientConfig {
  const resources = client
    .dump()
    .resources.filter((r) => r.name !== '*') // a wildcard subscription, not a resource
    .sort((a, b) => typeRank(a.typeUrl) - typeRank(b.typeUrl) || (a.typeUrl < b.typeUrl ? -1 : a.typeUrl > b.typeUrl ? 1 : 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    node: client.node() as unknown as Node,
    xds_config: [],
    generic_xds_configs: resources.map((r) => genericConfig(r, options)),
    client_scope: options.scope ?? '',
  };
}

function isEntry(c: unknown): c is CsdsClientEntry {
  return typeof c === 'object' && c !== null && 'client' in c;
}

function isClient(c: unknown): c is XdsClient {
  // Duck-typed, so two copies of the package still recognize each other's clients.
  return typeof c === 'object' && c !== null && typeof (c as XdsClient).dump === 'function' && typeof (c as XdsClient).node === 'function';
}

/** The clients a CsdsClients value names, now. */
export function csdsClientList(clients: CsdsClients): CsdsClientEntry[] {
  const value = typeof clients === 'function' ? clients() : clients;
  if (isClient(value)) return [{ client: value }];
  if (isEntry(value)) return [value];
  return [...(value as Iterable<CsdsClient>)].map((c) => (isEntry(c) ? c : { client: c }));
}

/** Every client's state as a CSDS ClientStatusResponse (field names as in the .proto). */
export function buildClientStatusResponse(clients: CsdsClients, options: ClientStatusOptions = {}): ClientStatusResponse {
  return {
    config: csdsClientList(clients).map((e) => buildClientConfig(e.client, { ...options, ...(e.scope !== undefined ? { scope: e.scope } : {}) })),
  };
}

/** A ClientStatusResponse in protobuf wire form (what the CSDS gRPC service sends). */
export function encodeClientStatusResponse(response: ClientStatusResponse): Uint8Array {
  const type = protoType(RESPONSE_TYPE);
  return type.encode(type.fromObject(response as unknown as Record<string, unknown>)).finish();
}

export interface ClientStatusJsonOptions extends ClientStatusOptions {
  /**
   * Field names: 'proto' (default) keeps the .proto names, as Envoy's admin /config_dump
   * prints them; 'json' uses proto3 JSON's lowerCamelCase.
   */
  readonly names?: 'proto' | 'json';
}

/**
 * Every client's state as proto3 JSON of a ClientStatusResponse: resources as Anys with
 * "@type", enums by name, timestamps as RFC 3339. For an HTTP admin endpoint.
 */
export function clientStatusJson(clients: CsdsClients, options: ClientStatusJsonOptions = {}): unknown {
  const response = buildClientStatusResponse(clients, options);
  const type = protoType(RESPONSE_TYPE);
  return toProto3Json(RESPONSE_TYPE, type.fromObject(response as unknown as Record<string, unknown>), { names: options.names ?? 'proto' });
}

const NODE_TYPE = 'envoy.config.core.v3.Node';
const GENERIC_TYPE = 'envoy.service.status.v3.ClientConfig.GenericXdsConfig';

/** JSON.stringify(value, null, 2) placed at a nesting depth (its inner lines indented to match). */
function pretty(value: unknown, depth: number): string {
  return JSON.stringify(value, null, 2).replace(/\n/g, `\n${'  '.repeat(depth)}`);
}

/**
 * The same document as `JSON.stringify(clientStatusJson(clients, options), null, 2)`, in
 * pieces of about one resource each, so a server can send it while yielding to other work:
 * rendering tens of thousands of resources takes seconds.
 */
export function* clientStatusJsonChunks(clients: CsdsClients, options: ClientStatusJsonOptions = {}): Generator<string> {
  const names = options.names ?? 'proto';
  const key = (protoName: string) => JSON.stringify(names === 'json' ? protoName.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : protoName);
  const response = buildClientStatusResponse(clients, options);
  if (response.config.length === 0) {
    yield '{}\n';
    return;
  }
  const nodeType = protoType(NODE_TYPE);
  const genericType = protoType(GENERIC_TYPE);
  yield `{\n  ${key('config')}: [`;
  for (const [i, config] of response.config.entries()) {
    // Proto3 JSON leaves out empty fields; the field order is the .proto's.
    const fields: string[] = [];
    if (config.node) {
      const node = toProto3Json(NODE_TYPE, nodeType.fromObject(config.node as unknown as Record<string, unknown>), { names });
      fields.push(`\n      ${key('node')}: ${pretty(node, 3)}`);
    }
    yield `${i > 0 ? ',' : ''}\n    {${fields.join(',')}`;
    let sep = fields.length > 0 ? ',' : '';
    if (config.generic_xds_configs.length > 0) {
      yield `${sep}\n      ${key('generic_xds_configs')}: [`;
      for (const [j, g] of config.generic_xds_configs.entries()) {
        const json = toProto3Json(GENERIC_TYPE, genericType.fromObject(g as unknown as Record<string, unknown>), { names });
        yield `${j > 0 ? ',' : ''}\n        ${pretty(json, 4)}`;
      }
      yield '\n      ]';
      sep = ',';
    }
    if (config.client_scope !== '') yield `${sep}\n      ${key('client_scope')}: ${JSON.stringify(config.client_scope)}`;
    yield sep === '' && config.client_scope === '' ? '}' : '\n    }';
  }
  yield '\n  ]\n}\n';
}
