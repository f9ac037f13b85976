// The typed model of the four xDS resource types, as the decoders in this folder
// produce it. Every object is plain, readonly data that JSON.stringify prints
// faithfully: durations are milliseconds as numbers, percentages that Envoy
// expresses as FractionalPercent are parts per million, enums are their proto
// names as strings, and an optional thing that is absent is `undefined`.
// Defaults that Envoy or a gRFC defines are filled in here, except where the
// consumer must know "unset" (route timeout: Envoy's 15 s default applies to
// HTTP, gRPC uses max_stream_duration instead; gRFC A31).

/** JSON value as converted from google.protobuf.Struct / Value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Milliseconds. */
export type Millis = number;

// ---------------------------------------------------------------- matchers

/** envoy.type.matcher.v3.StringMatcher; `safe_regex` carries the RE2 pattern, already validated. */
export type StringMatcher =
  | { readonly kind: 'exact'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'prefix'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'suffix'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'contains'; readonly value: string; readonly ignoreCase: boolean }
  | { readonly kind: 'safe_regex'; readonly regex: string; readonly ignoreCase: boolean };

/** How a HeaderMatcher tests the header value. */
export type HeaderMatch =
  | StringMatcher
  /** present_match: true = the header must be present, false = it must be absent. */
  | { readonly kind: 'present'; readonly present: boolean }
  /** range_match: the value parsed as an integer lies in [start, end). */
  | { readonly kind: 'range'; readonly start: number; readonly end: number };

export interface HeaderMatcher {
  readonly name: string;
  readonly match: HeaderMatch;
  readonly invertMatch: boolean;
  readonly treatMissingHeaderAsEmpty: boolean;
}

export interface QueryParameterMatcher {
  readonly name: string;
  /** string_match, or `present` when present_match is set (or nothing is: Envoy then requires presence). */
  readonly match: StringMatcher | { readonly kind: 'present'; readonly present: boolean };
}

/** A FractionalPercent, kept as given and as parts per million (capped at 1,000,000). */
export interface FractionalPercent {
  readonly numerator: number;
  readonly denominator: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
  readonly perMillion: number;
}

export interface RegexRewrite {
  /** RE2 pattern, validated. */
  readonly pattern: string;
  readonly substitution: string;
}

// ---------------------------------------------------------------- header mutations

export type HeaderAppendAction =
  | 'APPEND_IF_EXISTS_OR_ADD'
  | 'ADD_IF_ABSENT'
  | 'OVERWRITE_IF_EXISTS_OR_ADD'
  | 'OVERWRITE_IF_EXISTS';

export interface HeaderValueOption {
  readonly name: string;
  readonly value: string;
  /** From append_action, or from the deprecated `append` (true = APPEND_IF_EXISTS_OR_ADD, false = OVERWRITE_IF_EXISTS_OR_ADD). */
  readonly appendAction: HeaderAppendAction;
  readonly keepEmptyValue: boolean;
}

export interface HeaderMutations {
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
}

// ---------------------------------------------------------------- metadata

export interface Metadata {
  /** filter_metadata, each Struct converted to plain JSON. */
  readonly filterMetadata: Readonly<Record<string, JsonObject>>;
  /** typed_filter_metadata: the type URL of each entry (the payload is not interpreted). */
  readonly typedFilterMetadata: Readonly<Record<string, { readonly typeUrl: string }>>;
}

// ---------------------------------------------------------------- HTTP filters

/** One entry of the HttpConnectionManager's http_filters, parsed by its registered filter. */
export interface HttpFilter {
  /** Instance name (the key of typed_per_filter_config maps). */
  readonly name: string;
  /** Type URL of the filter config (for a TypedStruct, the type URL it wraps). */
  readonly typeUrl: string;
  /** What the filter's parseTopLevel returned. */
  readonly config: unknown;
  readonly isOptional: boolean;
  /** The filter is off unless a route's typed_per_filter_config enables it. */
  readonly disabled: boolean;
}

