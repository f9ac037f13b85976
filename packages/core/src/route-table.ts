// A RouteConfiguration compiled once into a table whose route() is cheap: virtual host
// by authority (vhost-match.ts), then the first route whose every matcher holds
// (route_components.proto RouteMatch; Envoy's RouteEntryImplBase::matchRoute), then the
// route's action turned into a RouteDecision. Regexes, header names, weights, header
// mutation chains and rewrites are all prepared here, never per request.
//
// Randomness: Envoy draws one random number per request (the stream id) and uses it
// for every runtime_fraction of the route list, for the weighted cluster pick and for
// mirror fractions, so those choices are correlated exactly as in Envoy. meshlet draws
// it from the injected Random, once, and only when the table has something random.
// gRPC requests follow gRFC A28 instead (as grpc-js-xds does): every runtime_fraction
// test and the weighted cluster pick draw a fresh, independent value.
import type {
  ForwardAction,
  FractionalPercent,
  PathMatcher,
  RequestMirrorPolicy,
  Route,
  RouteConfigurationResource,
  VirtualHost,
  WeightedClusterEntry,
} from '@meshlet/xds-client';
import { tracer } from '@meshlet/xds-client';
import { compileHeaderMutations, type CompiledHeaderOps } from './header-mutation.js';
import { compilePathRewrite, pathWithoutQuery, rewritePath, type CompiledPathRewrite } from './path-rewrite.js';
import type { Random } from './random.js';
import type { MeshRequest } from './request.js';
import type { ForwardDecision, NoRouteDecision, RouteDecision } from './route-decision.js';
import { asciiLower, compileHeaderMatcher, type RequestPredicate } from './route-header-match.js';
import { compileHostRewrite, type CompiledHostRewrite } from './route-host-rewrite.js';
import { compileQueryParameterMatcher, type PathPredicate } from './route-query-match.js';
import { redirectLocation } from './route-redirect.js';
import { compileRe2, fullMatch } from './route-regex.js';
import { compileDomainMatcher, type DomainMatcher } from './vhost-match.js';

export interface RouteTableOptions {
  /**
   * Match virtual host domains without the authority's port. Defaults to the route
   * configuration's ignore_port_in_host_matching; Envoy keeps the port otherwise (its
   * HCM strip_matching_host_port / strip_any_host_port are off by default).
   */
  readonly ignorePortInHostMatching?: boolean;
  /**
   * Index routes by their first path segment (default true; tables of fewer than 8
   * routes are scanned anyway). False scans every table; the result is the same.
   */
  readonly indexRoutes?: boolean;
}

export interface RouteTable {
  readonly name: string;
  readonly resource: RouteConfigurationResource;
  /** Route one request. Reads only; allocates the decision and little else. */
  route(req: MeshRequest, random: Random): RouteDecision;
  /** The virtual host an authority selects. */
  virtualHostFor(authority: string): VirtualHost | undefined;
}

const trace = tracer('route');

const DENOMINATOR = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** Envoy's ProtobufPercentHelper::evaluateFractionalPercent. */
export function fractionEnabled(f: FractionalPercent, randomValue: number): boolean {
  return randomValue % DENOMINATOR[f.denominator] < f.numerator;
}

/** One 53-bit random value (Envoy uses 64 bits; modulo the denominators the bias is nil). */
function drawRandomValue(random: Random): number {
  return (random.nextUint32() >>> 11) * 0x1_0000_0000 + random.nextUint32();
}

