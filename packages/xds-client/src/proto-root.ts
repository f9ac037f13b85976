// A protobufjs Root that holds only the types a process has asked for, and what those
// reach. The descriptor (generated/descriptor.json) describes 465 messages and 57 enums;
// built whole, protobufjs's reflection objects take about 3 MB of live heap (each field is
// an object of 25 properties, each namespace and type has a lookup cache of its own), and a
// process that stays up marks all of it on every major collection. A client decodes far
// fewer: ADS, Listener, HttpConnectionManager, Router, RouteConfiguration, Cluster,
// ClusterLoadAssignment and whatever they contain.
//
// So a type is added the first time someone looks it up, with every type its fields refer
// to (recursively) and the messages it is nested in: protobufjs resolves a type's fields
// when it builds that type's decoder, so everything reachable must exist by then. The set
// of types in the root stays closed under those two relations; that is what makes adding
// later safe. The descriptor's type references are absolute (scripts/gen-proto.mjs writes
// them so), so finding what a type needs takes no protobuf scoping rules.
//
// The parsed descriptor (~0.5 MB of objects) is held only through a WeakRef: lookups close
// together (the first responses of an ADS stream need a dozen new types) parse it once, and
// the next full collection lets it go, with no timer to manage.
import type { Enum, Namespace, Root, Type } from 'protobufjs';
import { setupOnDemand } from './proto-codegen.js';

type Protobuf = typeof import('protobufjs');

interface JsonNode {
  nested?: Record<string, JsonNode>;
  fields?: Record<string, { type: string; id: number; keyType?: string }>;
  values?: Record<string, number>;
  [key: string]: unknown;
}

interface Indexed {
  /** Full name (no leading dot) → the descriptor of that message or enum. */
  readonly byName: Map<string, JsonNode>;
}

export class LazyProtoRoot {
  readonly root: Root;
  readonly #protobuf: Protobuf;
  readonly #readDescriptor: () => string;
  /** Every message and enum the descriptor names: answers "no such type" without parsing it again. */
  #names: ReadonlySet<string> | undefined;
  #parsed: WeakRef<Indexed> | undefined;
  /** What has been added to the root, by full name. */
  readonly #built = new Map<string, Type | Enum>();

  constructor(protobuf: Protobuf, readDescriptor: () => string) {
    this.#protobuf = protobuf;
    this.#readDescriptor = readDescriptor;
    this.root = new protobuf.Root();
  }

  /** The message type with this full name (no leading dot), or undefined when the descriptor has none. */
  findType(fullName: string): Type | undefined {
    const found = this.#find(fullName);
    return found instanceof this.#protobuf.Type ? found : undefined;
  }

  /** How many messages and enums have been built (for tests and measurements). */
  get size(): number {
    return this.#built.size;
  }

  #find(fullName: string): Type | Enum | undefined {
    if (this.#names && !this.#names.has(fullName)) return undefined;
    const existing = this.#lookup(fullName);
    if (existing) return existing;
    const parsed = this.#descriptor();
    // Only messages are asked for; an enum comes along with the first message using it.
    if (parsed.byName.get(fullName)?.fields === undefined) return undefined;
    this.#add(fullName, parsed);
    return this.#lookup(fullName);
  }

  #lookup(fullName: string): Type | Enum | undefined {
    // Not the root's lookup: protobufjs answers a miss by searching every namespace and
    // caching the miss in each one's lookup cache (a dictionary each, ~2.5 KB per type
    // once a few hundred misses are in).
    return this.#built.get(fullName);
  }

  #descriptor(): Indexed {
    const kept = this.#parsed?.deref();
    if (kept) return kept;
    const json = JSON.parse(this.#readDescriptor()) as JsonNode;
    const byName = new Map<string, JsonNode>();
    const walk = (node: JsonNode, prefix: string): void => {
      for (const [key, child] of Object.entries(node.nested ?? {})) {
        const full = prefix ? `${prefix}.${key}` : key;
        if (child.fields !== undefined || child.values !== undefined) byName.set(full, child);
        walk(child, full);
      }
    };
    walk(json, '');
    this.#names ??= new Set(byName.keys());
    const parsed = { byName };
    this.#parsed = new WeakRef(parsed);
    return parsed;
  }

  /** Adds `fullName` and everything it needs that the root lacks, then resolves them. */
  #add(fullName: string, parsed: Indexed): void {
    const missing = new Set<string>();
    const visit = (name: string): void => {
      if (missing.has(name) || this.#lookup(name)) return;
      const node = parsed.byName.get(name);
      if (!node) throw new Error(`protobuf descriptor: no type ${name}`);
      missing.add(name);
      // A nested type lives inside its message: that message must exist (whole) first.
      const dot = name.lastIndexOf('.');
      if (dot > 0 && parsed.byName.get(name.slice(0, dot))?.fields !== undefined) visit(name.slice(0, dot));
      for (const field of Object.values(node.fields ?? {})) {
        if (field.type.startsWith('.')) visit(field.type.slice(1));
      }
    };
    visit(fullName);
    const { Type: TypeClass, Enum: EnumClass } = this.#protobuf;
    // A parent's name is a prefix of its children's: shorter names first puts parents first.
    for (const name of [...missing].sort((a, b) => a.length - b.length)) {
      const node = parsed.byName.get(name) as JsonNode;
      const dot = name.lastIndexOf('.');
      const parentName = dot > 0 ? name.slice(0, dot) : '';
      const simple = name.slice(dot + 1);
      const parent = parentName ? (this.#lookup(parentName) ?? this.root.define(parentName)) : this.root;
      // Nested types are added on their own, when needed, so leave them out here.
      const { nested: _nested, ...own } = node;
      const built =
        node.fields !== undefined
          ? TypeClass.fromJSON(simple, own as unknown as Parameters<typeof TypeClass.fromJSON>[1])
          : EnumClass.fromJSON(simple, own as unknown as Parameters<typeof EnumClass.fromJSON>[1]);
      if (built instanceof TypeClass) setupOnDemand(this.#protobuf, built);
      (parent as Namespace).add(built);
      this.#built.set(name, built);
    }
    this.root.resolveAll();
  }
}
