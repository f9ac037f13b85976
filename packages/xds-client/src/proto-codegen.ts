// protobufjs generates five functions for a message type the first time any of them is used
// (encode, decode, verify, fromObject, toObject: Type#setup), each compiled from source text
// that V8 keeps for as long as the function lives. meshlet only decodes most xDS types, so the
// other four were dead weight in every process's live heap (about 0.5 MB of source text and
// code for the ~290 types a client builds; docs/design.md, "Resident heap costs every call").
// A type built here gets a setup that puts a stub in each of the five places, in the order
// protobufjs uses, and each stub generates its own function on its first call and puts it in
// its place. The functions are the ones protobufjs would have made, with the same arguments
// (their field types are resolved when the first of them is generated), and the well-known
// types' wrappers (google.protobuf.Any's fromObject/toObject) are applied as protobufjs does.
import type { Type } from 'protobufjs';

type Protobuf = typeof import('protobufjs');
type Fn = (...args: unknown[]) => unknown;
type Generated = (scope: Record<string, unknown>) => Fn;
type Slot = 'encode' | 'decode' | 'verify' | 'fromObject' | 'toObject';

/**
 * Give `type` a setup that generates each of its functions on that function's first call.
 * `prepare` resolves the type's fields (src/proto-root.ts adds the types they refer to then).
 */
export function setupOnDemand(protobuf: Protobuf, type: Type, prepare: (type: Type) => void): void {
  const { encoder, decoder, verifier, converter, wrappers, Reader, Writer, util } = protobuf;
  const t = type as unknown as Record<Slot, Fn> & { setup: () => Type; fieldsArray: Type['fieldsArray'] };
  t.setup = function setup(): Type {
    prepare(type);
    let types: unknown[] | undefined;
    const fieldTypes = (): unknown[] => (types ??= t.fieldsArray.map((f) => f.resolve().resolvedType));
    // The wrapper of a well-known type calls the generated function through `inner`, as
    // protobufjs's own setup does with its `originalThis`.
    const wrapper = wrappers[type.fullName];
    const inner = wrapper === undefined ? t : (Object.create(type) as typeof t);
    /** `target[slot]` made by `codegen` (with the scope protobufjs gives it) on its first call. */
    const onDemand = (target: typeof t, slot: Slot, codegen: (type: Type) => unknown, scope: Record<string, unknown>): void => {
      target[slot] = function firstCall(this: unknown, ...args: unknown[]): unknown {
        const fn = (codegen(type) as Generated)({ ...scope, types: fieldTypes(), util });
        target[slot] = fn;
        // Generated functions read `this` (fromObject: `this.ctor`): keep the caller's.
        return fn.apply(this, args);
      };
    };
    onDemand(t, 'encode', encoder, { Writer });
    onDemand(t, 'decode', decoder, { Reader });
    onDemand(t, 'verify', verifier, {});
    onDemand(inner, 'fromObject', converter.fromObject, {});
    onDemand(inner, 'toObject', converter.toObject, {});
    if (wrapper !== undefined) {
      t.fromObject = (wrapper.fromObject as Fn).bind(inner);
      t.toObject = (wrapper.toObject as Fn).bind(inner);
    }
    return type;
  };
}
