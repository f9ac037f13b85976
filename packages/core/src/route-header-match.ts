// String and header matchers (type/matcher/v3/string.proto, route_components.proto
// HeaderMatcher), compiled once into predicates. Semantics follow Envoy's
// HeaderUtility::matchHeaders:
// - several values of a header are seen joined with "," (RequestHeaders does that);
// - a missing header matches only `present_match: false` (or, inverted,
//   `present_match: true`), unless treat_missing_header_as_empty makes it "";
// - otherwise the result is the match XOR invert_match;
// - ignore_case is ASCII-only and has no effect on safe_regex;
// - range_match parses the whole value as a signed 64-bit decimal, [start, end).
// gRPC requests (gRFC A28): a header whose name ends in "-bin" is treated as absent,
// and content-type is matchable (it is "application/grpc" when the transport hides it).
import type { HeaderMatcher, StringMatcher } from '@meshlet/xds-client';
import type { MeshRequest } from './request.js';
import { compileRe2, fullMatch } from './route-regex.js';

export type StringPredicate = (value: string) => boolean;

/** ASCII lower case (absl::AsciiStrToLower), returning the same string when nothing changes. */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      let out = s.slice(0, i);
      for (let j = i; j < s.length; j++) {
        const d = s.charCodeAt(j);
        out += d >= 65 && d <= 90 ? String.fromCharCode(d + 32) : s[j];
      }
      return out;
    }
  }
  return s;
}

export function compileStringMatcher(m: StringMatcher): StringPredicate {
  if (m.kind === 'safe_regex') {
    // string.proto: ignore_case "has no effect for the safe_regex match".
    const re = compileRe2(m.regex);
    return (v) => fullMatch(re, v);
  }
  const expected = m.ignoreCase ? asciiLower(m.value) : m.value;
  const fold = m.ignoreCase;
  switch (m.kind) {
    case 'exact':
      return fold ? (v) => asciiLower(v) === expected : (v) => v === expected;
    case 'prefix':
      return fold ? (v) => asciiLower(v).startsWith(expected) : (v) => v.startsWith(expected);
    case 'suffix':
      return fold ? (v) => asciiLower(v).endsWith(expected) : (v) => v.endsWith(expected);
    case 'contains':
      return fold ? (v) => asciiLower(v).includes(expected) : (v) => v.includes(expected);
  }
}

/** How a compiled matcher reads its header from a request. */
export type HeaderReader = (req: MeshRequest) => string | undefined;

const GRPC_CONTENT_TYPE = 'application/grpc';

/**
 * The reader for one (lower-case) header name. Envoy's header map holds the HTTP/2
 * pseudo-headers too, so matchers may name `:path`, `:method`, `:authority` or
 * `:scheme`; MeshRequest carries those as fields.
 */
export function headerReader(name: string): HeaderReader {
  switch (name) {
    case ':path':
      return (req) => req.path;
    case ':method':
      return (req) => req.method;
    case ':authority':
      return (req) => req.authority;
    case ':scheme':
      return (req) => req.scheme;
    case 'content-type':
      return (req) => {
        const v = req.headers.get(name);
        return v === undefined && req.grpc === true ? GRPC_CONTENT_TYPE : v;
      };
  }
  if (name.endsWith('-bin')) return (req) => (req.grpc === true ? undefined : req.headers.get(name));
  return (req) => req.headers.get(name);
}

export type RequestPredicate = (req: MeshRequest) => boolean;

// absl::SimpleAtoi<int64_t>: optional surrounding ASCII whitespace, an optional sign, digits.
const INT_RE = /^[ \t\n\v\f\r]*([+-]?)(\d+)[ \t\n\v\f\r]*$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The value as a signed 64-bit integer, or undefined when it is not one. */
export function parseInt64(value: string): bigint | number | undefined {
  const m = INT_RE.exec(value);
  if (!m) return undefined;
  const digits = m[2]!;
  if (digits.length <= 15) {
    const n = Number(digits);
    return m[1] === '-' ? -n : n;
  }
  const b = m[1] === '-' ? -BigInt(digits) : BigInt(digits);
  return b < INT64_MIN || b > INT64_MAX ? undefined : b;
}

function inRange(v: bigint | number, start: number, end: number): boolean {
  if (typeof v === 'number') return v >= start && v < end;
  return v >= BigInt(start) && v < BigInt(end);
}

export function compileHeaderMatcher(h: HeaderMatcher): RequestPredicate {
  const read = headerReader(h.name);
  const invert = h.invertMatch;
  const missingAsEmpty = h.treatMissingHeaderAsEmpty;
  const spec = h.match;
  // What a missing header yields when it is not treated as empty.
  const whenMissing = spec.kind === 'present' ? (invert ? spec.present : !spec.present) : false;
  let test: StringPredicate;
  switch (spec.kind) {
    case 'present': {
      const present = spec.present;
      test = () => present;
      break;
    }
    case 'range': {
      const { start, end } = spec;
      test = (v) => {
        const n = parseInt64(v);
        return n !== undefined && inRange(n, start, end);
      };
      break;
    }
    default:
      test = compileStringMatcher(spec);
  }
  return (req) => {
    let value = read(req);
    if (value === undefined) {
      if (!missingAsEmpty) return whenMissing;
      value = '';
    }
    return test(value) !== invert;
  };
}
