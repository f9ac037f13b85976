// Query parameter matchers (route_components.proto QueryParameterMatcher), as Envoy's
// ConfigUtility::QueryParameterMatcher applies them:
// - the query is parsed with Http::Utility::parseQueryString, which does NOT
//   percent-decode: names and values are compared as they appear on the wire;
// - the first occurrence of a name is the one tested;
// - a parameter without "=" is present with the value "";
// - a missing parameter never matches; present_match matches any present parameter
//   (Envoy ignores the boolean's value).
import type { QueryParameterMatcher } from '@meshlet/xds-client';
import { compileStringMatcher, type StringPredicate } from './route-header-match.js';

/**
 * The raw value of the first parameter called `name` in `path` (which carries its
 * query after "?"), or undefined. Scans without allocating a parameter map.
 */
export function firstQueryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  // Envoy's parser runs to the end of :path; a "#" is part of the last value.
  const end = path.length;
  let start = q + 1;
  while (start <= end) {
    let amp = path.indexOf('&', start);
    if (amp < 0 || amp > end) amp = end;
    if (amp > start) {
      const eq = path.indexOf('=', start);
      const nameEnd = eq >= 0 && eq < amp ? eq : amp;
      if (nameEnd - start === name.length && path.startsWith(name, start)) {
        return nameEnd === amp ? '' : path.slice(nameEnd + 1, amp);
      }
    }
    start = amp + 1;
  }
  return undefined;
}

export type PathPredicate = (path: string) => boolean;

export function compileQueryParameterMatcher(q: QueryParameterMatcher): PathPredicate {
  const name = q.name;
  if (q.match.kind === 'present') return (path) => firstQueryValue(path, name) !== undefined;
  const test: StringPredicate = compileStringMatcher(q.match);
  return (path) => {
    const v = firstQueryValue(path, name);
    return v !== undefined && test(v);
  };
}