function startsWithIgnoreCase(s: string, lowerPrefix: string): boolean {
  if (s.length < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

/** The path predicate (Envoy's PrefixRouteEntryImpl, PathRouteEntryImpl, RegexRouteEntryImpl, PathSeparatedPrefixRouteEntryImpl). */
function compilePathMatcher(m: PathMatcher, caseSensitive: boolean): PathPredicate {
  switch (m.kind) {
    case 'prefix': {
      // The prefix is tested against the whole :path, query included, as Envoy does.
      const prefix = m.value;
      if (prefix === '') return () => true;
      if (caseSensitive) return (p) => p.startsWith(prefix);
      const lower = asciiLower(prefix);
      return (p) => startsWithIgnoreCase(p, lower);
    }
    case 'path': {
      // The query (and fragment) is never part of the match.
      const exact = m.value;
      if (/[?#]/.test(exact)) return () => false;
      const n = exact.length;
      const endsHere = (p: string): boolean => {
        if (p.length === n) return true;
        const next = p.charCodeAt(n);
        return next === 63 /* ? */ || next === 35 /* # */;
      };
      if (caseSensitive) return (p) => p.startsWith(exact) && endsHere(p);
      const lower = asciiLower(exact);
      return (p) => startsWithIgnoreCase(p, lower) && endsHere(p);
    }
    case 'safe_regex': {
      // A full match of the path without its query; case_sensitive does not apply.
      const re = compileRe2(m.regex);
      return (p) => fullMatch(re, pathWithoutQuery(p));
    }
    case 'path_separated_prefix': {
      const prefix = m.value;
      const lower = caseSensitive ? prefix : asciiLower(prefix);
      return (p) => {
        if (!(caseSensitive ? p.startsWith(prefix) : startsWithIgnoreCase(p, lower))) return false;
        if (p.length === prefix.length) return true;
        const next = p.charCodeAt(prefix.length);
        // The prefix must end at a path segment: "/", or the end of the path (a query or fragment).
        return next === 47 /* / */ || next === 63 /* ? */ || next === 35 /* # */;
      };
    }
  }
}

interface CompiledWeightedCluster {
  readonly entry: WeightedClusterEntry;
  /** Exclusive upper bound of its interval in [0, total). */
  readonly cumulative: number;
  readonly requestHeaderOps: readonly CompiledHeaderOps[];
  readonly responseHeaderOps: readonly CompiledHeaderOps[];
}

interface CompiledRoute {
  readonly route: Route;
  readonly vhost: VirtualHost;
  readonly matchPath: PathPredicate;
  readonly grpcOnly: boolean;
  readonly runtimeFraction: FractionalPercent | undefined;
  /** The action reads the random value (a weighted cluster pick). */
  readonly usesRandom: boolean;
  readonly headers: readonly RequestPredicate[];
  readonly query: readonly PathPredicate[];
  readonly decide: (req: MeshRequest, randomValue: number) => RouteDecision;
}

interface CompiledVirtualHost {
  readonly vhost: VirtualHost;
  readonly routes: readonly CompiledRoute[];
  readonly noRoute: NoRouteDecision;
  readonly index: TrieNode | undefined;
}

// A segment trie keeps route() fast on large tables without changing what "first
// match wins" means. Most routes require the path to begin with a literal: a prefix,
// an exact path or a path-separated prefix. The complete path segments of that literal
// ("/api", "/v1" for the prefix "/api/v1/x") must then be the request path's first
// segments, so the route is filed under that segment sequence in the trie. Routes
// with no complete segment (prefix "/" or "/ap", regexes, case-insensitive routes)
// sit at the root. route() walks the request's segments down the trie and tests the
// routes of every node it passes, merged back into configuration order: exactly the
// routes that could match, in order.

interface TrieNode {
  /** Indexes (ascending) of the routes filed at this node. */
  routes: Int32Array;
  children: Map<string, TrieNode> | undefined;
}

const INDEX_MIN_ROUTES = 8;
const MAX_INDEX_DEPTH = 8;

/** End of the path segment starting at `start`: the next "/", "?" or "#" after its first character. */
function segmentEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) return i;
  }
  return s.length;
}

/** The path segments every request this matcher accepts starts with. */
function requiredSegments(m: PathMatcher, caseSensitive: boolean): string[] {
  const out: string[] = [];
  if (!caseSensitive || m.kind === 'safe_regex') return out;
  const v = m.value;
  // An exact path and a path-separated prefix end at a segment boundary; a plain
  // prefix's last segment is complete only when a separator follows it.
  const endIsBoundary = m.kind !== 'prefix';
  let start = 0;
  while (start < v.length && out.length < MAX_INDEX_DEPTH) {
    const end = segmentEnd(v, start);
    if (end === v.length && !endIsBoundary) break;
    out.push(v.slice(start, end));
    if (end === v.length || v.charCodeAt(end) !== 47) break; // a query or fragment follows
    start = end;
  }
  return out;
}

function buildIndex(routes: readonly CompiledRoute[], enabled: boolean): TrieNode | undefined {
  if (!enabled || routes.length < INDEX_MIN_ROUTES) return undefined;
  interface Building {
    routes: number[];
    children: Map<string, Building> | undefined;
  }
  const root: Building = { routes: [], children: undefined };
  routes.forEach((r, i) => {
    let node = root;
    for (const seg of requiredSegments(r.route.match.path, r.route.match.caseSensitive)) {
      node.children ??= new Map();
      let next = node.children.get(seg);
      if (!next) node.children.set(seg, (next = { routes: [], children: undefined }));
      node = next;
    }
    node.routes.push(i);
  });
  const freeze = (b: Building): TrieNode => ({
    routes: Int32Array.from(b.routes),
    children: b.children && new Map([...b.children].map(([k, v]) => [k, freeze(v)])),
  });
  return freeze(root);
}

const NO_VHOST: NoRouteDecision = Object.freeze({ kind: 'no_route', status: 404, flag: 'NR', virtualHost: undefined });

/** A SimpleAtoi<uint64> value modulo `total`, or undefined when the text is not one. */
function uint64Mod(text: string, total: number): number | undefined {
  const m = /^[ \t\n\v\f\r]*\+?(\d+)[ \t\n\v\f\r]*$/.exec(text);
  if (!m) return undefined;
  const digits = m[1]!;
  if (digits.length <= 15) return Number(digits) % total;
  const b = BigInt(digits);
  if (b >= 2n ** 64n) return undefined;
  return Number(b % BigInt(total));
}

function pickWeighted(clusters: readonly CompiledWeightedCluster[], selected: number): CompiledWeightedCluster {
  // Intervals [0, w1), [w1, w1 + w2), ...; binary search over the cumulative bounds.
  let lo = 0;
  let hi = clusters.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (selected < clusters[mid]!.cumulative) hi = mid;
    else lo = mid + 1;
  }
  return clusters[lo]!;
}