/** A typed_per_filter_config entry, parsed by the filter registered for its type URL. */
export interface FilterConfigOverride {
  readonly typeUrl: string;
  readonly config: unknown;
  readonly isOptional: boolean;
  /** envoy.config.route.v3.FilterConfig.disabled */
  readonly disabled: boolean;
}

/** Keyed by filter instance name. Unsupported optional entries are left out. */
export type TypedPerFilterConfig = Readonly<Record<string, FilterConfigOverride>>;

export interface RouterFilterConfig {
  readonly suppressEnvoyHeaders: boolean;
}

export interface FaultDelay {
  readonly kind: 'fixed' | 'header';
  /** fixed_delay in ms (fixed only). */
  readonly fixedDelay: Millis | undefined;
  readonly percentage: FractionalPercent;
}

export interface FaultAbort {
  readonly kind: 'http_status' | 'grpc_status' | 'header';
  readonly httpStatus: number | undefined;
  readonly grpcStatus: number | undefined;
  readonly percentage: FractionalPercent;
}

/** envoy.extensions.filters.http.fault.v3.HTTPFault (top level and per-route). */
export interface FaultFilterConfig {
  readonly delay: FaultDelay | undefined;
  readonly abort: FaultAbort | undefined;
  /** undefined = unlimited. */
  readonly maxActiveFaults: number | undefined;
  readonly headers: readonly HeaderMatcher[];
  readonly downstreamNodes: readonly string[];
  readonly upstreamCluster: string;
}

/** envoy.extensions.filters.http.rbac.v3.RBAC, policies kept shallow (proto JSON). */
export interface RbacFilterConfig {
  readonly rules:
    | {
        readonly action: 'ALLOW' | 'DENY' | 'LOG';
        readonly policies: Readonly<Record<string, JsonObject>>;
      }
    | undefined;
  readonly shadowRules:
    | {
        readonly action: 'ALLOW' | 'DENY' | 'LOG';
        readonly policies: Readonly<Record<string, JsonObject>>;
      }
    | undefined;
  readonly rulesStatPrefix: string;
  readonly shadowRulesStatPrefix: string;
}

/** RBACPerRoute; `rbac` undefined disables the filter for the route. */
export interface RbacPerRouteConfig {
  readonly rbac: RbacFilterConfig | undefined;
}

/** envoy.extensions.filters.http.stateful_session.v3.StatefulSession (gRFC A55). */
export interface StatefulSessionConfig {
  /** The cookie of a CookieBasedSessionState; undefined = no session state, the filter does nothing. */
  readonly cookie: { readonly name: string; readonly ttl: Millis | undefined; readonly path: string } | undefined;
  readonly strict: boolean;
}

/** StatefulSessionPerRoute: either disabled, or a replacement config. */
export interface StatefulSessionPerRouteConfig {
  readonly disabled: boolean;
  readonly statefulSession: StatefulSessionConfig | undefined;
}

// ---------------------------------------------------------------- routes

export type PathMatcher =
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'path'; readonly value: string }
  | { readonly kind: 'safe_regex'; readonly regex: string }
  | { readonly kind: 'path_separated_prefix'; readonly value: string };

export interface RouteMatch {
  readonly path: PathMatcher;
  /** Default true. */
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatcher[];
  readonly queryParameters: readonly QueryParameterMatcher[];
  readonly runtimeFraction: FractionalPercent | undefined;
  /** match.grpc set: only gRPC requests (content-type application/grpc*) match. */
  readonly grpc: boolean;
}

export interface RetryBackOff {
  readonly baseInterval: Millis;
  /** Default 10 × baseInterval. */
  readonly maxInterval: Millis;
}

