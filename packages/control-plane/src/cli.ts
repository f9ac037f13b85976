// `meshlet control-plane --config DIR [--port N] [--host H] [--unix-socket PATH]`:
// serve a directory of xDS resources over ADS until SIGINT or SIGTERM. The `meshlet`
// bin (packages/cli) dispatches here.
import type { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from './control-plane.js';

const USAGE = `usage: meshlet control-plane --config DIR [--port N] [--host H] [--unix-socket PATH]

Serve the xDS resources in DIR (*.yaml, *.yml, *.json; each file one resource with
"@type", a list of them, or { resources: [...] }) over ADS, reloading on change.

  --config DIR          directory of resource files (required)
  --port N              port to listen on (default 0: pick a free one)
  --host H              interface to listen on (default 127.0.0.1)
  --unix-socket PATH    listen on a unix socket instead of host:port
`;

export interface CommandIo {
  /** One line of normal output. Default: process.stdout. */
  out?: (line: string) => void;
  /** One line of diagnostics. Default: process.stderr. */
  err?: (line: string) => void;
  /** Where SIGINT/SIGTERM arrive. Default: process. */
  signals?: Pick<EventEmitter, 'once' | 'off'>;
  /** Called once the server listens (for tests and embedding). */
  onListening?: (controlPlane: ControlPlane, address: string) => void;
}

interface Flags {
  config: string;
  port?: number;
  host?: string;
  unixSocket?: string;
}

class UsageError extends Error {}

function parseFlags(argv: readonly string[]): Flags | 'help' {
  const args = [...argv];
  // Accept being handed the whole `control-plane ...` command line too.
  if (args[0] === 'control-plane') args.shift();
  const flags: Partial<Flags> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined;
    const takeValue = (): string => {
      if (eq >= 0) value = arg.slice(eq + 1);
      else {
        value = args[++i];
        if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
      }
      if (value === '') throw new UsageError(`${name} needs a value`);
      return value;
    };
    switch (name) {
      case '--config':
        flags.config = takeValue();
        break;
      case '--host':
        flags.host = takeValue();
        break;
      case '--unix-socket':
        flags.unixSocket = takeValue();
        break;
      case '--port': {
        const v = takeValue();
        const port = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!Number.isInteger(port) || port > 65535) throw new UsageError(`--port: want a port number 0..65535, got ${JSON.stringify(v)}`);
        flags.port = port;
        break;
      }
      default:
        throw new UsageError(`unknown flag ${name}`);
    }
  }
  if (flags.config === undefined) throw new UsageError('--config DIR is required');
  if (flags.unixSocket !== undefined && (flags.port !== undefined || flags.host !== undefined)) {
    throw new UsageError('--unix-socket cannot be combined with --port or --host');
  }
  return flags as Flags;
}

/** Run the command; resolves with the process exit code (0 after a clean stop, 2 for bad flags). */
export async function runControlPlaneCommand(argv: string[], io: CommandIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = io.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  const signals = io.signals ?? process;

  let flags: Flags;
  try {
    const parsed = parseFlags(argv);
    if (parsed === 'help') {
      out(USAGE.trimEnd());
      return 0;
    }
    flags = parsed;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`meshlet control-plane: ${e.message}`);
    err(USAGE.trimEnd());
    return 2;
  }

  // grpc-js logs its own errors (a busy port, say) to stderr; this command reports them
  // itself, in one line. GRPC_VERBOSITY still turns grpc-js's logging back on.
  if (process.env.GRPC_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  const dir = resolve(flags.config);
  const cp = new ControlPlane({
    configDir: dir,
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(flags.host !== undefined ? { host: flags.host } : {}),
    ...(flags.unixSocket !== undefined ? { unixSocket: resolve(flags.unixSocket) } : {}),
    log: err,
    // A long-running server keeps a bounded request log.
    maxRecordedRequests: 1000,
  });
  let started = false;
  cp.on('reload', (result: { changedTypes: string[] }) => {
    if (!started) return; // the initial load is reported by the listening line
    const changes = result.changedTypes.map((t) => `${shortType(t)} v${cp.version(t)}`).join(', ');
    out(`meshlet control-plane reloaded ${dir}: ${countResources(cp)} resources${changes ? ` (${changes})` : ', no changes'}`);
  });

  let address: string;
  try {
    address = (await cp.start()).address;
  } catch (e) {
    err(`meshlet control-plane: ${e instanceof Error ? e.message : String(e)}`);
    await cp.stop();
    return 1;
  }
  started = true;
  out(`meshlet control-plane listening on ${address}, serving ${countResources(cp)} resources from ${dir}`);
  io.onListening?.(cp, address);

  const signal = await new Promise<string>((resolveSignal) => {
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    const done = (name: string) => {
      signals.off('SIGINT', onInt);
      signals.off('SIGTERM', onTerm);
      resolveSignal(name);
    };
    signals.once('SIGINT', onInt);
    signals.once('SIGTERM', onTerm);
  });
  await cp.stop();
  out(`meshlet control-plane stopped (${signal})`);
  return 0;
}

function countResources(cp: ControlPlane): number {
  let n = 0;
  for (const typeUrl of cp.typeUrls()) n += cp.getResources(typeUrl).size;
  return n;
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}
