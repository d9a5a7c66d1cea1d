// The layers no model uses yet (native/core/layers.h: LayerNorm, GELU's erf form, LayerScale,
// bidirectional, cross-key and gated attention, the patch matrix, bias + ReLU and its backward,
// the Pro head's RoPE, row broadcast and embedding, column copies) on CUDA (native/cuda's
// CudaLayers), through the repository build's binding.bench.layer on 'cuda:0': each against
// the CPU backend on the same operands, against the float64 references of
// test/helpers/layers-reference.mjs (backwards: their central differences), and run to run.
//
// What must be equal to the CPU (layers_cuda.h says why):
// - bit for bit on every device: bias + ReLU and its backward (NaN compared as NaN), the Pro
//   head's RoPE and its transpose, the row and column copies, LayerScale and its backward,
//   the LayerNorm weight and bias gradients (one thread per column, the CPU's row order,
//   exact terms), the patch matrix, the `Z += b` of biasGeluErf;
// - bit for bit on the emulator, within an ulp on a GPU (CUDA's double erf / exp / tanh
//   against the host's libm): GELU's erf form and its backward, the attention's row max;
// - within rounding (double sums in a fixed tree where the CPU sums in order): LayerNorm's
//   kept mean and rstd (within an ulp; Y is bit for bit the function of them the contract
//   writes), its input gradient, and the attention (1e-5 of each output's largest CPU
//   magnitude: a one-ulp difference of a row sum moves a whole row).
// Runs where the addon has CUDA (npm run test:cuda-emulator builds it on the emulator);
// elsewhere each test skips with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/index.js';
import { announceGpu, gpu } from './helpers/gpu.mjs';
import { rng, randn } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { assertClose } from './helpers/close.mjs';
import {
  attention, biasGeluErf, biasRelu, centralGradient, columnsCopy, conv2dPatches, geluErf, layerNorm, proHeadRope, proHeadRopeTables,
  rowsBroadcast, rowsEmbed,
} from './helpers/layers-reference.mjs';

const skip = announceGpu(import.meta.url);
const emulator = gpu && /emulator/i.test(backendInfo().cuda.devices[0].name);
const DEVICE = 'cuda:0';
const layer = (name, operands) => binding.bench.layer(name, operands);
const normal = (n, seed, scale = 1) => randn(n, rng(seed), scale);
const f32 = (a) => Float32Array.from(a);
const f64 = (a) => Float64Array.from(a);

/** Runs `name` on fresh operands from make() on the CPU and twice on CUDA: { cpu, cuda }, each the operands after the call. */
function onBoth(name, make) {
  const cpu = make();
  layer(name, cpu);
  const cuda = make();
  layer(name, { ...cuda, device: DEVICE });
  const again = make();
  layer(name, { ...again, device: DEVICE });
  for (const [k, v] of Object.entries(cuda)) if (v instanceof Float32Array) assert.ok(sameBits(v, again[k]), `${name}: ${k} run to run`);
  return { cpu, cuda };
}


/** The largest distance in float32 ulps between two arrays of finite floats (±0 equal). */
function maxUlps(a, b) {
  const ia = new Int32Array(Float32Array.from(a).buffer), ib = new Int32Array(Float32Array.from(b).buffer);
  const ordered = (i) => (i < 0 ? -(i & 0x7fffffff) : i);
  let worst = 0;
  for (let i = 0; i < ia.length; i++) worst = Math.max(worst, Math.abs(ordered(ia[i]) - ordered(ib[i])));
  return worst;
}

/** Bit for bit on the emulator; within `ulps` on a GPU (its math library is not the host's). */
function assertLibmEqual(actual, expected, what, ulps = 1) {
  if (emulator) assert.ok(sameBits(actual, expected), `${what}: the emulator runs the host's libm, so the CPU's bits`);
  else assert.ok(maxUlps(actual, expected) <= ulps, `${what}: ${maxUlps(actual, expected)} ulps from the CPU`);
}

function countSame(a, b) {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += Object.is(a[i], b[i]) ? 1 : 0;
  return n;
}

// ---- LayerNorm ----

