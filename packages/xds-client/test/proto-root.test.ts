// The lazily built protobuf root (src/proto-root.ts) must describe every type exactly as a
// root built from the whole descriptor does, whatever order types are first asked for in.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeProto3Json } from '../src/proto-json.js';
import { protoReflectionHeld, protoType, protoTypeForUrl, releaseProtoReflection, setProtoReleaseDelay, typeUrlOf } from '../src/proto.js';
import { LazyProtoRoot, prepareType } from '../src/proto-root.js';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs') as typeof import('protobufjs');
const DESCRIPTOR = new URL('../generated/descriptor.json', import.meta.url);
const DESCRIPTOR_TEXT = readFileSync(DESCRIPTOR, 'utf8');
const readDescriptor = () => DESCRIPTOR_TEXT;

function allTypeNames(): string[] {
  const names: string[] = [];
  const walk = (node: { nested?: Record<string, unknown> }, prefix: string) => {
    for (const [key, child] of Object.entries(node.nested ?? {})) {
      const c = child as { fields?: unknown; nested?: Record<string, unknown> };
      const full = prefix ? `${prefix}.${key}` : key;
      if (c.fields !== undefined) names.push(full);
      walk(c, full);
    }
  };
  walk(JSON.parse(readDescriptor()), '');
  return names;
}

/** What protobufjs knows of a type: its fields as resolved, oneofs, and their features. */
function describeType(type: import('protobufjs').Type): unknown {
  // Nested types are compared on their own (the lazy root builds only those it needs).
  const { nested: _nested, ...json } = type.toJSON() as { nested?: unknown };
  return {
    fullName: type.fullName,
    json,
    fields: type.fieldsArray.map((f) => ({
      name: f.name,
      resolved: f.resolvedType?.fullName,
      packed: f.packed,
      delimited: f.delimited,
      features: (f as unknown as { _features: unknown })._features,
    })),
  };
}

describe('LazyProtoRoot', () => {
  it('describes every type as the whole descriptor does, each asked for first in a root of its own', () => {
    const full = protobuf.Root.fromJSON(JSON.parse(readDescriptor()));
    const names = allTypeNames();
    expect(names.length).toBeGreaterThan(400);
    for (const name of names) {
      const lazy = new LazyProtoRoot(protobuf, readDescriptor);
      const type = lazy.findType(name);
      expect(type, name).toBeDefined();
      expect(describeType(type!), name).toEqual(describeType(full.lookupType(name)));
    }
  });

  it('describes every type as the whole descriptor does when it was first added as a field\'s type, one level down', () => {
    const full = protobuf.Root.fromJSON(JSON.parse(readDescriptor()));
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    const seen = new Set<string>();
    const walk = (type: import('protobufjs').Type): void => {
      if (seen.has(type.fullName)) return;
      seen.add(type.fullName);
      // Added unresolved as a field's type of the one before; resolved here, as a first decode would.
      prepareType(type);
      expect(describeType(type), type.fullName).toEqual(describeType(full.lookupType(type.fullName)));
      for (const f of type.fieldsArray) if (f.resolvedType && 'fieldsArray' in f.resolvedType) walk(f.resolvedType as import('protobufjs').Type);
    };
    for (const root of ['envoy.service.discovery.v3.DiscoveryResponse', 'envoy.config.listener.v3.Listener', 'envoy.config.cluster.v3.Cluster', 'envoy.config.route.v3.RouteConfiguration']) {
      walk(lazy.findType(root)!);
    }
    expect(seen.size).toBeGreaterThan(150);
  });

  it('adds only the types a looked-up type\'s fields refer to, not everything they reach', () => {
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    const listener = lazy.findType('envoy.config.listener.v3.Listener')!;
    const direct = new Set(listener.fieldsArray.filter((f) => f.resolvedType).map((f) => f.resolvedType!.fullName));
    // The Listener, its field types and the messages those are nested in.
    expect(lazy.size).toBeLessThanOrEqual(direct.size + 5);
    const decoded = listener.decode(encodeProto3Json('envoy.config.listener.v3.Listener', { name: 'l', address: { socket_address: { address: '::', port_value: 80 } } }));
    expect(decoded).toMatchObject({ name: 'l', address: { socket_address: { address: '::', port_value: 80 } } });
  });

  it('adds later types to a root that already has others, and they decode', () => {
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    const request = lazy.findType('envoy.service.discovery.v3.DiscoveryRequest')!;
    const before = lazy.size;
    expect(before).toBeLessThan(100);
    // Cluster shares core types with DiscoveryRequest (Node, Locality, ...): those are not built twice.
    const cluster = lazy.findType('envoy.config.cluster.v3.Cluster')!;
    expect(lazy.size).toBeGreaterThan(before);
    const bytes = encodeProto3Json('envoy.config.cluster.v3.Cluster', {
      name: 'c',
      type: 'EDS',
      connect_timeout: '1.5s',
      circuit_breakers: { thresholds: [{ max_connections: 7 }] },
    });
    const decoded = cluster.toObject(cluster.decode(bytes), { enums: String }) as Record<string, unknown>;
    expect(decoded).toMatchObject({ name: 'c', type: 'EDS', connect_timeout: { seconds: 1, nanos: 500_000_000 } });
    expect(decoded.circuit_breakers).toEqual({ thresholds: [{ max_connections: { value: 7 } }] });
    expect(request.decode(request.encode({ type_url: 'x', resource_names: ['a'] }).finish())).toMatchObject({ type_url: 'x', resource_names: ['a'] });
  });

  it('generates each of a type\'s functions on its first call only, and they agree with protobufjs\'s own', () => {
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    const whole = protobuf.Root.fromJSON(JSON.parse(readDescriptor()));
    const name = 'envoy.config.cluster.v3.Cluster';
    const type = lazy.findType(name)! as unknown as Record<string, (...a: unknown[]) => unknown> & import('protobufjs').Type;
    const reference = whole.lookupType(name);
    const value = { name: 'c', type: 'EDS', connect_timeout: { seconds: 1, nanos: 5 }, load_assignment: { cluster_name: 'c' } };
    const bytes = reference.encode(reference.fromObject(value)).finish();
    // Only decode has been asked for: the other four are still the first-call stubs.
    const decoded = type.decode(bytes);
    const generated = (slot: string) => type[slot]!.name !== 'firstCall';
    expect(['encode', 'decode', 'verify', 'fromObject', 'toObject'].filter(generated)).toEqual(['decode']);
    expect(type.toObject(decoded)).toEqual(reference.toObject(reference.decode(bytes)));
    expect(type.verify(decoded)).toBe(reference.verify(reference.decode(bytes)));
    expect(type.encode(type.fromObject(value)).finish()).toEqual(bytes);
    expect(['encode', 'decode', 'verify', 'fromObject', 'toObject'].filter(generated)).toHaveLength(5);
    // google.protobuf.Any keeps protobufjs's wrapper: fromObject takes "@type", toObject gives it back.
    const any = lazy.findType('google.protobuf.Any')!;
    const packed = any.fromObject({ '@type': `type.googleapis.com/${name}`, name: 'x' });
    expect(any.toObject(any.decode(any.encode(packed).finish()), { json: true })).toEqual({ '@type': `type.googleapis.com/${name}`, name: 'x' });
  });

  it('builds a nested type with the message that holds it', () => {
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    const nested = lazy.findType('envoy.config.cluster.v3.Cluster.CommonLbConfig')!;
    expect(nested.fullName).toBe('.envoy.config.cluster.v3.Cluster.CommonLbConfig');
    expect(nested.parent).toBe(lazy.findType('envoy.config.cluster.v3.Cluster'));
  });

  it('answers undefined for a name the descriptor lacks, and for an enum or a package', () => {
    const lazy = new LazyProtoRoot(protobuf, readDescriptor);
    expect(lazy.findType('envoy.config.cluster.v3.NoSuchThing')).toBeUndefined();
    expect(lazy.findType('envoy.config.cluster.v3')).toBeUndefined();
    expect(lazy.findType('envoy.config.core.v3.RoutingPriority')).toBeUndefined();
    expect(lazy.size).toBe(0);
  });

  it('parses the descriptor once for lookups close together', () => {
    let reads = 0;
    const lazy = new LazyProtoRoot(protobuf, () => {
      reads++;
      return readDescriptor();
    });
    lazy.findType('envoy.config.listener.v3.Listener');
    lazy.findType('envoy.config.route.v3.RouteConfiguration');
    lazy.findType('envoy.config.endpoint.v3.ClusterLoadAssignment');
    lazy.findType('no.such.Type');
    expect(reads).toBe(1);
  });
});

