#!/usr/bin/env node
// Generates meshlet's protobuf code from the .proto files that ship in the
// @grpc/grpc-js-xds registry package (its deps/ folder: envoy-api, xds,
// googleapis, protoc-gen-validate). Nothing generated is committed.
//
// Outputs:
//   generated/descriptor.json  protobufjs reflection descriptor, loaded at run time
//                              (protobufjs compiles a decoder per type on first use,
//                              as fast as its static code), type references absolute
//   src/generated/pb.ts        TypeScript interfaces for decoded messages and enum
//                              value tables, so the decoders are type checked
//
// Why protobufjs: its .proto parser keeps unknown custom options uninterpreted, so
// the `(validate.rules)` options that are newer than the bundled validate.proto do
// not stop generation (protoc/buf would reject them).
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');
const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = join(here, '..');

const xdsPkg = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const protobufjsPkg = dirname(require.resolve('protobufjs/package.json'));
const includeDirs = [
  join(xdsPkg, 'deps/envoy-api'),
  join(xdsPkg, 'deps/xds'),
  join(xdsPkg, 'deps/googleapis'),
  join(xdsPkg, 'deps/protoc-gen-validate'),
  protobufjsPkg, // google/protobuf/descriptor.proto
];

// The roots; everything they import comes along.
export const ROOT_PROTOS = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/service/load_stats/v3/lrs.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/stateful_session/v3/stateful_session.proto',
  'envoy/extensions/http/stateful_session/cookie/v3/cookie.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/pick_first/v3/pick_first.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3/client_side_weighted_round_robin.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
];

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => {
  for (const dir of includeDirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`gen-proto: cannot find ${target} in ${includeDirs.join(', ')}`);
};
root.loadSync(ROOT_PROTOS, { keepCase: true });
root.resolveAll();

