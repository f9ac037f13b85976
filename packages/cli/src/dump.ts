// `meshlet dump <target>`: resolve a target through LDS → RDS → CDS → EDS with the
// bootstrap this process would use, print the chain as JSON, exit 0; or print one
// line naming the resource that is missing or rejected, and exit 1.
// `meshlet dump --admin URL`: print what a running process holds instead, read from its
// admin endpoint (dump-admin.ts).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { XdsConfig } from '@meshlet/core';
import type { Bootstrap } from '@meshlet/xds-client';
import { parseAdminUrl, readAdmin } from './dump-admin.js';

/** How long to wait for a resource the server never sends before calling it missing. */
const DEFAULT_TIMEOUT_S = 3;

export async function runDump(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { bootstrap: { type: 'string' }, timeout: { type: 'string' }, admin: { type: 'string' } },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const timeoutS = values.timeout === undefined ? DEFAULT_TIMEOUT_S : Number(values.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) return usageError(`--timeout: want a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
  if (values.admin !== undefined) {
    if (positionals.length > 0) return usageError('--admin reads a running process: give no <target>');
    if (values.bootstrap !== undefined) return usageError('--admin reads a running process: --bootstrap does not apply');
    const url = parseAdminUrl(values.admin);
    if (typeof url === 'string') return usageError(url);
    try {
      const dump = await readAdmin(url, timeoutS * 1000);
      process.stdout.write(`${JSON.stringify(dump, null, 2)}\n`);
      return 0;
    } catch (err) {
      return fail(err);
    }
  }
  if (positionals.length !== 1) return usageError('want exactly one <target>');
  // Loaded here, not at the top: `--admin` and usage errors answer without loading the
  // xDS stack (a third of a second of start-up).
  const { resolveTarget, XdsDependencyManager } = await import('@meshlet/core');
  const { loadBootstrap, MeshletError, XdsClient } = await import('@meshlet/xds-client');

  let bootstrap: Bootstrap;
  let authority: string;
  let listenerName: string;
  try {
    bootstrap = loadBootstrap(values.bootstrap === undefined ? {} : { bootstrap: readFileSync(values.bootstrap, 'utf8') });
    ({ authority, listenerName } = resolveTarget(positionals[0]!, bootstrap));
  } catch (err) {
    return fail(err);
  }

  const client = new XdsClient({ bootstrap, resourceDoesNotExistTimeoutMs: timeoutS * 1000 });
  try {
    const config = await new Promise<XdsConfig>((resolve, reject) => {
      // A server that accepts the stream but never answers: say so rather than hang.
      // (One that refuses connections fails sooner, through the watchers' onError.)
      const overallS = timeoutS + 10;
      const timer = setTimeout(
        () => reject(new MeshletError('MESHLET_XDS_UNAVAILABLE', `no complete answer from ${bootstrap.xdsServers.map((s) => s.serverUri).join(', ')} within ${overallS}s`)),
        overallS * 1000,
      );
      const dm = new XdsDependencyManager(client, { listenerName, authority }, {
        onUpdate: (c) => {
          clearTimeout(timer);
          dm.close();
          resolve(c);
        },
        onError: (e) => {
          clearTimeout(timer);
          dm.close();
          reject(e);
        },
      });
    });
    const problems = [...config.clusters.values()].flatMap((c) => (c.ok ? [] : [c.error]));
    if (problems.length > 0) return fail(problems[0]);
    process.stdout.write(`${JSON.stringify(renderConfig(positionals[0]!, listenerName, config), null, 2)}\n`);
    return 0;
  } catch (err) {
    return fail(err);
  } finally {
    client.close();
  }
}

export function renderConfig(target: string, listenerName: string, config: XdsConfig): unknown {
  const clusters: Record<string, unknown> = {};
  const endpoints: Record<string, unknown> = {};
  for (const [name, c] of config.clusters) {
    if (!c.ok) continue;
    clusters[name] = c.leafClusters ? { ...c.cluster, leafClusters: c.leafClusters } : c.cluster;
    if (c.endpoints) endpoints[name] = { source: c.endpoints.kind, ...c.endpoints.endpoints };
  }
  return {
    target,
    listenerName,
    listener: config.listener,
    routeConfiguration: { name: config.routeConfig.name, virtualHostCount: config.routeConfig.virtualHosts.length },
    virtualHost: { name: config.virtualHost.name, domains: config.virtualHost.domains },
    routes: config.virtualHost.routes,
    clusters,
    endpoints,
  };
}

function usageError(message: string): number {
  process.stderr.write(`meshlet dump: ${message}\nusage: meshlet dump <target> [--bootstrap FILE] [--timeout SECONDS]\n       meshlet dump --admin http://127.0.0.1:PORT [--timeout SECONDS]\n`);
  return 2;
}

function fail(err: unknown): number {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`meshlet dump: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  return 1;
}
