// The four xDS resource types as XdsResourceType objects: decode bytes, validate,
// and turn a ResourceError thrown anywhere below into a DecodeResult.
import type { AnyMessage, DecodeContext, DecodeResult, XdsResourceType } from '../resource-type.js';
import { TYPE_URLS, protoType, strictBytes } from '../proto.js';
import type {
  envoy_config_cluster_v3_Cluster,
  envoy_config_endpoint_v3_ClusterLoadAssignment,
  envoy_config_listener_v3_Listener,
  envoy_config_route_v3_RouteConfiguration,
} from '../generated/pb.js';
import { errorMessage, ResourceError } from './common.js';
import { parseListener } from './listener.js';
import { parseRouteConfiguration } from './route-config.js';
import { parseCluster } from './cluster.js';
import { parseClusterLoadAssignment } from './endpoints.js';
import type { ClusterResource, EndpointsResource, ListenerResource, RouteConfigurationResource } from './types.js';

function resourceType<M, T>(
  typeUrl: string,
  shortName: string,
  allResourcesRequiredInSotW: boolean,
  nameOf: (m: M) => string,
  parse: (m: M, context: DecodeContext) => T,
): XdsResourceType<T> {
  const fullName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return {
    typeUrl,
    shortName,
    allResourcesRequiredInSotW,
    decode(context: DecodeContext, resource: AnyMessage): DecodeResult<T> {
      if (resource.type_url !== typeUrl) {
        return { error: `expected a ${shortName} (${typeUrl}), got ${resource.type_url}` };
      }
      let message: M;
      try {
        message = protoType(fullName).decode(strictBytes(resource.value)) as unknown as M;
      } catch (e) {
        return { error: `cannot decode ${shortName}: ${errorMessage(e)}` };
      }
      const name = nameOf(message);
      if (!name) return { error: `${shortName} has an empty name` };
      try {
        return { name, value: parse(message, context) };
      } catch (e) {
        if (e instanceof ResourceError) return { name, error: e.message };
        // A bug in a decoder must not take the ADS stream down: report it as invalid.
        return { name, error: `internal error while validating: ${errorMessage(e)}` };
      }
    },
  };
}

export const listenerResourceType: XdsResourceType<ListenerResource> = resourceType(
  TYPE_URLS.listener,
  'Listener',
  true,
  (m: envoy_config_listener_v3_Listener) => m.name,
  (m) => parseListener(m),
);

export const routeConfigurationResourceType: XdsResourceType<RouteConfigurationResource> = resourceType(
  TYPE_URLS.routeConfiguration,
  'RouteConfiguration',
  false,
  (m: envoy_config_route_v3_RouteConfiguration) => m.name,
  (m) => parseRouteConfiguration(m, ''),
);

export const clusterResourceType: XdsResourceType<ClusterResource> = resourceType(
  TYPE_URLS.cluster,
  'Cluster',
  true,
  (m: envoy_config_cluster_v3_Cluster) => m.name,
  (m) => parseCluster(m),
);

export const endpointResourceType: XdsResourceType<EndpointsResource> = resourceType(
  TYPE_URLS.clusterLoadAssignment,
  'ClusterLoadAssignment',
  false,
  (m: envoy_config_endpoint_v3_ClusterLoadAssignment) => m.cluster_name,
  (m) => parseClusterLoadAssignment(m, ''),
);

const registry = new Map<string, XdsResourceType<unknown>>();

/** Add (or replace) a resource type, keyed by its type URL. */
export function registerResourceType(type: XdsResourceType<unknown>): void {
  registry.set(type.typeUrl, type);
}

/** The resource type registered for a type URL, or undefined. */
export function resourceTypeForUrl(typeUrl: string): XdsResourceType<unknown> | undefined {
  return registry.get(typeUrl);
}

registerResourceType(listenerResourceType);
registerResourceType(routeConfigurationResourceType);
registerResourceType(clusterResourceType);
registerResourceType(endpointResourceType);
