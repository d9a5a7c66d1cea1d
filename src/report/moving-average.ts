// The moving average drawn over noisy per-step series (conflict ratio, throughput, the
// training loss), so the trend reads at a glance while the raw points stay visible.
import { checkInteger } from '../validate.js';

/** A centred moving average: each value is the mean of up to `window` neighbours (fewer at the ends). */
export function movingAverage(values: readonly number[], window: number): number[] {
  checkInteger(window, 'window', 1);
  const half = Math.floor(window / 2);
  // Prefix sums make this O(n) for any window.
  const prefix = new Float64Array(values.length + 1);
  for (let i = 0; i < values.length; i++) prefix[i + 1] = prefix[i]! + values[i]!;
  return values.map((_, i) => {
    const lo = Math.max(0, i - half);
    const hi = Math.min(values.length, i + (window - half));
    return (prefix[hi]! - prefix[lo]!) / (hi - lo);
  });
}

/** About a fortieth of the series, odd, between 3 and 101 points: smooth enough to read, short enough to follow turns. */
export function smoothingWindow(points: number): number {
  const w = Math.round(points / 40);
  return Math.min(101, Math.max(3, w % 2 === 0 ? w + 1 : w));
}
