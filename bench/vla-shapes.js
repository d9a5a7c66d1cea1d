// What bench/vla.js measures on a VlaPolicy: VLA-Adapter's real widths on random in-memory
// weights (VlaModelParts, no directory), the step's fixed batch, the matrix products of the
// step's shapes and the matrix-product flops of one CRaFT model call.
import { binding } from '../dist/native.js';
import { VlaPolicy } from '../dist/model/vla/vla-policy.js';

/**
 * The benchmark's shapes. Reduced (issue #27): real widths, 4 computed blocks per tower
 * (depth 5), 4 decoder layers, 2 views at 112 px (8×8 patches each, P = 128), Q = 64
 * queries after BOS + 16 prompt ids (S = 81), the Pro head with 4 blocks. Full: the released
 * depths (DINOv2 24, SigLIP 27, 24 decoder layers, 24 head blocks), vocab 151936, 224 px.
 * LoRA r = 32, alpha = 64 (VLA-Adapter's LIBERO runs) on every linear.
 */
export const VLA_BENCH = Object.freeze({
  reduced: { dinoDepth: 5, siglipDepth: 5, image: 112, layers: 4, vocab: 1024, headBlocks: 4 },
  full: { dinoDepth: 24, siglipDepth: 27, image: 224, layers: 24, vocab: 151936, headBlocks: 24 },
  views: 2, prompt: 16, queries: 64, chunk: 8, actionDims: 7, proprioDim: 8, rank: 32, alpha: 64,
});

/** The two towers' timm shapes (DINOv2 ViT-L/14 reg4 with LayerScale; SigLIP so400m/14), or a size's own (`size.towers`: a rehearsal's tiny widths). */
export function vlaTowers(size) {
  if (size.towers) return size.towers;
  return [
    { embedDim: 1024, depth: size.dinoDepth, numHeads: 16, mlpHidden: 4096, patchSize: 14, imageSize: size.image, classToken: 1, regTokens: 4, layerScale: true, layerNormEps: 1e-6 },
    { embedDim: 1152, depth: size.siglipDepth, numHeads: 16, mlpHidden: 4304, patchSize: 14, imageSize: size.image, classToken: 0, regTokens: 0, layerScale: false, layerNormEps: 1e-6 },
  ];
}

/** Qwen2.5-0.5B's decoder widths (text_config) cut to `size.layers` layers, or a size's own (`size.llm`). */
export function vlaLlm(size) {
  if (size.llm) return size.llm;
  return { hiddenSize: 896, numLayers: size.layers, numHeads: 14, numKvHeads: 2, intermediateSize: 4864, vocabSize: size.vocab, rmsNormEps: 1e-6, ropeTheta: 1e6 };
}

export const inputIds = () => 1 + VLA_BENCH.prompt + VLA_BENCH.queries;

/** VlaPolicy options of the bench at `size`. */
export function vlaOptions(size) {
  const b = VLA_BENCH;
  return { rank: b.rank, alpha: b.alpha, views: b.views, inputIds: inputIds(), queries: b.queries, headBlocks: size.headBlocks, chunk: b.chunk, actionDims: b.actionDims, proprioDim: b.proprioDim };
}

/**
 * VlaModelParts on random frozen weights: every group sized by binding.vlaTensors, filled by
 * tiling one seeded block of values uniform in ±0.02 (fast at the full size's 1.2 G floats;
 * the values only need to be finite and O(1e-2) for timing).
 */
export function vlaBenchParts(size) {
  const b = VLA_BENCH, towers = vlaTowers(size), llm = vlaLlm(size);
  const probe = binding.vlaTensors({
    towers, views: b.views, projectorHidden: size.projectorHidden ?? 8704, ...llm, inputIds: inputIds(), queries: b.queries, rank: b.rank, alpha: b.alpha,
    headBlocks: size.headBlocks, chunk: b.chunk, actionDims: b.actionDims, proprioDim: b.proprioDim, bridgeLayer: Math.floor((size.layers + 1) / 2),
    bridgeSpan: 'vision', pooling: 'mean', anchorType: 'concat',
  });
  const tile = new Float32Array(1_000_003);
  let s = 12345;
  for (let i = 0; i < tile.length; i++) tile[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5) * 0.04;
  const frozen = probe.frozen.map((g) => {
    const n = g.shape.reduce((x, y) => x * y, 1), v = new Float32Array(n);
    for (let o = 0; o < n; o += tile.length) v.set(tile.subarray(0, Math.min(tile.length, n - o)), o);
    return v;
  });
  return { dir: '(random)', towers, projectorHidden: size.projectorHidden ?? 8704, llm, frozen, initial: {} };
}

