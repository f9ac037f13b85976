// Child process: one xDS client kind ('meshlet' or 'grpc-js-xds') against the scale
// scenario of serve-scale.mjs; the time from client start to its first successful RPC,
// and the process's RSS at that moment.
//   argv: <kind> <xds server address>
//   prints {"ms": from loading the library, "clientMs": from `new Client`, "rssMB": ...}
import * as grpc from '@grpc/grpc-js';
import { EchoClient, setUpClientKind } from './grpc-echo.mjs';
import { TARGET } from './scale-config.mjs';

const [kind, address] = process.argv.slice(2);
// Client start: before the library is imported and registered (both are part of what a
// process pays before its first call).
const start = performance.now();
const { target } = await setUpClientKind(kind, { address, target: TARGET });
const clientStart = performance.now();
const client = new EchoClient(target, grpc.credentials.createInsecure());
await new Promise((resolve, reject) =>
  client.Echo(Buffer.from('x'), { deadline: Date.now() + 600_000, waitForReady: true }, (err) => (err ? reject(err) : resolve())),
);
const end = performance.now();
const rssMB = Math.round(process.memoryUsage().rss / 1e6);
process.stdout.write(JSON.stringify({ ms: Math.round(end - start), clientMs: Math.round(end - clientStart), rssMB }) + '\n');
process.exit(0);
