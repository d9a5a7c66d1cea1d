// Independent float64 references of the layers VLA-Adapter's towers, projector and head need
// (native/core/layers.h), written from the upstream definitions and sharing no code with
// native/ or src/: plain loops over plain arrays (any array-like in, Float64Array out).
//   layerNorm      torch.nn.LayerNorm (biased variance, eps inside the square root)
//   geluErf        torch.nn.GELU() default: x·Φ(x) = 0.5·x·(1 + erf(x/√2))
//   layerScaleAdd  timm's LayerScale in the residual: y + x·gamma
//   attention      timm's ViT Attention (bidirectional) or causal, grouped-query, and
//                  VLA-Adapter's Pro head (MLPResNetBlock_Pro.forward): the logits of one
//                  key group times tanh(gate), then all divided by √hd, softmax, times V
//   conv2dPatches  nn.Conv2d(C, D, kernel_size=p, stride=p) then flatten(2).transpose(1, 2)
//   biasRelu       nn.Linear's bias then nn.ReLU (VLA-Adapter's Pro head)
//   proHeadRope    VLA-Adapter's Pro-head RoPE (action_heads.py:125-164: apply_rope with the
//                  interleaved rotate_half, RotaryPositionEmbedding's cat(freqs, freqs) tables)
//   rowsBroadcast, rowsEmbed, columnsCopy  the row and column copies of the sequences
// and central differences of any of them.

/** erf(x) to ~1e-15: the Maclaurin series for |x| < 2.5, else erfc's continued fraction. */
export function erf(x) {
  if (x < 0) return -erf(-x);
  if (x < 2.5) {
    // erf(x) = 2/√π · Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let term = x, sum = x;
    for (let n = 1; n < 200; n++) {
      term *= -x * x / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated from the tail.
  let f = x;
  for (let n = 120; n >= 1; n--) f = x + (n / 2) / f;
  return 1 - Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

export const geluErf = (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Y (rows·D) = LayerNorm of each row of X, with its mean and 1/√(var + eps). */
export function layerNorm(X, w, b, rows, D, eps) {
  const Y = new Float64Array(rows * D), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += X[i * D + j];
    const mu = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (X[i * D + j] - mu) ** 2;
    const r = 1 / Math.sqrt(v / D + eps);
    mean[i] = mu;
    rstd[i] = r;
    for (let j = 0; j < D; j++) Y[i * D + j] = (X[i * D + j] - mu) * r * w[j] + b[j];
  }
  return { Y, mean, rstd };
}

/** Z + b per row, then GELU (erf), plus the residual when given. */
export function biasGeluErf(Z, b, residual, rows, cols) {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      const z = Z[i * cols + j] + b[j];
      out[i * cols + j] = (residual ? residual[i * cols + j] : 0) + geluErf(z);
    }
  return out;
}

/** Y + X·gamma per column. */
export function layerScaleAdd(Y, X, gamma, rows, cols) {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[i * cols + j] = Y[i * cols + j] + X[i * cols + j] * gamma[j];
  return out;
}

/**
 * Attention output (B·T × heads·hd) written as the upstream modules write it, per sample and
 * head: logits = q·kᵀ over the key groups, the gated group's logits times tanh(gate)
 * (VLA-Adapter's Pro head: cat([q·k_selfᵀ, q·k_adapterᵀ, q·k_taskᵀ·ratio_g]) / √hd), the
 * mask when causal, softmax, times V. Q (B·T × heads·hd), K and V (B·Tk × kvHeads·hd);
 * shape: { B, T, Tk, heads, kvHeads, hd, scale, causal, gateBegin, gateEnd, gate (a number) }.
 */
export function attention(shape, Q, K, V) {
  const { B, T, heads, kvHeads, hd, scale, causal } = shape;
  const Tk = shape.Tk ?? T, qD = heads * hd, kvD = kvHeads * hd, group = heads / kvHeads;
  const gated = shape.gate !== undefined && shape.gateEnd > shape.gateBegin;
  const ratio = gated ? Math.tanh(shape.gate) : 1;
  const out = new Float64Array(B * T * qD);
  const logits = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        const end = causal ? i + 1 : Tk;
        for (let j = 0; j < end; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += Q[(b * T + i) * qD + h * hd + d] * K[(b * Tk + j) * kvD + g * hd + d];
          if (gated && j >= shape.gateBegin && j < shape.gateEnd) dot *= ratio;
          logits[j] = dot * scale;
          max = Math.max(max, logits[j]);
        }
        let z = 0;
        for (let j = 0; j < end; j++) z += Math.exp(logits[j] - max);
        for (let d = 0; d < hd; d++) {
          let o = 0;
          for (let j = 0; j < end; j++) o += (Math.exp(logits[j] - max) / z) * V[(b * Tk + j) * kvD + g * hd + d];
          out[(b * T + i) * qD + h * hd + d] = o;
        }
      }
    }
  return out;
}

