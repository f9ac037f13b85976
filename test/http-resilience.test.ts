// Timeouts and retries on the HTTP request path (issue 4), against real misbehaving
// servers on loopback: answering 503 (or another status), resetting the connection,
// hanging, slow, refusing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, request } from 'undici';
import { ControlPlane } from '@meshlet/control-plane';
import { seededRandom } from '@meshlet/core';
import { createMesh, createMeshFetch, MeshAgent } from '@meshlet/http';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener } from './helpers/xds-resources.js';
import { freePort } from './helpers/ports.js';

const API = 'resilience.mesh.test';

type Behavior =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'slow'; ms: number };

interface Misbehaving {
  readonly port: number;
  hits: number;
  bodies: string[];
  /** Each request's raw header lines (name, value, ...), as they arrived. */
  readonly heads: string[][];
  close(): Promise<void>;
}

async function startServer(name: string, behavior: Behavior): Promise<Misbehaving> {
  const state = { hits: 0, bodies: [] as string[], heads: [] as string[][] };
  const hanging = new Set<import('node:http').ServerResponse>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      state.hits++;
      state.bodies.push(body);
      state.heads.push(req.rawHeaders);
      switch (behavior.kind) {
        case 'ok':
          res.setHeader('x-backend', name);
          res.end(`ok from ${name}`);
          return;
        case 'status':
          res.writeHead(behavior.status, { 'x-backend': name, ...(behavior.headers ?? {}) });
          res.end(`${behavior.status} from ${name}`);
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          hanging.add(res);
          return;
        case 'slow':
          setTimeout(() => res.end(`slow ${name}`), behavior.ms);
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get hits() {
      return state.hits;
    },
    set hits(n: number) {
      state.hits = n;
    },
    get bodies() {
      return state.bodies;
    },
    set bodies(b: string[]) {
      state.bodies = b;
    },
    heads: state.heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of hanging) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}


const BACKOFF = { base_interval: '0.001s', max_interval: '0.002s' };
const PREVIOUS_HOSTS = [{ name: 'envoy.retry_host_predicates.previous_hosts' }];

