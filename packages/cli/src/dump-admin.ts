// `meshlet dump --admin URL`: read a running process's admin endpoint (/config_dump and
// /clusters, see @meshlet/core's startAdminServer) and print both as one JSON document.
// Whatever goes wrong (nothing listening, not a meshlet admin endpoint, no answer) is one
// line on stderr and exit code 1.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface AdminDump {
  readonly admin: string;
  readonly config_dump: unknown;
  readonly clusters: unknown;
}

class AdminReadError extends Error {}

/** The admin base URL from `--admin`: http(s) only, with no path beyond `/`. */
export function parseAdminUrl(value: string): URL | string {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    return `--admin: not a URL: ${JSON.stringify(value)}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `--admin: want an http:// URL, got ${JSON.stringify(value)}`;
  return url;
}

function reason(error: unknown): string {
  switch ((error as { code?: string })?.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the admin endpoint started, and on this port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
  }
  return (error as Error)?.message ?? String(error);
}

/**
 * One GET on a connection of its own (no keep-alive pool, so the command exits as soon as it
 * has printed), with an overall deadline.
 */
function get(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new AdminReadError(`no answer within ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end();
  });
}

async function getJson(base: URL, path: string, timeoutMs: number, isShape: (v: unknown) => boolean): Promise<unknown> {
  const url = new URL(path, base);
  let res: { status: number; body: string };
  try {
    res = await get(url, timeoutMs);
  } catch (error) {
    throw new AdminReadError(`cannot read ${url.href}: ${reason(error)}`);
  }
  if (res.status !== 200) {
    throw new AdminReadError(`${url.href} answered ${res.status}: not a meshlet admin endpoint (start one with startAdminServer)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(res.body);
  } catch {
    throw new AdminReadError(`${url.href} did not answer JSON: not a meshlet admin endpoint`);
  }
  if (!isShape(value)) throw new AdminReadError(`${url.href} answered JSON of another shape: not a meshlet admin endpoint`);
  return value;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Read /config_dump and /clusters; throws an Error whose message is the one line to print. */
export async function readAdmin(base: URL, timeoutMs: number): Promise<AdminDump> {
  // A ClientStatusResponse (proto3 JSON leaves out an empty `config`), and the clusters view.
  const configDump = await getJson(base, '/config_dump', timeoutMs, (v) => isObject(v) && (v['config'] === undefined || Array.isArray(v['config'])) && !('configs' in v));
  const clusters = await getJson(base, '/clusters', timeoutMs, (v) => isObject(v) && Array.isArray(v['targets']));
  return { admin: base.origin, config_dump: configDump, clusters };
}
