// Comparing a float32 result with a reference within a relative tolerance, for the layer
// tests (test/layers.test.mjs on the CPU, test/layers-cuda.test.mjs on a device).
import assert from 'node:assert/strict';

/** max |a − b| / max |b| (b the reference). */
export function relErr(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

/** Same length, every value finite, and relErr(actual, expected) <= tol. */
export function assertClose(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) assert.ok(Number.isFinite(actual[i]), `${what}[${i}] = ${actual[i]}`);
  const e = relErr(actual, expected);
  assert.ok(e <= tol, `${what}: relative error ${e.toExponential(2)} > ${tol}`);
}