/** Rows around different means; with `tiny`, the last row's variance (1e-6) is below eps = 1e-5. */
function lnInput(rows, D, seed, tiny = false) {
  const X = normal(rows * D, seed);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < D; j++) X[i * D + j] = tiny && i === rows - 1 ? 2 + 1e-3 * X[i * D + j] : 3 * i - 4 + X[i * D + j];
  return X;
}

// D = 37: fewer columns than threads; D = 300: each thread sums several (the strided loops).
for (const [D, eps] of [[37, 1e-5], [300, 1e-6]]) {
  test(`layerNorm on CUDA (D ${D}, eps ${eps}): kept mean and rstd within an ulp of the CPU's, Y their function bit for bit, the float64 reference`, { skip }, () => {
    const rows = 7;
    const X = lnInput(rows, D, 1, true), w = normal(D, 2), b = normal(D, 3);
    const make = () => ({ rows, D, eps, X, w, b, Y: new Float32Array(rows * D).fill(NaN), mean: new Float32Array(rows).fill(NaN), rstd: new Float32Array(rows).fill(NaN) });
    const { cpu, cuda } = onBoth('layerNorm', make);
    assert.ok(maxUlps(cuda.mean, cpu.mean) <= 1, `mean: ${maxUlps(cuda.mean, cpu.mean)} ulps`);
    assert.ok(maxUlps(cuda.rstd, cpu.rstd) <= 1, `rstd: ${maxUlps(cuda.rstd, cpu.rstd)} ulps`);
    // Y = ((x − mean)·rstd)·w + b, each operation rounded, from the kept statistics.
    const fr = Math.fround;
    const want = cuda.Y.map((_, k) => {
      const i = Math.floor(k / D), j = k % D;
      return fr(fr(fr(fr(X[k] - cuda.mean[i]) * cuda.rstd[i]) * w[j]) + b[j]);
    });
    assert.ok(sameBits(cuda.Y, want), 'Y from the kept statistics, bit for bit');
    for (let i = 0; i < rows; i++) {
      if (cuda.mean[i] !== cpu.mean[i] || cuda.rstd[i] !== cpu.rstd[i]) continue;
      assert.ok(sameBits(cuda.Y.subarray(i * D, (i + 1) * D), cpu.Y.subarray(i * D, (i + 1) * D)), `row ${i}: same statistics, same Y`);
    }
    assertClose(cuda.Y, cpu.Y, 1e-6, 'Y against the CPU');
    const ref = layerNorm(X, w, b, rows, D, eps);
    assertClose(cuda.Y.subarray(0, (rows - 1) * D), ref.Y.subarray(0, (rows - 1) * D), 2e-6, 'Y against the float64 reference');
    console.log(`# layerNorm D ${D}: mean ${countSame(cuda.mean, cpu.mean)}/${rows}, rstd ${countSame(cuda.rstd, cpu.rstd)}/${rows}, Y ${countSame(cuda.Y, cpu.Y)}/${rows * D} the CPU's bits`);
  });
}

test('layerNormBackward on CUDA over two stacked streams: the CPU within rounding, central differences', { skip }, () => {
  const M = 5, D = 261, rows = 2 * M, eps = 1e-6;
  const X = lnInput(M, D, 4), w = normal(D, 5), b = normal(D, 6), dY = normal(rows * D, 7), dX0 = normal(rows * D, 8);
  // The statistics from the CPU, so both backwards read the same operands.
  const fwd = { rows: M, D, eps, X, w, b, Y: new Float32Array(M * D), mean: new Float32Array(M), rstd: new Float32Array(M) };
  layer('layerNorm', fwd);
  const { mean, rstd } = fwd;
  const { cpu, cuda } = onBoth('layerNormBackward', () => ({ rows, M, D, dY, X, mean, rstd, w, dX: Float32Array.from(dX0) }));
  assertClose(cuda.dX, cpu.dX, 1e-6, 'dX against the CPU');
  for (let s = 0; s < 2; s++) {
    const fd = centralGradient((x) => layerNorm(x, w, b, M, D, eps).Y, X, dY.subarray(s * M * D, (s + 1) * M * D));
    const got = cuda.dX.subarray(s * M * D, (s + 1) * M * D).map((v, i) => v - dX0[s * M * D + i]);
    assertClose(got, fd, 2e-5, `stream ${s} dX against central differences`);
  }
  console.log(`# layerNormBackward: ${countSame(cuda.dX, cpu.dX)}/${rows * D} the CPU's bits`);
});

