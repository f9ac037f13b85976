// RE2 patterns for routing, compiled once per route table with re2js (RE2 semantics,
// never JS RegExp: xDS patterns are RE2 syntax and a JS engine would accept and
// mis-read some of them, and backtrack on others).
//
// Substitution follows RE2::GlobalReplace, which Envoy uses for regex_rewrite and
// host_rewrite_path_regex (type/matcher/v3/regex.proto, RegexMatchAndSubstitute):
// `\0`..`\9` insert a capture group, `\\` a backslash; every non-overlapping match is
// replaced; an empty match right where the previous match ended is skipped.
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import type { RegexRewrite } from '@meshlet/xds-client';

// re2js is loaded when a route table first has a pattern, not with the library: most
// configurations have none, and it holds about 650 KB of heap once loaded (every live byte
// is walked again by each major collection). Its CommonJS build, loaded synchronously.
let re2js: typeof RE2JS | undefined;
function re2(): typeof RE2JS {
  return (re2js ??= (createRequire(import.meta.url)('re2js') as typeof import('re2js')).RE2JS);
}

const cache = new Map<string, RE2JS>();
const MAX_CACHE = 10_000;

/** Compile an RE2 pattern (already validated by the xDS decoder), sharing equal patterns. */
export function compileRe2(pattern: string): RE2JS {
  let re = cache.get(pattern);
  if (re === undefined) {
    re = re2().compile(pattern);
    if (cache.size >= MAX_CACHE) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

/** Whether the whole of `input` matches (Envoy's safe_regex is a full match). */
export function fullMatch(re: RE2JS, input: string): boolean {
  return re.matches(input);
}

type SubstitutionPart = string | number;

/** A regex rewrite compiled once: the pattern and the substitution split into literals and group numbers. */
export interface CompiledRegexRewrite {
  readonly re: RE2JS;
  readonly parts: readonly SubstitutionPart[];
}

/**
 * Split an RE2 rewrite string. `\d` is a group, `\\` a backslash. RE2 rejects any
 * other escape and groups beyond the pattern's count; Envoy's config validation
 * does not check this, so here such an escape is kept literally and a missing group
 * inserts nothing.
 */
function parseSubstitution(substitution: string): SubstitutionPart[] {
  const parts: SubstitutionPart[] = [];
  let literal = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    if (c === '\\' && i + 1 < substitution.length) {
      const n = substitution.charCodeAt(i + 1);
      if (n >= 48 && n <= 57) {
        if (literal) parts.push(literal);
        literal = '';
        parts.push(n - 48);
        i++;
        continue;
      }
      if (n === 92) {
        literal += '\\';
        i++;
        continue;
      }
    }
    literal += c;
  }
  if (literal) parts.push(literal);
  return parts;
}

export function compileRegexRewrite(r: RegexRewrite): CompiledRegexRewrite {
  return { re: compileRe2(r.pattern), parts: parseSubstitution(r.substitution) };
}

/** RE2::GlobalReplace over `input`. */
export function replaceAll(rw: CompiledRegexRewrite, input: string): string {
  const m = rw.re.matcher(input);
  const groups = rw.re.groupCount();
  let out = '';
  let pos = 0;
  let lastEnd = -1;
  let count = 0;
  while (pos <= input.length && m.find(pos)) {
    const start = m.start();
    const end = m.end();
    if (pos < start) out += input.slice(pos, start);
    if (start === end && start === lastEnd) {
      // An empty match where the last match ended: copy one character and move on.
      if (pos < input.length) {
        const cp = input.codePointAt(pos)!;
        const width = cp > 0xffff ? 2 : 1;
        out += input.slice(pos, pos + width);
        pos += width;
      } else {
        pos++;
      }
      continue;
    }
    for (const part of rw.parts) {
      if (typeof part === 'string') out += part;
      else if (part <= groups) {
        const g = m.group(part);
        if (g !== null && g !== undefined) out += g;
      }
    }
    pos = end;
    lastEnd = end;
    count++;
  }
  if (count === 0) return input;
  if (pos < input.length) out += input.slice(pos);
  return out;
}
