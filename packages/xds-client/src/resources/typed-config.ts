// Extension configs arrive as google.protobuf.Any. A TypedStruct (udpa.type.v1 or
// xds.type.v3) wraps a config as JSON under the type URL it stands for; both forms
// reach a parser as one TypedConfig, so a registered filter or LB policy handles
// either without knowing which one the control plane sent.
import { protoType, strictBytes } from '../proto.js';
import { encodeProto3Json } from '../proto-json.js';
import type { google_protobuf_Any, udpa_type_v1_TypedStruct } from '../generated/pb.js';
import { fail, errorMessage, ResourceError, structToJson, sub } from './common.js';
import type { JsonObject } from './types.js';

export interface TypedConfig {
  /** The config's type URL; for a TypedStruct, the type URL it wraps. */
  readonly typeUrl: string;
  /** The serialized message (an Any's value). */
  readonly bytes?: Uint8Array | undefined;
  /** The JSON form (a TypedStruct's value). */
  readonly json?: JsonObject | undefined;
}

export const TYPED_STRUCT_URLS: ReadonlySet<string> = new Set([
  'type.googleapis.com/udpa.type.v1.TypedStruct',
  'type.googleapis.com/xds.type.v3.TypedStruct',
]);

/** Unwrap an Any (and a TypedStruct inside it). */
export function unwrapAny(any: google_protobuf_Any | null | undefined, path: string): TypedConfig {
  if (!any) fail(path, 'typed config is required');
  if (TYPED_STRUCT_URLS.has(any.type_url)) {
    const ts = decodeBytes<udpa_type_v1_TypedStruct>(messageNameOf(any.type_url), any.value, path);
    if (!ts.type_url) fail(sub(path, 'type_url'), 'TypedStruct type_url must not be empty');
    return { typeUrl: ts.type_url, json: structToJson(ts.value) };
  }
  return { typeUrl: any.type_url, bytes: any.value };
}

/** The message name of a type URL (everything after the last '/'). */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

export function decodeBytes<T>(fullName: string, bytes: Uint8Array, path: string): T {
  try {
    return protoType(fullName).decode(strictBytes(bytes)) as unknown as T;
  } catch (e) {
    fail(path, `cannot decode ${fullName}: ${errorMessage(e)}`);
  }
}

/**
 * The message a TypedConfig holds, as the generated interface for `fullName`:
 * decoded from bytes, or built from a TypedStruct's proto3 JSON.
 */
export function typedConfigMessage<T>(fullName: string, config: TypedConfig, path: string): T {
  if (config.bytes) return decodeBytes<T>(fullName, config.bytes, path);
  try {
    // A TypedStruct's value is the proto3 JSON form. Going through the wire format
    // makes defaults and oneof discriminators look exactly as for a decoded Any.
    return protoType(fullName).decode(encodeProto3Json(fullName, config.json ?? {})) as unknown as T;
  } catch (e) {
    fail(path, `cannot convert TypedStruct to ${fullName}: ${errorMessage(e)}`);
  }
}

/**
 * Run a user- or built-in parser on a TypedConfig, turning what it throws into a
 * ResourceError under `path`. Parsers throw ResourceError with a path relative to
 * their config, or any Error.
 */
export function runParser<R>(parse: () => R, path: string): R {
  try {
    return parse();
  } catch (e) {
    if (e instanceof ResourceError) throw new ResourceError(e.path ? sub(path, e.path) : path, e.reason);
    fail(path, errorMessage(e));
  }
}