describe('MeshAgent: timeouts and retries', () => {
  let cp: ControlPlane;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  let fetchM: ReturnType<typeof createMeshFetch>;
  const s: Record<string, Misbehaving> = {};
  let refused = 0;

  beforeAll(async () => {
    const specs: Record<string, Behavior> = {
      ok: { kind: 'ok' },
      ok2: { kind: 'ok' },
      e503: { kind: 'status', status: 503 },
      e503b: { kind: 'status', status: 503 },
      e503only: { kind: 'status', status: 503 },
      e503od: { kind: 'status', status: 503 },
      okod: { kind: 'ok' },
      okmix: { kind: 'ok' },
      e503mix: { kind: 'status', status: 503 },
      resetmix: { kind: 'reset' },
      e502: { kind: 'status', status: 502 },
      e500: { kind: 'status', status: 500 },
      e409: { kind: 'status', status: 409 },
      e418: { kind: 'status', status: 418 },
      e404: { kind: 'status', status: 404 },
      flagged: { kind: 'status', status: 200, headers: { 'x-upstream-retry': 'yes' } },
      limited: { kind: 'status', status: 503, headers: { 'x-envoy-ratelimited': 'true' } },
      reset: { kind: 'reset' },
      hang: { kind: 'hang' },
      slow: { kind: 'slow', ms: 150 },
      hangw: { kind: 'hang' },
      okw: { kind: 'ok' },
      e503h: { kind: 'status', status: 503 },
      okh: { kind: 'ok' },
    };
    await Promise.all(Object.entries(specs).map(async ([n, b]) => (s[n] = await startServer(n, b))));
    refused = await freePort();
    const at = (...names: string[]): Array<[string, number]> => names.map((n) => ['127.0.0.1', n === 'refused' ? refused : s[n]!.port]);
    const clusters: Record<string, Array<[string, number]>> = {
      c503: at('e503', 'ok'),
      c503only: at('e503'),
      c503both: at('e503', 'e503b'),
      c502: at('e502', 'ok'),
      c500only: at('e500'),
      c409: at('e409', 'ok'),
      c418: at('e418', 'ok'),
      c404: at('e404'),
      cflagged: at('flagged', 'ok'),
      climited: at('limited', 'ok'),
      creset: at('reset', 'ok'),
      cresetonly: at('reset'),
      crefused: at('refused', 'ok'),
      chang: at('hang', 'ok'),
      changonly: at('hang'),
      cslow: at('slow'),
      cbhang: at('hang'),
      cbretry: at('e503only'),
      cod: at('e503od', 'okod'),
      cmix: at('okmix', 'e503mix', 'resetmix'),
      cweighted: at('hangw', 'okw'),
      cheaders: at('e503h', 'okh'),
    };
    const outlier = { consecutive_5xx: 2, interval: '0.1s', base_ejection_time: '0.3s', max_ejection_percent: 100 };
    const clusterExtra: Record<string, Record<string, unknown>> = {
      cbhang: { circuit_breakers: { thresholds: [{ max_requests: 1 }] } },
      cbretry: { circuit_breakers: { thresholds: [{ max_retries: 0 }] } },
      cod: { outlier_detection: outlier },
      // 16 callers at once retry more than Envoy's default max_retries (3 concurrent retries)
      // allows before the bad hosts are ejected; a pool meant to absorb them raises it.
      cmix: { outlier_detection: { ...outlier, base_ejection_time: '30s' }, circuit_breakers: { thresholds: [{ max_retries: 64 }] } },
    };
    const retry = (extra: Record<string, unknown>) => ({ retry_back_off: BACKOFF, retry_host_predicate: PREVIOUS_HOSTS, ...extra });
    const routes: Array<[prefix: string, cluster: string, action: Record<string, unknown>, route?: Record<string, unknown>]> = [
      ['/5xx', 'c503', { retry_policy: retry({ retry_on: '5xx', num_retries: 2 }) }],
      ['/none', 'c503only', {}],
      ['/not-a-condition', 'c503only', { retry_policy: retry({ retry_on: 'connect-failure,reset', num_retries: 3 }) }],
      ['/exhausted', 'c503both', { retry_policy: retry({ retry_on: '5xx', num_retries: 1 }) }],
      ['/gateway', 'c502', { retry_policy: retry({ retry_on: 'gateway-error', num_retries: 2 }) }],
      ['/not-gateway', 'c500only', { retry_policy: retry({ retry_on: 'gateway-error', num_retries: 2 }) }],
      ['/4xx', 'c409', { retry_policy: retry({ retry_on: 'retriable-4xx', num_retries: 2 }) }],
      ['/codes', 'c418', { retry_policy: retry({ retry_on: 'retriable-status-codes', retriable_status_codes: [418], num_retries: 2 }) }],
      ['/not-codes', 'c404', { retry_policy: retry({ retry_on: 'retriable-status-codes', retriable_status_codes: [418], num_retries: 2 }) }],
      ['/headers', 'cflagged', { retry_policy: retry({ retry_on: 'retriable-headers', retriable_headers: [{ name: 'x-upstream-retry', present_match: true }], num_retries: 2 }) }],
      ['/ratelimited', 'climited', { retry_policy: retry({ retry_on: 'envoy-ratelimited', num_retries: 2 }) }],
      ['/not-ratelimited', 'climited', { retry_policy: retry({ retry_on: '5xx', num_retries: 2 }) }],
      ['/reset', 'creset', { retry_policy: retry({ retry_on: 'reset', num_retries: 2 }) }],
      ['/allreset', 'cresetonly', { retry_policy: retry({ retry_on: 'reset', num_retries: 2 }) }],
      ['/not-reset', 'cresetonly', { retry_policy: retry({ retry_on: 'retriable-4xx', num_retries: 2 }) }],
      ['/connect', 'crefused', { retry_policy: retry({ retry_on: 'connect-failure', num_retries: 2 }) }],
      ['/per-try', 'chang', { retry_policy: retry({ retry_on: '5xx', num_retries: 2, per_try_timeout: '0.2s' }) }],
      ['/overall', 'changonly', { timeout: '0.3s' }],
      ['/slow-ok', 'cslow', { timeout: '5s' }],
      ['/breaker-requests', 'cbhang', { timeout: '0.4s' }],
      ['/outlier', 'cod', {}],
      ['/mixed', 'cmix', { retry_policy: retry({ retry_on: '5xx,reset,connect-failure', num_retries: 2 }) }],
      ['/breaker-retries', 'cbretry', { retry_policy: retry({ retry_on: '5xx', num_retries: 3 }) }],
      ['/avoid-per-try', 'cweighted', { retry_policy: retry({ retry_on: '5xx', num_retries: 1, per_try_timeout: '0.1s' }) }],
      ['/retry-headers-plain', 'cheaders', { retry_policy: retry({ retry_on: '5xx', num_retries: 1 }) }],
      [
        '/retry-headers-appended',
        'cheaders',
        { retry_policy: retry({ retry_on: '5xx', num_retries: 1 }) },
        { request_headers_to_add: [{ header: { key: 'x-added', value: 'v' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }] },
      ],
    ];
    cp = new ControlPlane();
    const { address } = await cp.start();
    cp.setResources(TYPE_URLS.listener, [listener(`${API}:80`, 'rc-res')]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-res',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: routes.map(([prefix, cluster, action, route]) => ({ match: { prefix }, route: { cluster, ...action }, ...route })),
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, Object.keys(clusters).map((n) => edsCluster(n, clusterExtra[n])));
    const assignments = Object.entries(clusters).map(([n, a]) => endpoints(n, a));
    // cweighted: the hanging host has 50 times the ok host's weight, so a pick that did not
    // leave it out would nearly always choose it again.
    const weighted = assignments.find((a) => a['cluster_name'] === 'cweighted') as { endpoints: Array<{ lb_endpoints: Array<Record<string, unknown>> }> };
    weighted.endpoints[0]!.lb_endpoints[0]!['load_balancing_weight'] = 50;
    cp.setResources(TYPE_URLS.clusterLoadAssignment, assignments);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(11) });
    agent = new MeshAgent({ mesh });
    fetchM = createMeshFetch({ mesh });
  });

  afterAll(async () => {
    await agent?.destroy();
    await fetchM?.agent.destroy();
    mesh?.close();
    await cp?.stop();
    await Promise.all(Object.values(s).map((b) => b.close()));
  });

  const get = async (path: string, init: { method?: string; body?: string } = {}) => {
    const res = await request(`http://${API}${path}`, { dispatcher: agent, method: (init.method ?? 'GET') as 'GET', body: init.body });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };
  const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
    try {
      await p;
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };

  it('retries each retry_on condition on another host until one answers', async () => {
    for (const path of ['/5xx', '/gateway', '/4xx', '/codes', '/headers', '/ratelimited', '/reset', '/connect']) {
      for (let i = 0; i < 4; i++) {
        const r = await get(`${path}/${i}`);
        expect({ path, status: r.status, text: r.text }).toEqual({ path, status: 200, text: 'ok from ok' });
      }
    }
  });

  it('does not retry what the policy does not name', async () => {
    const cases: Array<[path: string, server: string, status: number]> = [
      ['/none', 'e503', 503],
      ['/not-a-condition', 'e503', 503],
      ['/not-gateway', 'e500', 500], // gateway-error is 502, 503 and 504
      ['/not-codes', 'e404', 404],
    ];
    for (const [path, server, status] of cases) {
      const before = s[server]!.hits;
      const r = await get(path);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect({ path, hits: s[server]!.hits - before }).toEqual({ path, hits: 1 });
    }
    // x-envoy-ratelimited is retried only under envoy-ratelimited, never as a 4xx or 5xx.
    const before = s['limited']!.hits + s['ok']!.hits;
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await get('/not-ratelimited')).status);
    expect(s['limited']!.hits + s['ok']!.hits - before).toBe(4);
    expect(statuses.has(503)).toBe(true);
    // A reset under a policy without reset conditions ends the request with the reset.
    expect(await codeOf(get('/not-reset'))).not.toBe('MESHLET_RETRY_LIMIT_EXCEEDED');
  });

  it('delivers the last upstream response when retries are exhausted', async () => {
    const before = s['e503']!.hits + s['e503b']!.hits;
    const r = await get('/exhausted');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/^503 from e503b?$/);
    expect(s['e503']!.hits + s['e503b']!.hits - before).toBe(2);
  });

  it('fails with URX when every attempt was reset', async () => {
    const before = s['reset']!.hits;
    expect(await codeOf(get('/allreset'))).toBe('MESHLET_RETRY_LIMIT_EXCEEDED');
    expect(s['reset']!.hits - before).toBe(3);
  });

  it('replays the request body on a retry, including a streamed one (fetch)', async () => {
    s['ok']!.bodies = [];
    const r = await get('/5xx/body', { method: 'POST', body: 'payload-1' });
    expect(r.status).toBe(200);
    const res = await fetchM(`http://${API}/reset/stream`, { method: 'POST', body: 'payload-2' });
    expect(res.status).toBe(200);
    await res.text();
    expect(s['ok']!.bodies).toEqual(expect.arrayContaining(['payload-1', 'payload-2']));
  });

  it('aborts an attempt at its per-try timeout and succeeds on another host', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await get(`/per-try/${i}`);
      expect(r.text).toBe('ok from ok');
    }
  });

  it('leaves out a host whose attempt hit its per-try timeout (previous_hosts)', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await get(`/avoid-per-try/${i}`);
      expect(r.text).toBe('ok from okw');
    }
    expect(s['hangw']!.hits).toBeGreaterThan(0);
  });

  it('sends a retried attempt the caller\'s headers as they were, with the route\'s appends made once', async () => {
    const lines = (raw: string[], name: string) => raw.filter((_, i) => i % 2 === 0 && raw[i]!.toLowerCase() === name).length;
    const valueOf = (raw: string[], name: string) => raw[raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === name) + 1];
    for (const path of ['/retry-headers-plain', '/retry-headers-appended']) {
      const before503 = s['e503h']!.hits;
      const seen = s['okh']!.heads.length;
      for (let i = 0; i < 4; i++) {
        const res = await request(`http://${API}${path}/${i}`, { dispatcher: agent, headers: { 'x-caller': 'c', 'x-envoy-max-retries': '1' } });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }
      expect(s['e503h']!.hits - before503).toBeGreaterThan(0); // some requests were retried
      for (const raw of s['okh']!.heads.slice(seen)) {
        expect({ path, host: lines(raw, 'host'), caller: valueOf(raw, 'x-caller'), envoy: lines(raw, 'x-envoy-max-retries') }).toEqual({ path, host: 1, caller: 'c', envoy: 0 });
        const added = path.endsWith('appended') ? ['v'] : [];
        expect({ path, added: raw.filter((_, i) => i > 0 && raw[i - 1]!.toLowerCase() === 'x-added' && i % 2 === 1) }).toEqual({ path, added });
      }
    }
  });

  it('ends with UT when the route timeout expires before a response', async () => {
    const before = s['hang']!.hits;
    const code = await codeOf(get('/overall'));
    expect(code).toBe('MESHLET_UPSTREAM_TIMEOUT');
    expect(s['hang']!.hits - before).toBe(1);
    // fetch reports it as the cause of its TypeError.
    const err = await fetchM(`http://${API}/overall`).then(
      () => undefined,
      (e: unknown) => e as { cause?: { code?: string; responseFlag?: string } },
    );
    expect(err?.cause).toMatchObject({ code: 'MESHLET_UPSTREAM_TIMEOUT', responseFlag: 'UT' });
  });

  it('works over a pool that speaks undici\'s older handler style (a PoolFactory\'s dispatcher)', async () => {
    class LegacyPool extends Dispatcher {
      override dispatch(_opts: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler): boolean {
        const legacy = h as unknown as {
          onConnect(abort: () => void): void;
          onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean;
          onData(chunk: Buffer): boolean;
          onComplete(trailers: null): void;
        };
        queueMicrotask(() => {
          legacy.onConnect(() => {});
          legacy.onHeaders(200, [Buffer.from('x-legacy'), Buffer.from('yes')], () => {}, 'OK');
          legacy.onData(Buffer.from('legacy body'));
          legacy.onComplete(null);
        });
        return true;
      }
      override close(): Promise<void> {
        return Promise.resolve();
      }
    }
    const legacyAgent = new MeshAgent({ mesh, poolFactory: () => new LegacyPool() as never });
    try {
      const r = await request(`http://${API}/5xx/legacy`, { dispatcher: legacyAgent });
      expect(r.statusCode).toBe(200);
      expect(r.headers['x-legacy']).toBe('yes');
      expect(await r.body.text()).toBe('legacy body');
    } finally {
      await legacyAgent.close();
    }
  });

  it('lets a slow answer within the timeout through', async () => {
    expect((await get('/slow-ok')).text).toBe('slow slow');
  });

  it('fails fast with UO when max_requests is reached, and frees the slot when the request ends', async () => {
    const before = s['hang']!.hits;
    const first = codeOf(get('/breaker-requests/1'));
    for (let i = 0; i < 200 && s['hang']!.hits === before; i++) await new Promise((r) => setTimeout(r, 5));
    const err = await get('/breaker-requests/2').then(
      () => undefined,
      (e: unknown) => e as { code?: string; responseFlag?: string },
    );
    expect(err).toMatchObject({ code: 'MESHLET_OVERFLOW', responseFlag: 'UO' });
    expect(s['hang']!.hits - before).toBe(1);
    expect(await first).toBe('MESHLET_UPSTREAM_TIMEOUT');
    expect(mesh.breakers.peek('cbhang')?.active('request')).toBe(0);
    // The slot is free again: the next request reaches the server (and times out there).
    expect(await codeOf(get('/breaker-requests/3'))).toBe('MESHLET_UPSTREAM_TIMEOUT');
    expect(s['hang']!.hits - before).toBe(2);
  });

  it('cancels the attempt in flight when the caller aborts, and frees its breaker slot', async () => {
    const before = s['hang']!.hits;
    const ac = new AbortController();
    const pending = fetchM(`http://${API}/breaker-requests/abort`, { signal: ac.signal }).then(
      () => 'resolved',
      (e: unknown) => (e as Error).name,
    );
    for (let i = 0; i < 200 && s['hang']!.hits === before; i++) await new Promise((r) => setTimeout(r, 5));
    expect(mesh.breakers.peek('cbhang')?.active('request')).toBe(1);
    ac.abort();
    expect(await pending).toBe('AbortError');
    for (let i = 0; i < 200 && mesh.breakers.peek('cbhang')?.active('request') !== 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(mesh.breakers.peek('cbhang')?.active('request')).toBe(0);
  });

  it('stops retrying when max_retries is reached, delivering the last response', async () => {
    const before = s['e503only']!.hits;
    const r = await get('/breaker-retries');
    expect(r.status).toBe(503);
    expect(s['e503only']!.hits - before).toBe(1);
    expect(mesh.breakers.peek('cbretry')?.active('retry')).toBe(0);
  });

  it('ejects a host after consecutive 5xx, keeps traffic off it, and lets it back when its time is up', async () => {
    // Round robin over [503, ok]: the 503 host is ejected by its second consecutive 503.
    let seen503 = 0;
    for (let i = 0; i < 10 && seen503 < 2; i++) if ((await get('/outlier')).status === 503) seen503++;
    expect(seen503).toBe(2);
    expect(mesh.outlierDetectors.peek('cod')?.ejected().size).toBe(1);
    const before = s['e503od']!.hits;
    for (let i = 0; i < 20; i++) expect((await get('/outlier')).status).toBe(200);
    expect(s['e503od']!.hits).toBe(before);
    // base_ejection_time 0.3 s, interval 0.1 s: it comes back at an interval after its time.
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      await new Promise((r) => setTimeout(r, 30));
      back = mesh.outlierDetectors.peek('cod')?.ejected().size === 0;
    }
    expect(back).toBe(true);
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await get('/outlier')).status);
    expect(statuses.has(503)).toBe(true);
  });

  it('keeps >= 99.9 % of 1,000 calls to a mixed pool (good, 503, resetting) successful', async () => {
    let ok = 0;
    let next = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < 1000) {
        next++;
        try {
          const r = await get('/mixed');
          if (r.status === 200) ok++;
          else failures.push(String(r.status));
        } catch (err) {
          failures.push(String((err as { code?: string }).code));
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(ok, `failures: ${failures.slice(0, 10).join(', ')}`).toBeGreaterThanOrEqual(999);
  });
});

