// Applying a routing decision to the request that goes upstream and to the response
// that goes back: pure functions over the decision and a MutableHeaders the HTTP or
// gRPC layer adapts. Envoy's order for a forwarded request
// (RouteEntryImplBase::finalizeRequestHeaders):
//   1. header mutations (weighted cluster, then the levels in the table's order);
//   2. host rewrite (weighted cluster literal, then the route's; x-forwarded-host);
//   3. path rewrite (prefix_rewrite or regex_rewrite).
// finalizeForwardRequest does the three; the pieces are exported for callers that
// need only one.
import {
  applyHeaderOpsChain,
  type HeaderFormatContext,
  type MutableHeaders,
} from './header-mutation.js';
import { rewritePath } from './path-rewrite.js';
import type { DirectResponseDecision, ForwardDecision, NonForwardingDecision, RedirectDecision } from './route-decision.js';
import { appendForwardedHost, routeHost } from './route-host-rewrite.js';

type RoutedDecision = ForwardDecision | DirectResponseDecision | RedirectDecision | NonForwardingDecision;

function context(decision: RoutedDecision, upstreamRemoteAddress: string | undefined): HeaderFormatContext {
  return upstreamRemoteAddress === undefined
    ? { request: decision.request }
    : { request: decision.request, upstreamRemoteAddress };
}

/** Request header mutations of a forward decision, in Envoy's order. */
export function applyRequestHeaderMutations(
  decision: ForwardDecision,
  headers: MutableHeaders,
  options: { upstreamRemoteAddress?: string } = {},
): void {
  if (decision.requestHeaderOps.length === 0) return;
  applyHeaderOpsChain(decision.requestHeaderOps, headers, context(decision, options.upstreamRemoteAddress));
}

/** Response header mutations of any decision that matched a route (direct responses and redirects too). */
export function applyResponseHeaderMutations(
  decision: RoutedDecision,
  headers: MutableHeaders,
  options: { upstreamRemoteAddress?: string } = {},
): void {
  if (decision.responseHeaderOps.length === 0) return;
  applyHeaderOpsChain(decision.responseHeaderOps, headers, context(decision, options.upstreamRemoteAddress));
}

/** The upstream path after prefix_rewrite / regex_rewrite, or undefined when unchanged. */
export function rewriteForwardPath(decision: ForwardDecision, path: string = decision.request.path): string | undefined {
  return rewritePath(decision.pathRewrite, path);
}

export interface ForwardRequestTarget {
  /** The :path to send. */
  readonly path: string;
  /** The :authority / Host to send (before auto_host_rewrite, which the caller applies). */
  readonly authority: string;
}

export interface FinalizeOptions {
  /** For %UPSTREAM_REMOTE_ADDRESS% in header values. */
  readonly upstreamRemoteAddress?: string;
  /**
   * Record the original path in x-envoy-original-path when the path is rewritten, as
   * Envoy's router does unless its suppress_envoy_headers is set. Default true.
   */
  readonly insertEnvoyOriginalPath?: boolean;
}

/**
 * Whether finalizeForwardRequest would change no header and keep the path (no header mutations,
 * no host or path rewrite: most routes). Its target is then the request's path, and the
 * weighted cluster's host rewrite or else the request's authority; a caller can skip building
 * the MutableHeaders it takes.
 */
export function forwardsUnchanged(decision: ForwardDecision): boolean {
  return decision.requestHeaderOps.length === 0 && decision.hostRewrite === undefined && decision.pathRewrite === undefined;
}

/**
 * Steps 1 to 3 above. `headers` holds the request's ordinary headers (no pseudo
 * headers); x-forwarded-host and x-envoy-original-path are updated in it.
 */
export function finalizeForwardRequest(
  decision: ForwardDecision,
  headers: MutableHeaders,
  options: FinalizeOptions = {},
): ForwardRequestTarget {
  applyRequestHeaderMutations(decision, headers, options);
  const req = decision.request;
  let authority = req.authority;
  if (decision.clusterHostRewrite !== undefined) authority = decision.clusterHostRewrite;
  const host = routeHost(decision.hostRewrite, req.path, headers);
  if (host !== undefined) {
    if (decision.appendXForwardedHost && authority !== '') {
      const xfh = appendForwardedHost(headers.get('x-forwarded-host'), authority);
      if (xfh !== undefined) headers.set('x-forwarded-host', xfh);
    }
    authority = host;
  }
  const rewritten = rewritePath(decision.pathRewrite, req.path);
  if (rewritten !== undefined && options.insertEnvoyOriginalPath !== false) {
    headers.set('x-envoy-original-path', req.path);
  }
  return { path: rewritten ?? req.path, authority };
}