// Keep only what decoding needs: every message of the loaded files except those that
// exist only to annotate (.proto options: validate rules, udpa/xds/envoy annotations,
// descriptor.proto, google.api), plus anything a kept field reaches. The options
// themselves are dropped too: the descriptor shrinks by half and loads 3× faster.
const OPTION_ONLY = [/\/validate\//, /\/udpa\/annotations\//, /\/xds\/annotations\//, /\/envoy\/annotations\//, /google\/protobuf\/descriptor\.proto$/, /\/google\/api\//];
const reachable = new Set();
function visit(type) {
  if (reachable.has(type.fullName)) return;
  reachable.add(type.fullName);
  for (const field of type.fieldsArray) {
    if (field.declaringField || field.name.startsWith('.')) continue;
    const r = field.resolvedType;
    if (r instanceof protobuf.Type) visit(r);
    else if (r instanceof protobuf.Enum) reachable.add(r.fullName);
  }
}
(function collectRoots(ns) {
  for (const obj of ns.nestedArray) {
    // Types with no file are protobufjs's bundled well-known types (Any, Duration, wrappers...).
    if (obj instanceof protobuf.Type && !(obj.filename && OPTION_ONLY.some((re) => re.test(obj.filename)))) visit(obj);
    if (obj.nestedArray) collectRoots(obj);
  }
})(root);

function pruneJson(json, prefix) {
  if (!json.nested) return json;
  const nested = {};
  for (const [key, child] of Object.entries(json.nested)) {
    const full = `${prefix}.${key}`;
    const isType = 'fields' in child;
    const isEnum = 'values' in child;
    const keptChild = pruneJson(child, full);
    const hasNested = keptChild.nested && Object.keys(keptChild.nested).length > 0;
    if (reachable.has(full)) {
      const { options: _o, comment: _c, ...rest } = keptChild;
      if (isType) {
        const loaded = root.lookupType(full);
        rest.fields = Object.fromEntries(
          Object.entries(rest.fields).map(([name, f]) => {
            const { options: _fo, comment: _fc, ...frest } = f;
            // Message and enum references as absolute names (".envoy.config.core.v3.Node"),
            // so the run time can find what a type needs without protobuf's scoping rules
            // and build only the types it uses (src/proto-root.ts).
            const r = loaded.fields[name]?.resolvedType;
            if (r) frest.type = r.fullName;
            return [name, frest];
          }),
        );
        if (rest.oneofs) {
          rest.oneofs = Object.fromEntries(Object.entries(rest.oneofs).map(([name, o]) => [name, { oneof: o.oneof }]));
        }
      }
      if (isEnum) {
        delete rest.comments;
        delete rest.valuesOptions;
      }
      nested[key] = rest;
    } else if (hasNested) {
      nested[key] = { nested: keptChild.nested };
    }
  }
  return { ...json, nested };
}

mkdirSync(join(pkgRoot, 'generated'), { recursive: true });
mkdirSync(join(pkgRoot, 'src/generated'), { recursive: true });
const pruned = pruneJson(root.toJSON(), '');
delete pruned.options;
writeFileSync(join(pkgRoot, 'generated/descriptor.json'), JSON.stringify(pruned));

// ---- TypeScript declarations for decoded messages ----
const tsName = (fullName) => fullName.replace(/^\./, '').replace(/\./g, '_');
const LONGS = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMS = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

function scalarType(field) {
  if (NUMS.has(field.type) || LONGS.has(field.type)) return 'number';
  if (field.type === 'bool') return 'boolean';
  if (field.type === 'string') return 'string';
  if (field.type === 'bytes') return 'Uint8Array';
  const r = field.resolvedType;
  if (r instanceof protobuf.Enum) return 'number';
  if (r instanceof protobuf.Type) return tsName(r.fullName);
  throw new Error(`gen-proto: unresolved type ${field.type} of ${field.fullName}`);
}

const out = [];
out.push('// Generated by packages/xds-client/scripts/gen-proto.mjs from the .proto files in');
out.push('// @grpc/grpc-js-xds/deps. Do not edit. Field names are the .proto names (keepCase);');
out.push('// 64-bit integers decode as numbers; enums as their numeric values.');
out.push('/* eslint-disable */');
let typeCount = 0;
let enumCount = 0;
function walk(ns) {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type && reachable.has(obj.fullName)) {
      typeCount++;
      const name = tsName(obj.fullName);
      out.push(`/** ${obj.fullName.replace(/^\./, '')} */`);
      out.push(`export interface ${name} {`);
      for (const field of obj.fieldsArray) {
        if (field.declaringField || field.name.startsWith('.')) continue; // extension fields (options)
        let t;
        let optional = false;
        if (field.map) {
          const v = scalarType(field);
          t = `Record<string, ${v}>`;
        } else if (field.repeated) {
          t = `${scalarType(field)}[]`;
        } else {
          t = scalarType(field);
          const isMessage = field.resolvedType instanceof protobuf.Type;
          if (isMessage || field.partOf) {
            optional = true;
            t = `${t} | null`;
          }
        }
        out.push(`  ${field.name}${optional ? '?' : ''}: ${t};`);
      }
      for (const oneof of obj.oneofsArray) {
        const names = oneof.fieldsArray.map((f) => JSON.stringify(f.name)).join(' | ');
        out.push(`  /** which member of oneof ${oneof.name} is set */`);
        out.push(`  readonly ${oneof.name}?: ${names || 'never'};`);
      }
      out.push('}');
    } else if (obj instanceof protobuf.Enum && reachable.has(obj.fullName)) {
      enumCount++;
      const name = tsName(obj.fullName);
      out.push(`/** enum ${obj.fullName.replace(/^\./, '')} */`);
      const entries = Object.entries(obj.values).map(([k, v]) => `  ${JSON.stringify(k)}: ${v},`);
      out.push(`export const ${name} = {`, ...entries, '} as const;');
    }
    if (obj.nestedArray && obj.nestedArray.length) walk(obj);
  }
}
walk(root);
const text = out.join('\n') + '\n';
const target = join(pkgRoot, 'src/generated/pb.ts');
if (!existsSync(target) || readFileSync(target, 'utf8') !== text) writeFileSync(target, text);
console.log(`gen-proto: ${typeCount} messages, ${enumCount} enums from ${ROOT_PROTOS.length} root protos`);
