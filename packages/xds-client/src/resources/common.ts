// Conversions and checks shared by every resource decoder: the field-path error,
// Duration, wrappers, FractionalPercent, RE2 patterns, string and header matchers,
// header mutations, Struct and Metadata. Decoders throw ResourceError from deep
// inside and the resource type's decode() turns it into a DecodeResult, so a
// decoder reads as straight-line code.
import { createRequire } from 'node:module';
import type {
  envoy_config_core_v3_HeaderValueOption,
  envoy_config_core_v3_Metadata,
  envoy_config_core_v3_RuntimeFractionalPercent,
  envoy_config_route_v3_HeaderMatcher,
  envoy_type_matcher_v3_RegexMatchAndSubstitute,
  envoy_type_matcher_v3_RegexMatcher,
  envoy_type_matcher_v3_StringMatcher,
  envoy_type_v3_FractionalPercent,
  google_protobuf_Duration,
  google_protobuf_Struct,
  google_protobuf_Value,
} from '../generated/pb.js';
import type {
  FractionalPercent,
  HeaderAppendAction,
  HeaderMatcher,
  HeaderMutations,
  HeaderValueOption,
  JsonObject,
  JsonValue,
  Metadata,
  Millis,
  RegexRewrite,
  StringMatcher,
} from './types.js';

/** A resource is invalid: `path` is the proto field path inside the resource. */
export class ResourceError extends Error {
  readonly path: string;
  readonly reason: string;
  constructor(path: string, reason: string) {
    super(path ? `${path}: ${reason}` : reason);
    this.name = 'ResourceError';
    this.path = path;
    this.reason = reason;
  }
}

export function fail(path: string, reason: string): never {
  throw new ResourceError(path, reason);
}

