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

const info = backendInfo().cpu;
console.log(JSON.stringify({ digests, isa: info.isa, threads: info.threads }));
