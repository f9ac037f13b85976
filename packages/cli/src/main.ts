// The `meshlet` command.
import { readFileSync } from 'node:fs';
import { runDump } from './dump.js';

const USAGE = `usage:
  meshlet dump <target> [--bootstrap FILE] [--timeout SECONDS]
      Resolve <target> (host:port, a URL, or xds:///host:port) through LDS, RDS, CDS and
      EDS with the process's xDS bootstrap (GRPC_XDS_BOOTSTRAP, GRPC_XDS_BOOTSTRAP_CONFIG,
      or --bootstrap) and print the chain as JSON.
  meshlet dump --admin http://127.0.0.1:PORT [--timeout SECONDS]
      Read a running process's admin endpoint (startAdminServer) and print what it holds
      from each xDS server (/config_dump, CSDS's JSON) and its clusters (/clusters) as JSON.
  meshlet control-plane --config DIR [--port N] [--host H]
      Serve the xDS resources in DIR (YAML or JSON, proto3 JSON form) over ADS.
  meshlet --version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the command; resolves to the process exit code. Never throws for user errors. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dump':
      return runDump(rest);
    case 'control-plane':
      // Loaded on use: the other commands need no gRPC server.
      return (await import('@meshlet/control-plane')).runControlPlaneCommand(rest);
    case '--version':
    case '-v':
      process.stdout.write(`${version()}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`meshlet: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}
