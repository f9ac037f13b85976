// Proto3 JSON (https://protobuf.dev/programming-guides/json/) to and from protobufjs
// messages, for the Envoy/xDS types in the generated descriptor. protobufjs's own
// fromObject/toObject do not speak proto3 JSON for well-known types ("1.5s"
// durations, bare wrapper values, Struct as plain JSON, Any with "@type"), so this
// module walks the reflection types itself. Used for config files, tests and dumps;
// not on any request path.
import type { Enum, Field, Message, Type } from 'protobufjs';
import { protoType, protoTypeForUrl, strictBytes, typeUrlOf } from './proto.js';
import { prepareType } from './proto-root.js';

export class ProtoJsonError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`${path || '<root>'}: ${reason}`);
    this.name = 'ProtoJsonError';
    this.path = path;
  }
}

const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const FLOAT_TYPES = new Set(['double', 'float']);

/** Field lookup by proto name and by lowerCamelCase JSON name, cached per type. */
const fieldMaps = new WeakMap<Type, Map<string, Field>>();
function fieldMap(type: Type): Map<string, Field> {
  let map = fieldMaps.get(type);
  if (!map) {
    map = new Map();
    for (const field of type.fieldsArray) {
      if (field.declaringField || field.name.startsWith('.')) continue;
      map.set(field.name, field);
      map.set(lowerCamel(field.name), field);
    }
    fieldMaps.set(type, map);
  }
  return map;
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function fullNameOf(type: Type): string {
  return type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Parse a proto3 JSON duration ("1.5s", "-0.001s"). */
export function parseDurationJson(value: string, path: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(value);
  if (!m) throw new ProtoJsonError(path, `invalid duration ${JSON.stringify(value)} (want e.g. "1.5s")`);
  const sign = m[1] === '-' ? -1 : 1;
  const seconds = Number(m[2]);
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: sign * seconds, nanos: sign * nanos };
}

function parseTimestampJson(value: string, path: string): { seconds: number; nanos: number } {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) throw new ProtoJsonError(path, `invalid timestamp ${JSON.stringify(value)}`);
  return { seconds: Math.floor(ms / 1000), nanos: m[2] ? Number(m[2].padEnd(9, '0')) : 0 };
}