export interface RetryPolicy {
  /** retry_on split on commas, trimmed, empties dropped. */
  readonly retryOn: readonly string[];
  /** Default 1. */
  readonly numRetries: number;
  readonly perTryTimeout: Millis | undefined;
  readonly perTryIdleTimeout: Millis | undefined;
  readonly retriableStatusCodes: readonly number[];
  readonly retriableHeaders: readonly HeaderMatcher[];
  readonly retriableRequestHeaders: readonly HeaderMatcher[];
  /** undefined = Envoy's default (base 25 ms, max 250 ms). */
  readonly retryBackOff: RetryBackOff | undefined;
  readonly rateLimitedRetryBackOff:
    | {
        readonly resetHeaders: readonly { readonly name: string; readonly format: 'SECONDS' | 'UNIX_TIMESTAMP' }[];
        /** Default 300 s. */
        readonly maxInterval: Millis;
      }
    | undefined;
  /** Names of retry_host_predicate extensions, e.g. envoy.retry_host_predicates.previous_hosts. */
  readonly retryHostPredicates: readonly string[];
  readonly hostSelectionRetryMaxAttempts: number;
}

export type HashPolicy = (
  | { readonly kind: 'header'; readonly name: string; readonly regexRewrite: RegexRewrite | undefined }
  | { readonly kind: 'cookie'; readonly name: string; readonly ttl: Millis | undefined; readonly path: string }
  | { readonly kind: 'connection_properties'; readonly sourceIp: boolean }
  | { readonly kind: 'query_parameter'; readonly name: string }
  | { readonly kind: 'filter_state'; readonly key: string }
) & { readonly terminal: boolean };

export interface RequestMirrorPolicy {
  readonly cluster: string;
  readonly clusterHeader: string;
  /** undefined = mirror every request. */
  readonly runtimeFraction: FractionalPercent | undefined;
}

export interface WeightedClusterEntry {
  readonly name: string;
  readonly weight: number;
  readonly headerMutations: HeaderMutations;
  readonly typedPerFilterConfig: TypedPerFilterConfig;
  readonly hostRewriteLiteral: string | undefined;
}

export type ClusterSpecifier =
  | { readonly kind: 'cluster'; readonly name: string }
  | {
      readonly kind: 'weighted_clusters';
      readonly clusters: readonly WeightedClusterEntry[];
      /** Sum of the weights (> 0, ≤ 2^32 − 1). */
      readonly totalWeight: number;
      /** header_name: take the random value from this header when present. */
      readonly headerName: string | undefined;
    }
  | { readonly kind: 'cluster_header'; readonly header: string }
  | { readonly kind: 'cluster_specifier_plugin'; readonly name: string };

export interface MaxStreamDuration {
  readonly maxStreamDuration: Millis | undefined;
  readonly grpcTimeoutHeaderMax: Millis | undefined;
  readonly grpcTimeoutHeaderOffset: Millis | undefined;
}

export interface ForwardAction {
  readonly kind: 'route';
  readonly cluster: ClusterSpecifier;
  /** undefined when unset (the consumer applies Envoy's 15 s); 0 disables. */
  readonly timeout: Millis | undefined;
  readonly idleTimeout: Millis | undefined;
  readonly maxStreamDuration: MaxStreamDuration | undefined;
  /** The route's retry policy; the virtual host's applies when this is undefined. */
  readonly retryPolicy: RetryPolicy | undefined;
  readonly hashPolicies: readonly HashPolicy[];
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  readonly hostRewriteLiteral: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly hostRewriteHeader: string | undefined;
  readonly hostRewritePathRegex: RegexRewrite | undefined;
  readonly appendXForwardedHost: boolean;
  readonly requestMirrorPolicies: readonly RequestMirrorPolicy[];
  /** 503 (SERVICE_UNAVAILABLE, the default), 404 or 500. */
  readonly clusterNotFoundResponseCode: 503 | 404 | 500;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly httpsRedirect: boolean;
  readonly schemeRedirect: string | undefined;
  readonly hostRedirect: string | undefined;
  readonly portRedirect: number | undefined;
  readonly pathRedirect: string | undefined;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: RegexRewrite | undefined;
  /** 301 (default), 302, 303, 307 or 308. */
  readonly responseCode: 301 | 302 | 303 | 307 | 308;
  readonly stripQuery: boolean;
}

export interface DirectResponseAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: string | undefined;
}