test('layerNormParamGrad on CUDA: the CPU bit for bit (its row order), written and accumulated; central differences', { skip }, () => {
  const M = 9, D = 300, eps = 1e-5;
  const X = lnInput(M, D, 9), w = normal(D, 10), b = normal(D, 11), dY = normal(M * D, 12);
  const fwd = { rows: M, D, eps, X, w, b, Y: new Float32Array(M * D), mean: new Float32Array(M), rstd: new Float32Array(M) };
  layer('layerNorm', fwd);
  const { mean, rstd } = fwd;
  const written = onBoth('layerNormParamGrad', () => ({ M, D, dY, X, mean, rstd, scale: 1, accumulate: false, dW: new Float32Array(D).fill(NaN), dB: new Float32Array(D).fill(NaN) }));
  assert.ok(sameBits(written.cuda.dW, written.cpu.dW), 'dW');
  assert.ok(sameBits(written.cuda.dB, written.cpu.dB), 'dB');
  assertClose(written.cuda.dW, centralGradient((ww) => layerNorm(X, ww, b, M, D, eps).Y, w, dY), 1e-6, 'dW against central differences');
  assertClose(written.cuda.dB, centralGradient((bb) => layerNorm(X, w, bb, M, D, eps).Y, b, dY), 1e-6, 'dB against central differences');
  const dW0 = normal(D, 13), dB0 = normal(D, 14);
  const acc = onBoth('layerNormParamGrad', () => ({ M, D, dY, X, mean, rstd, scale: 0.5, accumulate: true, dW: Float32Array.from(dW0), dB: Float32Array.from(dB0) }));
  assert.ok(sameBits(acc.cuda.dW, acc.cpu.dW), 'dW accumulated');
  assert.ok(sameBits(acc.cuda.dB, acc.cpu.dB), 'dB accumulated');
});

// ---- GELU, erf form ----

test('biasGeluErf on CUDA, with and without the residual: the CPU (bits on the emulator, an ulp on a GPU), the float64 reference', { skip }, () => {
  const grid = [-12, -9.5, -6, -5.25, -4, -3, -2.2, -1.5, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-4, 0.3, 0.7, 1, 2, 3.5, 6, 11];
  const rows = 40, cols = grid.length;
  const Z0 = f32(Array.from({ length: rows * cols }, (_, i) => grid[i % cols] * (1 + 0.05 * Math.floor(i / cols)) + (i % 7) * 1e-3));
  const b = f32(grid.map((_, j) => (j % 3) * 1e-3)), residual = normal(rows * cols, 13);
  for (const withResidual of [false, true]) {
    const make = () => ({ rows, cols, Z: Float32Array.from(Z0), b, out: new Float32Array(rows * cols).fill(NaN), ...(withResidual ? { residual } : {}) });
    const { cpu, cuda } = onBoth('biasGeluErf', make);
    assert.ok(sameBits(cuda.Z, cpu.Z), 'Z += b');
    assertLibmEqual(cuda.out, cpu.out, `out${withResidual ? ' with the residual' : ''}`);
    assertClose(cuda.out, biasGeluErf(Z0, b, withResidual ? residual : null, rows, cols), 1e-7, 'against the float64 reference');
  }
});

