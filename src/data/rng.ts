// A small seeded generator (xoshiro128**) whose whole state is four uint32 values, so that
// samplers and dataset generators can save and restore it exactly as JSON.

/** The JSON-serializable state of an {@link Rng}. */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeded pseudo-random numbers (xoshiro128**): same seed, same sequence, on every platform. */
export class Rng {
  #s: Uint32Array;

  constructor(seed: number | RngState) {
    this.#s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      if (seed.length !== 4 || !seed.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
        throw new RangeError('rng state must be 4 unsigned 32-bit integers');
      }
      this.#s.set(seed);
    } else {
      const next = splitmix32(Math.floor(seed) >>> 0 ^ Math.floor(seed / 2 ** 32));
      for (let i = 0; i < 4; i++) this.#s[i] = next();
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** The next uint32. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n) (n ≤ 2^32), without modulo bias. */
  int(n: number): number {
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** Standard normal (Box–Muller, no cached spare so the state stays 4 words). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A copy of the state (JSON-serializable). */
  state(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
