// The demo's gRPC client app (examples/grpc-client.mjs, step 7 of examples/demo.mjs), run as
// the demo runs it: a process of its own, bootstrapped by GRPC_XDS_BOOTSTRAP, against the real
// control plane serving examples/config/echo-grpc.yaml and grpc-js backends answering as the
// demo's do ("<name> says <message>"). Only the ports differ: the backends take free ones, and
// the config copy names them instead of the demo's fixed 17071-17073.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '@meshlet/control-plane';
import { TYPE_URLS } from '@meshlet/xds-client';
import { ECHO_SERVICE } from './helpers/grpc-echo.js';
import { bootstrapFor } from './helpers/xds-resources.js';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const DEMO_PORTS = { 'echo-a': 17071, 'echo-b': 17072, 'echo-canary': 17073 } as const;
type Name = keyof typeof DEMO_PORTS;

interface DemoBackend {
  readonly port: number;
  calls: number;
  readonly server: grpc.Server;
}

/** A backend as the demo starts it, on a free loopback port. */
async function startDemoBackend(name: Name): Promise<DemoBackend> {
  const server = new grpc.Server();
  const backend = { port: 0, calls: 0, server };
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      backend.calls++;
      cb(null, Buffer.from(`${name} says ${call.request.toString()}`));
    },
  });
  backend.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))),
  );
  return backend;
}

/** Run examples/grpc-client.mjs as the demo does (spawn: the control plane runs in this process). */
function runClient(env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(EXAMPLES, 'grpc-client.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 25_000);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('examples/grpc-client.mjs (the demo, step 7)', () => {
  let dir: string;
  let cp: ControlPlane;
  const backends = {} as Record<Name, DemoBackend>;
  let run: Awaited<ReturnType<typeof runClient>>;
  let lines: string[];

  beforeAll(async () => {
    for (const name of Object.keys(DEMO_PORTS) as Name[]) backends[name] = await startDemoBackend(name);
    dir = mkdtempSync(join(tmpdir(), 'meshlet-demo-client-'));
    const configDir = join(dir, 'config');
    mkdirSync(configDir);
    let yaml = readFileSync(join(EXAMPLES, 'config/echo-grpc.yaml'), 'utf8');
    for (const [name, port] of Object.entries(DEMO_PORTS)) {
      expect(yaml).toContain(`port_value: ${port} `);
      yaml = yaml.replace(`port_value: ${port} `, `port_value: ${backends[name as Name].port} `);
    }
    writeFileSync(join(configDir, 'echo-grpc.yaml'), yaml);
    cp = new ControlPlane({ configDir, configDebounceMs: 50 });
    const { address } = await cp.start();
    expect([...cp.getResources(TYPE_URLS.listener).keys()]).toEqual(['echo.default.svc.cluster.local:7070']);
    const bootstrapFile = join(dir, 'bootstrap.json');
    writeFileSync(bootstrapFile, JSON.stringify(bootstrapFor(address, 'sidecar~127.0.0.1~demo.default~default.svc.cluster.local')));
    const env: NodeJS.ProcessEnv = { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrapFile };
    delete env.GRPC_XDS_BOOTSTRAP_CONFIG;
    delete env.MESHLET_TRACE;
    run = await runClient(env);
    lines = run.stdout.trimEnd().split('\n');
  });

  afterAll(async () => {
    await cp?.stop();
    for (const b of Object.values(backends)) b.server.forceShutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exits cleanly after its calls', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(lines, run.stdout).toHaveLength(7);
  });

  it('resolves the config and answers the first call from the default subset', () => {
    expect(lines[0]).toMatch(/^echo-[ab] says hello 1 {3}\(first call, config resolved and connected: \d+ ms\)$/);
    expect(lines.slice(1, 4)).toEqual([
      expect.stringMatching(/^echo-[ab] says hello 2$/),
      expect.stringMatching(/^echo-[ab] says hello 3$/),
      expect.stringMatching(/^echo-[ab] says hello 4$/),
    ]);
  });

  it('routes the calls with metadata x-canary: true to the canary subset', () => {
    expect(lines.slice(4, 6)).toEqual([
      'echo-canary says canary 1   (metadata x-canary: true)',
      'echo-canary says canary 2   (metadata x-canary: true)',
    ]);
    expect(backends['echo-canary'].calls).toBe(2);
  });

  it('splits the 100 calls round robin over the default subset', () => {
    // Round robin over READY endpoints: both are READY after the first calls (the pool
    // connects every endpoint of the cluster at its first call), so the split is exact.
    expect(lines[6]).toBe('100 more calls: echo-a 50, echo-b 50');
    expect(backends['echo-a'].calls + backends['echo-b'].calls).toBe(104);
  });
});
