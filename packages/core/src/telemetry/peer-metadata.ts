// Istio's HTTP metadata exchange (istio/proxy peer_metadata filter, "istio_headers"): each
// side of a call sends its workload in `x-envoy-peer-metadata` (base64 of a serialized
// google.protobuf.Struct: NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS{app, version,
// service.istio.io/canonical-name, -revision}) and its node id in `x-envoy-peer-metadata-id`.
// A client sends them on requests into the mesh; a server that received them answers with its
// own. That is how a sidecar learns its peer's workload for source_* / destination_* labels,
// and how meshlet and Envoy sidecars learn each other's. Only the Struct subset that carries
// strings and nested structs is encoded; everything else is skipped when decoding.
import type { NodeConfig } from '@meshlet/xds-client';
import { LATEST, UNKNOWN, type WorkloadLabels } from './istio-labels.js';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

export interface PeerMetadataHeaders {
  readonly id: string;
  readonly value: string;
}

type StructJson = { [key: string]: string | StructJson };

/** This process's exchange headers, from the bootstrap node and its workload labels. */
export function peerMetadataHeaders(node: NodeConfig | undefined, local: WorkloadLabels): PeerMetadataHeaders | undefined {
  if (!node) return undefined;
  const known = (v: string) => (v === UNKNOWN ? undefined : v);
  const md = node.metadata ?? {};
  const podName = typeof md['NAME'] === 'string' ? md['NAME'] : podNameFromNodeId(node.id);
  const labels: StructJson = {};
  const put = (o: StructJson, k: string, v: string | undefined) => {
    if (v) o[k] = v;
  };
  put(labels, 'service.istio.io/canonical-name', known(local.canonicalService));
  put(labels, 'service.istio.io/canonical-revision', local.canonicalRevision === LATEST ? undefined : local.canonicalRevision);
  put(labels, 'app', known(local.app));
  put(labels, 'version', known(local.version));
  const fields: StructJson = {};
  put(fields, 'NAME', podName);
  put(fields, 'NAMESPACE', known(local.namespace));
  put(fields, 'WORKLOAD_NAME', known(local.workload));
  put(fields, 'CLUSTER_ID', known(local.cluster));
  if (typeof md['OWNER'] === 'string') fields['OWNER'] = md['OWNER'];
  fields['LABELS'] = labels;
  return { id: node.id, value: Buffer.from(encodeStruct(fields)).toString('base64') };
}

function podNameFromNodeId(id: string): string | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const dot = parts[2]!.indexOf('.');
  return dot > 0 ? parts[2]!.slice(0, dot) : parts[2] || undefined;
}

/** A peer's workload from its `x-envoy-peer-metadata` value; undefined when it does not parse. */
export function decodePeerMetadata(value: string): WorkloadLabels | undefined {
  let fields: StructJson;
  try {
    fields = decodeStruct(Buffer.from(value, 'base64'));
  } catch {
    return undefined;
  }
  const s = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const labels = typeof fields['LABELS'] === 'object' ? fields['LABELS'] : {};
  const workload = s(fields['WORKLOAD_NAME']);
  if (!workload && !s(fields['NAMESPACE'])) return undefined;
  return Object.freeze({
    workload: workload ?? UNKNOWN,
    namespace: s(fields['NAMESPACE']) ?? UNKNOWN,
    app: s(labels['app']) ?? UNKNOWN,
    version: s(labels['version']) ?? UNKNOWN,
    canonicalService: s(labels['service.istio.io/canonical-name']) ?? UNKNOWN,
    canonicalRevision: s(labels['service.istio.io/canonical-revision']) ?? LATEST,
    cluster: s(fields['CLUSTER_ID']) ?? UNKNOWN,
  });
}

// ---------------------------------------------------------------- google.protobuf.Struct wire format
// Struct { map<string, Value> fields = 1 }; Value { oneof kind: null_value = 1, number_value = 2,
// string_value = 3, bool_value = 4, struct_value = 5, list_value = 6 }.

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function encodeStruct(o: StructJson): Uint8Array {
  const out: number[] = [];
  // Deterministic: map entries sorted by key, as Istio serializes its own.
  for (const key of Object.keys(o).sort()) {
    const v = o[key]!;
    const value = typeof v === 'string' ? field(3, utf8.encode(v)) : field(5, encodeStruct(v));
    pushBytes(out, field(1, concat(field(1, utf8.encode(key)), field(2, value))));
  }
  return Uint8Array.from(out);
}

function field(num: number, bytes: Uint8Array): Uint8Array {
  const head: number[] = [];
  varint(head, (num << 3) | 2);
  varint(head, bytes.length);
  return concat(Uint8Array.from(head), bytes);
}

function varint(out: number[], n: number): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}

function pushBytes(out: number[], b: Uint8Array): void {
  for (const x of b) out.push(x);
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end || shift > 28) throw new Error('bad varint');
      const b = this.buf[this.pos++]!;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
  }
  bytes(): Reader {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error('truncated');
    const r = new Reader(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return r;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`wire type ${wireType}`);
    if (this.pos > this.end) throw new Error('truncated');
  }
  string(): string {
    const r = this.bytes();
    return utf8Decoder.decode(r.buf.subarray(r.pos, r.end));
  }
}

function decodeStruct(buf: Uint8Array, depth = 0): StructJson {
  if (depth > 8) throw new Error('too deep');
  const r = new Reader(buf);
  const out: StructJson = {};
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag >>> 3 !== 1 || (tag & 7) !== 2) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.bytes();
    let key: string | undefined;
    let value: string | StructJson | undefined;
    while (entry.pos < entry.end) {
      const t = entry.varint();
      if (t === ((1 << 3) | 2)) key = entry.string();
      else if (t === ((2 << 3) | 2)) value = decodeValue(entry.bytes(), depth);
      else entry.skip(t & 7);
    }
    if (key !== undefined && value !== undefined) out[key] = value;
  }
  return out;
}

function decodeValue(r: Reader, depth: number): string | StructJson | undefined {
  let value: string | StructJson | undefined;
  while (r.pos < r.end) {
    const t = r.varint();
    if (t === ((3 << 3) | 2)) value = r.string();
    else if (t === ((5 << 3) | 2)) {
      const s = r.bytes();
      value = decodeStruct(s.buf.subarray(s.pos, s.end), depth + 1);
    } else r.skip(t & 7);
  }
  return value;
}
