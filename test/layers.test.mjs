// The layers VLA-Adapter's models need (native/core/layers.h: LayerNorm, GELU's erf form,
// LayerScale, bidirectional and gated attention, the patch matrix, bias + ReLU, the Pro
// head's RoPE, row broadcast and embedding, column copies), tested directly on the
// CPU through the repository build's binding.bench.layer, since no model uses them yet:
// each forward against a float64 reference written from the upstream definitions
// (test/helpers/layers-reference.mjs), each backward against central differences of that
// reference, the attention's variants against the cases they reduce to, and the bits
// across thread counts and instruction sets (child processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/index.js';
import { rng, randn } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { assertClose, relErr } from './helpers/close.mjs';
import {
  attention, biasGeluErf, biasRelu, centralGradient, columnsCopy, conv2dPatches, geluErf, geluTanh, layerNorm, layerScaleAdd,
  proHeadAttention, proHeadRope, proHeadRopeTables, rowsBroadcast, rowsEmbed,
} from './helpers/layers-reference.mjs';
import { findTorchPython, fromB64, runPython, toB64 } from './helpers/torch-python.mjs';

const layer = (name, operands) => binding.bench.layer(name, operands);


const f32 = (a) => Float32Array.from(a);
const f64 = (a) => Float64Array.from(a);
const normal = (n, seed, scale = 1) => randn(n, rng(seed), scale);

// ---- LayerNorm ----

/**
 * Rows of X around different means; with `tiny`, the last row's variance (1e-6) is below
 * eps = 1e-5 (and its mean 2000 times its spread: fp32's rounded mean shifts that row's
 * x − mean by up to ~1e-4 of its spread, in the native layer as in PyTorch's fp32 kernel).
 */
function lnInput(rows, D, seed, tiny = false) {
  const X = normal(rows * D, seed);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < D; j++) X[i * D + j] = tiny && i === rows - 1 ? 2 + 1e-3 * X[i * D + j] : 3 * i - 4 + X[i * D + j];
  return X;
}

for (const eps of [1e-6, 1e-5]) {
  test(`layerNorm (eps ${eps}) equals torch.nn.LayerNorm's definition: biased variance, eps inside the root`, () => {
    const rows = 6, D = 37;
    const X = lnInput(rows, D, 1, true), w = normal(D, 2), b = normal(D, 3);
    const Y = new Float32Array(rows * D), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    layer('layerNorm', { rows, D, eps, X, w, b, Y, mean, rstd });
    const ref = layerNorm(X, w, b, rows, D, eps);
    // The kept statistics: the float64 ones rounded (eps decides the last row's rstd).
    for (let i = 0; i < rows; i++) {
      assert.ok(Math.abs(mean[i] - ref.mean[i]) <= Math.abs(ref.mean[i]) * 2 ** -24 + 1e-12, `mean ${i}`);
      assert.ok(Math.abs(rstd[i] - ref.rstd[i]) <= ref.rstd[i] * 2 ** -23, `rstd ${i}: ${rstd[i]} vs ${ref.rstd[i]}`);
    }
    // Y from those statistics, to within fp32 rounding of its four operations...
    const fromStats = Y.map((_, k) => (X[k] - mean[Math.floor(k / D)]) * rstd[Math.floor(k / D)] * w[k % D] + b[k % D]);
    assertClose(Y, fromStats, 1e-6, 'Y given the kept statistics');
    // ... and the definition's Y on the rows whose mean fp32 rounds harmlessly.
    assertClose(Y.subarray(0, (rows - 1) * D), ref.Y.subarray(0, (rows - 1) * D), 2e-6, 'Y');
  });
}

test('layerNormBackward over two stacked streams adds the input gradient of each (central differences)', () => {
  const M = 5, D = 23, rows = 2 * M, eps = 1e-6;
  const X = lnInput(M, D, 4), w = normal(D, 5), b = normal(D, 6), dY = normal(rows * D, 7);
  const Y = new Float32Array(M * D), mean = new Float32Array(M), rstd = new Float32Array(M);
  layer('layerNorm', { rows: M, D, eps, X, w, b, Y, mean, rstd });
  const dX0 = normal(rows * D, 8), dX = Float32Array.from(dX0);
  layer('layerNormBackward', { rows, M, D, dY, X, mean, rstd, w, dX });
  for (let s = 0; s < 2; s++) {
    const weights = dY.subarray(s * M * D, (s + 1) * M * D);
    const fd = centralGradient((x) => layerNorm(x, w, b, M, D, eps).Y, X, weights);
    const got = dX.subarray(s * M * D, (s + 1) * M * D).map((v, i) => v - dX0[s * M * D + i]);
    assertClose(got, fd, 2e-5, `stream ${s} dX`);
  }
});

