// Host (authority) rewrites of a forwarded request, as Envoy's router applies them in
// RouteEntryImplBase::finalizeRequestHeaders (route_components.proto RouteAction
// host_rewrite_specifier):
// - a weighted cluster's host_rewrite_literal is set first, without x-forwarded-host;
// - then the route's: host_rewrite_literal; host_rewrite_header (the header's value,
//   when present and not empty, read after header mutations); host_rewrite_path_regex
//   (RE2::GlobalReplace over the path without its query, before any path rewrite);
// - when the route rewrites the host and append_x_forwarded_host is set, the host it
//   replaces is appended to x-forwarded-host unless it is already the last value
//   there (Http::Utility::updateAuthority).
// auto_host_rewrite needs the picked endpoint's hostname, so it is left to the caller
// (the decision carries the flag; Envoy appends x-forwarded-host there too).
import type { ForwardAction } from '@meshlet/xds-client';
import { pathWithoutQuery } from './path-rewrite.js';
import { compileRegexRewrite, replaceAll, type CompiledRegexRewrite } from './route-regex.js';

export type CompiledHostRewrite =
  | { readonly kind: 'literal'; readonly host: string }
  | { readonly kind: 'header'; readonly header: string }
  | { readonly kind: 'path_regex'; readonly rewrite: CompiledRegexRewrite };

export function compileHostRewrite(a: ForwardAction): CompiledHostRewrite | undefined {
  // Envoy skips an empty host_rewrite_literal.
  if (a.hostRewriteLiteral) return { kind: 'literal', host: a.hostRewriteLiteral };
  if (a.hostRewriteHeader) return { kind: 'header', header: a.hostRewriteHeader };
  if (a.hostRewritePathRegex) return { kind: 'path_regex', rewrite: compileRegexRewrite(a.hostRewritePathRegex) };
  return undefined;
}

/** The route's new host, or undefined when it leaves the host alone. */
export function routeHost(
  rewrite: CompiledHostRewrite | undefined,
  path: string,
  headers: { get(name: string): string | undefined },
): string | undefined {
  if (rewrite === undefined) return undefined;
  switch (rewrite.kind) {
    case 'literal':
      return rewrite.host;
    case 'header': {
      // Envoy uses the first value only; several values reach us joined with ",",
      // and a host never holds a comma.
      let v = headers.get(rewrite.header);
      if (v === undefined) return undefined;
      const comma = v.indexOf(',');
      if (comma >= 0) v = v.slice(0, comma);
      return v === '' ? undefined : v;
    }
    case 'path_regex':
      return replaceAll(rewrite.rewrite, pathWithoutQuery(path));
  }
}

/**
 * x-forwarded-host after appending `host` with "," (Http::Utility::updateAuthority),
 * or undefined when nothing changes: Envoy (append_xfh_idempotent, on by default)
 * does not append a host that is already the last value.
 */
export function appendForwardedHost(existing: string | undefined, host: string): string | undefined {
  if (existing === undefined || existing === '') return host;
  const last = existing.slice(existing.lastIndexOf(',') + 1);
  return last === host ? undefined : `${existing},${host}`;
}
