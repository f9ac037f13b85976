// A protobufjs Root that holds only the types a process has asked for, and what those
// reach. The descriptor (generated/descriptor.json) describes 465 messages and 57 enums;
// built whole, protobufjs's reflection objects take about 3 MB of live heap (each field is
// an object of 25 properties, each namespace and type has a lookup cache of its own), and a
// process that stays up marks all of it on every major collection. A client decodes far
// fewer: ADS, Listener, HttpConnectionManager, Router, RouteConfiguration, Cluster,
// ClusterLoadAssignment and whatever they contain.
//
// So a type is added the first time someone looks it up, with the messages it is nested in,
// and its fields are resolved then (findType) or before its first generated function runs
// (setup, src/proto-codegen.ts): resolving a field needs the type it refers to to exist, so
// those are added then, one level down, and their own fields wait for their own first use.
// A client thus builds the types it decodes and the types of their fields, not everything
// those could reach (119 of the 284 message types the whole closure had for the gRPC
// benchmark's configuration), and builds no constructor for a type it never decodes. The
// descriptor's type references are absolute (scripts/gen-proto.mjs writes them so), so
// finding a field's type takes no protobuf scoping rules.
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
  /** Types whose fields are resolved (and whose fields' types exist). */
  readonly #prepared = new Set<Type>();
  readonly #prepareFn = (type: Type): void => this.#prepare(type);

  constructor(protobuf: Protobuf, readDescriptor: () => string) {
    this.#protobuf = protobuf;
    this.#readDescriptor = readDescriptor;
    this.root = new protobuf.Root();
    roots.set(this.root, this);
  }

  /**
   * The message type with this full name (no leading dot), or undefined when the descriptor
   * has none. Its fields are resolved; the types they refer to are added but not resolved (see
   * prepareType).
   */
  findType(fullName: string): Type | undefined {
    const found = this.#find(fullName);
    if (!(found instanceof this.#protobuf.Type)) return undefined;
    this.#prepare(found);
    return found;
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

  /** Adds `fullName` and the messages it is nested in that the root lacks; resolves their features. */
  #add(fullName: string, parsed: Indexed): void {
    // A nested type lives inside its message: that message must exist (whole) first.
    const missing: string[] = [];
    for (let name = fullName; !this.#lookup(name); ) {
      if (!parsed.byName.has(name)) throw new Error(`protobuf descriptor: no type ${name}`);
      missing.push(name);
      const dot = name.lastIndexOf('.');
      if (dot <= 0 || parsed.byName.get(name.slice(0, dot))?.fields === undefined) break;
      name = name.slice(0, dot);
    }
    const { Type: TypeClass, Enum: EnumClass } = this.#protobuf;
    // Outermost first: each one's parent then exists.
    for (const name of missing.reverse()) {
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
      if (built instanceof TypeClass) setupOnDemand(this.#protobuf, built, this.#prepareFn);
      (parent as Namespace).add(built);
      this.#built.set(name, built);
    }
    // What Root#resolveAll does first: editions features (packed encoding and the like, which
    // the generated functions read), for the objects added since (protobufjs flags them).
    const root = this.root as unknown as { _edition: string; _resolveFeaturesRecursive(edition: string): void };
    root._resolveFeaturesRecursive(root._edition);
  }

  /** Resolves `type`'s fields, adding the types they refer to first (once per type). */
  #prepare(type: Type): void {
    if (this.#prepared.has(type)) return;
    let parsed: Indexed | undefined;
    for (const field of type.fieldsArray) {
      const ref = field.type;
      if (ref.charCodeAt(0) === 46 /* '.' */ && !this.#lookup(ref.slice(1))) this.#add(ref.slice(1), (parsed ??= this.#descriptor()));
    }
    // Each resolution also sets up the type's constructor (protobufjs: a field's default
    // value goes on its prototype), as Root#resolveAll would.
    for (const oneof of type.oneofsArray) oneof.resolve();
    for (const field of type.fieldsArray) field.resolve();
    this.#prepared.add(type);
  }
}

/** Each LazyProtoRoot by its protobufjs Root, for prepareType. */
const roots = new WeakMap<Root, LazyProtoRoot>();

/**
 * Make sure `type`'s fields are resolved, for code that walks the reflection itself
 * (src/proto-json.ts) into a field's type, which a LazyProtoRoot adds without resolving. A
 * no-op for a type of any other root (protobufjs's own, resolved whole).
 */
export function prepareType(type: Type): void {
  const lazy = roots.get(type.root as Root);
  lazy?.findType(type.fullName.slice(1));
}
