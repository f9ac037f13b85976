// Parity: the same scenarios, against the same @meshlet/control-plane, through
// @grpc/grpc-js-xds (scheme `xds`) and @meshlet/grpc (scheme `meshlet-xds`) in one
// process, give the same outcomes: weighted split (gRFC A28), header matching on
// metadata (A28: `-bin` headers absent, `content-type` is application/grpc), fault abort
// codes (A33: grpc_status, http_status mapped, header-controlled) and retry outcomes
// (A44: gRPC retry_on codes, attempts capped at 5). Each outcome is checked against the
// gRFC's expectation and the two libraries against each other; the one known difference
// is pinned in a test of its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { register as registerMeshlet } from '@meshlet/grpc';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { bootstrapFor, edsCluster, endpoints, listener, routeConfig } from './helpers/xds-resources.js';
import { ECHO_SERVICE, startEchoBackend, type EchoBackend } from './helpers/grpc-echo.js';

const FAULT_FILTER = 'envoy.filters.http.fault';
const HTTP_FAULT = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const CLUSTER_A = 'outbound|8080|a|parity.test';
const CLUSTER_B = 'outbound|8080|b|parity.test';
const CLUSTER_FLAKY = 'outbound|8080|flaky|parity.test';

const T = {
  split: 'split.parity.test:8080',
  header: 'header.parity.test:8080',
  fault: 'fault.parity.test:8080',
  retry: 'retry.parity.test:8080',
  invert: 'invert.parity.test:8080',
};

const LIBS = [
  { name: 'grpc-js-xds', scheme: 'xds' },
  { name: 'meshlet', scheme: 'meshlet-xds' },
] as const;
type LibName = (typeof LIBS)[number]['name'];

/**
 * A backend that fails each call, identified by its `x-call-id`, with `x-fail-code`
 * (default UNAVAILABLE) for its first `x-fail-times` attempts, then answers with the
 * attempt number. Counting attempts server-side shows what the client's retries did.
 */
async function startFlakyBackend(): Promise<{ port: number; attempts: Map<string, number>; close(): Promise<void> }> {
  const attempts = new Map<string, number>();
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const id = String(call.metadata.get('x-call-id')[0]);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const failTimes = Number(call.metadata.get('x-fail-times')[0] ?? 0);
      if (n <= failTimes) {
        const code = Number(call.metadata.get('x-fail-code')[0] ?? grpc.status.UNAVAILABLE);
        cb({ code, details: `flaky attempt ${n}` });
      } else {
        cb(null, Buffer.from(`flaky:${n}`));
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, attempts, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

type Outcome = { ok: true; reply: string } | { ok: false; code: grpc.status };

const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'EchoService');
type Echo = grpc.Client & {
  Echo(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
};

function call(client: Echo, headers: Record<string, string | Buffer> = {}): Promise<Outcome> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) =>
    client.Echo(Buffer.from('p'), md, { deadline: Date.now() + 10_000 }, (err, res) =>
      resolve(err ? { ok: false, code: err.code } : { ok: true, reply: res!.toString() }),
    ),
  );
}

/** The backend name an outcome came from, or the status code's name. */
const who = (o: Outcome): string => (o.ok ? o.reply.split(':')[0]! : grpc.status[o.code]!);

const faultRoute = (value: string, abort: Record<string, unknown>) => ({
  match: { prefix: '', headers: [{ name: 'x-fault', string_match: { exact: value } }] },
  route: { cluster: CLUSTER_A },
  typed_per_filter_config: {
    [FAULT_FILTER]: { '@type': HTTP_FAULT, abort: { ...abort, percentage: { numerator: 100, denominator: 'HUNDRED' } } },
  },
});

const retryRoute = (value: string, retryPolicy?: Record<string, unknown>) => ({
  match: { prefix: '', headers: [{ name: 'x-case', string_match: { exact: value } }] },
  route: { cluster: CLUSTER_FLAKY, ...(retryPolicy ? { retry_policy: retryPolicy } : {}) },
});
// A short backoff keeps the test fast; the outcome does not depend on it.
const backOff = { base_interval: '0.005s', max_interval: '0.02s' };

