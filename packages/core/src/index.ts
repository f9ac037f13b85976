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