/**
 * The patch embedding as PyTorch computes it, with no patch matrix: nn.Conv2d(C, D,
 * kernel_size=p, stride=p) on images (B, C, H, W), weight (D, C, p, p), bias (D), output
 * flattened and transposed to (B, N, D), N = (H/p)·(W/p) row-major over the output grid.
 */
export function conv2dPatches(images, weight, bias, B, C, H, W, p, D) {
  const gh = Math.floor(H / p), gw = Math.floor(W / p), N = gh * gw;
  const out = new Float64Array(B * N * D);
  for (let b = 0; b < B; b++)
    for (let oy = 0; oy < gh; oy++)
      for (let ox = 0; ox < gw; ox++)
        for (let o = 0; o < D; o++) {
          let s = bias[o];
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < p; ky++)
              for (let kx = 0; kx < p; kx++)
                s += images[((b * C + c) * H + oy * p + ky) * W + ox * p + kx] * weight[((o * C + c) * p + ky) * p + kx];
          out[(b * N + oy * gw + ox) * D + o] = s;
        }
  return out;
}

/**
 * ∂(Σ weights ⊙ f(x)) / ∂x by central differences (float64): f maps a Float64Array to a
 * Float64Array; x is not changed.
 */
export function centralGradient(f, x, weights, h = 1e-5) {
  const xs = Float64Array.from(x), g = new Float64Array(x.length);
  const dot = (y) => {
    let s = 0;
    for (let i = 0; i < y.length; i++) s += weights[i] * y[i];
    return s;
  };
  for (let i = 0; i < x.length; i++) {
    const v = xs[i];
    xs[i] = v + h;
    const up = dot(f(xs));
    xs[i] = v - h;
    const down = dot(f(xs));
    xs[i] = v;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/**
 * VLA-Adapter's Pro-head attention on projected (and roped) per-head tensors, written as
 * MLPResNetBlock_Pro.forward writes it (prismatic/models/action_heads.py:388-399): q (T rows),
 * keys and values in three groups (self T, adapter Ka, task Kt rows), each (rows × heads·hd)
 * for one sample; the task logits times tanh(g); cat, / √hd, softmax over all keys, @ cat(V).
 */
export function proHeadAttention({ T, Ka, Kt, heads, hd }, q, kSelf, vSelf, kAdapter, vAdapter, kTask, vTask, g) {
  const C = heads * hd, ratio = Math.tanh(g), out = new Float64Array(T * C);
  const scores = (k, rows, h, i) => Array.from({ length: rows }, (_, j) => {
    let s = 0;
    for (let d = 0; d < hd; d++) s += q[i * C + h * hd + d] * k[j * C + h * hd + d];
    return s;
  });
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < T; i++) {
      const logits = [...scores(kSelf, T, h, i), ...scores(kAdapter, Ka, h, i), ...scores(kTask, Kt, h, i).map((s) => s * ratio)]
        .map((s) => s / Math.sqrt(hd));
      const max = Math.max(...logits);
      const e = logits.map((s) => Math.exp(s - max));
      const z = e.reduce((a, b) => a + b, 0);
      const values = [[vSelf, T], [vAdapter, Ka], [vTask, Kt]];
      for (let d = 0; d < hd; d++) {
        let o = 0, j = 0;
        for (const [v, rows] of values)
          for (let r = 0; r < rows; r++, j++) o += (e[j] / z) * v[r * C + h * hd + d];
        out[i * C + h * hd + d] = o;
      }
    }
  return out;
}

/** Z + b per row (no bias when b is null), then relu: max(z, 0) with NaN kept (torch.relu). */
export function biasRelu(Z, b, rows, cols) {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      const z = Z[i * cols + j] + (b ? b[j] : 0);
      out[i * cols + j] = Number.isNaN(z) ? z : z > 0 ? z : 0;
    }
  return out;
}

