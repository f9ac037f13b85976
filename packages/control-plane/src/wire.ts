// Protobuf wire framing for the few messages the server builds by hand. A
// DiscoveryResponse is `version_info`, then one length-delimited `resources` entry per
// resource, then `type_url`, `nonce` and `control_plane`. Each resource's entry
// (tag + length + Any bytes) is framed once when the resource is set, so a response
// for 10,000 resources is a concatenation, not 10,000 encodes.
// Wire format: https://protobuf.dev/programming-guides/encoding/

const WIRE_LEN = 2;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[offset++] = n;
  return offset;
}

/** Field `fieldNumber` (wire type LEN) holding `payload`: tag, length, bytes. */
export function lengthDelimited(fieldNumber: number, payload: Uint8Array): Buffer {
  const tag = (fieldNumber << 3) | WIRE_LEN;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(payload.length) + payload.length);
  let offset = writeVarint(out, 0, tag);
  offset = writeVarint(out, offset, payload.length);
  out.set(payload, offset);
  return out;
}

/** A string field, or nothing for '' (proto3 omits default values). */
export function stringField(fieldNumber: number, value: string): Buffer {
  if (value === '') return Buffer.alloc(0);
  return lengthDelimited(fieldNumber, Buffer.from(value, 'utf8'));
}

/** A google.protobuf.Any: type_url = 1, value = 2. */
export function encodeAny(typeUrl: string, value: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, typeUrl), value.length > 0 ? lengthDelimited(2, value) : Buffer.alloc(0)]);
}

// envoy.service.discovery.v3.DiscoveryResponse field numbers (discovery.proto).
const RESPONSE_VERSION_INFO = 1;
export const RESPONSE_RESOURCES = 2;
const RESPONSE_TYPE_URL = 4;
const RESPONSE_NONCE = 5;
const RESPONSE_CONTROL_PLANE = 6;
// envoy.config.core.v3.ControlPlane.identifier
const CONTROL_PLANE_IDENTIFIER = 1;

/** A DiscoveryResponse whose resources are already framed as field 2 entries. */
export interface PreparedResponse {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** Framed `resources` entries, in order; a single Buffer when shared by many streams. */
  resources: readonly Buffer[];
  resourceCount: number;
  controlPlaneIdentifier?: string;
}

export function serializeResponse(response: PreparedResponse): Buffer {
  const parts: Buffer[] = [stringField(RESPONSE_VERSION_INFO, response.versionInfo)];
  for (const r of response.resources) parts.push(r);
  parts.push(stringField(RESPONSE_TYPE_URL, response.typeUrl), stringField(RESPONSE_NONCE, response.nonce));
  if (response.controlPlaneIdentifier) {
    parts.push(lengthDelimited(RESPONSE_CONTROL_PLANE, stringField(CONTROL_PLANE_IDENTIFIER, response.controlPlaneIdentifier)));
  }
  return Buffer.concat(parts);
}
