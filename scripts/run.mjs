#!/usr/bin/env node
// `npm test`, `npm run demo`, `npm run build`, `npm run bench` on a fresh clone:
// install with the pinned pnpm when node_modules is missing or stale, build, then run.
// Only Node and npm are needed on the machine.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pnpmSpec = pkg.packageManager; // e.g. pnpm@10.34.9

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function pnpm(args) {
  // Use the pinned pnpm through npx, so nothing global is needed.
  run('npx', ['--yes', pnpmSpec, ...args]);
}

function needsInstall() {
  const marker = join(root, 'node_modules/.modules.yaml');
  if (!existsSync(marker)) return true;
  const lock = join(root, 'pnpm-lock.yaml');
  return existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs;
}

function build() {
  run(process.execPath, ['packages/xds-client/scripts/gen-proto.mjs']);
  run(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'tsconfig.json']);
}

const [task, ...rest] = process.argv.slice(2);
if (needsInstall()) pnpm(['install', '--frozen-lockfile']);
build();
switch (task) {
  case 'build':
    break;
  case 'test':
    run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...rest]);
    break;
  case 'demo':
    run(process.execPath, ['examples/demo.mjs', ...rest]);
    break;
  case 'bench':
    run(process.execPath, [rest[0] ?? 'bench/xds-ingest.mjs', ...rest.slice(1)]);
    break;
  default:
    console.error(`usage: node scripts/run.mjs build|test|demo|bench [args]`);
    process.exit(2);
}
