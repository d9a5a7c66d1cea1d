// What bench/qwen2.js measures on a Qwen2Policy: the step's fixed batch, a GradientSource
// that feeds it to the Trainer, the matrix products of the step's shapes and the
// matrix-product flops of one CRaFT model call. Shared by the CPU and the GPU variants.

/** The benchmark's shapes (Qwen2.5-0.5B widths, the sequence and head). */
export const QWEN2_BENCH = Object.freeze({ prefix: 48, prompt: 8, queries: 8, actionDims: 7, headWidth: 256, rank: 64, alpha: 128 });

/** Qwen2Policy options for QWEN2_BENCH (plus `extra`, e.g. a device). */
export function policyOptions(extra = {}) {
  const b = QWEN2_BENCH;
  return { prefixTokens: b.prefix, promptTokens: b.prompt, chunk: b.queries, actionDims: b.actionDims, headWidth: b.headWidth, rank: b.rank, alpha: b.alpha, ...extra };
}

/** A fixed, seeded micro-batch of `size` samples for `policy`. */
export function fixedBatch(policy, size) {
  const c = policy.config, D = c.hiddenSize;
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296) * 2 - 1;
  return {
    size,
    prefix: Float32Array.from({ length: size * c.prefixTokens * D }, next),
    inputIds: Int32Array.from({ length: size * c.promptTokens }, () => Math.floor((next() + 1) / 2 * c.vocabSize) % c.vocabSize),
    actions: Float32Array.from({ length: size * c.queries * c.actionDims }, next),
  };
}

/** A GradientSource over one fixed batch (the Trainer's step without a data pipeline). */
export class FixedBatchSource {
  supportsOverwrite = true;
  constructor(policy, batch) {
    this.policy = policy;
    this.batch = batch;
  }
  get params() { return this.policy.params; }
  get paramNames() { return this.policy.trainableNames; }
  get paramShapes() { return this.policy.trainableSpecs.map((t) => t.shape); }
  async accumulate(gAct, gRet, scale, overwrite = false) {
    const opts = { accumulate: !overwrite, scale };
    if (gRet === undefined) return { actionLoss: (await this.policy.baselineStepAsync(this.batch, gAct, opts)).actionLoss, samples: this.batch.size };
    const r = await this.policy.craftStepAsync(this.batch, gAct, gRet, opts);
    return { actionLoss: r.actionLoss, retentionLoss: r.retentionLoss, samples: this.batch.size };
  }
  saveState() { return null; }
  restoreState() {}
}

/** Sets every LoRA B to small nonzero values (mid-training: the retention stream is not trivially zero); any device. */
export function midTrainingB(policy) {
  const arrays = policy.params.toArrays();
  policy.trainableNames.forEach((n, i) => {
    if (n.endsWith('lora_B.weight')) for (let j = 0; j < arrays[i].length; j++) arrays[i][j] = 0.01 * Math.sin(j);
  });
  policy.params.set(arrays);
}

/** [label, M, N, K, transA, transB] of the step's matrix products (M = batch·T rows). */
export function stepProducts(c, batch) {
  const T = c.prefixTokens + c.promptTokens + c.queries, M = batch * T, D = c.hiddenSize, I = c.intermediateSize;
  const hd = D / c.numHeads, kv = c.numKvHeads * hd, r = c.rank;
  return [
    ['q/o_proj forward     x·Wᵀ', M, D, D, false, true],
    ['k/v_proj forward     x·Wᵀ', M, kv, D, false, true],
    ['gate/up forward      x·Wᵀ', M, I, D, false, true],
    ['down forward         x·Wᵀ', M, D, I, false, true],
    ['gate/up input grad   dY·W (2 streams)', 2 * M, D, I, false, false],
    ['down input grad      dY·W (2 streams)', 2 * M, I, D, false, false],
    ['LoRA                 x·Aᵀ', M, r, D, false, true],
    ['LoRA                 u·Bᵀ (MLP width)', M, I, r, false, true],
    ['LoRA grad            dYᵀ·u', I, r, M, true, false],
    ['LoRA grad            vᵀ·x', r, D, M, true, false],
  ];
}

/** Matrix-product flops of one CRaFT call (forward, anchor forward, two-stream backward) and the LoRA/attention share. */
export function craftStepFlops(c, batch) {
  const T = c.prefixTokens + c.promptTokens + c.queries, M = batch * T, D = c.hiddenSize, I = c.intermediateSize;
  const hd = D / c.numHeads, kv = c.numKvHeads * hd, r = c.rank, L = c.numLayers;
  const lin = [[D, D], [D, kv], [D, kv], [D, D], [D, I], [D, I], [I, D]];  // [in, out]
  const base = lin.reduce((s, [i, o]) => s + 2 * M * i * o, 0);
  const lora = lin.reduce((s, [i, o]) => s + 2 * M * r * (i + o), 0);
  const att = 2 * 2 * batch * c.numHeads * T * T * hd;
  const fwd = base + lora + att;
  // Backward, 2 streams: input grads of base and LoRA, each stream's LoRA weight grads,
  // attention (scores recomputed once; dV, dP, dQ, dK per stream).
  const bwd = 2 * (base + lora) + 2 * lora + (att / 2) * (1 + 2 * 4);
  return L * (2 * fwd + bwd) + 6 * batch * c.queries * (D * c.headWidth + c.headWidth * c.actionDims);
}
