#!/usr/bin/env node
// Where a heap snapshot's live bytes are, by owner: reads a .heapsnapshot (bench/lib/heap-hook.mjs
// writes one with MESHLET_HEAP_SNAPSHOT) and charges every live object (reachable from the GC
// roots without weak edges) to the source file nearest to it in references: a Script (module
// code, its source string and SharedFunctionInfos) or a function (its script). So a module's
// top-level state, held in the context its functions share, is charged to that module; an
// object several files reach is charged to one of them, arbitrarily. Files are grouped by
// package (node_modules/<pkg>, packages/<pkg>, node: builtins). What no file reaches (V8's own
// tables) is charged by kind.
//   node bench/lib/heap-breakdown.mjs <a.heapsnapshot> [<b.heapsnapshot>] [--files] [--top 30] [--owner <file substring>]
// With two snapshots, prints both and the difference b − a per owner; --owner breaks down what
// the matching files hold by kind of object.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export function load(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const meta = s.snapshot.meta;
  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = s;
  const n = nodes.length / NF;
  const type = new Uint8Array(n);
  const name = new Uint32Array(n);
  const self = new Float64Array(n);
  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    type[i] = nodes[i * NF];
    name[i] = nodes[i * NF + 1];
    self[i] = nodes[i * NF + 3];
    firstEdge[i] = e;
    e += nodes[i * NF + 4];
  }
  const m = edges.length / EF;
  firstEdge[n] = m;
  const edgeType = new Uint8Array(m);
  const edgeName = new Uint32Array(m);
  const edgeTo = new Uint32Array(m);
  for (let j = 0; j < m; j++) {
    edgeType[j] = edges[j * EF];
    edgeName[j] = edges[j * EF + 1];
    edgeTo[j] = edges[j * EF + 2] / NF;
  }
  const WEAK = edgeTypes.indexOf('weak');
  const SHORTCUT = edgeTypes.indexOf('shortcut');
  const T = Object.fromEntries(nodeTypes.map((t, i) => [t, i]));
  const ET = Object.fromEntries(edgeTypes.map((t, i) => [t, i]));
  const str = (i) => strings[name[i]];
  const edgeLabel = (j) => (edgeType[j] === ET.element || edgeType[j] === ET.hidden ? String(edgeName[j]) : strings[edgeName[j]]);
  const follows = (j) => edgeType[j] !== WEAK && edgeType[j] !== SHORTCUT;

  // Dominators (Cooper, Harvey & Kennedy): reverse post-order from the root (node 0).
  const order = new Int32Array(n).fill(-1);
  const post = [];
  const stack = [0];
  const iter = new Uint32Array(n);
  order[0] = -2;
  for (let i = 0; i < n; i++) iter[i] = firstEdge[i];
  while (stack.length) {
    const v = stack[stack.length - 1];
    let pushed = false;
    while (iter[v] < firstEdge[v + 1]) {
      const j = iter[v]++;
      if (!follows(j)) continue;
      const w = edgeTo[j];
      if (order[w] !== -1) continue;
      order[w] = -2;
      stack.push(w);
      pushed = true;
      break;
    }
    if (!pushed) {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
  const preds = Array.from({ length: n }, () => null);
  for (let v = 0; v < n; v++) {
    if (order[v] < 0) continue;
    for (let j = firstEdge[v]; j < firstEdge[v + 1]; j++) {
      if (!follows(j)) continue;
      const w = edgeTo[j];
      (preds[w] ??= []).push(v);
    }
  }
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a, b) => {
    while (a !== b) {
      while (order[a] < order[b]) a = idom[a];
      while (order[b] < order[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = post.length - 2; k >= 0; k--) {
      const v = post[k];
      let d = -1;
      for (const p of preds[v] ?? []) {
        if (order[p] < 0 || idom[p] === -1) continue;
        d = d === -1 ? p : intersect(p, d);
      }
      if (d !== -1 && idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  const retained = Float64Array.from(self);
  for (const v of post) if (v !== 0 && idom[v] >= 0) retained[idom[v]] += retained[v];
  return { n, type, self, retained, idom, order, post, firstEdge, edgeType, edgeName, edgeTo, T, ET, str, edgeLabel, follows };
}

function packageOf(path) {
  if (!path) return undefined;
  if (path.startsWith('node:')) return 'node: builtins';
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 14).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const pk = path.match(/\/packages\/([^/]+)\//);
  if (pk) return `@meshlet/${pk[1]}`;
  const b = path.match(/\/(bench|test)\//);
  if (b) return b[1];
  return path.startsWith('/') || path.startsWith('file:') ? 'other files' : undefined;
}

export function breakdown(h, ownerFilter) {
  const { n, type, T, ET, str, firstEdge, edgeType, edgeTo, edgeLabel } = h;
  const child = (v, label, kind) => {
    for (let j = firstEdge[v]; j < firstEdge[v + 1]; j++) {
      if ((kind === undefined || edgeType[j] === kind) && edgeLabel(j) === label) return edgeTo[j];
    }
    return -1;
  };
  const isScript = (v) => type[v] === T.code && /^(node:|\/|file:)/.test(str(v));
  const scriptOfSfi = (sfi) => {
    if (sfi < 0) return -1;
    const s = child(sfi, 'script_or_debug_info', ET.internal);
    if (s >= 0 && isScript(s)) return s;
    const s2 = child(sfi, 'script', ET.internal);
    return s2 >= 0 && isScript(s2) ? s2 : -1;
  };
  const scriptOfClosure = (v) => scriptOfSfi(child(v, 'shared', ET.internal));
  // The file that owns v, if v names one by itself.
  const fileOf = new Map();
  const ownFile = (v) => {
    if (fileOf.has(v)) return fileOf.get(v);
    let f;
    if (isScript(v)) f = str(v);
    else if (type[v] === T.closure) {
      const s = scriptOfClosure(v);
      if (s >= 0) f = str(s);
    } else if (type[v] === T.code && str(v) === '(shared function info)') {
      const s = scriptOfSfi(v);
      if (s >= 0) f = str(s);
    } else if (type[v] === T.object && str(v) !== 'Object' && str(v) !== 'Array') {
      // An instance of a class: its map's constructor.
      const map = child(v, 'map', ET.internal);
      const ctor = map >= 0 ? child(map, 'constructor_or_back_pointer', ET.internal) : -1;
      if (ctor >= 0 && type[ctor] === T.closure) {
        const s = scriptOfClosure(ctor);
        if (s >= 0) f = str(s);
      }
    }
    fileOf.set(v, f);
    return f;
  };
  // Each live object goes to the nearest file (fewest references away): a multi-source
  // breadth-first search from every live script and function. Module state (a module's
  // top-level variables live in a context its functions hold) goes to that module.
  const owner = new Array(n);
  const live = new Uint8Array(n);
  for (const v of h.post) live[v] = 1;
  let queue = [];
  for (const v of h.post) {
    if (type[v] !== T.closure && !isScript(v)) continue;
    const f = ownFile(v);
    if (f) {
      owner[v] = f;
      queue.push(v);
    }
  }
  while (queue.length) {
    const next = [];
    for (const v of queue) {
      for (let j = firstEdge[v]; j < firstEdge[v + 1]; j++) {
        if (!h.follows(j)) continue;
        const w = edgeTo[j];
        if (!live[w] || owner[w] !== undefined) continue;
        owner[w] = owner[v];
        next.push(w);
      }
    }
    queue = next;
  }
  const byFile = new Map();
  const byPkg = new Map();
  const byKind = new Map();
  const unowned = new Map();
  let total = 0;
  for (const v of h.post) {
    const size = h.self[v];
    total += size;
    const f = owner[v];
    if (f) {
      byFile.set(f, (byFile.get(f) ?? 0) + size);
      const p = packageOf(f) ?? 'other files';
      byPkg.set(p, (byPkg.get(p) ?? 0) + size);
      if (ownerFilter && f.includes(ownerFilter)) {
        const k = `${Object.keys(T)[type[v]]} ${type[v] === T.string || type[v] === T.closure ? '' : str(v).slice(0, 40)}`;
        byKind.set(k, (byKind.get(k) ?? 0) + size);
      }
    } else {
      const k = `(unowned) ${Object.keys(T)[type[v]]}${type[v] === T.object || type[v] === T.hidden || type[v] === T.code ? ` ${str(v).slice(0, 40)}` : ''}`;
      unowned.set(k, (unowned.get(k) ?? 0) + size);
    }
  }
  return { total, byFile, byPkg, unowned, byKind, owner };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();

function main() {
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { files: { type: 'boolean', default: false }, top: { type: 'string', default: '30' }, owner: { type: 'string' } },
});
const TOP = Number(values.top);
const kb = (b) => `${(b / 1024).toFixed(0).padStart(7)} KB`;
const rows = (map, top) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top);

const results = positionals.map((f) => ({ file: f, ...breakdown(load(f), values.owner) }));
for (const r of results) {
  console.log(`\n${r.file}: ${kb(r.total)} reachable`);
  console.log('  by package:');
  for (const [k, v] of rows(r.byPkg, TOP)) console.log(`    ${kb(v)}  ${k}`);
  if (values.files) {
    console.log('  by file:');
    for (const [k, v] of rows(r.byFile, TOP)) console.log(`    ${kb(v)}  ${k}`);
  }
  if (values.owner) {
    console.log(`  charged to files matching "${values.owner}", by kind:`);
    for (const [k, v] of rows(r.byKind, TOP)) console.log(`    ${kb(v)}  ${k}`);
  }
  console.log('  not owned by a file:');
  for (const [k, v] of rows(r.unowned, 12)) console.log(`    ${kb(v)}  ${k}`);
}
if (results.length === 2) {
  const [a, b] = results;
  const diff = (ma, mb) => {
    const d = new Map();
    for (const [k, v] of mb) d.set(k, v - (ma.get(k) ?? 0));
    for (const [k, v] of ma) if (!mb.has(k)) d.set(k, -v);
    return [...d].filter(([, v]) => Math.abs(v) >= 1024).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  };
  console.log(`\n${b.file} − ${a.file}: ${kb(b.total - a.total)}`);
  console.log('  by package:');
  for (const [k, v] of diff(a.byPkg, b.byPkg).slice(0, TOP)) console.log(`    ${kb(v)}  ${k}`);
  if (values.files) {
    console.log('  by file:');
    for (const [k, v] of diff(a.byFile, b.byFile).slice(0, TOP)) console.log(`    ${kb(v)}  ${k}`);
  }
  console.log('  not owned by a file:');
  for (const [k, v] of diff(a.unowned, b.unowned).slice(0, 12)) console.log(`    ${kb(v)}  ${k}`);
}
}
