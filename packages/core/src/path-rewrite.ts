// Path rewrites of a matched route (route_components.proto RouteAction.prefix_rewrite
// and regex_rewrite, and the same fields of RedirectAction), as Envoy's
// RouteEntryImplBase::currentUrlPathAfterRewriteWithMatchedPath does them:
// - prefix_rewrite replaces the part of the path the route matched: the configured
//   prefix for `prefix` and `path_separated_prefix`, the configured path for `path`,
//   and the whole path without its query for `safe_regex`. The rest (query included)
//   is kept. So `/prefix/` → `/` turns `/prefix/etc` into `/etc`, and `/prefix` → `/`
//   turns `/prefix` into `/`, `/prefix/etc` into `//etc` (the doc's reason for two routes).
// - regex_rewrite runs RE2::GlobalReplace over the path without its query and fragment,
//   then puts the query and fragment back.
import type { PathMatcher, RegexRewrite } from '@meshlet/xds-client';
import { compileRegexRewrite, replaceAll, type CompiledRegexRewrite } from './route-regex.js';

/** Envoy's PathUtil::removeQueryAndFragment. */
export function pathWithoutQuery(path: string): string {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) return path.slice(0, i);
  }
  return path;
}

/** A route's path rewrite, compiled. */
export type CompiledPathRewrite =
  | { readonly kind: 'prefix'; readonly prefix: string; readonly matched: MatchedLength }
  | { readonly kind: 'regex'; readonly rewrite: CompiledRegexRewrite };

/** How many leading characters of the request path the route's path matcher consumed. */
export type MatchedLength = number | 'path_without_query';

export function matchedLength(matcher: PathMatcher): MatchedLength {
  switch (matcher.kind) {
    case 'prefix':
    case 'path':
    case 'path_separated_prefix':
      return matcher.value.length;
    case 'safe_regex':
      return 'path_without_query';
  }
}

export function compilePathRewrite(
  matcher: PathMatcher,
  prefixRewrite: string | undefined,
  regexRewrite: RegexRewrite | undefined,
): CompiledPathRewrite | undefined {
  // Envoy treats an empty prefix_rewrite as no rewrite.
  if (prefixRewrite) return { kind: 'prefix', prefix: prefixRewrite, matched: matchedLength(matcher) };
  if (regexRewrite) return { kind: 'regex', rewrite: compileRegexRewrite(regexRewrite) };
  return undefined;
}

/** The rewritten path, or undefined when the route does not rewrite it. */
export function rewritePath(rewrite: CompiledPathRewrite | undefined, path: string): string | undefined {
  if (rewrite === undefined) return undefined;
  if (rewrite.kind === 'prefix') {
    const n = rewrite.matched === 'path_without_query' ? pathWithoutQuery(path).length : rewrite.matched;
    return rewrite.prefix + path.slice(n);
  }
  const just = pathWithoutQuery(path);
  return replaceAll(rewrite.rewrite, just) + path.slice(just.length);
}
