// The fused bf16 attention (native/cuda/attention_fused.cu; ARCHITECTURE.md §8 "Precision")
// on CUDA, through binding.bench.layer with precision: 'bf16' on 'cuda:0': forward and
// backward against a float64 reference computed from the bf16-rounded Q, K, V within a bound
// derived below, against the fp32 kernels (precision 'fp32', the default) on bf16-exact
// operands within the same bound, run to run bit for bit, and its kept row max and sum
// against the fp32 ones within rounding. The shapes cover causal and bidirectional,
// grouped-query (4 heads over 2 KV heads), Tk ≠ T, the logit gate, two backward streams,
// hd 64, 72, 8, 12, 16, 120 and 128, and T, Tk that are not multiples of the tiles (16 and 32).
//
// The bound (u = 2⁻⁸, the unit roundoff of bf16's 8-bit significand under round to nearest
// even; each reference below is exact arithmetic on the rounded q, k, v):
// - Att_id = Σ_j P_ij·v_jd: the kernel rounds each unnormalised probability to bf16 before
//   P·V (relative error ≤ u per term), everything else is fp32 (relative ~2⁻²⁰ here), so
//   |Att − ref| ≤ 1.125·u·Σ_j P_ij·|v_jd| (the 0.125·u covers the fp32 steps).
// - dV_jd = Σ_h Σ_i P_ij·dO_id: P and dO each rounded (≤ u each): |err| ≤ 2.25·u·Σ P·|dO|.
// - dS_ij = P_ij·(dP_ij − D_i), dP = dO·v: dO's rounding moves dP_ij by ≤ u·A_ij with
//   A_ij = Σ_d |dO_id|·|v_jd|, and D_i = Σ_j P_ij·dP_ij by ≤ u·Σ_j P_ij·A_ij; dS is then
//   rounded to bf16 for its products (≤ u·|dS_ij|). So E_ij = u·(P_ij·(A_ij + Σ_j' P_ij'·A_ij')
//   + |dS_ij|), and |dQ − ref| ≤ 1.25·scale·Σ_j E_ij·|t_j|·|k_jd|, |dK − ref| ≤
//   1.25·scale·Σ_h Σ_i E_ij·|t_j|·|q_id| (t_j the gate factor on gated keys, else 1).
// - dGate = (1 − t²)·Σ dS·a over the gated scores (the unrounded fp32 dS): |err| ≤
//   1.25·(1 − t²)·Σ u·P·(A + Σ P·A)·|a|.
// - rowMax: the fp32 max of fp32 sums of exact products: |err| ≤ 2⁻¹⁸·(scale·Σ_d|q·k| + |m|);
//   rowSum: relative 2⁻¹⁵ (exp of a score off by a few ulps, the sum in double).
// Each bound is a sum of |terms|, so it cannot hide a wrong tile mask: a key masked in or out
// moves a result by a whole P·v term (the self-check test below proves the checker rejects
// one).
// Runs where the addon has CUDA (npm run test:cuda-emulator builds it on the emulator);
// elsewhere each test skips with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../dist/native.js';
import { announceGpu } from './helpers/gpu.mjs';
import { rng, randn } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';

const skip = announceGpu(import.meta.url);
const DEVICE = 'cuda:0';
const U = 2 ** -8;