test('geluErfBackward on CUDA over two streams: the CPU (bits on the emulator, an ulp on a GPU), in place the same bits, central differences', { skip }, () => {
  const n = 1000, streams = 2;
  const Z = normal(n, 14, 3), G = normal(streams * n, 15);
  const { cpu, cuda } = onBoth('geluErfBackward', () => ({ n, streams, Z, G, dZ: new Float32Array(streams * n).fill(NaN) }));
  assertLibmEqual(cuda.dZ, cpu.dZ, 'dZ');
  const inPlace = { n, streams, Z, G: Float32Array.from(G), device: DEVICE };
  layer('geluErfBackward', inPlace);
  assert.ok(sameBits(inPlace.G, cuda.dZ), 'in place');
  for (let s = 0; s < streams; s++) {
    const fd = centralGradient((z) => z.map(geluErf), Z, G.subarray(s * n, (s + 1) * n));
    assertClose(cuda.dZ.subarray(s * n, (s + 1) * n), fd, 2e-7, `stream ${s} against central differences`);
  }
});

// ---- LayerScale ----

test('layerScaleAdd and layerScaleBackward on CUDA: the CPU bit for bit, in place alike', { skip }, () => {
  const rows = 33, cols = 45;
  const Y0 = normal(rows * cols, 16), X = normal(rows * cols, 17), gamma = normal(cols, 18, 1e-2), dY = normal(rows * cols, 19);
  const add = onBoth('layerScaleAdd', () => ({ rows, cols, Y: Float32Array.from(Y0), X, gamma }));
  assert.ok(sameBits(add.cuda.Y, add.cpu.Y), 'Y');
  for (let i = 0; i < rows * cols; i++) assert.equal(add.cuda.Y[i], Math.fround(Y0[i] + Math.fround(X[i] * gamma[i % cols])));
  const back = onBoth('layerScaleBackward', () => ({ rows, cols, dY, gamma, dX: new Float32Array(rows * cols).fill(NaN) }));
  assert.ok(sameBits(back.cuda.dX, back.cpu.dX), 'dX');
  const inPlace = { rows, cols, dY: Float32Array.from(dY), gamma, device: DEVICE };
  layer('layerScaleBackward', inPlace);
  assert.ok(sameBits(inPlace.dY, back.cuda.dX), 'in place');
});

// ---- the patch matrix ----

test('patchify on CUDA: the CPU bit for bit (every element written, the remainder dropped), then the Conv2d', { skip }, () => {
  const B = 2, C = 3, H = 30, W = 23, p = 7, D = 5, N = 4 * 3, width = C * p * p;
  const images = normal(B * C * H * W, 70), weight = normal(D * width, 71), bias = normal(D, 72);
  const { cpu, cuda } = onBoth('patchify', () => ({ B, C, H, W, p, images, P: new Float32Array(B * N * width).fill(NaN) }));
  assert.ok(sameBits(cuda.P, cpu.P));
  const Y = new Float64Array(B * N * D);
  for (let r = 0; r < B * N; r++)
    for (let o = 0; o < D; o++) {
      let s = bias[o];
      for (let k = 0; k < width; k++) s += cuda.P[r * width + k] * weight[o * width + k];
      Y[r * D + o] = s;
    }
  assertClose(Y, conv2dPatches(images, weight, bias, B, C, H, W, p, D), 1e-13, 'Y');
});

// ---- attention ----

/** Forward, then (with dAtt) the backward of `streams` streams, on `device` (undefined: the CPU); every output NaN-filled first. */
function nativeAttention(shape, Q, K, V, dAtt, streams, device) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  const op = { ...shape, ...(device ? { device } : {}) };
  delete op.gate;
  if (shape.gate !== undefined) op.gate = f32([shape.gate]);
  const nan = (n) => new Float32Array(n).fill(NaN);
  const out = { Att: nan(B * T * heads * hd), rowMax: nan(B * heads * T), rowSum: nan(B * heads * T) };
  layer('attentionForward', { ...op, Q, K, V, ...out });
  if (!dAtt) return out;
  out.dQ = nan(streams * B * T * heads * hd);
  out.dK = nan(streams * B * Tk * kvHeads * hd);
  out.dV = nan(streams * B * Tk * kvHeads * hd);
  if (op.gate) out.dGate = nan(streams);
  layer('attentionBackward', { ...op, streams, Q, K, V, rowMax: out.rowMax, rowSum: out.rowSum, dAtt, dQ: out.dQ, dK: out.dK, dV: out.dV, ...(op.gate ? { dGate: out.dGate } : {}) });
  return out;
}