/** Order levels for mutation: most specific first unless most_specific_header_mutations_wins. */
function chain(levels: readonly (CompiledHeaderOps | undefined)[], mostSpecificWins: boolean): CompiledHeaderOps[] {
  // `levels` comes most specific first; Envoy applies them in that order by default,
  // so the outer levels, applied later, win; the flag reverses it.
  const present = levels.filter((l): l is CompiledHeaderOps => l !== undefined);
  return mostSpecificWins ? present.reverse() : present;
}

class Compiler {
  readonly rcOps;
  needsRandom = false;
  constructor(
    readonly rc: RouteConfigurationResource,
    readonly indexRoutes: boolean,
  ) {
    this.rcOps = compileHeaderMutations(rc.headerMutations);
  }

  virtualHost(vh: VirtualHost): CompiledVirtualHost {
    const vhOps = compileHeaderMutations(vh.headerMutations);
    const routes = vh.routes.map((r) => this.route(r, vh, vhOps));
    return {
      vhost: vh,
      routes,
      noRoute: Object.freeze({ kind: 'no_route', status: 404, flag: 'NR', virtualHost: vh }),
      index: buildIndex(routes, this.indexRoutes),
    };
  }

  route(r: Route, vh: VirtualHost, vhOps: ReturnType<typeof compileHeaderMutations>): CompiledRoute {
    const rc = this.rc;
    const msw = rc.mostSpecificHeaderMutationsWins;
    const routeOps = compileHeaderMutations(r.headerMutations);
    const requestHeaderOps = chain([routeOps.request, vhOps.request, this.rcOps.request], msw);
    const responseHeaderOps = chain([routeOps.response, vhOps.response, this.rcOps.response], msw);
    const m = r.match;
    if (m.runtimeFraction !== undefined) this.needsRandom = true;
    const action = r.action;
    let decide: CompiledRoute['decide'];
    switch (action.kind) {
      case 'direct_response': {
        const addLocation = action.status === 201 || (action.status >= 300 && action.status < 400);
        decide = (req, randomValue) => ({
          kind: 'direct_response',
          route: r,
          virtualHost: vh,
          request: req,
          randomValue,
          responseHeaderOps,
          action,
          status: action.status,
          body: action.body,
          location: addLocation ? redirectLocation(undefined, req, req.path) : undefined,
        });
        break;
      }
      case 'redirect': {
        const rewrite = compilePathRewrite(m.path, action.prefixRewrite, action.regexRewrite);
        decide = (req, randomValue) => ({
          kind: 'redirect',
          route: r,
          virtualHost: vh,
          request: req,
          randomValue,
          responseHeaderOps,
          action,
          status: action.responseCode,
          location: redirectLocation(action, req, rewritePath(rewrite, req.path) ?? req.path),
        });
        break;
      }
      case 'non_forwarding':
        decide = (req, randomValue) => ({
          kind: 'non_forwarding',
          route: r,
          virtualHost: vh,
          request: req,
          randomValue,
          responseHeaderOps,
        });
        break;
      case 'route':
        decide = this.forward(r, action, vh, requestHeaderOps, responseHeaderOps);
        break;
    }
    return {
      route: r,
      vhost: vh,
      matchPath: compilePathMatcher(m.path, m.caseSensitive),
      grpcOnly: m.grpc,
      runtimeFraction: m.runtimeFraction,
      usesRandom: action.kind === 'route' && action.cluster.kind === 'weighted_clusters',
      headers: m.headers.map(compileHeaderMatcher),
      query: m.queryParameters.map(compileQueryParameterMatcher),
      decide,
    };
  }