const f32buf = new Float32Array(1), u32buf = new Uint32Array(f32buf.buffer);
/** x rounded to bf16, round to nearest even (finite x). */
function bf16(x) {
  f32buf[0] = x;
  const u = u32buf[0];
  u32buf[0] = ((u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32buf[0];
}
const roundAll = (a) => Float32Array.from(a, bf16);

/** Forward (and with dAtt the backward of `streams` streams) on CUDA; outputs NaN-filled first. */
function run(shape, Q, K, V, dAtt, streams, precision) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  const op = { ...shape, device: DEVICE, ...(precision ? { precision } : {}) };
  delete op.gate;
  if (shape.gate !== undefined) op.gate = Float32Array.of(shape.gate);
  const nan = (n) => new Float32Array(n).fill(NaN);
  const out = { Att: nan(B * T * heads * hd), rowMax: nan(B * heads * T), rowSum: nan(B * heads * T) };
  binding.bench.layer('attentionForward', { ...op, Q, K, V, ...out });
  if (!dAtt) return out;
  out.dQ = nan(streams * B * T * heads * hd);
  out.dK = nan(streams * B * Tk * kvHeads * hd);
  out.dV = nan(streams * B * Tk * kvHeads * hd);
  if (op.gate) out.dGate = nan(streams);
  binding.bench.layer('attentionBackward', {
    ...op, streams, Q, K, V, rowMax: out.rowMax, rowSum: out.rowSum, dAtt, dQ: out.dQ, dK: out.dK, dV: out.dV,
    ...(op.gate ? { dGate: out.dGate } : {}),
  });
  return out;
}

/**
 * The float64 reference on q, k, v (already rounded) and dAtt (not rounded), with the bound of
 * every output (the header's): { Att, rowMax, rowSum, dQ, dK, dV, dGate, bound: {same keys} }.
 * `maskShift` (the self-check only) lets each causal row read one key more.
 */
function reference(shape, q, k, v, dAtt, streams, maskShift = 0) {
  const { B, T, heads, kvHeads, hd, scale, causal } = shape;
  const Tk = shape.Tk ?? T, qD = heads * hd, kvD = kvHeads * hd, group = heads / kvHeads;
  const gated = shape.gate !== undefined && shape.gateEnd > shape.gateBegin;
  const t = gated ? Math.fround(Math.tanh(shape.gate)) : 1;
  const gk = (j) => gated && j >= shape.gateBegin && j < shape.gateEnd;
  const r = {
    Att: new Float64Array(B * T * qD), rowMax: new Float64Array(B * heads * T), rowSum: new Float64Array(B * heads * T),
    dQ: new Float64Array(streams * B * T * qD), dK: new Float64Array(streams * B * Tk * kvD),
    dV: new Float64Array(streams * B * Tk * kvD), dGate: new Float64Array(streams),
  };
  const bound = {
    Att: new Float64Array(r.Att.length), rowMax: new Float64Array(r.rowMax.length), rowSum: new Float64Array(r.rowSum.length),
    dQ: new Float64Array(r.dQ.length), dK: new Float64Array(r.dK.length), dV: new Float64Array(r.dV.length),
    dGate: new Float64Array(streams),
  };
  const a = new Float64Array(Tk), P = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const end = causal ? Math.min(i + 1 + maskShift, Tk) : Tk;
        const qi = (b * T + i) * qD + h * hd, row = (b * heads + h) * T + i;
        let m = -Infinity, mag = 0;
        for (let j = 0; j < end; j++) {
          let dot = 0, abs = 0;
          for (let d = 0; d < hd; d++) {
            dot += q[qi + d] * k[(b * Tk + j) * kvD + g * hd + d];
            abs += Math.abs(q[qi + d] * k[(b * Tk + j) * kvD + g * hd + d]);
          }
          a[j] = scale * dot;
          const s = gk(j) ? a[j] * t : a[j];
          if (s > m) { m = s; mag = scale * abs; }
        }
        let z = 0;
        for (let j = 0; j < end; j++) z += Math.exp((gk(j) ? a[j] * t : a[j]) - m);
        for (let j = 0; j < end; j++) P[j] = Math.exp((gk(j) ? a[j] * t : a[j]) - m) / z;
        r.rowMax[row] = m;
        r.rowSum[row] = z;
        bound.rowMax[row] = 2 ** -18 * (mag + Math.abs(m));
        bound.rowSum[row] = 2 ** -15 * z;
        for (let d = 0; d < hd; d++) {
          let o = 0, ob = 0;
          for (let j = 0; j < end; j++) {
            const vj = v[(b * Tk + j) * kvD + g * hd + d];
            o += P[j] * vj;
            ob += P[j] * Math.abs(vj);
          }
          r.Att[qi + d] = o;
          bound.Att[qi + d] = 1.125 * U * ob;
        }
        if (!dAtt) continue;
        for (let st = 0; st < streams; st++) {
          const oi = (st * B * T + b * T + i) * qD + h * hd;
          const dP = new Float64Array(end), A = new Float64Array(end);
          let D = 0, DA = 0;
          for (let j = 0; j < end; j++) {
            let x = 0, ax = 0;
            for (let d = 0; d < hd; d++) {
              const vj = v[(b * Tk + j) * kvD + g * hd + d];
              x += dAtt[oi + d] * vj;
              ax += Math.abs(dAtt[oi + d] * vj);
            }
            dP[j] = x;
            A[j] = ax;
            D += P[j] * x;
            DA += P[j] * ax;
          }
          for (let j = 0; j < end; j++) {
            const dS = P[j] * (dP[j] - D), E = U * (P[j] * (A[j] + DA) + Math.abs(dS)), tj = gk(j) ? t : 1;
            const kj = (st * B * Tk + b * Tk + j) * kvD + g * hd, kin = (b * Tk + j) * kvD + g * hd;
            for (let d = 0; d < hd; d++) {
              r.dQ[oi + d] += scale * dS * tj * k[kin + d];
              bound.dQ[oi + d] += 1.25 * scale * E * Math.abs(tj * k[kin + d]);
              r.dK[kj + d] += scale * dS * tj * q[qi + d];
              bound.dK[kj + d] += 1.25 * scale * E * Math.abs(tj * q[qi + d]);
              r.dV[kj + d] += P[j] * dAtt[oi + d];
              bound.dV[kj + d] += 2.25 * U * P[j] * Math.abs(dAtt[oi + d]);
            }
            if (gk(j)) {
              r.dGate[st] += (1 - t * t) * dS * a[j];
              bound.dGate[st] += 1.25 * (1 - t * t) * U * P[j] * (A[j] + DA) * Math.abs(a[j]);
            }
          }
        }
      }
    }
  r.bound = bound;
  return r;
}