/**
 * RotaryPositionEmbedding(hd, base).forward(T) in float64: inv_freq = 1/base^(arange(0, hd, 2)/hd),
 * freqs = t ⊗ inv_freq (T × hd/2), emb = cat([freqs, freqs], -1) (T × hd): { cos, sin } of emb,
 * each T × hd.
 */
export function proHeadRopeTables(T, hd, base = 10000) {
  const cos = new Float64Array(T * hd), sin = new Float64Array(T * hd);
  for (let t = 0; t < T; t++) {
    const freqs = Array.from({ length: hd / 2 }, (_, k) => t * (1 / base ** ((2 * k) / hd)));
    const emb = [...freqs, ...freqs];
    for (let j = 0; j < hd; j++) {
      cos[t * hd + j] = Math.cos(emb[j]);
      sin[t * hd + j] = Math.sin(emb[j]);
    }
  }
  return { cos, sin };
}

/**
 * apply_rope on one tensor laid out as the model lays it out: X (rows × width), heads of hd
 * columns, position row mod T; cos, sin (T × hd) as RotaryPositionEmbedding gives them (any
 * values). rotate_half(x) = stack((−x[1::2], x[::2]), −1).reshape_as(x); y = x·cos + rotate_half(x)·sin.
 */
export function proHeadRope(X, rows, width, hd, T, cos, sin) {
  const out = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) {
    const t = i % T;
    for (let h = 0; h < width; h += hd) {
      const x = Array.from({ length: hd }, (_, j) => X[i * width + h + j]);
      const even = x.filter((_, j) => j % 2 === 0), odd = x.filter((_, j) => j % 2 === 1);
      const rot = even.flatMap((e, k) => [-odd[k], e]);  // stack((-x2, x1), dim=-1).reshape
      for (let j = 0; j < hd; j++) out[i * width + h + j] = x[j] * cos[t * hd + j] + rot[j] * sin[t * hd + j];
    }
  }
  return out;
}

/** dst (B·T × D) with rows [t0, t0 + n) of every sample = src (n × D). */
export function rowsBroadcast(dst, src, B, T, D, t0, n) {
  const out = Float64Array.from(dst);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < n * D; i++) out[(b * T + t0) * D + i] = src[i];
  return out;
}

/** H (B·T × D) with row t0 + i of sample b = embed row ids[b·idStride + idOffset + i], i < n. */
export function rowsEmbed(H, ids, idStride, idOffset, embed, B, T, D, t0, n) {
  const out = Float64Array.from(H);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < n; i++) {
      const id = ids[b * idStride + idOffset + i];
      for (let d = 0; d < D; d++) out[(b * T + t0 + i) * D + d] = embed[id * D + d];
    }
  return out;
}

/** dst[i·ldDst + j] = src[i·ldSrc + j] (or dst + src when accumulating) for i < rows, j < cols. */
export function columnsCopy(dst, ldDst, src, ldSrc, rows, cols, accumulate) {
  const out = Float64Array.from(dst);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[i * ldDst + j] = (accumulate ? out[i * ldDst + j] : 0) + src[i * ldSrc + j];
  return out;
}