describe('protoType', () => {
  it('throws for an unknown type, as before', () => {
    expect(() => protoType('envoy.config.cluster.v3.NoSuchThing')).toThrow('no such type: envoy.config.cluster.v3.NoSuchThing');
    expect(protoTypeForUrl(typeUrlOf('envoy.config.cluster.v3.NoSuchThing'))).toBeUndefined();
  });

  it('finds a type first used late (an HTTP filter config) in the process-wide root', () => {
    const type = protoTypeForUrl(typeUrlOf('envoy.extensions.filters.http.fault.v3.HTTPFault'));
    expect(type?.fullName).toBe('.envoy.extensions.filters.http.fault.v3.HTTPFault');
    const bytes = encodeProto3Json('envoy.extensions.filters.http.fault.v3.HTTPFault', { abort: { http_status: 503, percentage: { numerator: 10 } } });
    expect(type!.decode(bytes)).toMatchObject({ abort: { http_status: 503, percentage: { numerator: 10 } } });
  });

  it('keeps answering after the reflection is released, with the same root while it is still referenced', () => {
    const before = protoType('envoy.config.cluster.v3.Cluster');
    releaseProtoReflection();
    expect(protoReflectionHeld()).toBe(false);
    // `before` keeps the root alive, so it is found again, not built a second time.
    expect(protoType('envoy.config.cluster.v3.Cluster')).toBe(before);
    expect(protoReflectionHeld()).toBe(true);
    const bytes = encodeProto3Json('envoy.config.cluster.v3.Cluster', { name: 'c' });
    expect(before.decode(bytes)).toMatchObject({ name: 'c' });
  });

  it('lets the reflection go once no lookup has come for the release delay', async () => {
    const previous = setProtoReleaseDelay(20);
    try {
      releaseProtoReflection();
      protoType('envoy.config.cluster.v3.Cluster');
      expect(protoReflectionHeld()).toBe(true);
      for (let i = 0; i < 500 && protoReflectionHeld(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(protoReflectionHeld()).toBe(false);
    } finally {
      setProtoReleaseDelay(previous);
    }
  });
});