test('layerNormParamGrad: the weight and bias gradients of one stream, scaled, written or accumulated', () => {
  const M = 9, D = 130, eps = 1e-5;
  const X = lnInput(M, D, 9), w = normal(D, 10), b = normal(D, 11), dY = normal(M * D, 12);
  const Y = new Float32Array(M * D), mean = new Float32Array(M), rstd = new Float32Array(M);
  layer('layerNorm', { rows: M, D, eps, X, w, b, Y, mean, rstd });
  const fdW = centralGradient((ww) => layerNorm(X, ww, b, M, D, eps).Y, w, dY);
  const fdB = centralGradient((bb) => layerNorm(X, w, bb, M, D, eps).Y, b, dY);
  const dW = new Float32Array(D).fill(NaN), dB = new Float32Array(D).fill(NaN);
  layer('layerNormParamGrad', { M, D, dY, X, mean, rstd, scale: 1, accumulate: false, dW, dB });
  assertClose(dW, fdW, 1e-6, 'dW');
  assertClose(dB, fdB, 1e-6, 'dB');
  const aW = Float32Array.from(dW), aB = Float32Array.from(dB);
  layer('layerNormParamGrad', { M, D, dY, X, mean, rstd, scale: 0.5, accumulate: true, dW: aW, dB: aB });
  for (let j = 0; j < D; j++) {
    assert.equal(aW[j], Math.fround(dW[j] + Math.fround(0.5 * dW[j])));
    assert.equal(aB[j], Math.fround(dB[j] + Math.fround(0.5 * dB[j])));
  }
});

// ---- GELU, erf form ----

test('biasGeluErf is nn.GELU() (erf form) to within an ulp, with and without the residual; not the tanh form', () => {
  const grid = [-12, -9.5, -6, -5.25, -4, -3, -2.2, -1.5, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-4, 0.3, 0.7, 1, 2, 3.5, 6, 11];
  const rows = 3, cols = grid.length;
  const Z0 = f32(Array.from({ length: rows * cols }, (_, i) => grid[i % cols] * (1 + 0.1 * Math.floor(i / cols))));
  const b = f32(grid.map((_, j) => (j % 3) * 1e-3));
  const residual = normal(rows * cols, 13);
  const zb = Z0.map((z, i) => Math.fround(z + b[i % cols]));
  for (const withResidual of [false, true]) {
    const Z = Float32Array.from(Z0), out = new Float32Array(rows * cols);
    layer('biasGeluErf', { rows, cols, Z, b, out, ...(withResidual ? { residual } : {}) });
    assert.ok(sameBits(Z, zb), 'Z += b, rounded once');
    for (let i = 0; i < rows * cols; i++) {
      const g = Math.fround(geluErf(zb[i]));
      const want = withResidual ? Math.fround(residual[i] + g) : g;
      const ulp = Math.max(Math.abs(want) * 2 ** -23, 2 ** -149);
      assert.ok(Math.abs(out[i] - want) <= ulp, `z ${zb[i]}: ${out[i]} vs ${want}`);
    }
  }
  // The forms differ by far more than an ulp where the test looks.
  assert.ok(Math.abs(geluErf(-3) - geluTanh(-3)) > 1e3 * Math.abs(geluErf(-3)) * 2 ** -23);
  const ref = biasGeluErf(Z0, b, residual, rows, cols);
  const out = new Float32Array(rows * cols);
  layer('biasGeluErf', { rows, cols, Z: Float32Array.from(Z0), b, residual, out });
  assertClose(out, ref, 1e-7, 'against the float64 reference');
});

test('geluErfBackward over two streams: G · dgelu/dz (central differences), in place the same bits', () => {
  const n = 300, streams = 2;
  const Z = normal(n, 14, 3), G = normal(streams * n, 15);
  const dZ = new Float32Array(streams * n);
  layer('geluErfBackward', { n, streams, Z, G, dZ });
  for (let s = 0; s < streams; s++) {
    const fd = centralGradient((z) => z.map(geluErf), Z, G.subarray(s * n, (s + 1) * n));
    assertClose(dZ.subarray(s * n, (s + 1) * n), fd, 2e-7, `stream ${s}`);
  }
  const inPlace = Float32Array.from(G);
  layer('geluErfBackward', { n, streams, Z, G: inPlace });
  assert.ok(sameBits(inPlace, dZ));
});

// ---- LayerScale ----

test('layerScaleAdd: Y += X·gamma (the product rounded, then the sum); its backward dY·gamma, in place alike', () => {
  const rows = 7, cols = 19;
  const Y0 = normal(rows * cols, 16), X = normal(rows * cols, 17), gamma = normal(cols, 18, 1e-2);
  const Y = Float32Array.from(Y0);
  layer('layerScaleAdd', { rows, cols, Y, X, gamma });
  for (let i = 0; i < rows * cols; i++) assert.equal(Y[i], Math.fround(Y0[i] + Math.fround(X[i] * gamma[i % cols])));
  assertClose(Y, layerScaleAdd(Y0, X, gamma, rows, cols), 1e-7, 'against the reference');
  const dY = normal(rows * cols, 19), dX = new Float32Array(rows * cols);
  layer('layerScaleBackward', { rows, cols, dY, gamma, dX });
  const fd = centralGradient((x) => layerScaleAdd(Y0, x, gamma, rows, cols), X, dY);
  assertClose(dX, fd, 1e-7, 'dX');
  const inPlace = Float32Array.from(dY);
  layer('layerScaleBackward', { rows, cols, dY: inPlace, gamma });
  assert.ok(sameBits(inPlace, dX));
});

