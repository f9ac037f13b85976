// Runs HTTP client kinds (bench/lib/http-client.mjs), each in its own process, against one
// backend and control plane (a serve-*.mjs child), in rounds whose order rotates; compares
// pairs within each round (the machine's speed drifts between rounds more than the clients
// differ) and prints the median of the per-round ratios, of throughput and of client CPU per
// request.
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { launch, startServer } from './start-server.mjs';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * With `pin` (the --pin flag of the benchmarks), the backend runs on CPU 0 and the clients on
 * CPU 1 (Linux `taskset`), so the scheduler does not move them between cores mid-round.
 */
export async function runAB({ server, kinds, labels = {}, pairs, rounds, requests, concurrency = 32, pin = false }) {
  const { child: srv, served } = await startServer([here(server)], { pinCpu: pin ? 0 : undefined });
  const children = {};
  for (const kind of kinds) {
    const c = launch(pin ? 1 : undefined, [here('./http-client.mjs'), kind, JSON.stringify(served)], ['ignore', 'inherit', 'inherit', 'ipc']);
    await new Promise((resolve) => c.once('message', resolve));
    children[kind] = c;
  }
  const ask = (kind) =>
    new Promise((resolve) => {
      children[kind].once('message', resolve);
      children[kind].send({ n: requests, concurrency });
    });
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    const order = kinds.slice(r % kinds.length).concat(kinds.slice(0, r % kinds.length));
    for (const kind of order) results[kind].push(await ask(kind));
  }
  for (const c of Object.values(children)) c.send({ exit: true });
  srv.kill('SIGTERM');

  const name = (k) => labels[k] ?? k;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  console.log(`${requests} requests per round per client, concurrency ${concurrency}, ${rounds} rounds (order rotating), each client in its own process${pin ? '; backend pinned to CPU 0, clients to CPU 1' : ''}`);
  for (const k of kinds) {
    const rps = median(results[k].map((x) => x.rps));
    const cpu = median(results[k].map((x) => x.cpuPerRequest));
    console.log(`  ${name(k).padEnd(34)} ${String(Math.round(rps)).padStart(6)} req/s   ${cpu.toFixed(1)} µs client CPU per request`);
  }
  const out = {};
  for (const [a, b] of pairs) {
    const thr = results[a].map((x, i) => x.rps / results[b][i].rps);
    const cpu = results[a].map((x, i) => x.cpuPerRequest / results[b][i].cpuPerRequest);
    out[`${a}/${b}`] = { throughput: median(thr), cpu: median(cpu) };
    console.log(
      `${name(a)} / ${name(b)}: throughput ${median(thr).toFixed(3)} (per round ${thr.map((x) => x.toFixed(2)).join(' ')}); ` +
        `client CPU per request ${median(cpu).toFixed(3)} (per round ${cpu.map((x) => x.toFixed(2)).join(' ')})`,
    );
  }
  return out;
}
