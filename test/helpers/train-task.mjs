// Shared by the train-*.test.mjs files: a host-side task with closed-form gradients and a
// float64 re-implementation of the CRaFT update rule (ARCHITECTURE.md §1, §5) to check against.
// Not a test file itself (no .test. in the name).
import { HostGradientSource } from '../../dist/index.js';
import { randomArrays } from './random.mjs';

/**
 * The task: per sample s, action target T_s (fixed pseudo-random per sample index) and
 * L_act = mean over tensors... kept closed-form:
 *   L_act(s) = ½ Σ_i ‖θ_i − T_s,i‖² · w_act      g_act = w_act·(θ − T_s)
 *   L_ret    = ½ Σ_i ‖θ_i − θ0_i‖² · w_ret      g_ret = w_ret·(θ − θ0)
 * A micro-batch of `batch` samples averages over them. The sampler position is the next
 * sample index (the source's resumable state).
 */
export function makeTask({ sizes, seed = 1, batch = 1, wAct = 1, wRet = 4, targetScale = 1, poison } = {}) {
  const theta0 = randomArrays(sizes, seed, 1);
  const target = (s) => randomArrays(sizes, 1000 + seed * 7919 + s, targetScale);
  const state = { next: 0, calls: 0, retentionCalls: 0 };
  const source = new HostGradientSource({
    params: theta0.map((a) => a.slice()),
    names: sizes.map((_, i) => `t${i}`),
    compute(params, wantRetention) {
      state.calls++;
      if (wantRetention) state.retentionCalls++;
      const gAct = sizes.map((n) => new Float32Array(n));
      let actionLoss = 0;
      const first = state.next;
      for (let b = 0; b < batch; b++) {
        const T = target(state.next++);
        sizes.forEach((n, i) => {
          for (let j = 0; j < n; j++) {
            const e = params[i][j] - T[i][j];
            gAct[i][j] += (wAct * e) / batch;
            actionLoss += (0.5 * wAct * e * e) / batch;
          }
        });
      }
      const out = { actionLoss, gAct, samples: batch, epoch: Math.floor(first / 100) };
      if (poison) poison(first, out);
      if (!wantRetention) return out;
      let retentionLoss = 0;
      out.gRet = sizes.map((n, i) => {
        const g = new Float32Array(n);
        for (let j = 0; j < n; j++) {
          const e = params[i][j] - theta0[i][j];
          g[j] = wRet * e;
          retentionLoss += 0.5 * wRet * e * e;
        }
        return g;
      });
      out.retentionLoss = retentionLoss;
      if (poison) poison(first, out);
      return out;
    },
    validate(params, { timeLimitMs }) {
      const T = target(-1);
      let loss = 0;
      let retentionLoss = 0;
      sizes.forEach((n, i) => {
        for (let j = 0; j < n; j++) {
          loss += 0.5 * wAct * (params[i][j] - T[i][j]) ** 2;
          retentionLoss += 0.5 * wRet * (params[i][j] - theta0[i][j]) ** 2;
        }
      });
      return { actionLoss: loss, retentionLoss, samples: 1, truncated: timeLimitMs < 0 };
    },
    saveState: () => ({ next: state.next }),
    restoreState: (s) => { state.next = s.next; },
  });
  return { source, theta0, target, state, sizes, wAct, wRet, batch };
}

/** float64 gradients of the task for the samples [first, first + count) at params θ (arrays). */
export function taskGradients(task, theta, first, count) {
  const { sizes, wAct, wRet, theta0, target } = task;
  const gAct = sizes.map((n) => new Float64Array(n));
  let actionLoss = 0;
  for (let s = first; s < first + count; s++) {
    const T = target(s);
    sizes.forEach((n, i) => {
      for (let j = 0; j < n; j++) {
        const e = theta[i][j] - T[i][j];
        gAct[i][j] += (wAct * e) / count;
        actionLoss += (0.5 * wAct * e * e) / count;
      }
    });
  }
  let retentionLoss = 0;
  const gRet = sizes.map((n, i) => Float64Array.from({ length: n }, (_, j) => {
    const e = theta[i][j] - theta0[i][j];
    retentionLoss += 0.5 * wRet * e * e;
    return wRet * e;
  }));
  return { gAct, gRet, actionLoss, retentionLoss };
}

/** torch.optim.AdamW's math in float64 on one flat tensor list (in place on copies). */
export function adamwReference(p, g, m, v, { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, step }) {
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let j = 0; j < p.length; j++) {
    p[j] *= 1 - lr * weightDecay;
    m[j] = beta1 * m[j] + (1 - beta1) * g[j];
    v[j] = beta2 * v[j] + (1 - beta2) * g[j] * g[j];
    const denom = Math.sqrt(v[j]) / Math.sqrt(bc2) + eps;
    p[j] -= (lr / bc1) * (m[j] / denom);
  }
}

/**
 * One CRaFT step in float64 (ARCHITECTURE.md §1): surgery per tensor, global norm, clip, AdamW,
 * dual. theta/m/v: arrays per tensor (copied); returns the new state and the statistics.
 */
export function craftStepReference({ theta, m, v, lambda, optimizerStep }, grads, o) {
  const k = theta.length;
  const conflicts = new Uint8Array(k);
  const out = [];
  let normSq = 0;
  for (let i = 0; i < k; i++) {
    const a = grads.gAct[i], r = grads.gRet[i];
    let d = 0, q = 0;
    for (let j = 0; j < a.length; j++) { d += a[j] * r[j]; q += r[j] * r[j]; }
    const conflict = o.projection !== false && d < 0;
    conflicts[i] = conflict ? 1 : 0;
    const c = lambda - (conflict ? d / (q + 1e-8) : 0);
    out.push(Float64Array.from(a, (x, j) => x + c * r[j]));
    for (const x of out[i]) normSq += x * x;
  }
  const gradNorm = Math.sqrt(normSq);
  const scale = o.clipNorm > 0 ? Math.min(1, o.clipNorm / (gradNorm + 1e-6)) : 1;
  const P = theta.map((t) => Float64Array.from(t)), M = m.map((t) => Float64Array.from(t)), V = v.map((t) => Float64Array.from(t));
  for (let i = 0; i < k; i++) {
    adamwReference(P[i], out[i].map((x) => x * scale), M[i], V[i], { lr: o.lr, weightDecay: o.weightDecay ?? 0.01, step: optimizerStep + 1 });
  }
  const lambdaAfter = o.dual === false ? lambda : Math.max(0, lambda + o.lambdaLr * (grads.retentionLoss - o.retentionBudget));
  return { theta: P, m: M, v: V, lambda: lambdaAfter, conflicts, gradNorm, numConflicts: conflicts.reduce((s, x) => s + x, 0) };
}

export function splitSet(set) {
  return set.sizes.map((_, i) => set.view(i).slice());
}

export function maxRelErr(got, want) {
  let worst = 0;
  for (let j = 0; j < want.length; j++) {
    const e = Math.abs(got[j] - want[j]) / Math.max(1e-3, Math.abs(want[j]));
    if (e > worst) worst = e;
  }
  return worst;
}
