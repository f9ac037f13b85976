// Virtual host selection by authority, compiled once per route configuration.
//
// Envoy (route_components.proto, VirtualHost.domains) and gRFC A28 agree on the order:
// an exact domain, then the longest suffix wildcard (`*.foo.com`, `*-bar.foo.com`), then
// the longest prefix wildcard (`foo.*`), then `*`. A wildcard never matches an empty
// string, so `*.foo.com` does not match `.foo.com`. Hosts compare case-insensitively.
// Envoy matches the whole Host including any port unless the route configuration sets
// `ignore_port_in_host_matching` (or the HCM strips the port), so the port is kept here
// unless the caller asks otherwise; Istio lists both `host` and `host:port` domains.

export interface DomainMatcher<T> {
  /** The value whose domains match `authority`, or undefined. */
  match(authority: string): T | undefined;
}

interface WildcardTable<T> {
  /** distinct pattern lengths, longest first */
  lengths: number[];
  byLength: Map<number, Map<string, T>>;
}

function addWildcard<T>(table: WildcardTable<T>, key: string, value: T): void {
  let map = table.byLength.get(key.length);
  if (!map) {
    map = new Map();
    table.byLength.set(key.length, map);
    table.lengths.push(key.length);
  }
  if (!map.has(key)) map.set(key, value);
}

/** Strip a trailing `:port` from a host, leaving IPv6 literals (`[::1]`) intact. */
export function stripPort(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end >= 0 ? authority.slice(0, end + 1) : authority;
  }
  const colon = authority.lastIndexOf(':');
  if (colon < 0 || authority.indexOf(':') !== colon) return authority;
  return /^\d+$/.test(authority.slice(colon + 1)) ? authority.slice(0, colon) : authority;
}

/**
 * Compile `entries` (each value with its domains, in configuration order) into a
 * matcher. The first value to claim a domain keeps it (the xDS client NACKs route
 * configurations with duplicate domains, so this only guards against misuse).
 */
export function compileDomainMatcher<T>(
  entries: ReadonlyArray<{ value: T; domains: readonly string[] }>,
  options: { ignorePort?: boolean } = {},
): DomainMatcher<T> {
  const exact = new Map<string, T>();
  const suffixes: WildcardTable<T> = { lengths: [], byLength: new Map() };
  const prefixes: WildcardTable<T> = { lengths: [], byLength: new Map() };
  let star: T | undefined;
  for (const { value, domains } of entries) {
    for (const raw of domains) {
      const domain = raw.toLowerCase();
      if (domain === '*') {
        if (star === undefined) star = value;
      } else if (domain.startsWith('*')) {
        addWildcard(suffixes, domain.slice(1), value);
      } else if (domain.endsWith('*')) {
        addWildcard(prefixes, domain.slice(0, -1), value);
      } else if (!exact.has(domain)) {
        exact.set(domain, value);
      }
    }
  }
  suffixes.lengths.sort((a, b) => b - a);
  prefixes.lengths.sort((a, b) => b - a);
  const ignorePort = options.ignorePort === true;

  // The last authority asked about and its answer: a channel (gRPC) or a client (HTTP) asks
  // about the same authority call after call, and the table never changes once built.
  let lastAuthority: string | undefined;
  let lastMatch: T | undefined;
  const lookup = (authority: string): T | undefined => {
    let host = authority.toLowerCase();
    if (ignorePort) host = stripPort(host);
    const hit = exact.get(host);
    if (hit !== undefined) return hit;
    // Wildcards must leave at least one character of the host unmatched.
    for (const len of suffixes.lengths) {
      if (len >= host.length) continue;
      const v = suffixes.byLength.get(len)!.get(host.slice(host.length - len));
      if (v !== undefined) return v;
    }
    for (const len of prefixes.lengths) {
      if (len >= host.length) continue;
      const v = prefixes.byLength.get(len)!.get(host.slice(0, len));
      if (v !== undefined) return v;
    }
    return star;
  };
  return {
    match(authority: string): T | undefined {
      if (authority !== lastAuthority) {
        lastMatch = lookup(authority);
        lastAuthority = authority;
      }
      return lastMatch;
    },
  };
}
