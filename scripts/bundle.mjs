#!/usr/bin/env node
// After `tsc -b`: bundle each client library's compiled modules into one module per entry point
// (esbuild; other packages stay imports), which is what their package.json exports point at.
// Why (docs/design.md, "Each library is one module"): a process that imports @meshlet/grpc
// otherwise loads about 120 ES modules, and Node keeps bookkeeping for each (module records,
// resolution caches) and the source text of each, comments included, for as long as it runs:
// about 0.6 MB of the 3 MB that importing meshlet adds to a gRPC client's live heap.
// Entry points of one package share chunks, so a process that imports two of them (the
// xds-client's `.` and `./proto-json`) has one copy of each module's state. Outputs stay in
// dist/ beside tsc's, at the same depth, so `new URL('../generated/...', import.meta.url)` and
// createRequire(import.meta.url) resolve as they do from tsc's files; source maps chain to
// tsc's and from there to src/.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Package → its entry points (output name → tsc's output, both relative to dist/). */
const BUNDLES = {
  'xds-client': {
    'index.bundle': 'index.js',
    'proto.bundle': 'proto.js',
    'proto-json.bundle': 'proto-json.js',
    'generated/pb.bundle': 'generated/pb.js',
  },
  core: { 'index.bundle': 'index.js' },
  grpc: { 'index.bundle': 'index.js' },
  http: { 'index.bundle': 'index.js' },
};

// `node scripts/bundle.mjs [package...]`: the packages named (their build scripts), else all.
const only = process.argv.slice(2);
for (const [pkg, entries] of Object.entries(BUNDLES)) {
  if (only.length > 0 && !only.includes(pkg)) continue;
  const dist = join(root, 'packages', pkg, 'dist');
  // Chunk names carry a content hash: the last build's chunks go first.
  for (const f of readdirSync(dist)) if (f.startsWith('chunk-')) rmSync(join(dist, f));
  await build({
    entryPoints: Object.fromEntries(Object.entries(entries).map(([out, input]) => [out, join(dist, input)])),
    outdir: dist,
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
    metafile: true,
    // Output paths in the metafile are relative to this, whichever directory the script runs in.
    absWorkingDir: root,
  }).then(({ metafile }) => {
    for (const out of Object.keys(metafile.outputs)) if (out.endsWith('.js')) assertAscii(join(root, out));
  });
}

/**
 * V8 keeps a module's source text in memory for the life of the process, one byte per character
 * only when every character is Latin-1: a single "→" in a comment esbuild keeps doubles it (core's
 * 227 KB became 455 KB of heap). esbuild escapes what is in code; a kept comment is left to us.
 */
function assertAscii(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i].search(/[^\x00-\x7f]/);
    if (at >= 0) {
      const c = lines[i].codePointAt(at).toString(16).toUpperCase().padStart(4, '0');
      throw new Error(`${file}:${i + 1}:${at + 1}: U+${c} in a bundle (a comment esbuild kept?): write it in ASCII, or V8 keeps the module's whole source at two bytes a character`);
    }
  }
}