function scalarFromJson(field: Field, value: unknown, path: string): unknown {
  const t = field.type;
  if (INT_TYPES.has(t)) {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new ProtoJsonError(path, `want an integer, got ${JSON.stringify(value)}`);
    if (t.startsWith('u') || t.startsWith('fixed')) {
      if (n < 0) throw new ProtoJsonError(path, `want an unsigned integer, got ${n}`);
    }
    if (t.endsWith('32') && (n > 0xffffffff || n < -0x80000000)) throw new ProtoJsonError(path, `${n} does not fit ${t}`);
    return n;
  }
  if (FLOAT_TYPES.has(t)) {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || Number.isNaN(n)) throw new ProtoJsonError(path, `want a number, got ${JSON.stringify(value)}`);
    return n;
  }
  switch (t) {
    case 'bool':
      if (typeof value !== 'boolean') throw new ProtoJsonError(path, `want true or false, got ${JSON.stringify(value)}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new ProtoJsonError(path, `want a string, got ${JSON.stringify(value)}`);
      return value;
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value !== 'string') throw new ProtoJsonError(path, `want base64 bytes, got ${JSON.stringify(value)}`);
      return new Uint8Array(Buffer.from(value, 'base64'));
  }
  const resolved = field.resolvedType;
  if (resolved && 'values' in resolved && !('fieldsArray' in resolved)) {
    const en = resolved as Enum;
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(en.values, value)) return en.values[value];
    throw new ProtoJsonError(path, `${JSON.stringify(value)} is not a value of enum ${en.name} (${Object.keys(en.values).join(', ')})`);
  }
  throw new ProtoJsonError(path, `unsupported field type ${t}`);
}

// protobufjs bundles google.protobuf.Value with camelCase field names (numberValue,
// structValue, ...), unlike every other type here, which keeps the .proto names.
function valueFromJson(value: unknown, path: string): unknown {
  if (value === null) return { nullValue: 0 };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map((v, i) => valueFromJson(v, `${path}[${i}]`)) } };
  if (isPlainObject(value)) return { structValue: structFromJson(value, path) };
  throw new ProtoJsonError(path, `cannot represent ${typeof value} as google.protobuf.Value`);
}

function structFromJson(value: unknown, path: string): unknown {
  if (!isPlainObject(value)) throw new ProtoJsonError(path, 'want a JSON object for google.protobuf.Struct');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = valueFromJson(v, `${path}.${k}`);
  return { fields };
}

/** Convert proto3 JSON for `type` into the plain object protobufjs's fromObject takes. */
function messageFromJson(type: Type, json: unknown, path: string): unknown {
  // A field's type is added to the lazy root unresolved: resolve it before reading its fields.
  prepareType(type);
  const name = fullNameOf(type);
  switch (name) {
    case 'google.protobuf.Any':
      return anyFromJson(json, path);
    case 'google.protobuf.Duration':
      if (typeof json === 'string') return parseDurationJson(json, path);
      break;
    case 'google.protobuf.Timestamp':
      if (typeof json === 'string') return parseTimestampJson(json, path);
      break;
    case 'google.protobuf.Struct':
      return structFromJson(json, path);
    case 'google.protobuf.Value':
      return valueFromJson(json, path);
    case 'google.protobuf.ListValue':
      if (!Array.isArray(json)) throw new ProtoJsonError(path, 'want a JSON array for google.protobuf.ListValue');
      return { values: json.map((v, i) => valueFromJson(v, `${path}[${i}]`)) };
    case 'google.protobuf.FieldMask':
      if (typeof json === 'string') return { paths: json === '' ? [] : json.split(',') };
      break;
  }
  if (WRAPPERS.has(name) && !isPlainObject(json)) {
    const valueField = type.fields['value'];
    if (!valueField) throw new ProtoJsonError(path, `wrapper ${name} has no value field`);
    return { value: scalarFromJson(valueField, json, path) };
  }
  if (!isPlainObject(json)) throw new ProtoJsonError(path, `want a JSON object for ${name}, got ${JSON.stringify(json)}`);
  const out: Record<string, unknown> = {};
  const fields = fieldMap(type);
  const seenOneofs = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const fieldPath = path ? `${path}.${key}` : key;
    const field = fields.get(key);
    if (!field) {
      if (value === undefined) continue;
      throw new ProtoJsonError(fieldPath, `unknown field of ${name}`);
    }
    // null means "default" in proto3 JSON; undefined is how JS spells an absent key.
    if (value === undefined || (value === null && fullNameOfResolved(field) !== 'google.protobuf.Value')) continue;
    if (field.partOf) {
      const other = seenOneofs.get(field.partOf.name);
      if (other !== undefined) throw new ProtoJsonError(fieldPath, `oneof ${field.partOf.name} already set by ${other}`);
      seenOneofs.set(field.partOf.name, key);
    }
    out[field.name] = fieldFromJson(field, value, fieldPath);
  }
  return out;
}

function fullNameOfResolved(field: Field): string | undefined {
  const r = field.resolvedType;
  return r && 'fieldsArray' in r ? fullNameOf(r as Type) : undefined;
}

function fieldFromJson(field: Field, value: unknown, path: string): unknown {
  const elem = (v: unknown, p: string): unknown => {
    const r = field.resolvedType;
    if (r && 'fieldsArray' in r) return messageFromJson(r as Type, v, p);
    return scalarFromJson(field, v, p);
  };
  if (field.map) {
    if (!isPlainObject(value)) throw new ProtoJsonError(path, 'want a JSON object for a map field');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = elem(v, `${path}.${k}`);
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new ProtoJsonError(path, 'want a JSON array for a repeated field');
    return value.map((v, i) => elem(v, `${path}[${i}]`));
  }
  return elem(value, path);
}

/** Any in proto3 JSON: {"@type": url, ...fields} or {"@type": url, "value": <wkt json>}. */
function anyFromJson(json: unknown, path: string): { type_url: string; value: Uint8Array } {
  if (!isPlainObject(json)) throw new ProtoJsonError(path, 'want a JSON object with "@type" for google.protobuf.Any');
  const typeUrl = json['@type'];
  if (typeof typeUrl !== 'string' || typeUrl === '') throw new ProtoJsonError(path, 'google.protobuf.Any needs "@type"');
  const inner = protoTypeForUrl(typeUrl);
  if (!inner) throw new ProtoJsonError(`${path}.@type`, `unknown type ${typeUrl}`);
  const { ['@type']: _drop, ...rest } = json;
  const innerName = fullNameOf(inner);
  const special =
    WRAPPERS.has(innerName) ||
    ['google.protobuf.Duration', 'google.protobuf.Timestamp', 'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue', 'google.protobuf.FieldMask'].includes(innerName);
  const body = special ? messageFromJson(inner, rest['value'], `${path}.value`) : messageFromJson(inner, rest, path);
  return { type_url: typeUrl, value: inner.encode(inner.fromObject(body as Record<string, unknown>)).finish() };
}

/** Build a protobufjs message of `fullName` from proto3 JSON. Throws ProtoJsonError naming the path. */
export function fromProto3Json(fullName: string, json: unknown): Message {
  const type = protoType(fullName);
  return type.fromObject(messageFromJson(type, json, '') as Record<string, unknown>);
}

/** Encode proto3 JSON as `fullName`. */
export function encodeProto3Json(fullName: string, json: unknown): Uint8Array {
  const type = protoType(fullName);
  return type.encode(fromProto3Json(fullName, json)).finish();
}

/**
 * An Any from proto3 JSON that carries its own "@type", or from `fullName` + JSON.
 * `anyFromProto3Json({ '@type': TYPE_URLS.cluster, name: 'c' })`.
 */
export function anyFromProto3Json(json: unknown, fullName?: string): { type_url: string; value: Uint8Array } {
  if (fullName !== undefined) {
    const withType = isPlainObject(json) && !('@type' in json) ? { '@type': typeUrlOf(fullName), ...json } : json;
    return anyFromJson(withType, '');
  }
  return anyFromJson(json, '');
}

// ---- to proto3 JSON ----

export interface ToJsonOptions {
  /** 'proto' keeps .proto field names (as Envoy's YAML docs use); 'json' uses lowerCamelCase (canonical). */
  names?: 'proto' | 'json';
}

function durationToJson(v: { seconds?: number; nanos?: number }): string {
  const seconds = Number(v.seconds ?? 0);
  const nanos = Number(v.nanos ?? 0);
  const negative = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  // The spec's output form: 0, 3, 6 or 9 fractional digits.
  let frac = '';
  if (n !== 0) {
    const digits = String(n).padStart(9, '0');
    frac = '.' + (n % 1_000_000 === 0 ? digits.slice(0, 3) : n % 1000 === 0 ? digits.slice(0, 6) : digits);
  }
  return `${negative ? '-' : ''}${s}${frac}s`;
}

/** google.protobuf.Value (camelCase fields, see valueFromJson) as plain JSON. */
export function valueToJson(v: Record<string, unknown>): unknown {
  switch (v['kind']) {
    case 'structValue':
      return structToJson(v['structValue'] as Record<string, unknown>);
    case 'listValue':
      return ((v['listValue'] as { values?: Record<string, unknown>[] }).values ?? []).map(valueToJson);
    case 'numberValue':
      return v['numberValue'];
    case 'stringValue':
      return v['stringValue'];
    case 'boolValue':
      return v['boolValue'];
  }
  return null;
}

/** google.protobuf.Struct as a plain JSON object. */
export function structToJson(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (v['fields'] ?? {}) as Record<string, Record<string, unknown>>;
  for (const [k, val] of Object.entries(fields)) out[k] = valueToJson(val);
  return out;
}

function messageToJson(type: Type, msg: Record<string, unknown>, opts: ToJsonOptions): unknown {
  prepareType(type);
  const name = fullNameOf(type);
  switch (name) {
    case 'google.protobuf.Any': {
      const typeUrl = String(msg['type_url'] ?? '');
      const inner = protoTypeForUrl(typeUrl);
      const bytes = msg['value'] as Uint8Array | undefined;
      if (!inner || !bytes) return { '@type': typeUrl, value: Buffer.from(bytes ?? []).toString('base64') };
      const decoded = inner.decode(strictBytes(bytes)) as unknown as Record<string, unknown>;
      const body = messageToJson(inner, decoded, opts);
      return isPlainObject(body) && !WRAPPERS.has(fullNameOf(inner)) && fullNameOf(inner) !== 'google.protobuf.Struct'
        ? { '@type': typeUrl, ...body }
        : { '@type': typeUrl, value: body };
    }
    case 'google.protobuf.Duration':
      return durationToJson(msg as { seconds?: number; nanos?: number });
    case 'google.protobuf.Timestamp': {
      const ms = Number(msg['seconds'] ?? 0) * 1000 + Math.floor(Number(msg['nanos'] ?? 0) / 1e6);
      return new Date(ms).toISOString();
    }
    case 'google.protobuf.Struct':
      return structToJson(msg);
    case 'google.protobuf.Value':
      return valueToJson(msg);
    case 'google.protobuf.ListValue':
      return ((msg['values'] ?? []) as Record<string, unknown>[]).map(valueToJson);
  }
  if (WRAPPERS.has(name)) {
    const f = type.fields['value'];
    return f ? scalarToJson(f, msg['value']) : null;
  }
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    if (field.declaringField || field.name.startsWith('.')) continue;
    const value = msg[field.name];
    if (value === undefined || value === null) continue;
    // Oneof members: only the one set.
    if (field.partOf && msg[field.partOf.name] !== field.name) continue;
    const key = opts.names === 'json' ? lowerCamel(field.name) : field.name;
    const r = field.resolvedType;
    const isMsg = !!r && 'fieldsArray' in r;
    const conv = (v: unknown): unknown => (isMsg ? messageToJson(r as Type, v as Record<string, unknown>, opts) : scalarToJson(field, v));
    if (field.map) {
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length === 0) continue;
      out[key] = Object.fromEntries(entries.map(([k, v]) => [k, conv(v)]));
    } else if (field.repeated) {
      const arr = value as unknown[];
      if (arr.length === 0) continue;
      out[key] = arr.map(conv);
    } else if (isMsg) {
      out[key] = conv(value);
    } else {
      // proto3 scalars: omit defaults unless in a oneof (presence) or proto3 optional.
      const isDefault = value === 0 || value === '' || value === false || (value instanceof Uint8Array && value.length === 0);
      if (isDefault && !field.partOf) continue;
      out[key] = conv(value);
    }
  }
  return out;
}

function scalarToJson(field: Field, value: unknown): unknown {
  const r = field.resolvedType;
  if (r && 'values' in r && !('fieldsArray' in r)) {
    const en = r as Enum;
    return en.valuesById[value as number] ?? value;
  }
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'number' && FLOAT_TYPES.has(field.type) && !Number.isFinite(value)) return String(value);
  return value;
}

/** Render a decoded message (or an Any) as proto3 JSON: enums by name, durations as "1.5s", Anys with "@type". */
export function toProto3Json(fullName: string, message: object, options: ToJsonOptions = {}): unknown {
  return messageToJson(protoType(fullName), message as Record<string, unknown>, options);
}
