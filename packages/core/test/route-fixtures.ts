// Test helpers: RouteConfiguration resources built from proto3 JSON through the real
// decoder (so every test also proves the decoder → compiler path), and requests.
import { routeConfigurationResourceType, TYPE_URLS, type RouteConfigurationResource } from '@meshlet/xds-client';
import { anyFromProto3Json } from '@meshlet/xds-client/proto-json';
import { headersFromRecord, type MeshRequest } from '../src/request.js';

export function routeConfig(json: Record<string, unknown>): RouteConfigurationResource {
  const result = routeConfigurationResourceType.decode(
    { serverFeatures: [] },
    anyFromProto3Json({ '@type': TYPE_URLS.routeConfiguration, name: 'rc', ...json }),
  );
  if (result.error !== undefined) throw new Error(result.error);
  return result.value;
}

/** A route configuration with one virtual host for every domain and these routes. */
export function oneHost(routes: unknown[], vhost: Record<string, unknown> = {}, rc: Record<string, unknown> = {}) {
  return routeConfig({ virtual_hosts: [{ name: 'vh', domains: ['*'], routes, ...vhost }], ...rc });
}

export function request(
  init: {
    path?: string;
    authority?: string;
    method?: string;
    scheme?: string;
    headers?: Record<string, string | string[]>;
    grpc?: boolean;
    sourceIp?: string;
  } = {},
): MeshRequest {
  return {
    method: init.method ?? 'GET',
    path: init.path ?? '/',
    authority: init.authority ?? 'example.com',
    scheme: init.scheme ?? 'http',
    headers: headersFromRecord(init.headers ?? {}),
    ...(init.grpc !== undefined ? { grpc: init.grpc } : {}),
    ...(init.sourceIp !== undefined ? { sourceIp: init.sourceIp } : {}),
  };
}

/** A route to cluster `name` with the given match. */
export function to(name: string, match: Record<string, unknown> = { prefix: '/' }, extra: Record<string, unknown> = {}) {
  return { name, match, route: { cluster: name }, ...extra };
}
