// Child process (forked, IPC): one gRPC client kind ('direct', 'grpc-js-xds' or
// 'meshlet') against the three backends of grpc-serve-unary.mjs. Each client has a
// process of its own, so one library's resolver, timers and garbage never run inside
// another's measurement.
//   argv: <kind> <json {address, ports}>
//   → {ready: true} once warm; then for each {n, concurrency}: → {callsPerSec, cpuUsPerCall, errors}
import * as grpc from '@grpc/grpc-js';
import { EchoClient, UNARY_TARGET, setUpClientKind } from './grpc-echo.mjs';

const kind = process.argv[2];
const served = JSON.parse(process.argv[3]);
const { target, options } = await setUpClientKind(kind, { ...served, target: UNARY_TARGET });
const client = new EchoClient(target, grpc.credentials.createInsecure(), options);
const payload = Buffer.from('x'.repeat(100));

let errors = 0;
function call() {
  return new Promise((resolve) =>
    client.Echo(payload, (err) => {
      if (err) errors++;
      resolve();
    }),
  );
}

async function run(n, concurrency) {
  errors = 0;
  let next = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await call();
    }),
  );
  const cpu = process.cpuUsage(cpuStart);
  return { callsPerSec: n / ((performance.now() - start) / 1000), cpuUsPerCall: (cpu.user + cpu.system) / n, errors };
}

// Ready means the first RPC succeeded (config resolved, a subchannel connected); the
// warm-up then lets round robin reach all three backends and the JIT settle.
await new Promise((resolve, reject) =>
  client.Echo(payload, { deadline: Date.now() + 30_000, waitForReady: true }, (err) => (err ? reject(err) : resolve())),
);
// Standalone (bench/instructions.mjs, under valgrind): argv[4] = "<warm-up>,<measured>[,<concurrency>]"
// (concurrency 32 unless given); run them and exit, no IPC.
if (process.argv[4]) {
  const [warm, n, concurrency = 32] = process.argv[4].split(',').map(Number);
  await run(warm, concurrency);
  if (n > 0) await run(n, concurrency);
  if (errors > 0) throw new Error(`${errors} calls failed`);
  process.exit(0);
}
await run(3000, 32);
process.send({ ready: true });
// The parent gone (finished or killed): nothing more to measure.
process.on('disconnect', () => process.exit(0));
process.on('message', async (msg) => {
  if (msg.exit) {
    client.close();
    process.exit(0);
  }
  process.send(await run(msg.n, msg.concurrency));
});
