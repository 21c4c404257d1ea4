/**
 * Timers for durations Node's setTimeout cannot hold: it takes at most
 * 2^31-1 ms (24.8 days) and turns anything longer into 1 ms. A longer wait is
 * made of shorter ones, measured on the monotonic clock (the global
 * `performance`, which test clocks can stand in for).
 */
const MAX_TIMER_MS = 0x7fffffff;

/** Calls `fn` once after `ms` milliseconds (any finite length); returns the cancel function. */
export function after(ms: number, fn: () => void, unref = false): () => void {
  const due = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = (wait: number) => {
    timer = setTimeout(() => {
      const left = due - performance.now();
      if (left > 1) arm(left);
      else fn();
    }, Math.min(Math.max(wait, 0), MAX_TIMER_MS));
    if (unref) timer.unref();
  };
  arm(ms);
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}