// ---- attention ----

/** Native forward and (optionally) backward of one attention shape on Q, K, V (and dAtt). */
function nativeAttention(shape, Q, K, V, dAtt, streams = 1) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  const op = { ...shape };
  delete op.gate;
  if (shape.gate !== undefined) op.gate = f32([shape.gate]);
  const Att = new Float32Array(B * T * heads * hd), rowMax = new Float32Array(B * heads * T), rowSum = new Float32Array(B * heads * T);
  layer('attentionForward', { ...op, Q, K, V, Att, rowMax, rowSum });
  const out = { Att, rowMax, rowSum };
  if (!dAtt) return out;
  out.dQ = new Float32Array(streams * B * T * heads * hd).fill(NaN);
  out.dK = new Float32Array(streams * B * Tk * kvHeads * hd).fill(NaN);
  out.dV = new Float32Array(streams * B * Tk * kvHeads * hd).fill(NaN);
  if (op.gate) out.dGate = new Float32Array(streams).fill(NaN);
  layer('attentionBackward', { ...op, streams, Q, K, V, rowMax, rowSum, dAtt, dQ: out.dQ, dK: out.dK, dV: out.dV, ...(op.gate ? { dGate: out.dGate } : {}) });
  return out;
}

function attentionInputs(shape, seed) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  return { Q: normal(B * T * heads * hd, seed), K: normal(B * Tk * kvHeads * hd, seed + 1), V: normal(B * Tk * kvHeads * hd, seed + 2) };
}

const SHAPES = [
  ['bidirectional, grouped-query, cross keys (Tk ≠ T), gated', { B: 2, T: 5, Tk: 9, heads: 4, kvHeads: 2, hd: 8, scale: 1 / Math.sqrt(8), causal: false, gateBegin: 6, gateEnd: 9, gate: 0.6 }],
  ['bidirectional, multi-head (timm ViT Attention)', { B: 2, T: 6, heads: 3, kvHeads: 3, hd: 4, scale: 0.5, causal: false }],
  ['causal, grouped-query, gated', { B: 1, T: 7, heads: 4, kvHeads: 1, hd: 4, scale: 0.5, causal: true, gateBegin: 2, gateEnd: 5, gate: -1.3 }],
  ['causal, grouped-query (the Qwen2 path)', { B: 2, T: 6, heads: 4, kvHeads: 2, hd: 4, scale: 0.5, causal: true }],
];

for (const [what, shape] of SHAPES) {
  test(`attention forward and backward (${what}): the float64 reference and its central differences`, () => {
    const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T, streams = 2;
    const { Q, K, V } = attentionInputs(shape, 20);
    const nQ = B * T * heads * hd, nK = B * Tk * kvHeads * hd;
    const dAtt = normal(streams * nQ, 23);
    const got = nativeAttention(shape, Q, K, V, dAtt, streams);
    assertClose(got.Att, attention(shape, Q, K, V), 2e-6, 'Att');
    for (let s = 0; s < streams; s++) {
      const w = dAtt.subarray(s * nQ, (s + 1) * nQ);
      assertClose(got.dQ.subarray(s * nQ, (s + 1) * nQ), centralGradient((q) => attention(shape, q, K, V), Q, w), 2e-5, `stream ${s} dQ`);
      assertClose(got.dK.subarray(s * nK, (s + 1) * nK), centralGradient((k) => attention(shape, Q, k, V), K, w), 2e-5, `stream ${s} dK`);
      assertClose(got.dV.subarray(s * nK, (s + 1) * nK), centralGradient((v) => attention(shape, Q, K, v), V, w), 2e-5, `stream ${s} dV`);
      if (shape.gate !== undefined) {
        const [fd] = centralGradient(([g]) => attention({ ...shape, gate: g }, Q, K, V), [shape.gate], w);
        assert.ok(Math.abs(got.dGate[s] - fd) <= 2e-5 * Math.abs(fd) + 1e-6, `stream ${s} dGate ${got.dGate[s]} vs ${fd}`);
        assert.ok(Math.abs(fd) > 1e-3, 'the gate matters here');
      }
    }
  });
}