/** A VlaPolicy at `size` on vlaBenchParts. */
export function vlaBenchPolicy(size) {
  return VlaPolicy.create(vlaBenchParts(size), vlaOptions(size));
}

/** A fixed, seeded micro-batch of `n` samples (pixels, ids, proprio, actions, the head noise of one draw). */
export function vlaFixedBatch(policy, n) {
  const c = policy.config, H = c.towers[0].imageSize;
  let s = 777;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  return {
    size: n,
    pixels: Float32Array.from({ length: n * c.views * 6 * H * H }, next),
    inputIds: Int32Array.from({ length: n * c.inputIds }, () => Math.floor((next() + 1) / 2 * c.vocabSize) % c.vocabSize),
    proprio: Float32Array.from({ length: n * c.proprioDim }, next),
    actions: Float32Array.from({ length: n * c.chunk * c.actionDims }, next),
    noise: policy.headNoise('train:0:0'),
  };
}

/** The sizes the products and flops need, from a policy's config and the batch. */
function dims(c, batch) {
  const [d, g] = c.towers;
  const images = batch * c.views, N = (d.imageSize / d.patchSize) ** 2, P = c.views * N;
  return {
    images, N, P, B: batch, r: c.rank, D: c.hiddenSize, I: c.intermediateSize, kv: c.numKvHeads * (c.hiddenSize / c.numHeads),
    T: c.inputIds + P, towers: [d, g].map((t) => ({ D: t.embedDim, mlp: t.mlpHidden, heads: t.numHeads, T: t.classToken + t.regTokens + N, run: t.depth - 1 })),
    vision: d.embedDim + g.embedDim, ph: c.projectorHidden, R: batch * c.chunk, Ka: c.queries + (c.proprioDim > 0 ? 1 : 0),
    AD: c.actionDims * c.hiddenSize, NB: c.headBlocks, L: c.numLayers, C: c.chunk,
  };
}

/** [label, M, N, K, transA, transB] of the step's matrix products (forward x·Wᵀ, input grads dY·W over 2 streams, LoRA, head). */
export function vlaStepProducts(c, batch) {
  const x = dims(c, batch), r = x.r, D = x.D;
  const rows = [];
  ['DINOv2', 'SigLIP'].forEach((name, k) => {
    const t = x.towers[k], M = x.images * t.T;
    rows.push([`${name} qkv fwd x·Wᵀ`, M, 3 * t.D, t.D, false, true]);
    rows.push([`${name} proj fwd x·Wᵀ`, M, t.D, t.D, false, true]);
    rows.push([`${name} fc1 fwd x·Wᵀ`, M, t.mlp, t.D, false, true]);
    rows.push([`${name} fc2 fwd x·Wᵀ`, M, t.D, t.mlp, false, true]);
    rows.push([`${name} qkv input grad dY·W (2 streams)`, 2 * M, t.D, 3 * t.D, false, false]);
    rows.push([`${name} fc1 input grad dY·W (2 streams)`, 2 * M, t.D, t.mlp, false, false]);
    rows.push([`${name} fc2 input grad dY·W (2 streams)`, 2 * M, t.mlp, t.D, false, false]);
    rows.push([`${name} patch embed x·Wᵀ`, x.images * x.N, t.D, 3 * 14 * 14, false, true]);
    rows.push([`${name} LoRA x·Aᵀ (fc2)`, M, r, t.mlp, false, true]);
    rows.push([`${name} LoRA u·Bᵀ (fc1)`, M, t.mlp, r, false, true]);
    rows.push([`${name} LoRA grad dYᵀ·u (fc1)`, t.mlp, r, M, true, false]);
    rows.push([`${name} LoRA grad vᵀ·x (fc2)`, r, t.mlp, M, true, false]);
  });
  const BP = batch * x.P;
  rows.push(['projector fc1 fwd x·Wᵀ', BP, x.ph, x.vision, false, true]);
  rows.push(['projector fc2 fwd x·Wᵀ', BP, D, x.ph, false, true]);
  rows.push(['projector fc3 fwd x·Wᵀ', BP, D, D, false, true]);
  rows.push(['projector fc1 input grad dY·W (2 streams)', 2 * BP, x.vision, x.ph, false, false]);
  rows.push(['projector fc2 input grad dY·W (2 streams)', 2 * BP, x.ph, D, false, false]);
  const M = batch * x.T;
  rows.push(['decoder q/o fwd x·Wᵀ', M, D, D, false, true]);
  rows.push(['decoder k/v fwd x·Wᵀ', M, x.kv, D, false, true]);
  rows.push(['decoder gate/up fwd x·Wᵀ', M, x.I, D, false, true]);
  rows.push(['decoder down fwd x·Wᵀ', M, D, x.I, false, true]);
  rows.push(['decoder gate/up input grad dY·W (2 streams)', 2 * M, D, x.I, false, false]);
  rows.push(['decoder down input grad dY·W (2 streams)', 2 * M, x.I, D, false, false]);
  rows.push(['decoder LoRA x·Aᵀ (q)', M, r, D, false, true]);
  rows.push(['decoder LoRA u·Bᵀ (gate)', M, x.I, r, false, true]);
  rows.push(['decoder LoRA grad dYᵀ·u (gate)', x.I, r, M, true, false]);
  rows.push(['decoder LoRA grad vᵀ·x (q)', r, D, M, true, false]);
  rows.push(['head fc1 fwd x·Wᵀ', x.R, D, x.AD, false, true]);
  rows.push(['head q/k/v self, o, ffn fwd x·Wᵀ', x.R, D, D, false, true]);
  rows.push(['head k/v adapter fwd x·Wᵀ', batch * x.Ka, D, D, false, true]);
  rows.push(['head k/v task fwd x·Wᵀ', BP, D, D, false, true]);
  rows.push(['head self weight grad dYᵀ·x', D, D, x.R, true, false]);
  rows.push(['head task weight grad dYᵀ·x', D, D, BP, true, false]);
  rows.push(['head task input grad dY·W', BP, D, D, false, false]);
  rows.push(['head fc1 weight grad dYᵀ·x', D, x.AD, x.R, true, false]);
  return rows;
}

