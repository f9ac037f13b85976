#!/usr/bin/env node
// `npm test`, `npm run demo`, `npm run build`, `npm run bench` on a fresh clone:
// install with the pinned pnpm when node_modules is missing or stale, build, then run.
// Only Node and npm are needed on the machine.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
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
  // One module per library entry point, which package.json exports name (scripts/bundle.mjs).
  run(process.execPath, ['scripts/bundle.mjs']);
}

const [task, ...rest] = process.argv.slice(2);
if (needsInstall()) pnpm(['install', '--frozen-lockfile']);
build();
switch (task) {
  case 'build':
    break;
  case 'test': {
    // The tests are TypeScript strict too: type-check them (tsconfig.tests.json) before running.
    run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.tests.json']);
    // vitest's own summary plus a JSON report, from which one plain closing line is
    // printed ("vitest: N passed, N failed, N skipped") that any CI can read.
    const report = join(root, 'node_modules/.cache/meshlet-vitest.json');
    rmSync(report, { force: true });
    const r = spawnSync(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...rest],
      { cwd: root, stdio: 'inherit' },
    );
    if (existsSync(report)) {
      const j = JSON.parse(readFileSync(report, 'utf8'));
      const skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
      console.log(`vitest: ${j.numPassedTests} passed, ${j.numFailedTests} failed, ${skipped} skipped`);
    }
    process.exit(r.status ?? 1);
  }
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