  forward(
    r: Route,
    action: ForwardAction,
    vh: VirtualHost,
    requestHeaderOps: readonly CompiledHeaderOps[],
    responseHeaderOps: readonly CompiledHeaderOps[],
  ): CompiledRoute['decide'] {
    const mirrorPolicies: readonly RequestMirrorPolicy[] =
      action.requestMirrorPolicies.length > 0
        ? action.requestMirrorPolicies
        : vh.requestMirrorPolicies.length > 0
          ? vh.requestMirrorPolicies
          : this.rc.requestMirrorPolicies;
    if (mirrorPolicies.some((p) => p.runtimeFraction !== undefined)) this.needsRandom = true;
    const pathRewrite: CompiledPathRewrite | undefined = compilePathRewrite(
      r.match.path,
      action.prefixRewrite,
      action.regexRewrite,
    );
    const hostRewrite: CompiledHostRewrite | undefined = compileHostRewrite(action);
    const base: ForwardBase = {
      route: r,
      virtualHost: vh,
      action,
      retryPolicy: action.retryPolicy ?? vh.retryPolicy,
      hashPolicies: action.hashPolicies,
      timeout: action.timeout,
      autoHostRewrite: action.autoHostRewrite,
      appendXForwardedHost: action.appendXForwardedHost,
      mirrorPolicies,
      pathRewrite,
      hostRewrite,
    };
    const spec = action.cluster;
    const notFound = { status: action.clusterNotFoundResponseCode, flag: 'NC' } as const;
    switch (spec.kind) {
      case 'cluster': {
        const cluster = spec.name;
        return (req, randomValue) =>
          forwardDecision(base, req, randomValue, cluster, undefined, undefined, undefined, requestHeaderOps, responseHeaderOps);
      }
      case 'cluster_header': {
        const header = spec.header;
        return (req, randomValue) => {
          // Envoy takes the header's first value; several values reach us joined with ",".
          const name = req.headers.get(header);
          const found = name !== undefined && name !== '';
          return forwardDecision(
            base,
            req,
            randomValue,
            found ? name : undefined,
            found ? undefined : notFound,
            undefined,
            undefined,
            requestHeaderOps,
            responseHeaderOps,
          );
        };
      }
      case 'cluster_specifier_plugin': {
        const plugin = spec.name;
        return (req, randomValue) =>
          forwardDecision(base, req, randomValue, undefined, undefined, plugin, undefined, requestHeaderOps, responseHeaderOps);
      }
      case 'weighted_clusters': {
        this.needsRandom = true;
        let cumulative = 0;
        const clusters: CompiledWeightedCluster[] = [];
        for (const entry of spec.clusters) {
          cumulative += entry.weight;
          const ops = compileHeaderMutations(entry.headerMutations);
          // Envoy's WeightedClusterEntry applies its own mutations before the route's
          // chain, whatever most_specific_header_mutations_wins says.
          clusters.push({
            entry,
            cumulative,
            requestHeaderOps: ops.request ? [ops.request, ...requestHeaderOps] : requestHeaderOps,
            responseHeaderOps: ops.response ? [ops.response, ...responseHeaderOps] : responseHeaderOps,
          });
        }
        const total = spec.totalWeight;
        const headerName = spec.headerName;
        return (req, randomValue) => {
          let selected: number | undefined;
          if (headerName !== undefined) {
            // header_name: a single numeric value replaces the random value.
            const v = req.headers.get(headerName);
            if (v !== undefined) selected = uint64Mod(v, total);
          }
          const picked = pickWeighted(clusters, selected ?? randomValue % total);
          return forwardDecision(
            base,
            req,
            randomValue,
            picked.entry.name,
            undefined,
            undefined,
            picked.entry,
            picked.requestHeaderOps,
            picked.responseHeaderOps,
          );
        };
      }
    }
  }
}