/** The first element of `got` outside reference ± bound (+ a 1e-12 floor), or null. */
function outside(got, ref, bound) {
  if (got.length !== ref.length) return `length ${got.length}, want ${ref.length}`;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]);
    if (!(e <= bound[i] + 1e-12)) return `[${i}] = ${got[i]}, reference ${ref[i]}, |error| ${e.toExponential(3)} > bound ${bound[i].toExponential(3)}`;
  }
  return null;
}

function assertWithin(got, ref, what) {
  const keys = Object.keys(got).filter((key) => ref.bound[key]);
  for (const key of keys) {
    const bad = outside(got[key], ref[key], ref.bound[key]);
    assert.equal(bad, null, `${what} ${key}: ${bad}`);
  }
}

const normal = (n, seed, scale = 1) => randn(n, rng(seed), scale);
function inputs(shape, seed, streams) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  return {
    Q: normal(B * T * heads * hd, seed), K: normal(B * Tk * kvHeads * hd, seed + 1), V: normal(B * Tk * kvHeads * hd, seed + 2),
    dAtt: normal(streams * B * T * heads * hd, seed + 3),
  };
}

// T and Tk not multiples of 16 or 32; 37 queries make two forward tiles (the second partial)
// and three dQ tiles; the causal key loop ends inside a 32-key tile.
const SHAPES = [
  ['causal, grouped-query (4 heads over 2), hd 64, T 37', { B: 2, T: 37, heads: 4, kvHeads: 2, hd: 64, scale: 1 / 8, causal: true }],
  ['bidirectional, grouped-query, Tk 45 ≠ T 19, gated, hd 72 (SigLIP)', { B: 1, T: 19, Tk: 45, heads: 4, kvHeads: 2, hd: 72, scale: 1 / Math.sqrt(72), causal: false, gateBegin: 30, gateEnd: 45, gate: 0.7 }],
  ['causal, gated, hd 8', { B: 2, T: 5, heads: 2, kvHeads: 1, hd: 8, scale: 0.5, causal: true, gateBegin: 2, gateEnd: 4, gate: -1.1 }],
  ['bidirectional, Tk 7 < T 20, gated from key 0, hd 16', { B: 1, T: 20, Tk: 7, heads: 2, kvHeads: 2, hd: 16, scale: 0.25, causal: false, gateBegin: 0, gateEnd: 3, gate: 0.4 }],
  ['causal, hd 128 (the widest tile)', { B: 1, T: 18, heads: 2, kvHeads: 1, hd: 128, scale: 1 / Math.sqrt(128), causal: true }],
  ['bidirectional, grouped-query, hd 12 (not a multiple of 8: the tiny VLA tower\'s)', { B: 2, T: 11, heads: 4, kvHeads: 2, hd: 12, scale: 1 / Math.sqrt(12), causal: false }],
  ['bidirectional, hd 120 (padded to 128)', { B: 1, T: 9, heads: 2, kvHeads: 1, hd: 120, scale: 1 / Math.sqrt(120), causal: false }],
];
const STREAMS = 2;

for (const [what, shape] of SHAPES) {
  test(`fused bf16 attention (${what}), two streams: the float64 reference of bf16 Q, K, V within the bound, run to run`, { skip }, () => {
    const { Q, K, V, dAtt } = inputs(shape, 60, STREAMS);
    const got = run(shape, Q, K, V, dAtt, STREAMS, 'bf16');
    const again = run(shape, Q, K, V, dAtt, STREAMS, 'bf16');
    for (const [key, value] of Object.entries(got)) assert.ok(sameBits(value, again[key]), `${key} run to run`);
    const ref = reference(shape, roundAll(Q), roundAll(K), roundAll(V), dAtt, STREAMS);
    assertWithin(got, ref, 'bf16 against the reference');
  });

  test(`fused bf16 attention (${what}): the fp32 kernels on bf16-exact operands within the bound, and their row max and sum`, { skip }, () => {
    const x = inputs(shape, 70, STREAMS);
    const [Q, K, V, dAtt] = [x.Q, x.K, x.V, x.dAtt].map(roundAll);
    const fused = run(shape, Q, K, V, dAtt, STREAMS, 'bf16');
    const fp32 = run(shape, Q, K, V, dAtt, STREAMS);
    const ref = reference(shape, Q, K, V, dAtt, STREAMS);
    // The fp32 kernels' own error is fp32 rounding (relative ~2⁻²⁰ here), which the bound's
    // slack (the 0.125·u of 1.125·u, the 0.25 of 1.25 and 2.25) covers: the fused result must
    // be within the bound of them too.
    for (const key of Object.keys(fused)) {
      const bad = outside(fused[key], fp32[key], ref.bound[key]);
      assert.equal(bad, null, `${key} against the fp32 kernels: ${bad}`);
    }
    // Among them the kept statistics, rowMax and rowSum: the fp32 ones within rounding (their
    // bounds are fp32 rounding's, not bf16's; the backward divides by them).
  });
}

