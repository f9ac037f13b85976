// Request and response header mutations (request_headers_to_add/remove and the
// response twins) at the four levels of route configuration, compiled once.
//
// One level is applied as Envoy's HeaderParser::evaluateHeaders does:
// 1. its removals;
// 2. each value to add is evaluated against the headers as they are after the
//    removals (so ADD_IF_ABSENT and OVERWRITE_IF_EXISTS look at that state, not at
//    what this level adds); an empty value is skipped unless keep_empty_value;
// 3. every overwrite is set, then every append is added.
// Levels are applied in the order the route table computed (see route-table.ts):
// by default the most specific first so outer levels may override; with
// most_specific_header_mutations_wins the reverse. A weighted cluster's own
// mutations always come first (Envoy's WeightedClusterEntry).
//
// Values may hold Envoy's %COMMAND% substitutions. Supported: `%%` (a literal %),
// %REQ(name)% (a request header; `%REQ(a?b)%` falls back to b; `:N` truncates),
// %DOWNSTREAM_REMOTE_ADDRESS% and %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% (the
// request's sourceIp; no port is known), %UPSTREAM_REMOTE_ADDRESS% (when the caller
// passes it), %HOSTNAME%. Any other command (%START_TIME%, %PROTOCOL%,
// %UPSTREAM_METADATA(...)%, %DYNAMIC_METADATA(...)%, %FILTER_STATE(...)%, ...) is not
// supported and is copied into the value as written.
import { hostname } from 'node:os';
import type { HeaderAppendAction, HeaderMutations, HeaderValueOption } from '@meshlet/xds-client';
import { RecordView, type MeshRequest } from './request.js';

/** The small header interface the HTTP and gRPC layers adapt; names are lower case. */
export interface MutableHeaders {
  /** The value (several values joined with ","), or undefined when absent. */
  get(name: string): string | undefined;
  /** Replace every value of `name` with `value`. */
  set(name: string, value: string): void;
  /** Add one more value of `name` (a new header line), keeping existing ones. */
  append(name: string, value: string): void;
  delete(name: string): void;
}

/** What %...% substitutions may read. */
export interface HeaderFormatContext {
  readonly request: MeshRequest;
  /** host:port of the upstream that was picked, for %UPSTREAM_REMOTE_ADDRESS%. */
  readonly upstreamRemoteAddress?: string;
}

type FormatPart = string | ((ctx: HeaderFormatContext) => string);

interface CompiledValue {
  readonly name: string;
  /** A constant, or parts to concatenate. */
  readonly value: string | readonly FormatPart[];
  readonly action: HeaderAppendAction;
  readonly keepEmptyValue: boolean;
}

/** One level's mutations for one direction. */
export interface CompiledHeaderOps {
  readonly remove: readonly string[];
  readonly add: readonly CompiledValue[];
}

let cachedHostname: string | undefined;

function command(text: string): FormatPart | undefined {
  let name = text;
  let maxLen = -1;
  const colon = /:(\d+)$/.exec(text);
  if (colon && text.startsWith('REQ(')) {
    name = text.slice(0, colon.index);
    maxLen = Number(colon[1]);
  }
  const truncate = (s: string): string => (maxLen >= 0 && s.length > maxLen ? s.slice(0, maxLen) : s);
  if (name.startsWith('REQ(') && name.endsWith(')')) {
    const [main, alt] = name.slice(4, -1).toLowerCase().split('?', 2) as [string, string | undefined];
    return (ctx) => {
      let v = readRequest(ctx.request, main);
      if (v === undefined && alt !== undefined) v = readRequest(ctx.request, alt);
      return truncate(v ?? '');
    };
  }
  switch (name) {
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      return (ctx) => ctx.request.sourceIp ?? '';
    case 'UPSTREAM_REMOTE_ADDRESS':
      return (ctx) => ctx.upstreamRemoteAddress ?? '';
    case 'HOSTNAME':
      return () => (cachedHostname ??= hostname());
    default:
      return undefined;
  }
}

function readRequest(req: MeshRequest, name: string): string | undefined {
  switch (name) {
    case ':path':
      return req.path;
    case ':method':
      return req.method;
    case ':authority':
    case 'host':
      return req.authority;
    case ':scheme':
      return req.scheme;
    default:
      return req.headers.get(name);
  }
}

