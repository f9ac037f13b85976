// The request hash for ring hash and Maglev, from a route's hash_policy list
// (route_components.proto RouteAction.HashPolicy; Envoy's HashPolicyImpl):
// - each policy that yields a value contributes xxHash64(value, seed 0), folded in as
//   hash = rotl64(hash, 1) XOR h, so that two equal policies do not cancel out;
// - a `terminal` policy that has produced a hash (its own or an earlier one's) ends
//   the list;
// - header: the header's value with regex_rewrite applied (RE2::GlobalReplace, as
//   route-regex.ts implements it for routes); pseudo-headers (:authority, :path,
//   :method, :scheme) read the request line. Envoy hashes each value of a repeated
//   header, sorted; the RequestHeaders view joins them with "," so they hash as one
//   value here.
// - cookie: the named cookie; when absent and the policy has a ttl, Envoy's router
//   generates one; here `addCookie` (given by the HTTP layer, which sets the
//   Set-Cookie header) returns the value to hash. Without it nothing is hashed.
// - connection_properties.source_ip: the caller's IP address as a string.
// - query_parameter: the first value of the parameter in the path, not URL-decoded
//   (as Envoy's parseQueryString).
// - filter_state: Envoy filter state does not exist here; the policy yields nothing.
// No policy yielding a value gives undefined: the load balancer then picks at random.
import type { HashPolicy, Millis } from '@meshlet/xds-client';
import type { MeshRequest } from './request.js';
import { compileRegexRewrite, replaceAll } from './route-regex.js';
import { joinHash, xxhash64Into } from './xxhash.js';

export interface HashOptions {
  /**
   * Called for a cookie policy with a ttl whose cookie the request lacks: set the
   * cookie on the response and return its value (Envoy's router generates it).
   */
  readonly addCookie?: (name: string, path: string, ttl: Millis) => string;
}

/** The hash policies of a route, compiled once. */
export type RequestHasher = (req: MeshRequest, options?: HashOptions) => bigint | undefined;

type ValueOf = (req: MeshRequest, options: HashOptions | undefined) => string | undefined;

/** Compile a hash_policy list (RE2 patterns included) into a function of the request. */
export function compileHashPolicies(policies: readonly HashPolicy[]): RequestHasher {
  if (policies.length === 0) return () => undefined;
  const steps: { readonly value: ValueOf; readonly terminal: boolean }[] = policies.map((p) => ({
    value: compileOne(p),
    terminal: p.terminal,
  }));
  // The hash is combined in 32-bit halves and made a bigint once, at the end.
  const h = new Uint32Array(2);
  return (req, options) => {
    let found = false;
    let hi = 0;
    let lo = 0;
    for (const step of steps) {
      const v = step.value(req, options);
      if (v !== undefined) {
        xxhash64Into(v, 0, h);
        if (found) {
          // rotl64(hash, 1) XOR h
          const rh = ((hi << 1) | (lo >>> 31)) >>> 0;
          const rl = ((lo << 1) | (hi >>> 31)) >>> 0;
          hi = (rh ^ h[0]!) >>> 0;
          lo = (rl ^ h[1]!) >>> 0;
        } else {
          hi = h[0]!;
          lo = h[1]!;
          found = true;
        }
      }
      if (step.terminal && found) break;
    }
    return found ? joinHash(hi, lo) : undefined;
  };
}

const compiled = new WeakMap<readonly HashPolicy[], RequestHasher>();

/**
 * The request hash under `policies`, or undefined when none applies. Compiles the
 * list on first use and caches it by identity; a hot path should keep the result
 * of compileHashPolicies instead.
 */
export function computeRequestHash(policies: readonly HashPolicy[], req: MeshRequest, options?: HashOptions): bigint | undefined {
  let hasher = compiled.get(policies);
  if (!hasher) compiled.set(policies, (hasher = compileHashPolicies(policies)));
  return hasher(req, options);
}

function compileOne(p: HashPolicy): ValueOf {
  switch (p.kind) {
    case 'header': {
      const read = headerReader(p.name.toLowerCase());
      if (!p.regexRewrite) return read;
      const rewrite = compileRegexRewrite(p.regexRewrite);
      return (req) => {
        const v = read(req);
        return v === undefined ? undefined : replaceAll(rewrite, v);
      };
    }
    case 'cookie': {
      const { name, ttl, path } = p;
      return (req, options) => {
        const v = cookieValue(req.headers.get('cookie'), name);
        if (v !== undefined && v !== '') return v;
        if (ttl !== undefined && options?.addCookie) return options.addCookie(name, path, ttl);
        return undefined;
      };
    }
    case 'connection_properties':
      return p.sourceIp ? (req) => (req.sourceIp ? req.sourceIp : undefined) : () => undefined;
    case 'query_parameter': {
      const name = p.name;
      return (req) => queryValue(req.path, name);
    }
    case 'filter_state':
      return () => undefined;
  }
}

function headerReader(name: string): (req: MeshRequest) => string | undefined {
  switch (name) {
    case ':authority':
      return (req) => req.authority;
    case ':path':
      return (req) => req.path;
    case ':method':
      return (req) => req.method;
    case ':scheme':
      return (req) => req.scheme;
    default:
      return (req) => req.headers.get(name);
  }
}

/**
 * The value of cookie `name` in a Cookie header (Envoy's parseCookieValue): pairs
 * split on ";" (and ",", which joins repeated Cookie headers here and cannot occur
 * in a cookie value), leading spaces trimmed, one pair of surrounding quotes removed.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let start = 0;
  while (start <= header.length) {
    let end = start;
    while (end < header.length && header[end] !== ';' && header[end] !== ',') end++;
    let s = start;
    while (s < end && header[s] === ' ') s++;
    const eq = header.indexOf('=', s);
    if (eq !== -1 && eq < end && header.slice(s, eq) === name) {
      let v = header.slice(eq + 1, end);
      if (v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"') v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}

/** The first value of query parameter `name` in a path, raw (Envoy's parseQueryString). */
export function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q === -1) return undefined;
  let end = path.indexOf('#', q);
  if (end === -1) end = path.length;
  let start = q + 1;
  while (start < end) {
    let amp = path.indexOf('&', start);
    if (amp === -1 || amp > end) amp = end;
    const eq = path.indexOf('=', start);
    if (eq !== -1 && eq < amp) {
      if (path.slice(start, eq) === name) return path.slice(eq + 1, amp);
    } else if (path.slice(start, amp) === name) {
      return '';
    }
    start = amp + 1;
  }
  return undefined;
}
