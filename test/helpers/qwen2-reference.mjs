// An independent float64 forward of the Qwen2 policy (ARCHITECTURE.md §4b), written from
// transformers' modeling_qwen2.py and PEFT's LoRA, sharing no code with src/ or native/:
// plain loops over plain arrays. It returns both losses; the tests differentiate it by
// central differences to check the native gradients.
//
// model: { cfg (config.json fields), weights: Map HF name -> array }
// policy: { rank, alpha, targets: ['q_proj', ...], P, S, Q, A, headWidth, bridgeLayer,
//           bridgeSpan 'prefix'|'prefix+prompt', pooling 'mean'|'max',
//           anchorType 'concat'|'aq_only'|'raw_only' }
// params, anchor: Map name -> array, names as PEFT / policy.safetensors write them
// batch: { size, prefix (B·P·D), inputIds (B·S), actions (B·Q·A) }

const LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export function loraName(l, lin, f) {
  const group = ['gate_proj', 'up_proj', 'down_proj'].includes(lin) ? 'mlp' : 'self_attn';
  return `base_model.model.model.layers.${l}.${group}.${lin}.lora_${f}.weight`;
}

// y[n][out] = x[n][in] · W(out, in)ᵀ (+ b)
function linear(x, W, out, inn, b) {
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inn; i++) s += W[o * inn + i] * row[i];
      y[o] = s;
    }
    return y;
  });
}

function rmsNorm(x, w, eps) {
  return x.map((row) => {
    let ss = 0;
    for (const v of row) ss += v * v;
    const r = 1 / Math.sqrt(ss / row.length + eps);
    return row.map((v, j) => w[j] * v * r);
  });
}

const silu = (x) => x / (1 + Math.exp(-x));
const geluTanh = (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** hidden_states (L+1 entries, the last after the final norm) of one sample: arrays of T rows. */
function hiddenStates(model, pol, lora, x0) {
  const c = model.cfg, W = model.weights;
  const D = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads ?? H, hd = D / H, I = c.intermediate_size;
  const T = x0.length, eps = c.rms_norm_eps, theta = c.rope_theta, s = pol.alpha / pol.rank;
  const dims = { q_proj: [H * hd, D], k_proj: [KV * hd, D], v_proj: [KV * hd, D], o_proj: [D, H * hd], gate_proj: [I, D], up_proj: [I, D], down_proj: [D, I] };
  const proj = (l, lin, x, bias) => {
    const group = ['gate_proj', 'up_proj', 'down_proj'].includes(lin) ? 'mlp' : 'self_attn';
    const [out, inn] = dims[lin];
    const y = linear(x, W.get(`model.layers.${l}.${group}.${lin}.weight`), out, inn, bias);
    if (!pol.targets.includes(lin)) return y;
    const u = linear(x, lora.get(loraName(l, lin, 'A')), pol.rank, inn);
    const d = linear(u, lora.get(loraName(l, lin, 'B')), out, pol.rank);
    return y.map((row, n) => row.map((v, o) => v + s * d[n][o]));
  };
  const rope = (x, heads) => x.map((row, t) => {
    const out = Float64Array.from(row), half = hd / 2;
    for (let h = 0; h < heads; h++)
      for (let j = 0; j < half; j++) {
        const ang = t / theta ** ((2 * j) / hd), a = row[h * hd + j], b = row[h * hd + j + half];
        out[h * hd + j] = a * Math.cos(ang) - b * Math.sin(ang);
        out[h * hd + j + half] = b * Math.cos(ang) + a * Math.sin(ang);
      }
    return out;
  });
  const states = [x0];
  let x = x0;
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const y = rmsNorm(x, W.get(`${p}.input_layernorm.weight`), eps);
    const q = rope(proj(l, 'q_proj', y, W.get(`${p}.self_attn.q_proj.bias`)), H);
    const k = rope(proj(l, 'k_proj', y, W.get(`${p}.self_attn.k_proj.bias`)), KV);
    const v = proj(l, 'v_proj', y, W.get(`${p}.self_attn.v_proj.bias`));
    const att = Array.from({ length: T }, () => new Float64Array(H * hd));
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / KV));
      for (let i = 0; i < T; i++) {
        const sc = [];
        for (let j = 0; j <= i; j++) {
          let d = 0;
          for (let e = 0; e < hd; e++) d += q[i][h * hd + e] * k[j][g * hd + e];
          sc.push(d / Math.sqrt(hd));
        }
        const mx = Math.max(...sc), ex = sc.map((z) => Math.exp(z - mx)), z = ex.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++)
          for (let e = 0; e < hd; e++) att[i][h * hd + e] += (ex[j] / z) * v[j][g * hd + e];
      }
    }
    const o = proj(l, 'o_proj', att);
    const x1 = x.map((row, n) => row.map((val, j) => val + o[n][j]));
    const y2 = rmsNorm(x1, W.get(`${p}.post_attention_layernorm.weight`), eps);
    const gt = proj(l, 'gate_proj', y2), up = proj(l, 'up_proj', y2);
    const a = gt.map((row, n) => row.map((val, j) => silu(val) * up[n][j]));
    const dn = proj(l, 'down_proj', a);
    x = x1.map((row, n) => row.map((val, j) => val + dn[n][j]));
    states.push(x);
  }
  states[states.length - 1] = rmsNorm(x, W.get('model.norm.weight'), eps);
  return states;
}

