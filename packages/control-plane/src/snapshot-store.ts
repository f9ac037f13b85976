// The resources the control plane serves, per type URL, with a version per type.
// Protocol handlers (state-of-the-world today, delta later) read from it and subscribe
// to its changes; nothing here knows about streams.
import { storedResource, type EncodedAny, type StoredResource } from './resource-input.js';

/** One change to one type: its new version and every name added, modified or removed. */
export interface TypeChange {
  readonly typeUrl: string;
  readonly version: string;
  readonly changed: ReadonlySet<string>;
}

interface TypeState {
  counter: number;
  resources: Map<string, StoredResource>;
  /** Every resource's framed entry, concatenated; built on demand for wildcard subscribers. */
  all?: { buffer: Buffer; count: number };
}

const EMPTY: ReadonlyMap<string, StoredResource> = new Map();

export class SnapshotStore {
  private readonly types = new Map<string, TypeState>();
  private readonly listeners = new Set<(change: TypeChange) => void>();

  /** Call `listener` after every change; returns the unsubscribe function. */
  onChange(listener: (change: TypeChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The type's version: '0' before anything was set, then bumped on every change. */
  version(typeUrl: string): string {
    return String(this.types.get(typeUrl)?.counter ?? 0);
  }

  resources(typeUrl: string): ReadonlyMap<string, StoredResource> {
    return this.types.get(typeUrl)?.resources ?? EMPTY;
  }

  typeUrls(): string[] {
    return [...this.types.keys()];
  }

  /** Every resource of the type, framed for a response, in insertion order. Cached per version. */
  all(typeUrl: string): { buffer: Buffer; count: number } {
    const state = this.types.get(typeUrl);
    if (!state) return { buffer: Buffer.alloc(0), count: 0 };
    if (!state.all) {
      const parts: Buffer[] = [];
      let count = 0;
      for (const r of state.resources.values()) {
        parts.push(r.framed);
        count += r.copies;
      }
      state.all = { buffer: Buffer.concat(parts), count };
    }
    return state.all;
  }

  /** Replace the whole set of the type. A name given twice is sent twice (for duplicate-name tests). */
  replace(typeUrl: string, entries: readonly { name: string; any: EncodedAny }[]): TypeChange | undefined {
    const state = this.state(typeUrl);
    const next = this.build(typeUrl, state, entries);
    const changed = new Set<string>();
    for (const [name, r] of next) {
      const old = state.resources.get(name);
      if (!old || !old.framed.equals(r.framed)) changed.add(name);
    }
    for (const name of state.resources.keys()) if (!next.has(name)) changed.add(name);
    if (changed.size === 0) return undefined;
    return this.commit(typeUrl, state, keepUnchanged(state.resources, next, changed), changed);
  }

  /** Add or replace the given resources by name; others stay. */
  upsert(typeUrl: string, entries: readonly { name: string; any: EncodedAny }[]): TypeChange | undefined {
    const state = this.state(typeUrl);
    const incoming = this.build(typeUrl, state, entries);
    const changed = new Set<string>();
    for (const [name, r] of incoming) {
      const old = state.resources.get(name);
      if (!old || !old.framed.equals(r.framed)) changed.add(name);
    }
    if (changed.size === 0) return undefined;
    const next = new Map(state.resources);
    for (const name of changed) next.set(name, incoming.get(name)!);
    return this.commit(typeUrl, state, next, changed);
  }

  remove(typeUrl: string, names: readonly string[]): TypeChange | undefined {
    const state = this.types.get(typeUrl);
    if (!state) return undefined;
    const changed = new Set(names.filter((n) => state.resources.has(n)));
    if (changed.size === 0) return undefined;
    const next = new Map(state.resources);
    for (const name of changed) next.delete(name);
    return this.commit(typeUrl, state, next, changed);
  }

  private state(typeUrl: string): TypeState {
    let state = this.types.get(typeUrl);
    if (!state) {
      state = { counter: 0, resources: new Map() };
      this.types.set(typeUrl, state);
    }
    return state;
  }

  /** Frame each entry once, stamped with the version it will be committed at. */
  private build(typeUrl: string, state: TypeState, entries: readonly { name: string; any: EncodedAny }[]): Map<string, StoredResource> {
    const version = String(state.counter + 1);
    const out = new Map<string, StoredResource>();
    for (const { name, any } of entries) {
      const r = storedResource(typeUrl, name, any, version);
      const prior = out.get(name);
      out.set(name, prior ? withDuplicate(prior, r) : r);
    }
    return out;
  }

  private commit(typeUrl: string, state: TypeState, next: Map<string, StoredResource>, changed: Set<string>): TypeChange {
    state.counter++;
    state.resources = next;
    state.all = undefined;
    const change: TypeChange = { typeUrl, version: String(state.counter), changed };
    for (const listener of [...this.listeners]) listener(change);
    return change;
  }
}

/** Keep the old object (and its version stamp) for every resource that did not change. */
function keepUnchanged(
  old: Map<string, StoredResource>,
  next: Map<string, StoredResource>,
  changed: Set<string>,
): Map<string, StoredResource> {
  const out = new Map<string, StoredResource>();
  for (const [name, r] of next) out.set(name, changed.has(name) ? r : (old.get(name) ?? r));
  return out;
}

function withDuplicate(first: StoredResource, extra: StoredResource): StoredResource {
  return { ...first, framed: Buffer.concat([first.framed, extra.framed]), copies: first.copies + extra.copies };
}
