// Comparing a model's step on CUDA with the same step on the CPU (the *-cuda test files):
// losses within 1e-4 relative, each gradient tensor within 1e-4 of its largest CPU value.
import assert from 'node:assert/strict';

export function closeLoss(got, want, what) {
  assert.ok(Number.isFinite(got), `${what}: ${got}`);
  assert.ok(Math.abs(got - want) <= 1e-4 * Math.abs(want) + 1e-9, `${what}: cuda ${got} vs cpu ${want}`);
}

/** Each tensor of `policy`'s layout within 1e-4 of its largest CPU magnitude, every value finite. */
export function closeGrads(policy, got, want, what) {
  const g = got.toFlat(), w = want.toFlat();
  assert.equal(g.length, w.length);
  policy.trainableSpecs.forEach((s, i) => {
    const o = policy.params.offsets[i];
    let mx = 0;
    for (let k = o; k < o + s.size; k++) mx = Math.max(mx, Math.abs(w[k]));
    for (let k = o; k < o + s.size; k++) {
      assert.ok(Number.isFinite(g[k]), `${what} ${s.name}[${k - o}] = ${g[k]}`);
      assert.ok(Math.abs(g[k] - w[k]) <= 1e-4 * mx + 1e-9, `${what} ${s.name}[${k - o}]: cuda ${g[k]} vs cpu ${w[k]} (max ${mx})`);
    }
  });
}
