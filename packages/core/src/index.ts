export { compileDomainMatcher, stripPort, type DomainMatcher } from './vhost-match.js';
export { parseTarget, listenerNameFor, resolveTarget, type ParsedTarget } from './target.js';
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
export { compileRouteTable, fractionEnabled, type RouteTable, type RouteTableOptions } from './route-table.js';
export type {
  RouteDecision,
  ForwardDecision,
  DirectResponseDecision,
  RedirectDecision,
  NonForwardingDecision,
  NoRouteDecision,
} from './route-decision.js';
export {
  applyRequestHeaderMutations,
  applyResponseHeaderMutations,
  finalizeForwardRequest,
  forwardsUnchanged,
  rewriteForwardPath,
  type ForwardRequestTarget,
} from './route-apply.js';
export { selectMirrorClusters } from './route-mirror.js';
export {
  mutableHeadersFromRecord,
  type MutableHeaders,
  type HeaderFormatContext,
  type CompiledHeaderOps,
} from './header-mutation.js';
export { compileRegexRewrite, replaceAll as regexReplaceAll, type CompiledRegexRewrite } from './route-regex.js';
export { xxhash64 } from './xxhash.js';
export {
  buildClusterLoadBalancer,
  hostKey,
  type ClusterLoadBalancer,
  type ClusterLoadBalancerOptions,
} from './lb-cluster.js';
export { registerLoadBalancer, getLoadBalancer, selectLoadBalancer } from './lb-registry.js';
export type {
  AnyLoadBalancerFactory,
  HostHealth,
  HostPicker,
  HostStats,
  LbScope,
  LoadBalancerFactory,
  PickContext,
  PickedHost,
  PickerInput,
  WrappingLoadBalancerFactory,
} from './lb-types.js';
export { computePriorityLoad, effectiveLocalityWeight, type PriorityCounts, type PriorityLoad, type PriorityLoadOptions } from './priority-locality.js';
export { compileHashPolicies, computeRequestHash, type HashOptions, type RequestHasher } from './hash-policy.js';
export { Mesh, MeshTarget, type ClusterSnapshot, type MeshOptions, type TargetOptions, type TargetSnapshot, type TargetState } from './mesh.js';
export { appendForwardedHost } from './route-host-rewrite.js';
export type { FinalizeOptions } from './route-apply.js';
export {
  failureReply,
  requestWasSent,
  type AttemptOutcome,
  type ConnectFailureOutcome,
  type HostTagged,
  type OverflowOutcome,
  type RefusedStreamOutcome,
  type ResetOutcome,
  type ResponseHeaderView,
  type ResponseOutcome,
  type TimeoutOutcome,
} from './retry-outcome.js';
export {
  compileRetryPolicy,
  parseRetryOn,
  CompiledRetryPolicy,
  RetryConditions,
  RetryOn,
  DEFAULT_NUM_RETRIES,
  RETRY_REQUEST_HEADERS,
  type RetryRequestOptions,
} from './retry-policy.js';
export {
  exponentialBackoffFor,
  jitteredLowerBound,
  JitteredExponentialBackoff,
  DEFAULT_BASE_INTERVAL_MS,
  DEFAULT_MAX_INTERVAL_FACTOR,
} from './backoff.js';
export { parseResetInterval, type RateLimitedBackOff } from './retry-rate-limit.js';
export { retryHostSelector, RetryHostSelector, PREVIOUS_HOSTS_PREDICATE } from './retry-host-predicate.js';
export {
  resolveTimeouts,
  grpcCallTimeout,
  parseGrpcTimeout,
  formatGrpcTimeout,
  DEFAULT_ROUTE_TIMEOUT_MS,
  TIMEOUT_REQUEST_HEADERS,
  type TimeoutOptions,
  type TimeoutSource,
  type UpstreamTimeouts,
} from './timeout-policy.js';
export { runWithRetries, type RetryAdmission, type RetryFlag, type RetryLoopOptions, type RetryResult } from './retry-loop.js';
export {
  CircuitBreakerRegistry,
  ClusterCircuitBreaker,
  isBreakerOverflow,
  type BreakerOverflow,
  type BreakerRelease,
  type BreakerResource,
  type BreakerResourceState,
  type RoutingPriority,
} from './circuit-breaker.js';
export {
  OutlierDetector,
  OutlierDetectorRegistry,
  type CallOutcome,
  type EjectionType,
  type OutlierDetectorOptions,
  type OutlierEvent,
  type OutlierFlavor,
  type OutlierListener,
  type OutlierStats,
} from './outlier-detection.js';
export {
  ActiveFaults,
  compileFault,
  decideFault,
  faultConfigForRoute,
  httpToGrpcStatus,
  injectFault,
  FAULT_FILTER_TYPE_URL,
  type CompiledFault,
  type FaultAbortDecision,
  type FaultContext,
  type FaultDecision,
  type FaultFlag,
  type InjectedFault,
} from './fault-injection.js';
export { grpcRetryPolicy, type GrpcRetryPolicy } from './retry-grpc.js';
export { retryAdmissionFrom } from './retry-loop.js';
export { requestClock } from './retry-loop.js';
export { createMesh, getDefaultMesh, closeDefaultMesh } from './default-mesh.js';
export { RetryState, type RetryDecision, type RetryStateOptions } from './retry-state.js';
export { startAdminServer, type AdminServer, type AdminServerOptions } from './admin/admin-server.js';
export { clustersView, clustersJsonChunks, clustersTextChunks, type ClustersView, type TargetView, type ClusterView, type HostView, type BreakerView } from './admin/clusters-view.js';
export * from './telemetry/index.js';
export { DeadlineTimers, type Deadline, type DeadlineAction } from './deadline-timers.js';
export { selectDropOverload } from './drop-overload.js';
