// What routing decided for one request: a tagged union, like a grpc-js pick result.
// The HTTP and gRPC layers switch on `kind`; the pure functions in route-apply.ts and
// route-mirror.ts read the rest.
import type {
  DirectResponseAction,
  ForwardAction,
  HashPolicy,
  Millis,
  RedirectAction,
  RequestMirrorPolicy,
  RetryPolicy,
  Route,
  VirtualHost,
  WeightedClusterEntry,
} from '@meshlet/xds-client';
import type { CompiledHeaderOps } from './header-mutation.js';
import type { CompiledPathRewrite } from './path-rewrite.js';
import type { CompiledHostRewrite } from './route-host-rewrite.js';
import type { MeshRequest } from './request.js';

interface Routed {
  readonly route: Route;
  readonly virtualHost: VirtualHost;
  readonly request: MeshRequest;
  /**
   * The request's one random value (Envoy's stream id): runtime_fraction matching,
   * the weighted cluster pick and mirror fractions all read it, as in Envoy.
   */
  readonly randomValue: number;
  /** Response header mutations in the order to apply them (see header-mutation.ts). */
  readonly responseHeaderOps: readonly CompiledHeaderOps[];
}

export interface ForwardDecision extends Routed {
  readonly kind: 'forward';
  readonly action: ForwardAction;
  /**
   * The cluster to send to; undefined when cluster_header named none (see
   * clusterNotFound) or when a cluster specifier plugin must choose.
   */
  readonly cluster: string | undefined;
  /** Set when cluster_header is absent or empty: answer `status` with response flag NC. */
  readonly clusterNotFound: { readonly status: 503 | 404 | 500; readonly flag: 'NC' } | undefined;
  /** The plugin (gRFC A62) to ask for the cluster, for a cluster_specifier_plugin route. */
  readonly clusterSpecifierPlugin: string | undefined;
  /** The weighted cluster entry that was picked, for weighted_clusters routes. */
  readonly weightedCluster: WeightedClusterEntry | undefined;
  /** The route's retry policy, else the virtual host's. */
  readonly retryPolicy: RetryPolicy | undefined;
  readonly hashPolicies: readonly HashPolicy[];
  /** The route's timeout as configured; undefined = Envoy's 15 s default for HTTP (0 disables). */
  readonly timeout: Millis | undefined;
  /** The host must become the picked endpoint's hostname (auto_host_rewrite). */
  readonly autoHostRewrite: boolean;
  readonly appendXForwardedHost: boolean;
  /** The mirror policies in force: the route's, else the virtual host's, else the route configuration's. */
  readonly mirrorPolicies: readonly RequestMirrorPolicy[];
  readonly requestHeaderOps: readonly CompiledHeaderOps[];
  readonly pathRewrite: CompiledPathRewrite | undefined;
  readonly hostRewrite: CompiledHostRewrite | undefined;
  /** The weighted cluster's host_rewrite_literal, applied before the route's host rewrite. */
  readonly clusterHostRewrite: string | undefined;
}

export interface DirectResponseDecision extends Routed {
  readonly kind: 'direct_response';
  readonly action: DirectResponseAction;
  readonly status: number;
  readonly body: string | undefined;
  /** For 201 and 3xx Envoy adds a Location: the request's own URL. */
  readonly location: string | undefined;
}

export interface RedirectDecision extends Routed {
  readonly kind: 'redirect';
  readonly action: RedirectAction;
  readonly status: 301 | 302 | 303 | 307 | 308;
  readonly location: string;
}

export interface NonForwardingDecision extends Routed {
  readonly kind: 'non_forwarding';
}

/** No virtual host or no route matched: 404 with response flag NR (Envoy's router). */
export interface NoRouteDecision {
  readonly kind: 'no_route';
  readonly status: 404;
  readonly flag: 'NR';
  /** The virtual host that was selected, if any. */
  readonly virtualHost: VirtualHost | undefined;
}

export type RouteDecision =
  | ForwardDecision
  | DirectResponseDecision
  | RedirectDecision
  | NonForwardingDecision
  | NoRouteDecision;