export type RouteAction =
  | ForwardAction
  | RedirectAction
  | DirectResponseAction
  | { readonly kind: 'non_forwarding' };

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly action: RouteAction;
  readonly headerMutations: HeaderMutations;
  readonly typedPerFilterConfig: TypedPerFilterConfig;
  readonly metadata: Metadata | undefined;
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  readonly retryPolicy: RetryPolicy | undefined;
  readonly hashPolicies: readonly HashPolicy[];
  readonly headerMutations: HeaderMutations;
  readonly typedPerFilterConfig: TypedPerFilterConfig;
  readonly includeRequestAttemptCount: boolean;
  readonly includeAttemptCountInResponse: boolean;
  readonly requestMirrorPolicies: readonly RequestMirrorPolicy[];
  readonly metadata: Metadata | undefined;
}

export interface ClusterSpecifierPlugin {
  readonly name: string;
  readonly typeUrl: string;
  readonly isOptional: boolean;
}

export interface RouteConfigurationResource {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  readonly headerMutations: HeaderMutations;
  readonly mostSpecificHeaderMutationsWins: boolean;
  readonly internalOnlyHeaders: readonly string[];
  readonly typedPerFilterConfig: TypedPerFilterConfig;
  readonly clusterSpecifierPlugins: readonly ClusterSpecifierPlugin[];
  readonly requestMirrorPolicies: readonly RequestMirrorPolicy[];
  readonly ignorePortInHostMatching: boolean;
  readonly metadata: Metadata | undefined;
}

// ---------------------------------------------------------------- listeners

export interface HttpConnectionManager {
  /** RDS resource name (config source ads or self); exactly one of this and routeConfig is set. */
  readonly routeConfigName: string | undefined;
  readonly routeConfig: RouteConfigurationResource | undefined;
  readonly httpFilters: readonly HttpFilter[];
  /** common_http_protocol_options.max_stream_duration (gRFC A31). */
  readonly maxStreamDuration: Millis | undefined;
  readonly streamIdleTimeout: Millis | undefined;
  readonly requestTimeout: Millis | undefined;
}

export interface SocketAddress {
  readonly host: string;
  readonly port: number;
}

export interface CidrRange {
  readonly addressPrefix: string;
  readonly prefixLen: number;
}

export interface FilterChainMatch {
  readonly destinationPort: number | undefined;
  readonly prefixRanges: readonly CidrRange[];
  readonly sourceType: 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';
  readonly sourcePrefixRanges: readonly CidrRange[];
  readonly sourcePorts: readonly number[];
  readonly serverNames: readonly string[];
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
}

export interface FilterChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  /** The chain's HttpConnectionManager, when its network filter is one. */
  readonly httpConnectionManager: HttpConnectionManager | undefined;
  /** Names of the network filters, in order. */
  readonly filterNames: readonly string[];
  readonly transportSocket: TransportSocket | undefined;
}

export interface ListenerResource {
  readonly name: string;
  /** A client (api_listener) listener's HttpConnectionManager; undefined for a server listener. */
  readonly apiListener: HttpConnectionManager | undefined;
  /** A server listener's address; undefined for a client listener. */
  readonly address: SocketAddress | undefined;
  readonly filterChains: readonly FilterChain[];
  readonly defaultFilterChain: FilterChain | undefined;
  readonly trafficDirection: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
}

// ---------------------------------------------------------------- TLS

/** CertificateProviderPluginInstance (or the deprecated CertificateProviderInstance twin), gRFC A29. */
export interface CertificateProviderInstance {
  readonly instanceName: string;
  readonly certificateName: string;
}

export interface SanMatcher {
  /** From match_typed_subject_alt_names; undefined for the untyped match_subject_alt_names. */
  readonly sanType: 'EMAIL' | 'DNS' | 'URI' | 'IP_ADDRESS' | 'OTHER_NAME' | undefined;
  readonly matcher: StringMatcher;
  readonly oid: string;
}