function attentionInputs(shape, seed, streams) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T;
  return {
    Q: normal(B * T * heads * hd, seed), K: normal(B * Tk * kvHeads * hd, seed + 1), V: normal(B * Tk * kvHeads * hd, seed + 2),
    dAtt: normal(streams * B * T * heads * hd, seed + 3),
  };
}

const OUTPUTS = ['Att', 'rowMax', 'rowSum', 'dQ', 'dK', 'dV', 'dGate'];

// Small shapes (checked against the float64 reference and its central differences too) and
// larger ones: keys or queries past the CTA's 128 threads, the gate range across that edge.
const SHAPES = [
  ['bidirectional, grouped-query, cross keys (Tk ≠ T), gated', { B: 2, T: 5, Tk: 9, heads: 4, kvHeads: 2, hd: 8, scale: 1 / Math.sqrt(8), causal: false, gateBegin: 6, gateEnd: 9, gate: 0.6 }, true],
  ['bidirectional, multi-head (timm ViT Attention)', { B: 2, T: 6, heads: 3, kvHeads: 3, hd: 4, scale: 0.5, causal: false }, true],
  ['causal, grouped-query, gated', { B: 1, T: 7, heads: 4, kvHeads: 1, hd: 4, scale: 0.5, causal: true, gateBegin: 2, gateEnd: 5, gate: -1.3 }, true],
  ['causal, grouped-query (the Qwen2 path)', { B: 2, T: 6, heads: 4, kvHeads: 2, hd: 4, scale: 0.5, causal: true }, true],
  ['bidirectional, gated, Tk 200 > 128 threads, the gate across the edge', { B: 2, T: 6, Tk: 200, heads: 2, kvHeads: 1, hd: 8, scale: 0.3, causal: false, gateBegin: 100, gateEnd: 170, gate: 0.9 }, false],
  ['bidirectional, Tk < T (fewer keys than queries), gated', { B: 3, T: 24, Tk: 10, heads: 4, kvHeads: 2, hd: 16, scale: 0.25, causal: false, gateBegin: 0, gateEnd: 4, gate: -0.4 }, false],
  ['causal, gated, T 140 > 128 threads', { B: 1, T: 140, heads: 2, kvHeads: 2, hd: 8, scale: 0.3, causal: true, gateBegin: 50, gateEnd: 139, gate: 0.3 }, false],
];

for (const [what, shape, small] of SHAPES) {
  test(`attention on CUDA (${what}), two streams: the CPU within rounding${small ? ', the float64 reference and its central differences' : ''}, run to run`, { skip }, () => {
    const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T, streams = 2;
    const { Q, K, V, dAtt } = attentionInputs(shape, 20, streams);
    const cpu = nativeAttention(shape, Q, K, V, dAtt, streams);
    const cuda = nativeAttention(shape, Q, K, V, dAtt, streams, DEVICE);
    const again = nativeAttention(shape, Q, K, V, dAtt, streams, DEVICE);
    const counts = [];
    for (const k of OUTPUTS) {
      if (!cuda[k]) continue;
      assert.ok(sameBits(cuda[k], again[k]), `${k} run to run`);
      assertClose(cuda[k], cpu[k], 1e-5, `${k} against the CPU`);
      counts.push(`${k} ${countSame(cuda[k], cpu[k])}/${cpu[k].length}`);
    }
    assertLibmEqual(cuda.rowMax, cpu.rowMax, 'rowMax');
    if (shape.gate !== undefined) assert.ok(Math.abs(cpu.dGate[0]) > 1e-3 && Math.abs(cpu.dGate[1]) > 1e-3, 'the gate matters here');
    console.log(`# ${what}: the CPU's bits: ${counts.join(', ')}`);
    if (!small) return;
    const nQ = B * T * heads * hd, nK = B * Tk * kvHeads * hd;
    assertClose(cuda.Att, attention(shape, Q, K, V), 2e-6, 'Att against the float64 reference');
    for (let s = 0; s < streams; s++) {
      const w = dAtt.subarray(s * nQ, (s + 1) * nQ);
      assertClose(cuda.dQ.subarray(s * nQ, (s + 1) * nQ), centralGradient((q) => attention(shape, q, K, V), Q, w), 2e-5, `stream ${s} dQ`);
      assertClose(cuda.dK.subarray(s * nK, (s + 1) * nK), centralGradient((k) => attention(shape, Q, k, V), K, w), 2e-5, `stream ${s} dK`);
      assertClose(cuda.dV.subarray(s * nK, (s + 1) * nK), centralGradient((v) => attention(shape, Q, K, v), V, w), 2e-5, `stream ${s} dV`);
      if (shape.gate !== undefined) {
        const [fd] = centralGradient(([g]) => attention({ ...shape, gate: g }, Q, K, V), [shape.gate], w);
        assert.ok(Math.abs(cuda.dGate[s] - fd) <= 2e-5 * Math.abs(fd) + 1e-6, `stream ${s} dGate ${cuda.dGate[s]} vs ${fd}`);
      }
    }
  });
}