/** Join a parent path and a field name. */
export function sub(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------- scalars

/** google.protobuf.Duration's own range (duration.proto): about ±10,000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000;

/**
 * A Duration in milliseconds, or undefined when absent. Negative durations are
 * errors: every Duration meshlet reads is a timeout or interval, and Envoy's
 * validate rules for them say gte 0 (or gt 0, checked by the caller).
 */
export function durationMs(d: google_protobuf_Duration | null | undefined, path: string): Millis | undefined {
  if (!d) return undefined;
  const seconds = d.seconds;
  const nanos = d.nanos;
  if (!(seconds >= 0 && seconds <= MAX_DURATION_SECONDS)) {
    fail(path, `duration seconds ${seconds} outside [0, ${MAX_DURATION_SECONDS}]`);
  }
  if (!(nanos >= 0 && nanos < 1e9)) fail(path, `duration nanos ${nanos} outside [0, 1e9)`);
  return seconds * 1000 + nanos / 1e6;
}

/** A Duration that must be > 0 when present (Envoy `gt: {}` rules). */
export function positiveDurationMs(
  d: google_protobuf_Duration | null | undefined,
  path: string,
): Millis | undefined {
  const ms = durationMs(d, path);
  if (ms === 0) fail(path, 'must be greater than 0');
  return ms;
}

export function u32(w: { value: number } | null | undefined, dflt: number): number {
  return w ? w.value : dflt;
}

export function u32Opt(w: { value: number } | null | undefined): number | undefined {
  return w ? w.value : undefined;
}

export function boolOf(w: { value: boolean } | null | undefined, dflt: boolean): boolean {
  return w ? w.value : dflt;
}

/** A percentage field that gRFC A50 / Envoy limit to 0..100. */
export function percent(w: { value: number } | null | undefined, dflt: number, path: string): number {
  const v = w ? w.value : dflt;
  if (v > 100) fail(path, `percentage ${v} is greater than 100`);
  return v;
}

const DENOMINATORS = ['HUNDRED', 'TEN_THOUSAND', 'MILLION'] as const;
const PER_MILLION_FACTOR = [10_000, 100, 1] as const;

export function fractionalPercent(
  fp: envoy_type_v3_FractionalPercent | null | undefined,
  path: string,
): FractionalPercent {
  const numerator = fp ? fp.numerator : 0;
  const d = fp ? fp.denominator : 0;
  const denominator = DENOMINATORS[d];
  const factor = PER_MILLION_FACTOR[d];
  if (denominator === undefined || factor === undefined) fail(sub(path, 'denominator'), `unknown denominator ${d}`);
  return { numerator, denominator, perMillion: Math.min(1_000_000, numerator * factor) };
}

export function runtimeFraction(
  rf: envoy_config_core_v3_RuntimeFractionalPercent | null | undefined,
  path: string,
): FractionalPercent | undefined {
  if (!rf) return undefined;
  return fractionalPercent(rf.default_value, sub(path, 'default_value'));
}

// ---------------------------------------------------------------- regex

// re2js is loaded on the first pattern, not with the library (about 650 KB of heap that most
// configurations never use); its CommonJS build, so loading stays synchronous.
let re2js: typeof import('re2js').RE2JS | undefined;
function re2(): typeof import('re2js').RE2JS {
  return (re2js ??= (createRequire(import.meta.url)('re2js') as typeof import('re2js')).RE2JS);
}

// Patterns repeat across resources (every route of a mesh often shares a few), so
// remember the ones already checked. Bounded so a hostile control plane cannot grow it.
const checkedPatterns = new Set<string>();
const MAX_CHECKED_PATTERNS = 10_000;

/** Throws a ResourceError unless `pattern` compiles as RE2. Never uses JS RegExp. */
export function checkRe2(pattern: string, path: string): string {
  if (checkedPatterns.has(pattern)) return pattern;
  try {
    re2().compile(pattern);
  } catch (e) {
    let reason = errorMessage(e).replace(/^error parsing regexp: /, '');
    // re2js appends ": `<offending text>`"; the pattern is quoted already.
    reason = reason.replace(/: `[^`]*`$/, '');
    fail(path, `invalid RE2 pattern ${JSON.stringify(pattern)}: ${reason}`);
  }
  if (checkedPatterns.size >= MAX_CHECKED_PATTERNS) checkedPatterns.clear();
  checkedPatterns.add(pattern);
  return pattern;
}

export function regexMatcher(m: envoy_type_matcher_v3_RegexMatcher | null | undefined, path: string): string {
  if (!m) fail(path, 'regex matcher is required');
  // regex.proto: regex has min_len 1.
  if (!m.regex) fail(sub(path, 'regex'), 'must not be empty');
  return checkRe2(m.regex, sub(path, 'regex'));
}

export function regexRewrite(
  r: envoy_type_matcher_v3_RegexMatchAndSubstitute | null | undefined,
  path: string,
): RegexRewrite | undefined {
  if (!r) return undefined;
  return { pattern: regexMatcher(r.pattern, sub(path, 'pattern')), substitution: r.substitution };
}

// ---------------------------------------------------------------- matchers

export function stringMatcher(m: envoy_type_matcher_v3_StringMatcher | null | undefined, path: string): StringMatcher {
  if (!m) fail(path, 'string matcher is required');
  const ignoreCase = m.ignore_case;
  switch (m.match_pattern) {
    case 'exact':
      return { kind: 'exact', value: m.exact ?? '', ignoreCase };
    case 'prefix':
      if (!m.prefix) fail(sub(path, 'prefix'), 'must not be empty');
      return { kind: 'prefix', value: m.prefix, ignoreCase };
    case 'suffix':
      if (!m.suffix) fail(sub(path, 'suffix'), 'must not be empty');
      return { kind: 'suffix', value: m.suffix, ignoreCase };
    case 'contains':
      if (!m.contains) fail(sub(path, 'contains'), 'must not be empty');
      return { kind: 'contains', value: m.contains, ignoreCase };
    case 'safe_regex':
      return { kind: 'safe_regex', regex: regexMatcher(m.safe_regex, sub(path, 'safe_regex')), ignoreCase };
    case 'custom':
      fail(sub(path, 'custom'), 'custom string matchers are not supported');
    default:
      fail(path, 'no match pattern set');
  }
}

export function headerMatcher(h: envoy_config_route_v3_HeaderMatcher, path: string): HeaderMatcher {
  const name = h.name;
  if (!name) fail(sub(path, 'name'), 'header name must not be empty');
  let match: HeaderMatcher['match'];
  switch (h.header_match_specifier) {
    case 'string_match':
      match = stringMatcher(h.string_match, sub(path, 'string_match'));
      break;
    // The deprecated direct fields: same semantics as string_match without ignore_case.
    case 'exact_match':
      match = { kind: 'exact', value: h.exact_match ?? '', ignoreCase: false };
      break;
    case 'prefix_match':
      if (!h.prefix_match) fail(sub(path, 'prefix_match'), 'must not be empty');
      match = { kind: 'prefix', value: h.prefix_match, ignoreCase: false };
      break;
    case 'suffix_match':
      if (!h.suffix_match) fail(sub(path, 'suffix_match'), 'must not be empty');
      match = { kind: 'suffix', value: h.suffix_match, ignoreCase: false };
      break;
    case 'contains_match':
      if (!h.contains_match) fail(sub(path, 'contains_match'), 'must not be empty');
      match = { kind: 'contains', value: h.contains_match, ignoreCase: false };
      break;
    case 'safe_regex_match':
      match = {
        kind: 'safe_regex',
        regex: regexMatcher(h.safe_regex_match, sub(path, 'safe_regex_match')),
        ignoreCase: false,
      };
      break;
    case 'present_match':
      match = { kind: 'present', present: h.present_match === true };
      break;
    case 'range_match': {
      const r = h.range_match!;
      if (r.start > r.end) fail(sub(path, 'range_match'), `start ${r.start} is greater than end ${r.end}`);
      match = { kind: 'range', start: r.start, end: r.end };
      break;
    }
    default:
      // Envoy: a HeaderMatcher with no specifier matches when the header is present.
      match = { kind: 'present', present: true };
  }
  // Header names compare case-insensitively; Node hands them over lowercased.
  return {
    name: name.toLowerCase(),
    match,
    invertMatch: h.invert_match,
    treatMissingHeaderAsEmpty: h.treat_missing_header_as_empty,
  };
}

export function headerMatchers(list: readonly envoy_config_route_v3_HeaderMatcher[], path: string): HeaderMatcher[] {
  const out: HeaderMatcher[] = [];
  for (let i = 0; i < list.length; i++) out.push(headerMatcher(list[i]!, `${path}[${i}]`));
  return out;
}

// ---------------------------------------------------------------- header mutations

const APPEND_ACTIONS: readonly HeaderAppendAction[] = [
  'APPEND_IF_EXISTS_OR_ADD',
  'ADD_IF_ABSENT',
  'OVERWRITE_IF_EXISTS_OR_ADD',
  'OVERWRITE_IF_EXISTS',
];

const MAX_HEADER_OPTIONS = 1000; // route_components.proto: max_items 1000

function headerValueOptions(list: readonly envoy_config_core_v3_HeaderValueOption[], path: string): HeaderValueOption[] {
  if (list.length > MAX_HEADER_OPTIONS) fail(path, `more than ${MAX_HEADER_OPTIONS} entries`);
  const out: HeaderValueOption[] = [];
  for (let i = 0; i < list.length; i++) {
    const o = list[i]!;
    const p = `${path}[${i}]`;
    const h = o.header;
    if (!h) fail(sub(p, 'header'), 'is required');
    if (!h.key) fail(sub(p, 'header.key'), 'must not be empty');
    const value = h.value !== '' ? h.value : h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : '';
    let appendAction = APPEND_ACTIONS[o.append_action];
    if (appendAction === undefined) fail(sub(p, 'append_action'), `unknown append action ${o.append_action}`);
    if (o.append) {
      // base.proto: `append` is deprecated and cannot be combined with append_action.
      if (o.append_action !== 0) fail(sub(p, 'append'), 'append and append_action cannot both be set');
      appendAction = o.append.value ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
    }
    out.push({ name: h.key.toLowerCase(), value, appendAction, keepEmptyValue: o.keep_empty_value });
  }
  return out;
}

function headersToRemove(list: readonly string[], path: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const n = list[i]!;
    if (!n) fail(`${path}[${i}]`, 'header name must not be empty');
    out.push(n.toLowerCase());
  }
  return out;
}

/** The four request/response add/remove lists shared by route config, vhost, route and weighted cluster. */
export function headerMutations(
  m: {
    request_headers_to_add: envoy_config_core_v3_HeaderValueOption[];
    request_headers_to_remove: string[];
    response_headers_to_add: envoy_config_core_v3_HeaderValueOption[];
    response_headers_to_remove: string[];
  },
  path: string,
): HeaderMutations {
  if (
    m.request_headers_to_add.length === 0 &&
    m.request_headers_to_remove.length === 0 &&
    m.response_headers_to_add.length === 0 &&
    m.response_headers_to_remove.length === 0
  ) {
    return EMPTY_HEADER_MUTATIONS;
  }
  return {
    requestHeadersToAdd: headerValueOptions(m.request_headers_to_add, sub(path, 'request_headers_to_add')),
    requestHeadersToRemove: headersToRemove(m.request_headers_to_remove, sub(path, 'request_headers_to_remove')),
    responseHeadersToAdd: headerValueOptions(m.response_headers_to_add, sub(path, 'response_headers_to_add')),
    responseHeadersToRemove: headersToRemove(m.response_headers_to_remove, sub(path, 'response_headers_to_remove')),
  };
}

export const EMPTY_HEADER_MUTATIONS: HeaderMutations = Object.freeze({
  requestHeadersToAdd: Object.freeze([]) as readonly HeaderValueOption[],
  requestHeadersToRemove: Object.freeze([]) as readonly string[],
  responseHeadersToAdd: Object.freeze([]) as readonly HeaderValueOption[],
  responseHeadersToRemove: Object.freeze([]) as readonly string[],
});

// ---------------------------------------------------------------- Struct, Metadata

export function valueToJson(v: google_protobuf_Value | null | undefined): JsonValue {
  if (!v) return null;
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue ?? 0;
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'structValue':
      return structToJson(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

export function structToJson(s: google_protobuf_Struct | null | undefined): JsonObject {
  const out: JsonObject = {};
  if (!s) return out;
  for (const key of Object.keys(s.fields)) out[key] = valueToJson(s.fields[key]);
  return out;
}

export function metadata(m: envoy_config_core_v3_Metadata | null | undefined): Metadata | undefined {
  if (!m) return undefined;
  const filterMetadata: Record<string, JsonObject> = {};
  for (const key of Object.keys(m.filter_metadata)) filterMetadata[key] = structToJson(m.filter_metadata[key]);
  const typedFilterMetadata: Record<string, { typeUrl: string }> = {};
  for (const key of Object.keys(m.typed_filter_metadata)) {
    typedFilterMetadata[key] = { typeUrl: m.typed_filter_metadata[key]!.type_url };
  }
  return { filterMetadata, typedFilterMetadata };
}
