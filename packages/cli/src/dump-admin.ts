// `meshlet dump --admin URL`: read a running process's admin endpoint (/config_dump and
// /clusters, see @meshlet/core's startAdminServer) and print both as one JSON document.
// Whatever goes wrong (nothing listening, not a meshlet admin endpoint, no answer) is one
// line on stderr and exit code 1.

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
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the admin endpoint started, and on this port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'no answer';
  }
  if ((error as Error)?.name === 'TimeoutError') return 'no answer';
  return cause?.message ?? (error as Error)?.message ?? String(error);
}

async function getJson(base: URL, path: string, timeoutMs: number, isShape: (v: unknown) => boolean): Promise<unknown> {
  const url = new URL(path, base);
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    body = await res.text();
  } catch (error) {
    const why = reason(error);
    throw new AdminReadError(`cannot read ${url.href}: ${why === 'no answer' ? `no answer within ${timeoutMs / 1000}s` : why}`);
  }
  if (res.status !== 200) {
    throw new AdminReadError(`${url.href} answered ${res.status}: not a meshlet admin endpoint (start one with startAdminServer)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
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