describe('@grpc/grpc-js-xds and @meshlet/grpc, side by side on one control plane', () => {
  let cp: ControlPlane;
  let a: EchoBackend;
  let b: EchoBackend;
  let flaky: Awaited<ReturnType<typeof startFlakyBackend>>;
  const clients = new Map<string, Echo>();
  const client = (lib: LibName, target: string): Echo => clients.get(`${lib} ${target}`)!;
  /** Run the same calls through both libraries; outcomes by library. */
  const both = async <R>(fn: (lib: LibName) => Promise<R>): Promise<Record<LibName, R>> => {
    const out = {} as Record<LibName, R>;
    for (const { name } of LIBS) out[name] = await fn(name);
    return out;
  };

  beforeAll(async () => {
    [a, b, flaky] = await Promise.all([startEchoBackend('a'), startEchoBackend('b'), startFlakyBackend()]);
    cp = new ControlPlane();
    const { address } = await cp.start();
    const faultFilters = {
      http_filters: [
        { name: FAULT_FILTER, typed_config: { '@type': HTTP_FAULT } },
        { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
      ],
    };
    cp.setResources(TYPE_URLS.listener, [
      listener(T.split, 'rc-split'),
      listener(T.header, 'rc-header'),
      listener(T.fault, 'rc-fault', faultFilters),
      listener(T.retry, 'rc-retry'),
      listener(T.invert, 'rc-invert'),
    ]);
    cp.setResources(TYPE_URLS.routeConfiguration, [
      routeConfig('rc-split', [{ domains: [T.split], routes: [{ prefix: '', weighted: [[CLUSTER_A, 75], [CLUSTER_B, 25]] }] }]),
      routeConfig('rc-invert', [
        {
          domains: [T.invert],
          routes: [
            { prefix: '', headers: [{ name: 'x-missing', string_match: { exact: 'yes' }, invert_match: true }], cluster: CLUSTER_B },
            { prefix: '', cluster: CLUSTER_A },
          ],
        },
      ]),
      routeConfig('rc-header', [
        {
          domains: [T.header],
          routes: [
            // gRFC A28: a `-bin` header is treated as absent, so this never matches.
            { prefix: '', headers: [{ name: 'x-tag-bin', present_match: true }], cluster: CLUSTER_B },
            { prefix: '', headers: [{ name: 'x-subset', string_match: { exact: 'b' } }], cluster: CLUSTER_B },
            { prefix: '', headers: [{ name: 'x-version', range_match: { start: 2, end: 5 } }], cluster: CLUSTER_B },
            { prefix: '', headers: [{ name: 'x-env', string_match: { prefix: 'canary', ignore_case: true } }], cluster: CLUSTER_B },
            // gRFC A28: content-type is matched as application/grpc.
            {
              prefix: '',
              headers: [
                { name: 'x-ct', present_match: true },
                { name: 'content-type', string_match: { exact: 'application/grpc' } },
              ],
              cluster: CLUSTER_B,
            },
            {
              path: '/meshlet.test.EchoService/Echo',
              headers: [
                { name: 'x-not', present_match: true },
                { name: 'x-not', string_match: { exact: 'yes' }, invert_match: true },
              ],
              cluster: CLUSTER_B,
            },
            { prefix: '', cluster: CLUSTER_A },
          ],
        },
      ]),
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-fault',
        virtual_hosts: [
          {
            name: 'fault',
            domains: [T.fault],
            routes: [
              faultRoute('grpc-8', { grpc_status: 8 }),
              faultRoute('grpc-14', { grpc_status: 14 }),
              faultRoute('http-400', { http_status: 400 }),
              faultRoute('http-401', { http_status: 401 }),
              faultRoute('http-403', { http_status: 403 }),
              faultRoute('http-404', { http_status: 404 }),
              faultRoute('http-429', { http_status: 429 }),
              faultRoute('http-500', { http_status: 500 }),
              faultRoute('http-503', { http_status: 503 }),
              faultRoute('from-header', { header_abort: {} }),
              { match: { prefix: '' }, route: { cluster: CLUSTER_A } },
            ],
          },
        ],
      },
      {
        '@type': TYPE_URLS.routeConfiguration,
        name: 'rc-retry',
        virtual_hosts: [
          {
            name: 'retry',
            domains: [T.retry],
            routes: [
              retryRoute('retry-3', { retry_on: 'unavailable', num_retries: 3, retry_back_off: backOff }),
              // gRPC caps attempts at 5 (A44), whatever num_retries says.
              retryRoute('retry-10', { retry_on: 'cancelled,unavailable', num_retries: 10, retry_back_off: backOff }),
              // Envoy's HTTP conditions mean nothing to a gRPC client (A44): only gRPC codes count.
              retryRoute('http-only', { retry_on: '5xx,gateway-error,reset', num_retries: 3, retry_back_off: backOff }),
              retryRoute('other-code', { retry_on: 'cancelled,deadline-exceeded', num_retries: 3, retry_back_off: backOff }),
              retryRoute('none'),
            ],
          },
        ],
      },
    ]);
    cp.setResources(TYPE_URLS.cluster, [edsCluster(CLUSTER_A), edsCluster(CLUSTER_B), edsCluster(CLUSTER_FLAKY)]);
    cp.setResources(TYPE_URLS.clusterLoadAssignment, [
      endpoints(CLUSTER_A, [['127.0.0.1', a.port]]),
      endpoints(CLUSTER_B, [['127.0.0.1', b.port]]),
      endpoints(CLUSTER_FLAKY, [['127.0.0.1', flaky.port]]),
    ]);
    // Both libraries read the same bootstrap from the environment at first use.
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(bootstrapFor(address, 'sidecar~127.0.0.1~parity.default~default.svc.cluster.local'));
    grpcXds.register();
    registerMeshlet({ scheme: 'meshlet-xds' });
    for (const { name, scheme } of LIBS) {
      for (const target of Object.values(T)) clients.set(`${name} ${target}`, new EchoClient(`${scheme}:///${target}`, grpc.credentials.createInsecure()) as unknown as Echo);
    }
    // The first call on each channel waits for its config; every later outcome is steady state.
    await Promise.all(
      [...clients.values()].map(
        (c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 15_000, (err) => (err ? reject(err) : resolve()))),
      ),
    );
    await Promise.all(LIBS.map(({ name }) => call(client(name, T.split))));
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await cp?.stop();
    await Promise.all([a, b, flaky].map((s) => s?.close()));
  });

  it('splits a weighted route 75/25 within statistical bounds, both alike', async () => {
    const N = 400;
    const shares = await both(async (lib) => {
      const outcomes: Outcome[] = [];
      // 8 calls in flight at a time: fast, and the pick is per call either way.
      for (let i = 0; i < N; i += 8) outcomes.push(...(await Promise.all(Array.from({ length: 8 }, () => call(client(lib, T.split))))));
      expect(outcomes.every((o) => o.ok), lib).toBe(true);
      return outcomes.filter((o) => who(o) === 'b').length / N;
    });
    // Binomial(400, 0.25): σ ≈ 0.022; 4.5 σ bounds fail by chance about once in 150,000 runs.
    const sigma = Math.sqrt((0.25 * 0.75) / N);
    for (const { name } of LIBS) {
      expect(shares[name], name).toBeGreaterThan(0.25 - 4.5 * sigma);
      expect(shares[name], name).toBeLessThan(0.25 + 4.5 * sigma);
    }
    expect(Math.abs(shares['grpc-js-xds'] - shares.meshlet)).toBeLessThan(4.5 * sigma * Math.SQRT2);
  });

  it('routes on metadata the same way (exact, range, ignore_case prefix, -bin absent, content-type, invert)', async () => {
    const cases: Array<[Record<string, string | Buffer>, string]> = [
      [{}, 'a'],
      [{ 'x-subset': 'b' }, 'b'],
      [{ 'x-subset': 'B' }, 'a'],
      [{ 'x-tag-bin': Buffer.from([1, 2, 3]) }, 'a'],
      [{ 'x-version': '3' }, 'b'],
      [{ 'x-version': '5' }, 'a'],
      [{ 'x-env': 'CANARY-eu' }, 'b'],
      [{ 'x-env': 'prod' }, 'a'],
      [{ 'x-ct': '1' }, 'b'],
      [{ 'x-not': 'no' }, 'b'],
      [{ 'x-not': 'yes' }, 'a'],
    ];
    const got = await both(async (lib) => {
      const out: string[] = [];
      for (const [headers] of cases) out.push(who(await call(client(lib, T.header), headers)));
      return out;
    });
    expect(got['grpc-js-xds']).toEqual(cases.map(([, want]) => want));
    expect(got.meshlet).toEqual(got['grpc-js-xds']);
  });

  // The one difference found: a value matcher with invert_match on a header the call does
  // not carry. grpc-js-xds 1.14.1 inverts the miss into a match; meshlet follows Envoy
  // (HeaderUtility::matchHeaders) and gRPC C++ (HeaderMatcher::Match returns false for a
  // missing header before inverting): no match. Pinned here so a change on either side shows.
  it('differs on purpose: invert_match on a missing header matches in grpc-js-xds only', async () => {
    const got = await both(async (lib) => who(await call(client(lib, T.invert))));
    expect(got).toEqual({ 'grpc-js-xds': 'b', meshlet: 'a' });
  });

  it('aborts with the same codes (grpc_status, http_status mapped per A33, header-controlled)', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'x-fault': 'grpc-8' }, 'RESOURCE_EXHAUSTED'],
      [{ 'x-fault': 'grpc-14' }, 'UNAVAILABLE'],
      [{ 'x-fault': 'http-400' }, 'INTERNAL'],
      [{ 'x-fault': 'http-401' }, 'UNAUTHENTICATED'],
      [{ 'x-fault': 'http-403' }, 'PERMISSION_DENIED'],
      [{ 'x-fault': 'http-404' }, 'UNIMPLEMENTED'],
      [{ 'x-fault': 'http-429' }, 'UNAVAILABLE'],
      [{ 'x-fault': 'http-500' }, 'UNKNOWN'],
      [{ 'x-fault': 'http-503' }, 'UNAVAILABLE'],
      [{ 'x-fault': 'from-header', 'x-envoy-fault-abort-grpc-request': '5' }, 'NOT_FOUND'],
      [{ 'x-fault': 'from-header', 'x-envoy-fault-abort-request': '403' }, 'PERMISSION_DENIED'],
      // header_abort with no abort header: no fault.
      [{ 'x-fault': 'from-header' }, 'a'],
      [{}, 'a'],
    ];
    const callsBefore = a.calls;
    const got = await both(async (lib) => {
      const out: string[] = [];
      for (const [headers] of cases) out.push(who(await call(client(lib, T.fault), headers)));
      return out;
    });
    expect(got['grpc-js-xds']).toEqual(cases.map(([, want]) => want));
    expect(got.meshlet).toEqual(got['grpc-js-xds']);
    // An aborted call never reaches the backend: only the two un-faulted cases did, per library.
    expect(a.calls - callsBefore).toBe(2 * LIBS.length);
  });

  it('retries the same way (attempts counted at the backend)', async () => {
    const cases: Array<{ headers: Record<string, string>; want: string; attempts: number }> = [
      { headers: { 'x-case': 'retry-3', 'x-fail-times': '2' }, want: 'flaky', attempts: 3 },
      { headers: { 'x-case': 'retry-3', 'x-fail-times': '3' }, want: 'flaky', attempts: 4 },
      { headers: { 'x-case': 'retry-3', 'x-fail-times': '4' }, want: 'UNAVAILABLE', attempts: 4 },
      { headers: { 'x-case': 'retry-10', 'x-fail-times': '4' }, want: 'flaky', attempts: 5 },
      { headers: { 'x-case': 'retry-10', 'x-fail-times': '6' }, want: 'UNAVAILABLE', attempts: 5 },
      // A code the policy does not name is not retried.
      { headers: { 'x-case': 'retry-3', 'x-fail-times': '1', 'x-fail-code': String(grpc.status.INTERNAL) }, want: 'INTERNAL', attempts: 1 },
      { headers: { 'x-case': 'other-code', 'x-fail-times': '1' }, want: 'UNAVAILABLE', attempts: 1 },
      { headers: { 'x-case': 'http-only', 'x-fail-times': '1' }, want: 'UNAVAILABLE', attempts: 1 },
      { headers: { 'x-case': 'none', 'x-fail-times': '1' }, want: 'UNAVAILABLE', attempts: 1 },
      { headers: { 'x-case': 'none' }, want: 'flaky', attempts: 1 },
    ];
    const got = await both(async (lib) => {
      const out: Array<[string, number]> = [];
      for (const [i, { headers }] of cases.entries()) {
        const id = `${lib}-${i}`;
        const o = await call(client(lib, T.retry), { ...headers, 'x-call-id': id });
        out.push([who(o), flaky.attempts.get(id) ?? 0]);
      }
      return out;
    });
    expect(got['grpc-js-xds']).toEqual(cases.map((c) => [c.want, c.attempts]));
    expect(got.meshlet).toEqual(got['grpc-js-xds']);
  });

  it('was ACKed by both clients, with no NACK', () => {
    const ackedBy = new Set(cp.acks(TYPE_URLS.routeConfiguration).map((r) => r.streamId));
    expect(ackedBy.size).toBeGreaterThanOrEqual(2);
    expect(cp.nacks()).toHaveLength(0);
  });
});
