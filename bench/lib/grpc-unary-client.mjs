// Child process (forked, IPC): one gRPC client kind ('direct', 'direct-warm', 'grpc-js-xds' or
// 'meshlet') against the three backends of grpc-serve-unary.mjs. Each client has a
// process of its own, so one library's resolver, timers and garbage never run inside
// another's measurement.
//   argv: <kind> <json {address, ports}>
//   → {ready: true} once warm; then for each {n, concurrency} (n calls; bench/grpc-unary.mjs)
//   or {ms, concurrency} (calls for ms milliseconds; bench/paired.mjs):
//   → {rps, cpuPerRequest, userPerRequest, systemPerRequest, errors}, the shape
//   bench/lib/http-client.mjs answers (CPU in µs per completed call, failed ones included).
import * as grpc from '@grpc/grpc-js';
import { run as runCalls, runFor as runCallsFor } from './drive.mjs';
import { EchoClient, UNARY_TARGET, setUpClientKind } from './grpc-echo.mjs';

const kind = process.argv[2];
const served = JSON.parse(process.argv[3]);
const { target, options } = await setUpClientKind(kind, { ...served, target: UNARY_TARGET });
const client = new EchoClient(target, grpc.credentials.createInsecure(), options);
const payload = Buffer.from('x'.repeat(100));

/** One unary call; resolves with whether it failed. */
function call() {
  return new Promise((resolve) => client.Echo(payload, (err) => resolve(Boolean(err))));
}

const run = (n, concurrency) => runCalls(call, n, concurrency);
const runFor = (ms, concurrency) => runCallsFor(call, ms, concurrency);

// Ready means the first RPC succeeded (config resolved, a subchannel connected); the
// warm-up then lets round robin reach all three backends and the JIT settle.
await new Promise((resolve, reject) =>
  client.Echo(payload, { deadline: Date.now() + 30_000, waitForReady: true }, (err) => (err ? reject(err) : resolve())),
);
// Standalone (bench/instructions.mjs, under valgrind): argv[4] = "<warm-up>,<measured>[,<concurrency>]"
// (concurrency 32 unless given); run them and exit, no IPC.
if (process.argv[4]) {
  const [warm, n, concurrency = 32] = process.argv[4].split(',').map(Number);
  let errors = (await run(warm, concurrency)).errors;
  if (n > 0) errors += (await run(n, concurrency)).errors;
  if (errors > 0) throw new Error(`${errors} calls failed`);
  // bench/lib/heap-live.mjs --settle: sit idle first, as a process does between xDS updates.
  const settle = Number(process.env.MESHLET_HEAP_SETTLE_MS ?? 0);
  if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
  process.exit(0);
}
// 10,000 calls (a few seconds): with fewer, the HTTP clients' first rounds still favoured the
// client with less code to optimize (bench/lib/http-client.mjs).
await run(10000, 32);
process.send({ ready: true });
// The parent gone (finished or killed): nothing more to measure.
process.on('disconnect', () => process.exit(0));
process.on('message', async (msg) => {
  if (msg.exit) {
    client.close();
    process.exit(0);
  }
  process.send(msg.ms !== undefined ? await runFor(msg.ms, msg.concurrency) : await run(msg.n, msg.concurrency));
});