test("attention with the Pro head's layout: keys [self; adapter + proprio; task], the task logits times tanh(g)", () => {
  const T = 4, Ka = 3, Kt = 5, heads = 2, hd = 4, C = heads * hd, g = 0.8, B = 2, Tk = T + Ka + Kt;
  const rand = (n, seed) => normal(n, seed);
  const samples = Array.from({ length: B }, (_, b) => ({
    q: rand(T * C, 30 + 10 * b), kSelf: rand(T * C, 31 + 10 * b), vSelf: rand(T * C, 32 + 10 * b),
    kAdapter: rand(Ka * C, 33 + 10 * b), vAdapter: rand(Ka * C, 34 + 10 * b), kTask: rand(Kt * C, 35 + 10 * b), vTask: rand(Kt * C, 36 + 10 * b),
  }));
  // The caller's layout: per sample, its keys (and values) in the upstream concatenation order.
  const Q = new Float32Array(B * T * C), K = new Float32Array(B * Tk * C), V = new Float32Array(B * Tk * C);
  samples.forEach((s, b) => {
    Q.set(s.q, b * T * C);
    K.set(s.kSelf, b * Tk * C); K.set(s.kAdapter, (b * Tk + T) * C); K.set(s.kTask, (b * Tk + T + Ka) * C);
    V.set(s.vSelf, b * Tk * C); V.set(s.vAdapter, (b * Tk + T) * C); V.set(s.vTask, (b * Tk + T + Ka) * C);
  });
  const shape = { B, T, Tk, heads, kvHeads: heads, hd, scale: 1 / Math.sqrt(hd), causal: false, gateBegin: T + Ka, gateEnd: Tk, gate: g };
  const { Att } = nativeAttention(shape, Q, K, V);
  samples.forEach((s, b) => {
    const ref = proHeadAttention({ T, Ka, Kt, heads, hd }, s.q, s.kSelf, s.vSelf, s.kAdapter, s.vAdapter, s.kTask, s.vTask, g);
    assertClose(Att.subarray(b * T * C, (b + 1) * T * C), ref, 2e-6, `sample ${b}`);
  });
});

test('a gate with tanh(g) = 1 in float (g = 10), or an empty gate range, is the ungated attention bit for bit', () => {
  const shape = { B: 2, T: 5, Tk: 8, heads: 4, kvHeads: 2, hd: 8, scale: 0.35, causal: false };
  const { Q, K, V } = attentionInputs(shape, 40);
  const dAtt = normal(2 * 2 * 5 * 32, 43);
  assert.equal(Math.fround(Math.tanh(10)), 1);
  const plain = nativeAttention(shape, Q, K, V, dAtt, 2);
  for (const gate of [{ gateBegin: 3, gateEnd: 8, gate: 10 }, { gateBegin: 4, gateEnd: 4, gate: 0.5 }]) {
    const gated = nativeAttention({ ...shape, ...gate }, Q, K, V, dAtt, 2);
    for (const k of ['Att', 'rowMax', 'rowSum', 'dQ', 'dK', 'dV']) assert.ok(sameBits(gated[k], plain[k]), `${k} with ${JSON.stringify(gate)}`);
    if (gate.gateEnd > gate.gateBegin) assert.deepEqual([...gated.dGate].map(Math.abs), [0, 0], 'd tanh/dg = 1 − t² = 0');
  }
});

test('a gate at g = 0 zeroes the gated logits: the ungated attention with those keys set to zero, bit for bit', () => {
  const shape = { B: 2, T: 5, Tk: 9, heads: 4, kvHeads: 2, hd: 8, scale: 0.35, causal: false };
  const { Q, K, V } = attentionInputs(shape, 50);
  const dAtt = normal(2 * 5 * 32, 53);
  const gated = nativeAttention({ ...shape, gateBegin: 5, gateEnd: 9, gate: 0 }, Q, K, V, dAtt);
  const K0 = Float32Array.from(K);
  for (let b = 0; b < 2; b++) K0.fill(0, (b * 9 + 5) * 16, (b * 9 + 9) * 16);
  const zeroed = nativeAttention(shape, Q, K0, V, dAtt);
  for (const k of ['Att', 'rowMax', 'rowSum', 'dQ', 'dV']) assert.ok(sameBits(gated[k], zeroed[k]), k);
  // The gated keys get no gradient through a zero gate; their logits' gradient goes to g.
  for (let b = 0; b < 2; b++)
    for (let i = (b * 9 + 5) * 16; i < (b * 9 + 9) * 16; i++) assert.equal(Math.abs(gated.dK[i]), 0);
  assert.ok(Math.abs(gated.dGate[0]) > 1e-3);
});

test("bidirectional attention's last query row is the causal one's, bit for bit (that row reads every key)", () => {
  const shape = { B: 2, T: 6, heads: 4, kvHeads: 2, hd: 8, scale: 0.35 };
  const { Q, K, V } = attentionInputs(shape, 60);
  const bi = nativeAttention({ ...shape, causal: false }, Q, K, V);
  const ca = nativeAttention({ ...shape, causal: true }, Q, K, V);
  const qD = 32;
  let differ = 0;
  for (let b = 0; b < 2; b++) {
    const last = (b * 6 + 5) * qD;
    assert.ok(sameBits(bi.Att.subarray(last, last + qD), ca.Att.subarray(last, last + qD)), `sample ${b}`);
    for (let h = 0; h < 4; h++) {
      const r = (b * 4 + h) * 6 + 5;
      assert.equal(bi.rowMax[r], ca.rowMax[r]);
      assert.equal(bi.rowSum[r], ca.rowSum[r]);
    }
    for (let i = b * 6 * qD; i < last; i++) differ += bi.Att[i] !== ca.Att[i];
  }
  assert.ok(differ > 0, 'the earlier rows differ (the mask is applied only when causal)');
});

// ---- the patch matrix ----