type ForwardBase = Pick<
  ForwardDecision,
  | 'route'
  | 'virtualHost'
  | 'action'
  | 'retryPolicy'
  | 'hashPolicies'
  | 'timeout'
  | 'autoHostRewrite'
  | 'appendXForwardedHost'
  | 'mirrorPolicies'
  | 'pathRewrite'
  | 'hostRewrite'
>;

/** Every forward decision is built here, so they all share one object shape. */
function forwardDecision(
  base: ForwardBase,
  request: MeshRequest,
  randomValue: number,
  cluster: string | undefined,
  clusterNotFound: ForwardDecision['clusterNotFound'],
  clusterSpecifierPlugin: string | undefined,
  weightedCluster: WeightedClusterEntry | undefined,
  requestHeaderOps: readonly CompiledHeaderOps[],
  responseHeaderOps: readonly CompiledHeaderOps[],
): ForwardDecision {
  return {
    kind: 'forward',
    route: base.route,
    virtualHost: base.virtualHost,
    request,
    randomValue,
    responseHeaderOps,
    action: base.action,
    cluster,
    clusterNotFound,
    clusterSpecifierPlugin,
    weightedCluster,
    retryPolicy: base.retryPolicy,
    hashPolicies: base.hashPolicies,
    timeout: base.timeout,
    autoHostRewrite: base.autoHostRewrite,
    appendXForwardedHost: base.appendXForwardedHost,
    mirrorPolicies: base.mirrorPolicies,
    requestHeaderOps,
    pathRewrite: base.pathRewrite,
    hostRewrite: base.hostRewrite,
    clusterHostRewrite: weightedCluster?.hostRewriteLiteral || undefined,
  };
}

class CompiledRouteTable implements RouteTable {
  readonly name: string;
  constructor(
    readonly resource: RouteConfigurationResource,
    private readonly domains: DomainMatcher<CompiledVirtualHost>,
    private readonly needsRandom: boolean,
  ) {
    this.name = resource.name;
  }

