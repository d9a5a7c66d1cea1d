// The surgery rule of ARCHITECTURE.md §3 in float64, written independently of the native code.
export function referenceSurgery(act, ret, { lambda, eps = 1e-8, projection = true }) {
  const out = [], dots = [], conflicts = [], coefficients = [];
  let normSq = 0;
  for (let i = 0; i < act.length; ++i) {
    const a = act[i], r = ret[i];
    let d = 0, q = 0;
    for (let j = 0; j < a.length; ++j) {
      d += a[j] * r[j];
      q += r[j] * r[j];
    }
    const conflict = projection && d < 0;
    const c = lambda - (conflict ? d / (q + eps) : 0);
    const o = new Float64Array(a.length);
    for (let j = 0; j < a.length; ++j) {
      o[j] = a[j] + c * r[j];
      normSq += o[j] * o[j];
    }
    out.push(o);
    coefficients.push(c);
    dots.push(d);
    conflicts.push(conflict ? 1 : 0);
  }
  return { out, dots, conflicts, coefficients, gradNorm: Math.sqrt(normSq) };
}

function norm(x) {
  let s = 0;
  for (let j = 0; j < x.length; ++j) s += x[j] * x[j];
  return Math.sqrt(s);
}

/**
 * Error of out = a + c·r relative to the size of what is combined, ‖a‖ + |c|·‖r‖.
 * Relative to ‖out‖ alone it would be meaningless where the projection cancels a almost
 * exactly (r ≈ −a): there any float32 result differs from float64 by the rounding of a.
 */
export function relError(got, want, a, r, c) {
  let num = 0;
  for (let j = 0; j < want.length; ++j) num += (got[j] - want[j]) ** 2;
  const scale = Math.max(norm(want), norm(a) + Math.abs(c) * norm(r));
  return scale > 0 ? Math.sqrt(num) / scale : Math.sqrt(num);
}

/** Sum of |a_i r_i|: the scale at which rounding can flip the sign of a dot product. */
export function dotScale(a, r) {
  let s = 0;
  for (let j = 0; j < a.length; ++j) s += Math.abs(a[j] * r[j]);
  return s;
}