function poolRows(rows, how) {
  const D = rows[0].length, out = new Float64Array(D);
  for (let d = 0; d < D; d++) {
    if (how === 'mean') out[d] = rows.reduce((s, r) => s + r[d], 0) / rows.length;
    else out[d] = Math.max(...rows.map((r) => r[d]));
  }
  return out;
}

function sampleForward(model, pol, w, batch, b) {
  const c = model.cfg, D = c.hidden_size, { P, S, Q } = pol;
  const x0 = [];
  for (let t = 0; t < P; t++) x0.push(Float64Array.from(batch.prefix.subarray((b * P + t) * D, (b * P + t + 1) * D)));
  const emb = model.weights.get('model.embed_tokens.weight');
  for (let t = 0; t < S; t++) {
    const id = batch.inputIds[b * S + t];
    x0.push(Float64Array.from(emb.subarray(id * D, (id + 1) * D)));
  }
  const aq = w.get('action_queries');
  for (let q = 0; q < Q; q++) x0.push(Float64Array.from(aq.subarray(q * D, (q + 1) * D)));
  const hs = hiddenStates(model, pol, w, x0);
  const m = pol.bridgeLayer ?? Math.floor((c.num_hidden_layers + 1) / 2);
  const span = pol.bridgeSpan === 'prefix+prompt' ? P + S : P;
  const last = hs[hs.length - 1];
  const qRows = last.slice(P + S);
  const raw = poolRows(hs[m].slice(0, span), pol.pooling), aqp = poolRows(qRows, pol.pooling);
  const f = pol.anchorType === 'concat' ? [...raw, ...aqp] : pol.anchorType === 'aq_only' ? [...aqp] : [...raw];
  return { f, qRows };
}

function head(pol, w, h) {
  const Hh = pol.headWidth, A = pol.A, D = h.length;
  const W1 = w.get('head.fc1.weight'), b1 = w.get('head.fc1.bias'), W2 = w.get('head.fc2.weight'), b2 = w.get('head.fc2.bias');
  const g = new Float64Array(Hh);
  for (let j = 0; j < Hh; j++) {
    let s = b1[j];
    for (let d = 0; d < D; d++) s += W1[j * D + d] * h[d];
    g[j] = geluTanh(s);
  }
  const o = new Float64Array(A);
  for (let a = 0; a < A; a++) {
    let s = b2[a];
    for (let j = 0; j < Hh; j++) s += W2[a * Hh + j] * g[j];
    o[a] = s;
  }
  return o;
}

/** { actionLoss, retentionLoss } in float64. `anchor` may be null (retention loss NaN). */
export function qwen2ReferenceLosses(model, pol, params, anchor, batch) {
  const { Q, A } = pol;
  let act = 0, ret = 0, nRet = 0;
  for (let b = 0; b < batch.size; b++) {
    const cur = sampleForward(model, pol, params, batch, b);
    cur.qRows.forEach((h, q) => {
      const o = head(pol, params, h);
      for (let a = 0; a < A; a++) act += Math.abs(o[a] - batch.actions[(b * Q + q) * A + a]);
    });
    if (anchor) {
      const anc = sampleForward(model, pol, anchor, batch, b);
      cur.f.forEach((v, i) => { ret += (v - anc.f[i]) ** 2; nRet++; });
    }
  }
  return { actionLoss: act / (batch.size * Q * A), retentionLoss: anchor ? ret / nRet : NaN };
}

export { LINEARS };
