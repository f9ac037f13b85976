// Preload (`node --expose-gc --import ./bench/lib/heap-hook.mjs <client script> ...`): when the
// client exits after its standalone run (warm-up and measured calls, argv[4] of
// grpc-unary-client.mjs or http-client.mjs), force full collections and report the live heap
// as one JSON line on stderr: `heap-live {heapUsed, external, arrayBuffers}` in bytes. With
// MESHLET_HEAP_SNAPSHOT=<file>, also write a heap snapshot there, after the collections.
// Everything runs in the 'exit' handler, which is synchronous, so the client scripts need no
// change. bench/lib/heap-live.mjs runs it.
import { writeHeapSnapshot } from 'node:v8';

if (typeof globalThis.gc !== 'function') throw new Error('heap-hook: run node with --expose-gc');

process.on('exit', () => {
  // Weak references and finalizers need more than one pass to let go.
  for (let i = 0; i < 4; i++) globalThis.gc();
  const m = process.memoryUsage();
  const file = process.env.MESHLET_HEAP_SNAPSHOT;
  if (file) writeHeapSnapshot(file);
  process.stderr.write(`heap-live ${JSON.stringify({ heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
});