test('patchify then P·Wᵀ + b is nn.Conv2d(kernel p, stride p) flattened to (B, N, D), remainder dropped', () => {
  const B = 2, C = 3, H = 30, W = 23, p = 7, D = 5, gh = 4, gw = 3, N = gh * gw, width = C * p * p;
  const images = normal(B * C * H * W, 70), weight = normal(D * width, 71), bias = normal(D, 72);
  const P = new Float32Array(B * N * width).fill(NaN);
  layer('patchify', { B, C, H, W, p, images, P });
  // The caller's product, in float64 here: Y[r, o] = Σ_k P[r, k]·weight[o, k] + bias[o].
  const Y = new Float64Array(B * N * D);
  for (let r = 0; r < B * N; r++)
    for (let o = 0; o < D; o++) {
      let s = bias[o];
      for (let k = 0; k < width; k++) s += P[r * width + k] * weight[o * width + k];
      Y[r * D + o] = s;
    }
  assertClose(Y, conv2dPatches(images, weight, bias, B, C, H, W, p, D), 1e-13, 'Y');
});

// ---- ReLU (VLA-Adapter's Pro head) ----

// Values around zero and the special ones: NaN, ±Inf, ±0, subnormals, and sums that cross zero.
const RELU_Z = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 1e-38, -1e-38, 0.25, -0.25, 3, -3, 1, -1, 0.5];
const RELU_B = [0, 0, 0, 0, 0, 0, 0, 0, 0, -0.25, 0.25, -2.5, 2.5, -1, 1, NaN];

test('biasRelu: Z += b rounded once; out = Z where Z > 0 or NaN, else 0 (torch.relu); without b, Z unchanged', () => {
  const rows = 3, cols = RELU_Z.length;
  const Z0 = f32(Array.from({ length: rows * cols }, (_, i) => RELU_Z[i % cols] * (i >= cols && Number.isFinite(RELU_Z[i % cols]) ? 1 + 0.5 * Math.floor(i / cols) : 1)));
  const b = f32(RELU_B);
  const Z = Float32Array.from(Z0), out = new Float32Array(rows * cols).fill(7);
  layer('biasRelu', { rows, cols, Z, b, out });
  const ref = biasRelu(Z0, b, rows, cols);
  for (let i = 0; i < rows * cols; i++) {
    const z = Math.fround(Z0[i] + b[i % cols]);
    assert.ok(Object.is(Z[i], z), `Z[${i}] = ${Z[i]}, want ${z}`);
    if (Number.isNaN(z)) assert.ok(Number.isNaN(out[i]), `out[${i}]: NaN stays NaN`);
    else assert.equal(out[i], z > 0 ? z : 0, `out[${i}] for z ${z}`);
    if (!Number.isNaN(ref[i])) assert.equal(out[i], ref[i] === Infinity ? Infinity : Math.fround(ref[i]), `out[${i}] against the float64 reference`);
  }
  assert.ok(out.some(Number.isNaN) && out.includes(Infinity) && out.includes(0), 'the special values were exercised');
  // The relative-error check on finite data, with and without the bias.
  const n = 40 * 33, Zf = normal(n, 80), bf = normal(33, 81);
  for (const withBias of [true, false]) {
    const Zc = Float32Array.from(Zf), o = new Float32Array(n).fill(NaN);
    layer('biasRelu', { rows: 40, cols: 33, Z: Zc, out: o, ...(withBias ? { b: bf } : {}) });
    assertClose(o, biasRelu(Zf, withBias ? bf : null, 40, 33), 1e-7, `out ${withBias ? 'with' : 'without'} the bias`);
    if (!withBias) assert.ok(sameBits(Zc, Zf), 'no bias: Z unchanged');
    assert.ok(o.filter((v) => v === 0).length > n / 4, 'about half clipped');
  }
});

test('reluBackward over two streams: G where Z > 0, 0 at Z = ±0 and below, G at a NaN Z (threshold_backward); central differences; in place the same bits', () => {
  const Zs = f32([...RELU_Z, ...normal(300, 82, 2)]), n = Zs.length, streams = 2;
  const G = normal(streams * n, 83), dZ = new Float32Array(streams * n).fill(NaN);
  layer('reluBackward', { n, streams, Z: Zs, G, dZ });
  for (let s = 0; s < streams; s++)
    for (let i = 0; i < n; i++) {
      const want = Zs[i] <= 0 ? 0 : G[s * n + i];  // Zs[i] NaN: the comparison is false, G passes
      assert.ok(Object.is(dZ[s * n + i], want) || (want === 0 && dZ[s * n + i] === 0), `stream ${s} z ${Zs[i]}: ${dZ[s * n + i]} vs ${want}`);
    }
  assert.equal(dZ[RELU_Z.indexOf(0)], 0, 'Z = 0: torch gives 0');
  assert.equal(dZ[RELU_Z.findIndex((v) => Object.is(v, -0))], 0, 'Z = −0: 0');
  assert.equal(dZ[0], G[0], 'Z NaN: G passes (torch 1.13 relu backward)');
  // Away from the kink, the derivative of the float64 reference.
  const idx = [...Zs.keys()].filter((i) => Number.isFinite(Zs[i]) && Math.abs(Zs[i]) > 1e-3);
  const Zf = f64(idx.map((i) => Zs[i]));
  for (let s = 0; s < streams; s++) {
    const w = f64(idx.map((i) => G[s * n + i]));
    const fd = centralGradient((z) => biasRelu(z, null, 1, z.length), Zf, w);
    assertClose(f64(idx.map((i) => dZ[s * n + i])), fd, 1e-9, `stream ${s} against central differences`);
  }
  const inPlace = Float32Array.from(G);
  layer('reluBackward', { n, streams, Z: Zs, G: inPlace });
  assert.ok(sameBits(inPlace, dZ), 'in place');
});

