// Seeded random data for tests: the same seed gives the same arrays on every run.

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

export function bytesEqual(x, y) {
  const bx = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  const by = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
  return bx.equals(by);
}