/**
 * Matrix-product flops of one CRaFT call: the forward, the anchor forward (towers, projector,
 * decoder), the two-stream backward of towers, projector and decoder, the head's one-stream
 * backward. Attention counted at full T² per head (no causal halving), as bench/qwen2-shapes.js.
 * Returns { total, parts: { towers, projector, decoder, head } }.
 */
export function vlaCraftStepFlops(c, batch) {
  const x = dims(c, batch), r = x.r, st = 2;
  const lora = (M, i, o) => ({ fwd: 2 * M * i * o + 2 * M * r * (i + o), bwd: st * (2 * M * i * o + 4 * M * r * (i + o)) });
  const att = (fwd) => ({ fwd, bwd: (fwd / 2) * (1 + st * 4) });
  const sum = (items) => items.reduce((a, b) => ({ fwd: a.fwd + b.fwd, bwd: a.bwd + b.bwd }), { fwd: 0, bwd: 0 });
  const craft = (p) => 2 * p.fwd + p.bwd;  // forward, anchor forward, backward
  let towers = 0;
  for (const t of x.towers) {
    const M = x.images * t.T, nTok = x.images * x.N, pin = 3 * 14 * 14;
    const block = sum([lora(M, t.D, 3 * t.D), lora(M, t.D, t.D), lora(M, t.D, t.mlp), lora(M, t.mlp, t.D), att(4 * x.images * t.T * t.T * t.D)]);
    const patch = { fwd: 2 * nTok * pin * t.D + 2 * nTok * r * (pin + t.D), bwd: st * (2 * nTok * r * t.D + 2 * nTok * r * (pin + t.D)) };
    towers += t.run * craft(block) + craft(patch);
  }
  const BP = batch * x.P, D = x.D, M = batch * x.T;
  const projector = craft(sum([lora(BP, x.vision, x.ph), lora(BP, x.ph, D), lora(BP, D, D)]));
  const layer = sum([lora(M, D, D), lora(M, D, x.kv), lora(M, D, x.kv), lora(M, D, D), lora(M, D, x.I), lora(M, D, x.I), lora(M, x.I, D),
    att(4 * batch * x.T * x.T * D)]);
  const decoder = x.L * craft(layer);
  // Head: plain linears (forward, weight grad, input grad: 3×), attention over C + Ka + P keys.
  const lin = (rows, i, o) => 3 * 2 * rows * i * o;
  const tk = x.C + x.Ka + x.P, headAtt = 4 * batch * x.C * tk * D;
  const block = lin(x.R, D, D) * 5 + lin(batch * x.Ka, D, D) * 2 + lin(BP, D, D) * 2 + headAtt / 2 * (2 + 1 + 4);
  const head = x.NB * block + lin(x.R, x.AD, D) + lin(x.R, D, c.actionDims);
  return { total: towers + projector + decoder + head, parts: { towers, projector, decoder, head } };
}
