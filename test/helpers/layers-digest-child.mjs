// Prints a sha256 of every output of each layer of test/layers.test.mjs on fixed data, with
// shapes large enough that each operation splits over threads. Run under different
// CRAFTGRAD_THREADS / CRAFTGRAD_CPU_ISA values by layers.test.mjs.
import { createHash } from 'node:crypto';
import { binding } from '../../dist/native.js';
import { backendInfo } from '../../dist/index.js';
import { rng, randn } from './random.mjs';

const layer = (name, operands) => binding.bench.layer(name, operands);
const normal = (n, seed, scale = 1) => randn(n, rng(seed), scale);
const digests = {};
const record = (name, arrays) => {
  const h = createHash('sha256');
  for (const a of arrays) h.update(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  digests[name] = h.digest('hex');
};

{
  const rows = 67, M = 67, D = 300, eps = 1e-6;
  const X = normal(rows * D, 1, 2), w = normal(D, 2), b = normal(D, 3);
  const Y = new Float32Array(rows * D), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  layer('layerNorm', { rows, D, eps, X, w, b, Y, mean, rstd });
  record('layerNorm', [Y, mean, rstd]);
  const dY = normal(2 * M * D, 4), dX = normal(2 * M * D, 5);
  layer('layerNormBackward', { rows: 2 * M, M, D, dY, X, mean, rstd, w, dX });
  record('layerNormBackward', [dX]);
  const dW = normal(D, 6), dB = normal(D, 7);
  layer('layerNormParamGrad', { M, D, dY: dY.subarray(M * D), X, mean, rstd, scale: 0.5, accumulate: true, dW, dB });
  record('layerNormParamGrad', [dW, dB]);
}
{
  const rows = 50, cols = 100;
  const Z = normal(rows * cols, 8, 4), b = normal(cols, 9), residual = normal(rows * cols, 10), out = new Float32Array(rows * cols);
  layer('biasGeluErf', { rows, cols, Z, b, residual, out });
  record('biasGeluErf', [Z, out]);
  const G = normal(2 * rows * cols, 11), dZ = new Float32Array(2 * rows * cols);
  layer('geluErfBackward', { n: rows * cols, streams: 2, Z, G, dZ });
  record('geluErfBackward', [dZ]);
}
{
  const rows = 64, cols = 70;
  const Y = normal(rows * cols, 12), X = normal(rows * cols, 13), gamma = normal(cols, 14, 1e-2);
  layer('layerScaleAdd', { rows, cols, Y, X, gamma });
  const dX = new Float32Array(rows * cols);
  layer('layerScaleBackward', { rows, cols, dY: X, gamma, dX });
  record('layerScale', [Y, dX]);
}
for (const [name, shape] of [
  ['attention bidirectional gated', { B: 2, T: 24, Tk: 40, heads: 4, kvHeads: 2, hd: 16, scale: 0.25, causal: false, gateBegin: 30, gateEnd: 40 }],
  ['attention causal', { B: 2, T: 24, heads: 4, kvHeads: 2, hd: 16, scale: 0.25, causal: true }],
]) {
  const { B, T, heads, kvHeads, hd } = shape, Tk = shape.Tk ?? T, streams = 2;
  const Q = normal(B * T * heads * hd, 15), K = normal(B * Tk * kvHeads * hd, 16), V = normal(B * Tk * kvHeads * hd, 17);
  const gate = shape.gateEnd ? { gate: Float32Array.of(0.7) } : {};
  const Att = new Float32Array(B * T * heads * hd), rowMax = new Float32Array(B * heads * T), rowSum = new Float32Array(B * heads * T);
  layer('attentionForward', { ...shape, ...gate, Q, K, V, Att, rowMax, rowSum });
  const dAtt = normal(streams * B * T * heads * hd, 18);
  const dQ = new Float32Array(streams * B * T * heads * hd), dK = new Float32Array(streams * B * Tk * kvHeads * hd), dV = new Float32Array(dK.length);
  const dGate = shape.gateEnd ? { dGate: new Float32Array(streams) } : {};
  layer('attentionBackward', { ...shape, ...gate, ...dGate, streams, Q, K, V, rowMax, rowSum, dAtt, dQ, dK, dV });
  record(name, [Att, rowMax, rowSum, dQ, dK, dV, ...Object.values(dGate)]);
}
{
  const B = 2, C = 3, H = 28, W = 28, p = 7, N = 16;
  const images = normal(B * C * H * W, 19), P = new Float32Array(B * N * C * p * p);
  layer('patchify', { B, C, H, W, p, images, P });
  record('patchify', [P]);
}

{
  // Row splits of 16 (biasRelu, ropeProHead), 4096 elements (reluBackward), 64 rows (copyColumns).
  const rows = 67, cols = 90;
  const Z = normal(rows * cols, 20), b = normal(cols, 21), out = new Float32Array(rows * cols);
  Z[5] = NaN;
  layer('biasRelu', { rows, cols, Z, b, out });
  const n = rows * cols, G = normal(2 * n, 22), dZ = new Float32Array(2 * n);
  layer('reluBackward', { n, streams: 2, Z, G, dZ });
  record('relu', [Z, out, dZ]);
}
{
  const rows = 67, width = 48, hd = 12, T = 9, half = hd / 2;
  const cosT = Float32Array.from({ length: T * half }, (_, i) => Math.cos(Math.floor(i / half) / 10000 ** ((2 * (i % half)) / hd)));
  const sinT = Float32Array.from({ length: T * half }, (_, i) => Math.sin(Math.floor(i / half) / 10000 ** ((2 * (i % half)) / hd)));
  const X = normal(rows * width, 23), Y = normal(rows * width, 24);
  layer('ropeProHead', { rows, width, hd, T, X, cosT, sinT, inverse: false });
  layer('ropeProHead', { rows, width, hd, T, X: Y, cosT, sinT, inverse: true });
  record('ropeProHead', [X, Y]);
}
{
  const B = 3, T = 10, D = 33, V = 20;
  const dst = normal(B * T * D, 25), src = normal(4 * D, 26), embed = normal(V * D, 27);
  const ids = Int32Array.from({ length: B * 8 }, (_, i) => (i * 7) % V);
  layer('broadcastRows', { B, T, D, t0: 1, n: 4, dst, src });
  layer('embedRows', { B, T, D, t0: 5, n: 5, V, idStride: 8, idOffset: 2, ids, embed, H: dst });
  const rows = 200, cols = 30, a = normal(rows * 40, 28), c = normal(rows * 35, 29);
  layer('copyColumns', { rows, cols, ldDst: 40, ldSrc: 35, accumulate: true, dst: a, src: c });
  layer('copyColumns', { rows, cols: 5, ldDst: 40, ldSrc: 35, accumulate: false, dst: a, src: c });
  record('sequences', [dst, a]);
}

const info = backendInfo().cpu;
console.log(JSON.stringify({ digests, isa: info.isa, threads: info.threads }));