export interface CommonTlsContext {
  readonly tlsCertificateProviderInstance: CertificateProviderInstance | undefined;
  readonly caCertificateProviderInstance: CertificateProviderInstance | undefined;
  /** validation_context.system_root_certs set (gRFC A82). */
  readonly useSystemRootCerts: boolean;
  readonly matchSubjectAltNames: readonly SanMatcher[];
  readonly alpnProtocols: readonly string[];
}

export interface UpstreamTlsContext {
  readonly commonTlsContext: CommonTlsContext;
  readonly sni: string;
  readonly allowRenegotiation: boolean;
}

export interface DownstreamTlsContext {
  readonly commonTlsContext: CommonTlsContext;
  readonly requireClientCertificate: boolean;
  readonly requireSni: boolean;
}

export type TransportSocket =
  | { readonly name: string; readonly kind: 'plaintext' }
  | { readonly name: string; readonly kind: 'tls'; readonly upstreamTls: UpstreamTlsContext }
  | { readonly name: string; readonly kind: 'downstream_tls'; readonly downstreamTls: DownstreamTlsContext };

// ---------------------------------------------------------------- clusters

/** One load-balancing policy: a registered name and the config its parser produced. */
export interface LbPolicyConfig {
  readonly name: string;
  readonly config: unknown;
}

export interface RoundRobinConfig {}
export interface RandomConfig {}
export interface LeastRequestConfig {
  /** Default 2, at least 2. */
  readonly choiceCount: number;
  /** Default 1.0. */
  readonly activeRequestBias: number;
}
export interface RingHashConfig {
  /** Default 1024. */
  readonly minRingSize: number;
  /** Default 8M (8,388,608). */
  readonly maxRingSize: number;
  readonly hashFunction: 'XX_HASH';
}
export interface MaglevConfig {
  /** Default 65537, prime. */
  readonly tableSize: number;
}
export interface PickFirstConfig {
  readonly shuffleAddressList: boolean;
}
export interface WrrLocalityConfig {
  /** The endpoint picking policy, same shape as a cluster's lbPolicy. */
  readonly childPolicy: readonly LbPolicyConfig[];
}
/** gRFC A58 with its defaults. */
export interface WeightedRoundRobinConfig {
  readonly enableOobLoadReport: boolean;
  readonly oobReportingPeriod: Millis;
  readonly blackoutPeriod: Millis;
  readonly weightExpirationPeriod: Millis;
  readonly weightUpdatePeriod: Millis;
  readonly errorUtilizationPenalty: number;
}

export interface RetryBudget {
  /** Default 20 (%). */
  readonly budgetPercent: number;
  /** Default 3. */
  readonly minRetryConcurrency: number;
}

export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  readonly retryBudget: RetryBudget | undefined;
  readonly trackRemaining: boolean;
  readonly maxConnectionPools: number | undefined;
}

export interface CircuitBreakers {
  readonly default: CircuitBreakerThresholds;
  readonly high: CircuitBreakerThresholds;
}

/** envoy.config.cluster.v3.OutlierDetection with every default filled in. */
export interface OutlierDetection {
  readonly consecutive5xx: number;
  readonly interval: Millis;
  readonly baseEjectionTime: Millis;
  readonly maxEjectionTime: Millis;
  readonly maxEjectionTimeJitter: Millis;
  readonly maxEjectionPercent: number;
  readonly enforcingConsecutive5xx: number;
  readonly enforcingSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingLocalOriginSuccessRate: number;
  readonly failurePercentageThreshold: number;
  readonly enforcingFailurePercentage: number;
  readonly enforcingFailurePercentageLocalOrigin: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly successfulActiveHealthCheckUnejectHost: boolean;
  readonly alwaysEjectOneHost: boolean;
}

export interface CommonLbConfig {
  /** Percent, default 50. */
  readonly healthyPanicThreshold: number;
  readonly localityWeightedLbConfig: boolean;
  readonly zoneAwareLbConfig:
    | { readonly routingEnabled: number; readonly minClusterSize: number; readonly failTrafficOnPanic: boolean }
    | undefined;
  readonly ignoreNewHostsUntilFirstHc: boolean;
  readonly updateMergeWindow: Millis;
}

