export { compileDomainMatcher, stripPort, type DomainMatcher } from './vhost-match.js';
export { parseTarget, listenerNameFor, type ParsedTarget } from './target.js';
export {
  XdsDependencyManager,
  MAX_AGGREGATE_DEPTH,
  type ClusterConfig,
  type DependencyManagerOptions,
  type DependencyWatcher,
  type ResolvedEndpoints,
  type XdsConfig,
} from './xds-dependency-manager.js';
export { systemRandom, seededRandom, type Random } from './random.js';
export { headersFromRecord, type MeshRequest, type RequestHeaders } from './request.js';