// ---- the Pro head's RoPE ----

/** The op's tables (T × hd/2, float32) and upstream's full ones (T × hd, of the same float32 values). */
function ropeTables(T, hd) {
  const { cos, sin } = proHeadRopeTables(T, hd);
  const half = hd / 2;
  const cosT = new Float32Array(T * half), sinT = new Float32Array(T * half);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < half; k++) {
      cosT[t * half + k] = cos[t * hd + k];
      sinT[t * half + k] = sin[t * hd + k];
    }
  // The float32 values upstream's cat(freqs, freqs) tables would hold: column j = frequency j mod hd/2.
  const cos32 = f64(Array.from(cos, (_, i) => cosT[Math.floor(i / hd) * half + (i % hd) % half]));
  const sin32 = f64(Array.from(sin, (_, i) => sinT[Math.floor(i / hd) * half + (i % hd) % half]));
  return { cosT, sinT, cos: cos32, sin: sin32, cos64: cos, sin64: sin };
}
const ropeOp = (X, shape, tables, inverse) => {
  const out = Float32Array.from(X);
  layer('ropeProHead', { ...shape, X: out, cosT: tables.cosT, sinT: tables.sinT, inverse });
  return out;
};
const dot64 = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
const absDot64 = (a, b) => a.reduce((s, v, i) => s + Math.abs(v * b[i]), 0);

// hd 8 (hd/2 even) and hd 6 (hd/2 odd: a pair's two columns wrap around the frequencies differently).
for (const shape of [{ rows: 14, width: 24, hd: 8, T: 7 }, { rows: 10, width: 12, hd: 6, T: 5 }]) {
  const { rows, width, hd, T } = shape;
  test(`ropeProHead (hd ${hd}): upstream's apply_rope (interleaved rotate_half, cat(freqs, freqs) tables); each product rounded, then the sum`, () => {
    const tables = ropeTables(T, hd), X = normal(rows * width, 84);
    const Y = ropeOp(X, shape, tables, false);
    assertClose(Y, proHeadRope(X, rows, width, hd, T, tables.cos, tables.sin), 1e-7, 'against the float64 reference');
    assertClose(Y, proHeadRope(X, rows, width, hd, T, tables.cos64, tables.sin64), 1e-6, 'against the float64 tables');
    // The contract's rounding: y[2i] = x[2i]·c − x[2i+1]·s, each product rounded, then the sum.
    const fr = Math.fround, half = hd / 2;
    for (let i = 0; i < rows; i++)
      for (let h = 0; h < width; h += hd)
        for (let p = 0; p < half; p++) {
          const k = i * width + h + 2 * p, t = i % T, f0 = (2 * p) % half, f1 = (2 * p + 1) % half;
          const c0 = tables.cosT[t * half + f0], s0 = tables.sinT[t * half + f0], c1 = tables.cosT[t * half + f1], s1 = tables.sinT[t * half + f1];
          assert.equal(Y[k], fr(fr(X[k] * c0) - fr(X[k + 1] * s0)), `y[${k}]`);
          assert.equal(Y[k + 1], fr(fr(X[k + 1] * c1) + fr(X[k] * s1)), `y[${k + 1}]`);
        }
    // Not the rotate-half (split) form the Qwen2 rope uses: the two differ by far more than rounding.
    const split = Float32Array.from(X);
    layer('rope', { rows, width, hd, T, X: split, cosT: tables.cosT, sinT: tables.sinT, inverse: false });
    assert.ok(relErr(split, Y) > 1e-2, 'differs from the split rotate-half form');
  });

  test(`ropeProHead (hd ${hd}): inverse is the exact transpose ⟨Rx, y⟩ = ⟨x, Rᵀy⟩, the central differences of the forward, and not R's inverse`, () => {
    const tables = ropeTables(T, hd), X = normal(rows * width, 85), Yd = normal(rows * width, 86);
    const Rx = ropeOp(X, shape, tables, false), RTy = ropeOp(Yd, shape, tables, true);
    const lhs = dot64(Rx, Yd), rhs = dot64(X, RTy);
    const bound = 4 * 2 ** -24 * (absDot64(Rx, Yd) + absDot64(X, RTy));
    assert.ok(Math.abs(lhs - rhs) <= bound, `⟨Rx, y⟩ ${lhs} vs ⟨x, Rᵀy⟩ ${rhs} (bound ${bound})`);
    // The backward of y = R x is Rᵀ dy: the central differences of the float64 forward.
    const fd = centralGradient((x) => proHeadRope(x, rows, width, hd, T, tables.cos, tables.sin), X, Yd);
    assertClose(RTy, fd, 1e-6, 'Rᵀdy against central differences');
    // The pair's two angles differ, so Rᵀ is not R⁻¹: Rᵀ R x is not x (beyond rounding).
    assert.ok(relErr(ropeOp(Rx, shape, tables, true), X) > 1e-2, 'RᵀR ≠ I');
    // A wrong backward (the pairwise rotation by −θ of each column's own angle) would fail the first check.
    const half = hd / 2, wrong = Float32Array.from(Yd);
    for (let i = 0; i < rows; i++)
      for (let h = 0; h < width; h += hd)
        for (let p = 0; p < half; p++) {
          const k = i * width + h + 2 * p, t = i % T;
          const c0 = tables.cosT[t * half + (2 * p) % half], s0 = tables.sinT[t * half + (2 * p) % half];
          wrong[k] = Yd[k] * c0 + Yd[k + 1] * s0;
          wrong[k + 1] = Yd[k + 1] * c0 - Yd[k] * s0;
        }
    assert.ok(Math.abs(lhs - dot64(X, wrong)) > 1e3 * bound, 'the check tells a wrong transpose apart');
  });
}

