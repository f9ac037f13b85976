// Reconnect backoff for the ADS stream, as gRPC's connection-backoff document specifies
// (doc/connection-backoff.md in grpc/grpc): the first retry waits INITIAL_BACKOFF, each
// later one MULTIPLIER times longer up to MAX_BACKOFF, every wait jittered by ±JITTER.
import { MeshletError } from './errors.js';

export interface BackoffOptions {
  /** First wait, ms. gRPC: 1 s. */
  readonly initialMs?: number;
  /** gRPC: 1.6. */
  readonly multiplier?: number;
  /** Each wait is scaled by a uniform factor in [1 - jitter, 1 + jitter]. gRPC: 0.2. */
  readonly jitter?: number;
  /** gRPC: 120 s. */
  readonly maxMs?: number;
  /** Uniform in [0, 1); injectable so tests get exact waits. */
  readonly random?: () => number;
}

export class ExponentialBackoff {
  readonly #initialMs: number;
  readonly #multiplier: number;
  readonly #jitter: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #current: number;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 1000;
    this.#multiplier = options.multiplier ?? 1.6;
    this.#jitter = options.jitter ?? 0.2;
    this.#maxMs = options.maxMs ?? 120_000;
    this.#random = options.random ?? Math.random;
    const check = (ok: boolean, option: string, rule: string, value: unknown) => {
      if (!ok) throw new MeshletError('MESHLET_INVALID_OPTION', `backoff.${option}: ${rule}, got ${String(value)}`);
    };
    check(this.#initialMs > 0 && Number.isFinite(this.#initialMs), 'initialMs', 'expected a positive number', this.#initialMs);
    check(this.#multiplier >= 1 && Number.isFinite(this.#multiplier), 'multiplier', 'expected a number >= 1', this.#multiplier);
    check(this.#jitter >= 0 && this.#jitter <= 1, 'jitter', 'expected a number in [0, 1]', this.#jitter);
    check(this.#maxMs >= this.#initialMs, 'maxMs', 'expected a number >= initialMs', this.#maxMs);
    check(typeof this.#random === 'function', 'random', 'expected a function', this.#random);
    this.#current = this.#initialMs;
  }

  /** The wait before the next attempt; advances the sequence. */
  next(): number {
    const base = this.#current;
    this.#current = Math.min(base * this.#multiplier, this.#maxMs);
    const factor = 1 + this.#jitter * (2 * this.#random() - 1);
    return Math.max(0, base * factor);
  }

  /** Back to the initial wait (after the stream got a response). */
  reset(): void {
    this.#current = this.#initialMs;
  }
}