  virtualHostFor(authority: string): VirtualHost | undefined {
    return this.domains.match(authority)?.vhost;
  }

  route(req: MeshRequest, random: Random): RouteDecision {
    const vh = this.domains.match(req.authority);
    if (vh === undefined) return NO_VHOST;
    const randomValue = this.needsRandom ? drawRandomValue(random) : 0;
    const path = req.path;
    const routes = vh.routes;
    const index = vh.index;
    if (index === undefined) {
      for (let i = 0; i < routes.length; i++) {
        const r = routes[i]!;
        if (routeMatches(r, req, path, randomValue, random)) return decide(r, req, randomValue, random);
      }
      return vh.noRoute;
    }
    // The trie nodes along the request's path segments; their route lists are merged
    // by index so routes are tried in configuration order.
    const lists: Int32Array[] = [index.routes];
    let node: TrieNode | undefined = index;
    let start = 0;
    while (node.children !== undefined && start < path.length) {
      const end = segmentEnd(path, start);
      node = node.children.get(path.slice(start, end));
      if (node === undefined) break;
      lists.push(node.routes);
      if (end === path.length || path.charCodeAt(end) !== 47) break;
      start = end;
    }
    if (lists.length === 1) {
      const only = lists[0]!;
      for (let k = 0; k < only.length; k++) {
        const r = routes[only[k]!]!;
        if (routeMatches(r, req, path, randomValue, random)) return decide(r, req, randomValue, random);
      }
      return vh.noRoute;
    }
    const heads = new Int32Array(lists.length);
    for (;;) {
      let best = -1;
      let bestIndex = 0x7fffffff;
      for (let k = 0; k < lists.length; k++) {
        const list = lists[k]!;
        const h = heads[k]!;
        if (h < list.length && list[h]! < bestIndex) {
          bestIndex = list[h]!;
          best = k;
        }
      }
      if (best < 0) return vh.noRoute;
      heads[best]!++;
      const r = routes[bestIndex]!;
      if (routeMatches(r, req, path, randomValue, random)) return decide(r, req, randomValue, random);
    }
  }
}

function decide(r: CompiledRoute, req: MeshRequest, randomValue: number, random: Random): RouteDecision {
  return r.decide(req, req.grpc === true && r.usesRandom ? drawRandomValue(random) : randomValue);
}

function routeMatches(r: CompiledRoute, req: MeshRequest, path: string, randomValue: number, random: Random): boolean {
  if (!r.matchPath(path)) return false;
  if (
    r.runtimeFraction !== undefined &&
    !fractionEnabled(r.runtimeFraction, req.grpc === true ? drawRandomValue(random) : randomValue)
  ) {
    return false;
  }
  if (r.grpcOnly && req.grpc !== true) return false;
  for (let j = 0; j < r.headers.length; j++) if (!r.headers[j]!(req)) return false;
  for (let j = 0; j < r.query.length; j++) if (!r.query[j]!(path)) return false;
  return true;
}

/** Compile a route configuration; everything expensive happens here. */
export function compileRouteTable(rc: RouteConfigurationResource, options: RouteTableOptions = {}): RouteTable {
  const started = performance.now();
  const compiler = new Compiler(rc, options.indexRoutes !== false);
  const vhosts = rc.virtualHosts.map((vh) => compiler.virtualHost(vh));
  trace(() => {
    const routes = vhosts.reduce((n, v) => n + v.routes.length, 0);
    const indexed = vhosts.filter((v) => v.index !== undefined).length;
    return `compiled ${rc.name}: ${vhosts.length} virtual hosts, ${routes} routes (${indexed} hosts indexed) in ${(performance.now() - started).toFixed(1)} ms`;
  });
  const domains = compileDomainMatcher(
    vhosts.map((c) => ({ value: c, domains: c.vhost.domains })),
    { ignorePort: options.ignorePortInHostMatching ?? rc.ignorePortInHostMatching },
  );
  return new CompiledRouteTable(rc, domains, compiler.needsRandom);
}
