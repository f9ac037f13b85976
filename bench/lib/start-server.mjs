// Starts a benchmark's server child (a serve-*.mjs script, or any script that prints one JSON
// line on stdout when ready) and resolves with the child and what it printed, parsed.
import { spawn } from 'node:child_process';

/** A node child with these arguments; with `pinCpu`, kept on that CPU (Linux `taskset -c`). */
export function launch(pinCpu, args, stdio) {
  return pinCpu === undefined
    ? spawn(process.execPath, args, { stdio })
    : spawn('taskset', ['-c', String(pinCpu), process.execPath, ...args], { stdio });
}

/** `args` are the node arguments (the script first). */
export function startServer(args, { pinCpu } = {}) {
  const child = launch(pinCpu, args, ['ignore', 'pipe', 'inherit']);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve({ child, served: JSON.parse(buf.split('\n')[0]) });
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}