test('attention on CUDA: a gate with tanh(g) = 1 in float, or an empty gate range, is the ungated attention bit for bit', { skip }, () => {
  const shape = { B: 2, T: 5, Tk: 8, heads: 4, kvHeads: 2, hd: 8, scale: 0.35, causal: false };
  const { Q, K, V, dAtt } = attentionInputs(shape, 40, 2);
  const plain = nativeAttention(shape, Q, K, V, dAtt, 2, DEVICE);
  for (const gate of [{ gateBegin: 3, gateEnd: 8, gate: 10 }, { gateBegin: 4, gateEnd: 4, gate: 0.5 }]) {
    const gated = nativeAttention({ ...shape, ...gate }, Q, K, V, dAtt, 2, DEVICE);
    for (const k of ['Att', 'rowMax', 'rowSum', 'dQ', 'dK', 'dV']) assert.ok(sameBits(gated[k], plain[k]), `${k} with ${JSON.stringify(gate)}`);
    if (gate.gateEnd > gate.gateBegin) assert.deepEqual([...gated.dGate].map(Math.abs), [0, 0], 'd tanh/dg = 1 − t² = 0');
  }
});

test('attention on CUDA: a gate at g = 0 is the ungated attention with the gated keys zeroed, bit for bit', { skip }, () => {
  const shape = { B: 2, T: 5, Tk: 9, heads: 4, kvHeads: 2, hd: 8, scale: 0.35, causal: false };
  const { Q, K, V, dAtt } = attentionInputs(shape, 50, 1);
  const gated = nativeAttention({ ...shape, gateBegin: 5, gateEnd: 9, gate: 0 }, Q, K, V, dAtt, 1, DEVICE);
  const K0 = Float32Array.from(K);
  for (let b = 0; b < 2; b++) K0.fill(0, (b * 9 + 5) * 16, (b * 9 + 9) * 16);
  const zeroed = nativeAttention(shape, Q, K0, V, dAtt, 1, DEVICE);
  for (const k of ['Att', 'rowMax', 'rowSum', 'dQ', 'dV']) assert.ok(sameBits(gated[k], zeroed[k]), k);
  for (let b = 0; b < 2; b++)
    for (let i = (b * 9 + 5) * 16; i < (b * 9 + 9) * 16; i++) assert.equal(Math.abs(gated.dK[i]), 0);
  assert.ok(Math.abs(gated.dGate[0]) > 1e-3);
});

test("attention on CUDA: the bidirectional last query row is the causal one's, bit for bit", { skip }, () => {
  const shape = { B: 2, T: 6, heads: 4, kvHeads: 2, hd: 8, scale: 0.35 };
  const { Q, K, V } = attentionInputs(shape, 60, 1);
  const bi = nativeAttention({ ...shape, causal: false }, Q, K, V, undefined, 1, DEVICE);
  const ca = nativeAttention({ ...shape, causal: true }, Q, K, V, undefined, 1, DEVICE);
  const qD = 32;
  for (let b = 0; b < 2; b++) {
    const last = (b * 6 + 5) * qD;
    assert.ok(sameBits(bi.Att.subarray(last, last + qD), ca.Att.subarray(last, last + qD)), `sample ${b}`);
  }
});

