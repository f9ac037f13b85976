// Step the wall clock as NTP or a VM resume does: Date.now() runs on from the real date plus
// the steps taken, while Node's timers and performance.now() (monotonic) are untouched.
import { vi } from 'vitest';

let step: number | undefined;

/** Move Date.now() by `ms` (negative: back) from now on; undone by restoreWallClock(). */
export function stepWallClock(ms: number): void {
  if (step === undefined) {
    const realNow = Date.now;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + (step ?? 0));
    step = 0;
  }
  step += ms;
}

/** Put Date.now() back (call it in afterEach). */
export function restoreWallClock(): void {
  if (step === undefined) return;
  vi.mocked(Date.now).mockRestore();
  step = undefined;
}
