// Turning what a caller hands the control plane (proto3 JSON, or an encoded Any) into a
// stored resource: name, Any, and the Any framed once as a DiscoveryResponse entry.
import { anyFromProto3Json } from '@meshlet/xds-client/proto-json';
import { protoTypeForUrl } from '@meshlet/xds-client/proto';
import { encodeAny, lengthDelimited, RESPONSE_RESOURCES } from './wire.js';

export interface EncodedAny {
  type_url: string;
  value: Uint8Array;
}

/** An already-encoded resource: sent as given. */
export interface EncodedResourceInput {
  name: string;
  any: EncodedAny;
}

/**
 * A resource: proto3 JSON (snake_case or lowerCamelCase keys; an "@type", if present,
 * must agree with the type URL it is set under) or an already-encoded `{ name, any }`.
 */
export type ResourceInput = Record<string, unknown> | EncodedResourceInput;

export interface StoredResource {
  readonly name: string;
  readonly typeUrl: string;
  readonly any: EncodedAny;
  /** The Any framed as a `DiscoveryResponse.resources` entry. */
  readonly framed: Buffer;
  /** The type version at which this resource last changed (for delta xDS). */
  readonly version: string;
  /** How many entries `framed` holds: 1, or more when a raw set repeats a name on purpose. */
  readonly copies: number;
}

export class ResourceInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResourceInputError';
  }
}

function isEncoded(input: ResourceInput): input is EncodedResourceInput {
  const any = (input as { any?: unknown }).any;
  return (
    typeof (input as { name?: unknown }).name === 'string' &&
    typeof any === 'object' &&
    any !== null &&
    (any as { value?: unknown }).value instanceof Uint8Array &&
    !('@type' in input)
  );
}

function fullNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  return slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl;
}

/**
 * The resource's name, from the JSON field that names it: `name` for most types,
 * `cluster_name` for ClusterLoadAssignment (and any type whose name field is that).
 */
function nameFromJson(typeUrl: string, json: Record<string, unknown>): string {
  const type = protoTypeForUrl(typeUrl);
  const candidates = type && !type.fields['name'] && type.fields['cluster_name'] ? ['cluster_name', 'clusterName'] : ['name'];
  for (const key of candidates) {
    const v = json[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  throw new ResourceInputError(`${candidates[0]}: a ${fullNameOf(typeUrl)} resource needs a non-empty ${candidates[0]}`);
}

/** Encode one input for `typeUrl`. Throws ResourceInputError or ProtoJsonError (with the field path). */
export function encodeResourceInput(typeUrl: string, input: ResourceInput): { name: string; any: EncodedAny } {
  if (isEncoded(input)) return { name: input.name, any: { type_url: input.any.type_url, value: input.any.value } };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ResourceInputError('a resource must be a JSON object');
  }
  const declared = input['@type'];
  if (declared !== undefined && declared !== typeUrl) {
    throw new ResourceInputError(`@type: ${String(declared)} does not match the type URL ${typeUrl}`);
  }
  if (!protoTypeForUrl(typeUrl)) throw new ResourceInputError(`@type: unknown type ${typeUrl}`);
  const name = nameFromJson(typeUrl, input);
  const any = anyFromProto3Json(declared === undefined ? { '@type': typeUrl, ...input } : input);
  return { name, any };
}

export function storedResource(typeUrl: string, name: string, any: EncodedAny, version: string): StoredResource {
  return { name, typeUrl, any, version, copies: 1, framed: lengthDelimited(RESPONSE_RESOURCES, encodeAny(any.type_url, any.value)) };
}