// ---- ReLU (VLA-Adapter's Pro head) ----

// NaN bits are compared as NaN-ness (a GPU's canonical NaN need not be the CPU's payload).
function sameValues(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) return false;
  return true;
}

test('biasRelu on CUDA, with and without the bias: the CPU bit for bit (NaN kept, ±Inf, ±0), the float64 reference', { skip }, () => {
  const rows = 40, cols = 37;
  const Z0 = normal(rows * cols, 80, 2), b = normal(cols, 81);
  for (const [i, v] of [[0, NaN], [1, Infinity], [2, -Infinity], [3, 0], [4, -0], [5, 1e-45]]) Z0[i * 3] = v;
  for (const withBias of [true, false]) {
    const make = () => ({ rows, cols, Z: Float32Array.from(Z0), out: new Float32Array(rows * cols).fill(7), ...(withBias ? { b } : {}) });
    const { cpu, cuda } = onBoth('biasRelu', make);
    assert.ok(sameValues(cuda.Z, cpu.Z), 'Z');
    assert.ok(sameValues(cuda.out, cpu.out), 'out');
    assert.ok(Number.isNaN(cuda.out[0]) && cuda.out[3] === Infinity && cuda.out[6] === 0, 'NaN stays, +Inf passes, −Inf clips');
    const finite = [...cuda.out.keys()].filter((i) => i >= 18);
    assertClose(finite.map((i) => cuda.out[i]), biasRelu(Z0, withBias ? b : null, rows, cols).filter((_, i) => i >= 18), 1e-7, 'against the float64 reference');
  }
});

test('reluBackward on CUDA over two streams: the CPU bit for bit (0 at Z = 0, G at a NaN Z), in place the same bits', { skip }, () => {
  const n = 3000, streams = 2;
  const Z = normal(n, 82, 2), G = normal(streams * n, 83);
  Z[0] = NaN; Z[1] = 0; Z[2] = -0; Z[3] = Infinity; Z[4] = -Infinity;
  const { cpu, cuda } = onBoth('reluBackward', () => ({ n, streams, Z, G, dZ: new Float32Array(streams * n).fill(NaN) }));
  assert.ok(sameBits(cuda.dZ, cpu.dZ), 'dZ');
  for (let s = 0; s < streams; s++) {
    assert.deepEqual([...cuda.dZ.subarray(s * n, s * n + 5)], [G[s * n], 0, 0, G[s * n + 3], 0], `stream ${s}: NaN, 0, −0, Inf, −Inf`);
    // Away from the kink, the derivative of the float64 reference.
    const idx = [...Z.keys()].filter((i) => Number.isFinite(Z[i]) && Math.abs(Z[i]) > 1e-3);
    const fd = centralGradient((z) => biasRelu(z, null, 1, z.length), f64(idx.map((i) => Z[i])), f64(idx.map((i) => G[s * n + i])));
    assertClose(f64(idx.map((i) => cuda.dZ[s * n + i])), fd, 1e-9, `stream ${s} against central differences`);
  }
  const inPlace = { n, streams, Z, G: Float32Array.from(G), device: DEVICE };
  layer('reluBackward', inPlace);
  assert.ok(sameBits(inPlace.G, cuda.dZ), 'in place');
});

// ---- the Pro head's RoPE ----

/** The op's tables (T × hd/2, float32) and upstream's full cat(freqs, freqs) ones holding the same float32 values (T × hd). */
function ropeTables(T, hd) {
  const { cos, sin } = proHeadRopeTables(T, hd), half = hd / 2;
  const cosT = new Float32Array(T * half), sinT = new Float32Array(T * half);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < half; k++) {
      cosT[t * half + k] = cos[t * hd + k];
      sinT[t * half + k] = sin[t * hd + k];
    }
  const full = (tab) => f64(Array.from(cos, (_, i) => tab[Math.floor(i / hd) * half + (i % hd) % half]));
  return { cosT, sinT, cos: full(cosT), sin: full(sinT) };
}

