// Earliest-deadline-first scheduling, Envoy's weighted round robin (source/common/
// upstream/edf_scheduler.h): an entry of weight w is due every 1/w; each pick takes
// the entry with the earliest deadline (ties: the one queued first) and queues it
// again. With fixed weights a cycle of sum(weights) picks gives each entry exactly
// its weight; Envoy's weighted least request recomputes an entry's weight when it
// is queued again.
//
// A deadline is kept as base + n / weight (n picks since the weight last changed)
// rather than summed step by step, so fixed weights stay exact: equal rationals
// divide to the same double, and a cycle ends on an exact tie.

export class EdfScheduler {
  /**
   * A scheduler advanced by a random number (below the entry count) of picks, as Envoy
   * seeds each one (EdfScheduler::createWithPicks), so processes do not all start alike.
   */
  static withRandomStart(weights: readonly number[], random: { nextUint32(): number }): EdfScheduler {
    const edf = new EdfScheduler(weights);
    const skip = weights.length === 0 ? 0 : random.nextUint32() % weights.length;
    for (let i = 0; i < skip; i++) edf.pickAndAdd();
    return edf;
  }

  private readonly heap: Int32Array; // entry indices, a binary min-heap
  private readonly deadline: Float64Array;
  private readonly order: Float64Array; // queue sequence, the tie-breaker
  private readonly base: Float64Array;
  private readonly picks: Float64Array;
  private readonly weight: Float64Array;
  private seq = 0;

  /** Entries 0..n-1 with the given weights (> 0), all queued at time 0 in index order. */
  constructor(weights: readonly number[]) {
    const n = weights.length;
    this.heap = new Int32Array(n);
    this.deadline = new Float64Array(n);
    this.order = new Float64Array(n);
    this.base = new Float64Array(n);
    this.picks = new Float64Array(n);
    this.weight = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      this.weight[i] = w;
      this.picks[i] = 1;
      this.deadline[i] = 1 / w;
      this.order[i] = this.seq++;
      this.heap[i] = i;
    }
    // Deadlines 1/w in index order: heapify.
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  get size(): number {
    return this.heap.length;
  }

  /**
   * Take the entry due first and queue it again, at `nextWeight(entry)` when given
   * (Envoy's pickAndAdd with a weight callback), else at its current weight.
   */
  pickAndAdd(nextWeight?: (entry: number) => number): number {
    const e = this.heap[0]!;
    const now = this.deadline[e]!;
    if (nextWeight !== undefined) {
      const w = nextWeight(e);
      if (w !== this.weight[e]) {
        this.weight[e] = w;
        this.base[e] = now;
        this.picks[e] = 0;
      }
    }
    const p = ++this.picks[e]!;
    this.deadline[e] = this.base[e]! + p / this.weight[e]!;
    this.order[e] = this.seq++;
    this.siftDown(0);
    return e;
  }

  private less(a: number, b: number): boolean {
    const da = this.deadline[a]!, db = this.deadline[b]!;
    return da < db || (da === db && this.order[a]! < this.order[b]!);
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const e = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(heap[c + 1]!, heap[c]!)) c++;
      if (!this.less(heap[c]!, e)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = e;
  }
}
