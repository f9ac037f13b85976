// re2js (about 650 KB of heap once loaded) is loaded on the first RE2 pattern, not with the
// libraries: a process whose configuration has no safe_regex never holds it. Checked in a
// child process, whose module cache starts empty.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = `
import { createRequire } from 'node:module';
const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('re2js'));
const { createMesh, MeshAgent } = await import('@meshlet/http');
const core = await import('@meshlet/core');
const before = loaded();
core.compileRegexRewrite({ pattern: '^/v(\\\\d+)/', substitution: '/version/\\\\1/' });
console.log(JSON.stringify({ before, after: loaded(), agent: typeof MeshAgent, mesh: typeof createMesh }));
`;

const PACKAGES = fileURLToPath(new URL('../packages/', import.meta.url));

/** The built modules of every package. */
function builtModules(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.js')) out.push(join(dir, e.name));
    }
  };
  for (const pkg of readdirSync(PACKAGES)) {
    try {
      walk(join(PACKAGES, pkg, 'dist'));
    } catch {
      // a package without a build
    }
  }
  return out;
}

describe('re2js', () => {
  it('is imported by no built module (an ES import would load it with the library)', () => {
    const modules = builtModules();
    expect(modules.length).toBeGreaterThan(20);
    const importing = modules.filter((f) => /\bfrom\s+['"]re2js['"]|import\(\s*['"]re2js['"]\s*\)/.test(readFileSync(f, 'utf8')));
    expect(importing).toEqual([]);
  });

  it('is loaded with the first pattern, not with @meshlet/http and @meshlet/core', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true, agent: 'function', mesh: 'function' });
  });
});
