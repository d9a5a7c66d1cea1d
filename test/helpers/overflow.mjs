// Finite data whose fp32 block sums overflow (the float64 fallback of numerics.h): normal
// values, with every other 1,024-element block scaled to about 1e30, so that its products
// (about 1e60) overflow fp32 while every value and every float64 sum stays finite.
import { rng, randn } from './random.mjs';

// A block-sized tensor, one over several chunks with a short tail, one large enough for the
// CPU's cooperative path, and small ones.
export const OVERFLOW_SIZES = [3 * 1024, 70000, 300001, 17, 5000, 0, 1100];

export function overflowPairs(sizes, seed) {
  const rand = rng(seed);
  const act = [], ret = [], huge = [];
  for (const n of sizes) {
    const a = randn(n, rand);
    const r = randn(n, rand, 0.5);
    const sign = rand() < 0.5 ? -0.7 : 0.7;
    for (let i = 0; i < n; ++i) r[i] += sign * a[i];
    let count = 0;
    for (let b = 1024; b < n; b += 2048) {
      for (let i = b; i < Math.min(n, b + 1024); ++i) {
        a[i] *= 1e30;
        r[i] *= 1e30;
      }
      ++count;
    }
    act.push(a);
    ret.push(r);
    huge.push(count);
  }
  return { act, ret, huge };
}
