// A float64 re-implementation of the AdapterPolicy forward and backward (ARCHITECTURE.md §4,
// tensor order of src/model/layout.ts), written plainly for checking the native kernels.
// Not a test file by itself; the model tests import it.

const C = Math.sqrt(2 / Math.PI), KA_ = 0.044715;
const gelu = (x) => 0.5 * x * (1 + Math.tanh(C * (x + KA_ * x ** 3)));
const geluGrad = (x) => {
  const t = Math.tanh(C * (x + KA_ * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * KA_ * x * x);
};

/** Offsets of each tensor in the flat trainable / frozen arrays. */
export function layout(c) {
  const F = c.anchorType === 'concat' ? 2 * c.width : c.width;
  const KA = c.chunk * c.actionDims;
  const A = [], B = [], W = [], b = [];
  let o = 0, f = 0;
  for (let l = 0; l < c.blocks; l++) {
    A.push(o); o += c.rank * c.width; B.push(o); o += c.width * c.rank;
    W.push(f); f += c.width * c.width; b.push(f); f += c.width;
  }
  const anchorCount = o;
  const fc1w = o; o += c.headWidth * F;
  const fc1b = o; o += c.headWidth;
  const fc2w = o; o += KA * c.headWidth;
  const fc2b = o; o += KA;
  return { F, KA, A, B, W, b, fc1w, fc1b, fc2w, fc2b, paramCount: o, frozenCount: f, anchorCount };
}

function features(c, lay, lora, frozen, tokens, n, keep) {
  const { width: D, tokens: T, rank: r } = c;
  const M = n * T, s = c.alpha / r;
  const nb = c.anchorType === 'raw_only' ? c.bridgeBlock : c.blocks;
  const Hs = [Float64Array.from(tokens)], Zs = [], Weffs = [];
  const f = new Float64Array(n * lay.F);
  const arg = { raw: new Int32Array(n * D), aq: new Int32Array(n * D) };
  const pool = (H, off, argmax) => {
    for (let b = 0; b < n; b++) for (let d = 0; d < D; d++) {
      if (c.pooling === 'mean') {
        let acc = 0;
        for (let t = 0; t < T; t++) acc += H[(b * T + t) * D + d];
        f[b * lay.F + off + d] = acc / T;
      } else {
        let best = H[b * T * D + d], a = 0;
        for (let t = 1; t < T; t++) if (H[(b * T + t) * D + d] > best) { best = H[(b * T + t) * D + d]; a = t; }
        f[b * lay.F + off + d] = best; argmax[b * D + d] = a;
      }
    }
  };
  for (let l = 0; l < nb; l++) {
    const W = new Float64Array(D * D);
    for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += lora[lay.B[l] + i * r + k] * lora[lay.A[l] + k * D + j];
      W[i * D + j] = frozen[lay.W[l] + i * D + j] + s * acc;
    }
    const H = Hs[l], Z = new Float64Array(M * D), Hn = new Float64Array(M * D);
    for (let m = 0; m < M; m++) for (let i = 0; i < D; i++) {
      let acc = frozen[lay.b[l] + i];
      for (let j = 0; j < D; j++) acc += W[i * D + j] * H[m * D + j];
      Z[m * D + i] = acc;
      Hn[m * D + i] = H[m * D + i] + gelu(acc);
    }
    Hs.push(Hn); Zs.push(Z); Weffs.push(W);
    if (l + 1 === c.bridgeBlock && c.anchorType !== 'aq_only') pool(Hn, 0, arg.raw);
    if (l + 1 === c.blocks && c.anchorType !== 'raw_only') pool(Hn, c.anchorType === 'concat' ? D : 0, arg.aq);
  }
  return { f, Hs, Zs, Weffs, arg, nb };
}

/**
 * Losses and gradients in float64. params/frozen/anchor: flat arrays in the model's order.
 * Returns { actionLoss, retentionLoss, gAct, gRet } (gradients as Float64Array).
 */
