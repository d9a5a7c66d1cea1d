// Seeded random data for tests: the same seed gives the same arrays on every run. The one
// generator of the test suite (mulberry32: small, fast, well distributed, no seed package).

const INCREMENT = 0x6d2b79f5;

// mulberry32's output for a state already advanced by INCREMENT: a value in [0, 1).
function output(s) {
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * A generator of values in [0, 1) from `seed`; with `{ centered: true }` in [-0.5, 0.5)
 * (the same draw minus 0.5).
 */
export function rng(seed, { centered = false } = {}) {
  let s = seed >>> 0;
  if (centered) return () => output(s = (s + INCREMENT) >>> 0) - 0.5;
  return () => output(s = (s + INCREMENT) >>> 0);
}

/**
 * One draw for a caller that keeps the state itself (a uint32, e.g. saved in a checkpoint):
 * [value in [0, 1), next state]. rng(seed) gives the same values from the same state.
 */
export function rngStep(state) {
  const s = (state + INCREMENT) >>> 0;
  return [output(s), s];
}

/** Float32Arrays of the given sizes, uniform in [-scale/2, scale/2) (centered rng). */
export function randomArrays(sizes, seed, scale = 1) {
  const r = rng(seed, { centered: true });
  return sizes.map((n) => Float32Array.from({ length: n }, () => r() * scale));
}

/** Standard normal samples (Box-Muller). */
export function randn(n, rand, scale = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12), v = rand();
    const m = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** Pairs of tensors of the given sizes, each pair either aligned or conflicting at random. */
export function gradPairs(sizes, seed) {
  const rand = rng(seed);
  const act = [], ret = [];
  for (const n of sizes) {
    const a = randn(n, rand);
    const r = randn(n, rand, 0.5);
    // Mix in ±a so that about half of the tensors conflict clearly.
    const sign = rand() < 0.5 ? -0.7 : 0.7;
    for (let i = 0; i < n; ++i) r[i] += sign * a[i];
    act.push(a);
    ret.push(r);
  }
  return { act, ret };
}