export interface TransportSocketMatch {
  readonly name: string;
  readonly match: JsonObject;
  readonly transportSocket: TransportSocket | undefined;
}

/** envoy.extensions.upstreams.http.v3.HttpProtocolOptions, the common parts. */
export interface UpstreamHttpProtocolOptions {
  readonly explicitHttpConfig: 'http1' | 'http2' | 'http3' | undefined;
  readonly useDownstreamProtocol: boolean;
  readonly autoConfig: boolean;
  readonly idleTimeout: Millis | undefined;
  readonly maxConnectionDuration: Millis | undefined;
  readonly maxStreamDuration: Millis | undefined;
  readonly maxRequestsPerConnection: number | undefined;
}

export type ClusterDiscovery =
  | { readonly type: 'EDS'; readonly edsServiceName: string | undefined }
  | {
      readonly type: 'LOGICAL_DNS';
      readonly dnsHost: string;
      readonly dnsPort: number;
      /** Cluster.dns_refresh_rate: the wait between resolutions after a success (default 5000 ms). */
      readonly dnsRefreshRate: Millis;
      /**
       * Cluster.dns_failure_refresh_rate: after a failed resolution, retry with exponential
       * backoff from baseInterval up to maxInterval (default 10 × base); when unset, failures
       * retry at dnsRefreshRate.
       */
      readonly dnsFailureRefreshRate: { readonly baseInterval: Millis; readonly maxInterval: Millis } | undefined;
      /** Cluster.respect_dns_ttl, parsed but not applied: the system resolver gives no TTLs. */
      readonly respectDnsTtl: boolean;
    }
  | { readonly type: 'STATIC'; readonly loadAssignment: EndpointsResource }
  | { readonly type: 'AGGREGATE'; readonly aggregateClusters: readonly string[] };

export interface ClusterCommon {
  readonly name: string;
  /** Supported policies in the order given; the first is the one to use. Empty for an AGGREGATE cluster. */
  readonly lbPolicy: readonly LbPolicyConfig[];
  readonly circuitBreakers: CircuitBreakers;
  readonly outlierDetection: OutlierDetection | undefined;
  readonly connectTimeout: Millis;
  readonly commonLbConfig: CommonLbConfig;
  readonly transportSocket: TransportSocket | undefined;
  readonly transportSocketMatches: readonly TransportSocketMatch[];
  readonly metadata: Metadata | undefined;
  /** 'self' when lrs_server is set (the only kind gRPC supports). */
  readonly lrsServer: 'self' | undefined;
  readonly maxRequestsPerConnection: number | undefined;
  readonly upstreamHttpProtocolOptions: UpstreamHttpProtocolOptions | undefined;
}

export type ClusterResource = ClusterCommon & ClusterDiscovery;

// ---------------------------------------------------------------- endpoints

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export interface Endpoint {
  /** The primary address first, then additional_addresses (gRFC A61). */
  readonly addresses: readonly SocketAddress[];
  readonly hostname: string;
  readonly healthStatus: HealthStatus;
  /** load_balancing_weight, default 1. */
  readonly weight: number;
  readonly metadata: Metadata | undefined;
}

export interface LocalityEndpoints {
  readonly locality: Locality;
  /** load_balancing_weight; 0 when absent (see endpoints.ts for how each consumer treats it). */
  readonly weight: number;
  readonly priority: number;
  readonly endpoints: readonly Endpoint[];
  readonly metadata: Metadata | undefined;
}

export interface DropOverload {
  readonly category: string;
  /** Drop probability in parts per million. */
  readonly ppm: number;
}

export interface EndpointsResource {
  readonly clusterName: string;
  /** priorities[p] = the localities of priority p; no gaps. */
  readonly priorities: readonly (readonly LocalityEndpoints[])[];
  readonly dropOverloads: readonly DropOverload[];
  /** Percent, default 140. */
  readonly overprovisioningFactor: number;
  readonly weightedPriorityHealth: boolean;
}