export function referenceStep(c, params, frozen, anchor, tokens, actions, n) {
  const lay = layout(c);
  const { width: D, tokens: T, rank: r, headWidth: H } = c;
  const { F, KA } = lay, M = n * T, s = c.alpha / r;
  const cur = features(c, lay, params, frozen, tokens, n);
  const anc = features(c, lay, anchor, frozen, tokens, n);
  const f = cur.f;
  const Y1 = new Float64Array(n * H), G1 = new Float64Array(n * H), O = new Float64Array(n * KA);
  for (let b = 0; b < n; b++) for (let h = 0; h < H; h++) {
    let acc = params[lay.fc1b + h];
    for (let k = 0; k < F; k++) acc += params[lay.fc1w + h * F + k] * f[b * F + k];
    Y1[b * H + h] = acc; G1[b * H + h] = gelu(acc);
  }
  let act = 0;
  const dO = new Float64Array(n * KA);
  for (let b = 0; b < n; b++) for (let j = 0; j < KA; j++) {
    let acc = params[lay.fc2b + j];
    for (let h = 0; h < H; h++) acc += params[lay.fc2w + j * H + h] * G1[b * H + h];
    O[b * KA + j] = acc;
    const e = acc - actions[b * KA + j];
    act += Math.abs(e);
    dO[b * KA + j] = Math.sign(e) / (n * KA);
  }
  let ret = 0;
  const dFr = new Float64Array(n * F);
  for (let i = 0; i < n * F; i++) {
    const d = f[i] - anc.f[i];
    ret += d * d;
    dFr[i] = (2 * d) / (n * F);
  }
  const gAct = new Float64Array(lay.paramCount), gRet = new Float64Array(lay.paramCount);
  // head (action stream only)
  const dY1 = new Float64Array(n * H), dFa = new Float64Array(n * F);
  for (let b = 0; b < n; b++) for (let j = 0; j < KA; j++) {
    gAct[lay.fc2b + j] += dO[b * KA + j];
    for (let h = 0; h < H; h++) {
      gAct[lay.fc2w + j * H + h] += dO[b * KA + j] * G1[b * H + h];
      dY1[b * H + h] += dO[b * KA + j] * params[lay.fc2w + j * H + h];
    }
  }
  for (let i = 0; i < n * H; i++) dY1[i] *= geluGrad(Y1[i]);
  for (let b = 0; b < n; b++) for (let h = 0; h < H; h++) {
    gAct[lay.fc1b + h] += dY1[b * H + h];
    for (let k = 0; k < F; k++) {
      gAct[lay.fc1w + h * F + k] += dY1[b * H + h] * f[b * F + k];
      dFa[b * F + k] += dY1[b * H + h] * params[lay.fc1w + h * F + k];
    }
  }
  for (const [dF, g] of [[dFa, gAct], [dFr, gRet]]) {
    const G = new Float64Array(M * D);
    const inject = (off, argmax) => {
      for (let b = 0; b < n; b++) for (let d = 0; d < D; d++) {
        const v = dF[b * F + off + d];
        if (c.pooling === 'mean') for (let t = 0; t < T; t++) G[(b * T + t) * D + d] += v / T;
        else G[(b * T + argmax[b * D + d]) * D + d] += v;
      }
    };
    for (let l = cur.nb - 1; l >= 0; l--) {
      if (l + 1 === c.blocks && c.anchorType !== 'raw_only') inject(c.anchorType === 'concat' ? D : 0, cur.arg.aq);
      if (l + 1 === c.bridgeBlock && c.anchorType !== 'aq_only') inject(0, cur.arg.raw);
      const Z = cur.Zs[l], Hl = cur.Hs[l], W = cur.Weffs[l];
      const dZ = new Float64Array(M * D);
      for (let i = 0; i < M * D; i++) dZ[i] = G[i] * geluGrad(Z[i]);
      // dW_eff = dZᵀ·H; dB = s·dW_eff·Aᵀ, dA = s·Bᵀ·dW_eff
      const dW = new Float64Array(D * D);
      for (let m = 0; m < M; m++) for (let i = 0; i < D; i++) {
        const z = dZ[m * D + i];
        if (z !== 0) for (let j = 0; j < D; j++) dW[i * D + j] += z * Hl[m * D + j];
      }
      for (let i = 0; i < D; i++) for (let k = 0; k < r; k++) {
        let acc = 0;
        for (let j = 0; j < D; j++) acc += dW[i * D + j] * params[lay.A[l] + k * D + j];
        g[lay.B[l] + i * r + k] = s * acc;
      }
      for (let k = 0; k < r; k++) for (let j = 0; j < D; j++) {
        let acc = 0;
        for (let i = 0; i < D; i++) acc += params[lay.B[l] + i * r + k] * dW[i * D + j];
        g[lay.A[l] + k * D + j] = s * acc;
      }
      const Gn = Float64Array.from(G);
      for (let m = 0; m < M; m++) for (let j = 0; j < D; j++) {
        let acc = 0;
        for (let i = 0; i < D; i++) acc += dZ[m * D + i] * W[i * D + j];
        Gn[m * D + j] += acc;
      }
      G.set(Gn);
    }
  }
  return { actionLoss: act / (n * KA), retentionLoss: ret / (n * F), gAct, gRet };
}

/** Losses only (for finite differences). */
export function referenceLosses(c, params, frozen, anchor, tokens, actions, n) {
  const r = referenceStep(c, params, frozen, anchor, tokens, actions, n);
  return { actionLoss: r.actionLoss, retentionLoss: r.retentionLoss };
}
