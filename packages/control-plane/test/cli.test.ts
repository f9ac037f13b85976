import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TYPE_URLS } from '@meshlet/xds-client/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { runControlPlaneCommand } from '../src/cli.js';
import type { ControlPlane } from '../src/index.js';
import { AdsTestClient, namesIn } from './ads-test-client.js';

const CDS = TYPE_URLS.cluster;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function configDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-cp-cli-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'clusters.yaml'), `"@type": ${CDS}\nname: c1\n---\n"@type": ${CDS}\nname: c2\n`);
  return dir;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => void out.push(l), err: (l: string) => void err.push(l) } };
}

describe('meshlet control-plane', () => {
  it('rejects bad flags with a usage message naming the flag, exit code 2', async () => {
    for (const [argv, pattern] of [
      [['--config', '/tmp', '--bogus'], /unknown flag --bogus/],
      [['--port', '80'], /--config DIR is required/],
      [['--config', '/tmp', '--port', 'eighty'], /--port: want a port number/],
      [['--config'], /--config needs a value/],
      [['--config=/tmp', '--unix-socket', '/tmp/s', '--port', '1'], /--unix-socket cannot be combined/],
    ] as const) {
      const { err, io } = capture();
      expect(await runControlPlaneCommand([...argv], io)).toBe(2);
      expect(err[0]).toMatch(pattern);
      expect(err.join('\n')).toMatch(/^usage: meshlet control-plane --config DIR/m);
    }
    const help = capture();
    expect(await runControlPlaneCommand(['--help'], help.io)).toBe(0);
    expect(help.out[0]).toMatch(/^usage:/);
  });

  it('exits 1 when the config directory does not exist', async () => {
    const { err, io } = capture();
    expect(await runControlPlaneCommand(['--config', join(configDir(), 'absent')], io)).toBe(1);
    expect(err[0]).toMatch(/not a directory/);
  });

  it('serves the directory, reports reloads, and stops cleanly on SIGTERM', async () => {
    const dir = configDir();
    const { out, io } = capture();
    const signals = new EventEmitter();
    let listening!: (v: { cp: ControlPlane; address: string }) => void;
    const ready = new Promise<{ cp: ControlPlane; address: string }>((r) => (listening = r));
    const exit = runControlPlaneCommand(['control-plane', `--config=${dir}`, '--host', '127.0.0.1', '--port', '0'], {
      ...io,
      signals,
      onListening: (cp, address) => listening({ cp, address }),
    });
    const { cp, address } = await ready;
    expect(out[0]).toBe(`meshlet control-plane listening on ${address}, serving 2 resources from ${dir}`);
    const client = new AdsTestClient(address);
    cleanups.push(() => client.close());
    client.send({ typeUrl: CDS });
    const first = await client.next();
    expect(namesIn(first)).toEqual(['c1', 'c2']);

    const reloaded = new Promise((r) => cp.once('reload', r));
    writeFileSync(join(dir, 'more.json'), JSON.stringify({ '@type': CDS, name: 'c3' }));
    expect(namesIn(await client.next())).toEqual(['c1', 'c2', 'c3']);
    await reloaded;
    expect(out[1]).toBe(`meshlet control-plane reloaded ${dir}: 3 resources (Cluster v2)`);

    signals.emit('SIGTERM');
    expect(await exit).toBe(0);
    expect(out.at(-1)).toBe('meshlet control-plane stopped (SIGTERM)');
    expect(cp.streamCount).toBe(0);
  });

  // The real process: signals and stdout as an operator sees them. Needs the built
  // dist (node scripts/run.mjs build), as the bin does.
  const distCli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  it.skipIf(!existsSync(distCli))('runs as a process until SIGTERM', async () => {
    const dir = configDir();
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `import { runControlPlaneCommand } from ${JSON.stringify(distCli)}; process.exitCode = await runControlPlaneCommand(process.argv.slice(1));`, '--', '--config', dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = String((await lines.next()).value);
    const match = /^meshlet control-plane listening on (\S+), serving 2 resources from (.+)$/.exec(first);
    expect(match?.[2]).toBe(dir);
    const client = new AdsTestClient(match![1]!);
    cleanups.push(() => client.close());
    client.send({ typeUrl: CDS, names: ['c2'] });
    expect(namesIn(await client.next())).toEqual(['c2']);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(String((await lines.next()).value)).toBe('meshlet control-plane stopped (SIGTERM)');
  });
});