// hd 16 over 4 heads (hd/2 even) and hd 6 (hd/2 odd); rows·heads·hd/2 beyond one CTA.
for (const shape of [{ rows: 60, width: 64, hd: 16, T: 12 }, { rows: 50, width: 18, hd: 6, T: 7 }]) {
  const { rows, width, hd, T } = shape;
  test(`ropeProHead on CUDA (hd ${hd}), forward and inverse: the CPU bit for bit, the float64 reference, the transpose, central differences`, { skip }, () => {
    const tables = ropeTables(T, hd), X = normal(rows * width, 84), dY = normal(rows * width, 85);
    const ops = (X0, inverse) => () => ({ ...shape, X: Float32Array.from(X0), cosT: tables.cosT, sinT: tables.sinT, inverse });
    const fwd = onBoth('ropeProHead', ops(X, false)), inv = onBoth('ropeProHead', ops(dY, true));
    assert.ok(sameBits(fwd.cuda.X, fwd.cpu.X), 'forward');
    assert.ok(sameBits(inv.cuda.X, inv.cpu.X), 'inverse');
    assertClose(fwd.cuda.X, proHeadRope(X, rows, width, hd, T, tables.cos, tables.sin), 1e-7, 'forward against the float64 reference');
    let lhs = 0, rhs = 0, mag = 0;
    for (let i = 0; i < X.length; i++) {
      lhs += fwd.cuda.X[i] * dY[i];
      rhs += X[i] * inv.cuda.X[i];
      mag += Math.abs(fwd.cuda.X[i] * dY[i]) + Math.abs(X[i] * inv.cuda.X[i]);
    }
    assert.ok(Math.abs(lhs - rhs) <= 4 * 2 ** -24 * mag, `⟨Rx, y⟩ ${lhs} vs ⟨x, Rᵀy⟩ ${rhs}`);
    assertClose(inv.cuda.X, centralGradient((x) => proHeadRope(x, rows, width, hd, T, tables.cos, tables.sin), X, dY), 1e-6, 'inverse against central differences');
  });
}

// ---- sequences: row broadcast, row embedding, column copies ----

test('broadcastRows, embedRows and copyColumns on CUDA: the CPU bit for bit and the references, other elements untouched', { skip }, () => {
  const B = 3, T = 9, D = 70, t0 = 2, n = 4, V = 13, idStride = 6, idOffset = 1;
  const H0 = normal(B * T * D, 90), src = normal(n * D, 91), embed = normal(V * D, 92);
  const ids = Int32Array.from({ length: (B - 1) * idStride + idOffset + n }, (_, i) => (i * 5 + 2) % V);
  const bc = onBoth('broadcastRows', () => ({ B, T, D, t0, n, dst: Float32Array.from(H0), src }));
  assert.ok(sameBits(bc.cuda.dst, bc.cpu.dst), 'broadcastRows');
  assertClose(bc.cuda.dst, rowsBroadcast(H0, src, B, T, D, t0, n), 0, 'broadcastRows against the reference');
  const em = onBoth('embedRows', () => ({ B, T, D, t0: 4, n, V, idStride, idOffset, ids, embed, H: Float32Array.from(H0) }));
  assert.ok(sameBits(em.cuda.H, em.cpu.H), 'embedRows');
  assertClose(em.cuda.H, rowsEmbed(H0, ids, idStride, idOffset, embed, B, T, D, 4, n), 0, 'embedRows against the reference');
  const rows = 33, cols = 20, ldDst = 50, ldSrc = 27, dst0 = normal(rows * ldDst, 93), from = normal(rows * ldSrc, 94);
  for (const accumulate of [false, true]) {
    const cc = onBoth('copyColumns', () => ({ rows, cols, ldDst, ldSrc, accumulate, dst: Float32Array.from(dst0), src: from }));
    assert.ok(sameBits(cc.cuda.dst, cc.cpu.dst), `copyColumns accumulate ${accumulate}`);
    assertClose(cc.cuda.dst, columnsCopy(dst0, ldDst, from, ldSrc, rows, cols, accumulate), accumulate ? 1e-7 : 0, `copyColumns accumulate ${accumulate} against the reference`);
  }
});