const torchPy = findTorchPython();
test('ropeProHead against upstream apply_rope and RotaryPositionEmbedding run in torch (float64), forward and autograd backward', { skip: torchPy.reason }, () => {
  console.log(`# torch ${torchPy.version} (${torchPy.python})`);
  const B = 2, T = 9, heads = 3, hd = 8, width = heads * hd, rows = B * T;
  const tables = ropeTables(T, hd), X = normal(rows * width, 87), dY = normal(rows * width, 88);
  // Upstream's equations (action_heads.py:125-164), in float64; the layout as reshape_heads.
  const code = `
B, T, H, hd = d['B'], d['T'], d['heads'], d['hd']
def rotate_half(x):
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).reshape_as(x)
inv_freq = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
t = torch.arange(T, dtype=torch.float64)
freqs = torch.einsum("i,j->ij", t, inv_freq)
emb = torch.cat([freqs, freqs], dim=-1)
cos = emb.cos().unsqueeze(0).unsqueeze(0)
sin = emb.sin().unsqueeze(0).unsqueeze(0)
x = arr(d['X'], np.float32).double().view(B, T, H, hd).transpose(1, 2).detach().requires_grad_()
y = (x * cos) + (rotate_half(x) * sin)
dy = arr(d['dY'], np.float32).double().view(B, T, H, hd).transpose(1, 2)
y.backward(dy)
flat = lambda u: u.transpose(1, 2).reshape(-1)
print(json.dumps({'Y': b64(flat(y), np.float64), 'dX': b64(flat(x.grad), np.float64)}))
`;
  const r = runPython(torchPy.python, code, { B, T, heads, hd, X: toB64(X), dY: toB64(dY) });
  const Yt = fromB64(r.Y, Float64Array), dXt = fromB64(r.dX, Float64Array);
  const shape = { rows, width, hd, T };
  assertClose(ropeOp(X, shape, tables, false), Yt, 1e-6, 'forward against torch');
  assertClose(ropeOp(dY, shape, tables, true), dXt, 1e-6, 'inverse against torch autograd');
  // And the float64 reference here agrees with torch to float64 rounding.
  assertClose(proHeadRope(X, rows, width, hd, T, tables.cos64, tables.sin64), Yt, 1e-14, 'the JS reference against torch');
});

test('biasRelu and reluBackward against torch.relu and its autograd backward in float32 (NaN, ±0, ±Inf)', { skip: torchPy.reason }, () => {
  const rows = 2, cols = RELU_Z.length, n = rows * cols;
  const Z0 = f32(Array.from({ length: n }, (_, i) => RELU_Z[i % cols] * (i >= cols ? -1 : 1))), b = f32(RELU_B), G = normal(n, 89);
  const code = `
z = arr(d['Z'], np.float32).view(d['rows'], d['cols']) + arr(d['b'], np.float32)
z = z.detach().requires_grad_()
y = torch.relu(z)
y.backward(arr(d['G'], np.float32).view(d['rows'], d['cols']))
print(json.dumps({'Z': b64(z.reshape(-1), np.float32), 'out': b64(y.reshape(-1), np.float32), 'dZ': b64(z.grad.reshape(-1), np.float32)}))
`;
  const r = runPython(torchPy.python, code, { rows, cols, Z: toB64(Z0), b: toB64(b), G: toB64(G) });
  const tz = fromB64(r.Z, Float32Array), tout = fromB64(r.out, Float32Array), tdz = fromB64(r.dZ, Float32Array);
  const Z = Float32Array.from(Z0), out = new Float32Array(n);
  layer('biasRelu', { rows, cols, Z, b, out });
  const dZ = new Float32Array(n);
  layer('reluBackward', { n, streams: 1, Z, G, dZ });
  // Equal as numbers (−0 and 0 alike: torch's CPU relu keeps the sign of a −0 input), NaN where torch has NaN.
  const same = (a, e) => (Number.isNaN(e) ? Number.isNaN(a) : a === e);
  for (let i = 0; i < n; i++) {
    assert.ok(same(Z[i], tz[i]), `Z[${i}]: ${Z[i]} vs torch ${tz[i]}`);
    assert.ok(same(out[i], tout[i]), `out[${i}]: ${out[i]} vs torch ${tout[i]}`);
    assert.ok(same(dZ[i], tdz[i]), `dZ[${i}] at z ${Z[i]}: ${dZ[i]} vs torch ${tdz[i]}`);
  }
});