/** A clock whose timers fire only when the test says so. */
class ManualClock {
  #t = 0;
  #id = 0;
  readonly timers = new Map<number, { ms: number; cb: () => void }>();
  now(): number {
    return this.#t;
  }
  setTimeout(cb: () => void, ms: number): number {
    const id = ++this.#id;
    this.timers.set(id, { ms, cb });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  pending(ms: number): number {
    let n = 0;
    for (const t of this.timers.values()) if (t.ms === ms) n++;
    return n;
  }
  /** Fire every timer set for `ms`. */
  fire(ms: number): void {
    for (const [id, t] of [...this.timers]) {
      if (t.ms !== ms) continue;
      this.timers.delete(id);
      t.cb();
    }
  }
}

const FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
const DELAY_MS = 1234;

describe('MeshAgent: fault injection', () => {
  const HOST = 'faults.mesh.test';
  let cp: ControlPlane;
  let mesh: ReturnType<typeof createMesh>;
  let agent: MeshAgent;
  let backend: Misbehaving;
  const clock = new ManualClock();

  beforeAll(async () => {
    backend = await startServer('ok', { kind: 'ok' });
    cp = new ControlPlane();
    const { address } = await cp.start();
    const percent = (n: number) => ({ numerator: n, denominator: 'HUNDRED' });
    cp.setResources(TYPE_URLS.listener, [
      listener(`${HOST}:80`, 'rc-fault', {
        http_filters: [
          {
            name: 'envoy.filters.http.fault',
            typed_config: {
              '@type': FAULT,
              delay: { fixed_delay: `${DELAY_MS / 1000}s`, percentage: percent(40) },
              abort: { http_status: 418, percentage: percent(30) },
            },
          },
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      }),
    ]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-fault',
        virtual_hosts: [
          {
            name: 'v',
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/off' },
                route: { cluster: 'fault-backend' },
                typed_per_filter_config: { 'envoy.filters.http.fault': { '@type': FILTER_CONFIG, disabled: true } },
              },
              {
                match: { prefix: '/limited' },
                route: { cluster: 'fault-backend' },
                typed_per_filter_config: {
                  'envoy.filters.http.fault': { '@type': FAULT, delay: { fixed_delay: `${DELAY_MS / 1000}s`, percentage: percent(100) }, max_active_faults: 2 },
                },
              },
              { match: { prefix: '/' }, route: { cluster: 'fault-backend' } },
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster('fault-backend')]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [endpoints('fault-backend', [['127.0.0.1', backend.port]])]);
    mesh = createMesh({ bootstrap: bootstrapFor(address), random: seededRandom(3), clock });
    agent = new MeshAgent({ mesh });
  });

  afterAll(async () => {
    await agent?.destroy();
    mesh?.close();
    await cp?.stop();
    await backend?.close();
  });

  const call = (path: string) =>
    request(`http://${HOST}${path}`, { dispatcher: agent }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));

  it('delays and aborts requests in the configured proportions, on the injected clock', async () => {
    expect((await call('/off')).status).toBe(200); // a route override turns the filter off
    const n = 400;
    const results = Array.from({ length: n }, () => call('/'));
    // Routing is synchronous once the target is ready: every delay timer is set by now.
    await new Promise((r) => setImmediate(r));
    const delayed = clock.pending(DELAY_MS);
    // Binomial(400, 0.4): mean 160, sd 9.8.
    expect(delayed).toBeGreaterThanOrEqual(110);
    expect(delayed).toBeLessThanOrEqual(210);
    clock.fire(DELAY_MS);
    const all = await Promise.all(results);
    const aborted = all.filter((r) => r.status === 418);
    // Binomial(400, 0.3): mean 120, sd 9.2.
    expect(aborted.length).toBeGreaterThanOrEqual(70);
    expect(aborted.length).toBeLessThanOrEqual(170);
    expect(aborted[0]!.text).toBe('fault filter abort');
    expect(all.filter((r) => r.status === 200).length).toBe(n - aborted.length);
  });

  it('gives no fault beyond max_active_faults', async () => {
    const before = backend.hits;
    const results = Array.from({ length: 5 }, () => call('/limited'));
    for (let i = 0; i < 400 && backend.hits - before < 3; i++) await new Promise((r) => setTimeout(r, 5));
    expect(clock.pending(DELAY_MS)).toBe(2);
    expect(backend.hits - before).toBe(3);
    clock.fire(DELAY_MS);
    expect((await Promise.all(results)).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(backend.hits - before).toBe(5);
  });
});