/** Split a header value into literals and supported %COMMAND% substitutions. */
export function compileHeaderValue(value: string): string | readonly FormatPart[] {
  if (!value.includes('%')) return value;
  const parts: FormatPart[] = [];
  let literal = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const close = value.indexOf('%', i + 1);
    const fn = close > i ? command(value.slice(i + 1, close)) : undefined;
    if (fn === undefined) {
      // Unsupported or unterminated: keep the text as written.
      literal += c;
      i++;
      continue;
    }
    if (literal) parts.push(literal);
    literal = '';
    parts.push(fn);
    i = close + 1;
  }
  if (literal) parts.push(literal);
  if (parts.every((p) => typeof p === 'string')) return parts.join('');
  return parts;
}

function compileAdds(list: readonly HeaderValueOption[]): CompiledValue[] {
  return list.map((o) => ({
    name: o.name,
    value: compileHeaderValue(o.value),
    action: o.appendAction,
    keepEmptyValue: o.keepEmptyValue,
  }));
}

/** Compile one level's mutations; undefined for a direction with nothing to do. */
export function compileHeaderMutations(m: HeaderMutations): {
  request: CompiledHeaderOps | undefined;
  response: CompiledHeaderOps | undefined;
} {
  const request =
    m.requestHeadersToAdd.length > 0 || m.requestHeadersToRemove.length > 0
      ? { remove: m.requestHeadersToRemove.slice(), add: compileAdds(m.requestHeadersToAdd) }
      : undefined;
  const response =
    m.responseHeadersToAdd.length > 0 || m.responseHeadersToRemove.length > 0
      ? { remove: m.responseHeadersToRemove.slice(), add: compileAdds(m.responseHeadersToAdd) }
      : undefined;
  return { request, response };
}

function evaluate(value: string | readonly FormatPart[], ctx: HeaderFormatContext | undefined): string {
  if (typeof value === 'string') return value;
  let out = '';
  for (const part of value) {
    if (typeof part === 'string') out += part;
    else if (ctx !== undefined) out += part(ctx);
  }
  return out;
}

/** Apply one level (HeaderParser::evaluateHeaders). */
export function applyHeaderOps(ops: CompiledHeaderOps, headers: MutableHeaders, ctx?: HeaderFormatContext): void {
  for (const name of ops.remove) headers.delete(name);
  if (ops.add.length === 0) return;
  let overwrite: (string | undefined)[] | undefined;
  let append: (string | undefined)[] | undefined;
  for (let i = 0; i < ops.add.length; i++) {
    const entry = ops.add[i]!;
    const value = evaluate(entry.value, ctx);
    if (value === '' && !entry.keepEmptyValue) continue;
    switch (entry.action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        (append ??= new Array<string | undefined>(ops.add.length))[i] = value;
        break;
      case 'ADD_IF_ABSENT':
        if (headers.get(entry.name) === undefined) (append ??= new Array<string | undefined>(ops.add.length))[i] = value;
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (headers.get(entry.name) !== undefined) (overwrite ??= new Array<string | undefined>(ops.add.length))[i] = value;
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        (overwrite ??= new Array<string | undefined>(ops.add.length))[i] = value;
        break;
    }
  }
  if (overwrite !== undefined) {
    for (let i = 0; i < overwrite.length; i++) {
      const v = overwrite[i];
      if (v !== undefined) headers.set(ops.add[i]!.name, v);
    }
  }
  if (append !== undefined) {
    for (let i = 0; i < append.length; i++) {
      const v = append[i];
      if (v !== undefined) headers.append(ops.add[i]!.name, v);
    }
  }
}

/** Apply several levels in order. */
export function applyHeaderOpsChain(
  chain: readonly CompiledHeaderOps[],
  headers: MutableHeaders,
  ctx?: HeaderFormatContext,
): void {
  for (const ops of chain) applyHeaderOps(ops, headers, ctx);
}

/**
 * MutableHeaders over a plain record of lower-case names. One small object with its methods on
 * the prototype: the HTTP path makes one per attempt.
 */
export function mutableHeadersFromRecord(record: Record<string, string | string[]>): MutableHeaders {
  return new RecordHeaders(record);
}

class RecordHeaders extends RecordView<Record<string, string | string[]>> implements MutableHeaders {
  set(name: string, value: string): void {
    this.record[name] = value;
  }

  append(name: string, value: string): void {
    const record = this.record;
    const v = record[name];
    if (v === undefined) record[name] = value;
    else if (typeof v === 'string') record[name] = [v, value];
    else v.push(value);
  }

  delete(name: string): void {
    delete this.record[name];
  }
}
