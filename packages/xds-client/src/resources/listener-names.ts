// The listener catalog's resource type: a Listener's name and nothing else. The catalog (core's
// MeshOptions.listenerCatalog) asks only which Listeners the server has; decoding and validating
// every Listener of every wildcard push only to drop the result cost an Istio mesh's clients CPU
// on each push and kept a decoded copy of every outbound Listener. The name is field 1 of
// envoy.config.listener.v3.Listener, read off the wire without protobuf reflection. Listeners are
// not validated here, so this stream accepts a Listener the main stream NACKs for its content:
// it applies names only (docs/design.md, "The listener catalog reads names only").
import type { AnyMessage, DecodeContext, DecodeResult, XdsResourceType } from '../resource-type.js';
import { TYPE_URLS } from '../proto.js';

const LISTENER_NAME_FIELD = 1;
const utf8 = new TextDecoder();

/** A varint at `pos`: its value (exact up to 2^53) and the position after it. */
function varint(bytes: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= bytes.length) throw new Error('truncated varint');
    const b = bytes[pos + i]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return { value, next: pos + i + 1 };
    scale *= 128;
  }
  throw new Error('varint longer than 10 bytes');
}

/** The last `name` (field 1) of a serialized Listener, as protobuf's last-one-wins rule reads it. */
export function listenerNameFromBytes(bytes: Uint8Array): string {
  let name = '';
  let pos = 0;
  while (pos < bytes.length) {
    const tag = varint(bytes, pos);
    pos = tag.next;
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    if (field === 0) throw new Error('field number 0');
    switch (wireType) {
      case 0:
        pos = varint(bytes, pos).next;
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const length = varint(bytes, pos);
        const end = length.next + length.value;
        if (end > bytes.length) throw new Error(`field ${field} runs past the end`);
        if (field === LISTENER_NAME_FIELD) name = utf8.decode(bytes.subarray(length.next, end));
        pos = end;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`field ${field} has wire type ${wireType}, which a Listener does not use`);
    }
    if (pos > bytes.length) throw new Error(`field ${field} runs past the end`);
  }
  return name;
}

/** Listeners by name only; registered nowhere (the Listener type of the registry decodes them whole). */
export const listenerNamesResourceType: XdsResourceType<string> = {
  typeUrl: TYPE_URLS.listener,
  shortName: 'Listener',
  allResourcesRequiredInSotW: true,
  decode(_context: DecodeContext, resource: AnyMessage): DecodeResult<string> {
    if (resource.type_url !== TYPE_URLS.listener) {
      return { error: `expected a Listener (${TYPE_URLS.listener}), got ${resource.type_url}` };
    }
    let name: string;
    try {
      name = listenerNameFromBytes(resource.value);
    } catch (e) {
      return { error: `cannot decode Listener: ${(e as Error).message}` };
    }
    if (!name) return { error: 'Listener has an empty name' };
    return { name, value: name };
  },
};