// ---- sequences: row broadcast, row embedding, column copies ----

test('broadcastRows: rows [t0, t0 + n) of every sample = src, the other rows untouched', () => {
  const B = 3, T = 7, D = 5, t0 = 2, n = 3;
  const dst0 = normal(B * T * D, 90), src = normal(n * D, 91), dst = Float32Array.from(dst0);
  layer('broadcastRows', { B, T, D, t0, n, dst, src });
  assertClose(dst, rowsBroadcast(dst0, src, B, T, D, t0, n), 0, 'against the reference');
  let written = 0;
  for (let i = 0; i < dst.length; i++) written += dst[i] !== dst0[i];
  assert.equal(written, B * n * D, 'every broadcast element changed, nothing else');
});

test('embedRows: rows [t0, t0 + n) of each sample = embed rows of ids[b·idStride + idOffset + i]; ids checked in [0, V)', () => {
  const B = 3, T = 6, D = 4, V = 11, t0 = 1, n = 4, idStride = 7, idOffset = 2;
  const ids = Int32Array.from({ length: (B - 1) * idStride + idOffset + n + 1 }, (_, i) => (i * 5 + 3) % V);
  const embed = normal(V * D, 92), H0 = normal(B * T * D, 93), H = Float32Array.from(H0);
  layer('embedRows', { B, T, D, t0, n, V, idStride, idOffset, ids, embed, H });
  assertClose(H, rowsEmbed(H0, ids, idStride, idOffset, embed, B, T, D, t0, n), 0, 'against the reference');
  let written = 0;
  for (let i = 0; i < H.length; i++) written += H[i] !== H0[i];
  assert.equal(written, B * n * D, 'the embedded rows changed, nothing else');
  const bad = Int32Array.from(ids);
  bad[idStride + idOffset + 1] = V;
  assert.throws(() => layer('embedRows', { B, T, D, t0, n, V, idStride, idOffset, ids: bad, embed, H }), /ids: 11 is not in \[0, V\)/);
  assert.throws(() => layer('embedRows', { B, T, D, t0, n, V, idStride: 8, idOffset, ids, embed, H }), /ids has \d+ elements but needs at least/);
});

test('copyColumns: a strided block, written (concatenating) or added (splitting gradients), the rest untouched', () => {
  const rows = 9, cols = 5, ldDst = 12, ldSrc = 7;
  const dst0 = normal(rows * ldDst, 94), src = normal(rows * ldSrc, 95);
  for (const accumulate of [false, true]) {
    const dst = Float32Array.from(dst0);
    layer('copyColumns', { rows, cols, ldDst, ldSrc, accumulate, dst, src });
    assertClose(dst, columnsCopy(dst0, ldDst, src, ldSrc, rows, cols, accumulate), accumulate ? 1e-7 : 0, `accumulate ${accumulate}`);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < ldDst; j++) {
        const k = i * ldDst + j;
        const want = j >= cols ? dst0[k] : accumulate ? Math.fround(dst0[k] + src[i * ldSrc + j]) : src[i * ldSrc + j];
        assert.equal(dst[k], want, `dst[${i}, ${j}]`);
      }
  }
});

// ---- the binding's checks ----

test('layer() refuses an unknown operation and an operand of the wrong size', () => {
  assert.throws(() => layer('nope', {}), /no operation 'nope'/);
  assert.throws(() => layer('layerScaleAdd', { rows: 2, cols: 3, Y: new Float32Array(6), X: new Float32Array(5), gamma: new Float32Array(3) }),
    /X has 5 elements but needs 6/);
  assert.throws(() => layer('attentionForward', { B: 1, T: 2, Tk: 3, heads: 1, kvHeads: 1, hd: 1, scale: 1, causal: true }), /causal attention needs Tk == T/);
});

// ---- bits ----

const child = fileURLToPath(new URL('./helpers/layers-digest-child.mjs', import.meta.url));
const runChild = (env) => JSON.parse(execFileSync(process.execPath, [child], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim());

test('every layer gives the same bits for CRAFTGRAD_THREADS=1,2,3 and every CPU kernel variant', () => {
  const variants = backendInfo().cpu.available;
  const runs = ['1', '2', '3'].map((t) => runChild({ CRAFTGRAD_THREADS: t }));
  for (const isa of variants) runs.push(runChild({ CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: '2' }));
  assert.deepEqual(runs.slice(0, 3).map((r) => r.threads), [1, 2, 3]);
  assert.deepEqual(runs.slice(3).map((r) => r.isa), variants, 'each variant really ran');
  for (const r of runs) assert.deepEqual(r.digests, runs[0].digests, `threads ${r.threads}, ${r.isa}`);
  console.log(`# ${Object.keys(runs[0].digests).length} outputs, same bits for threads 1-3 and variants ${variants.join(', ')}`);
});
