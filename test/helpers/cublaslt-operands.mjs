// The operands of one product spec (test/cublaslt-cuda.test.mjs and its child): seeded
// normals, or the spec's own values (`a`, `b`: arrays, NaN/Infinity as the strings 'NaN',
// 'Infinity', '-Infinity'), and c's starting values for beta = 1.
import { rng, randn } from './random.mjs';

const value = (x) => (typeof x === 'string' ? Number(x) : x);

export function operands(p) {
  const g = rng(p.seed ?? 1);
  const a = p.a ? Float32Array.from(p.a, value) : Float32Array.from(randn(p.M * p.K, g));
  const b = p.b ? Float32Array.from(p.b, value) : Float32Array.from(randn(p.K * p.N, g));
  const c0 = Float32Array.from(randn(p.M * p.N, g));
  return { a, b, c0 };
}
