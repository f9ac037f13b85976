// Typed, validated xDS resources: the four resource types, their registries and the model.
export {
  listenerResourceType,
  routeConfigurationResourceType,
  clusterResourceType,
  endpointResourceType,
  resourceTypeForUrl,
  registerResourceType,
} from './resource-types.js';
export { listenerNamesResourceType, listenerNameFromBytes } from './listener-names.js';
export { registerHttpFilter, httpFilterForUrl, type HttpFilterParser } from './http-filters.js';
export { registerLbPolicyParser, type LbPolicyParser, type LbPolicyParseContext } from './lb-policy.js';
export { ResourceError } from './common.js';
export type { TypedConfig } from './typed-config.js';
export type * from './types.js';