test('fused bf16 attention: one key makes P = 1, so Att is V rounded to nearest even bit for bit and dV the fp32 sum of dO rounded', { skip }, () => {
  // Not multiples of a bf16 ulp: a truncating or unrounded conversion would show here, where
  // the bound of the tests above would let a one-ulp difference pass.
  const shape = { B: 1, T: 3, Tk: 1, heads: 2, kvHeads: 1, hd: 8, scale: 0.5, causal: false };
  const { Q, K, V, dAtt } = inputs(shape, 100, 1);
  const got = run(shape, Q, K, V, dAtt, 1, 'bf16');
  const want = new Float32Array(got.Att.length);
  for (let i = 0; i < 3; i++) for (let h = 0; h < 2; h++) for (let d = 0; d < 8; d++) want[(i * 2 + h) * 8 + d] = bf16(V[d]);
  assert.ok(sameBits(got.Att, want), `Att ${got.Att.slice(0, 8)} want ${want.slice(0, 8)}`);
  assert.ok(V.every((v) => bf16(v) !== v), 'the values of V are not already bf16');
  // dV = Σ over 2 heads and 3 queries of bf16(dO): six terms, fp32 in any order.
  for (let d = 0; d < 8; d++) {
    let sum = 0, abs = 0;
    for (let i = 0; i < 3; i++) for (let h = 0; h < 2; h++) { sum += bf16(dAtt[(i * 2 + h) * 8 + d]); abs += Math.abs(dAtt[(i * 2 + h) * 8 + d]); }
    assert.ok(Math.abs(got.dV[d] - sum) <= 6 * 2 ** -24 * abs, `dV[${d}] = ${got.dV[d]}, Σ bf16(dO) = ${sum}`);
  }
});

test('the bound can fail: a reference whose causal rows read one key too many is rejected', { skip }, () => {
  const shape = SHAPES[0][1];
  const { Q, K, V, dAtt } = inputs(shape, 60, STREAMS);
  const got = run(shape, Q, K, V, dAtt, STREAMS, 'bf16');
  const wrong = reference(shape, roundAll(Q), roundAll(K), roundAll(V), dAtt, STREAMS, 1);
  for (const key of ['Att', 'dQ', 'dK', 'dV']) assert.notEqual(outside(got[key], wrong[key], wrong.bound[key]), null, key);
});

test('fused bf16 attention: a head dimension it cannot tile is a CudaError, not a crash', { skip }, () => {
  for (const hd of [136, 256]) {
    const shape = { B: 1, T: 3, heads: 1, kvHeads: 1, hd, scale: 1, causal: true };
    const { Q, K, V } = inputs(shape, 80, 1);
    assert.throws(() => run(shape, Q, K, V, null, 1, 'bf16'), (e) => e.code === 'ERR_CRAFTGRAD_CUDA' && /head dimension from 1 to 128, got/.test(e.message));
  }
});

test('bench.layer: precision must be fp32 or bf16, and the CPU refuses bf16 attention', () => {
  const shape = { B: 1, T: 2, heads: 1, kvHeads: 1, hd: 8, scale: 1, causal: true };
  const { Q, K, V } = inputs(shape, 90, 1);
  const op = { ...shape, Q, K, V, Att: new Float32Array(16), rowMax: new Float32Array(2), rowSum: new Float32Array(2) };
  assert.throws(() => binding.bench.layer('attentionForward', { ...op, precision: 'fp16' }), /precision must be one of 'fp32', 'bf16'/);
  assert.throws(() => binding.bench.layer('attentionForward', { ...op, precision: 'bf16' }), /bf16/);
  binding.bench.layer('attentionForward', { ...op, precision: 'fp32' });
  assert.ok(op.Att.every(Number.isFinite));
});
