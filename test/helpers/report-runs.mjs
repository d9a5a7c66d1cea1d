// Realistic run directories for the report tests: a baseline and a CRaFT run of 200 steps
// with plausible curves (warmup then multistep LR, decaying losses with noise, retention
// creeping over its budget and λ answering), config.json as the run layer writes it, and
// a conflict log written through ConflictLogWriter.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictLogWriter } from '../../dist/index.js';
import { rng } from './random.mjs';

export const TENSOR_NAMES = Array.from({ length: 24 }, (_, i) => `blocks.${i >> 2}.${['lora_A', 'lora_B', 'bias', 'head'][i & 3]}`);

function lrAt(step, lr = 3e-4, warmup = 10, decayAfter = 150) {
  if (step <= warmup) return lr * (0.1 + 0.9 * (step / warmup));
  return step > decayAfter ? lr * 0.1 : lr;
}

/** Rows of one run; mode 'craft' adds the CRaFT keys. */
export function makeRows(mode, steps = 200, seed = 1) {
  const rand = rng(seed);
  const noise = (s) => (rand() - 0.5) * s;
  const rows = [];
  let lambda = 0.05;
  const budget = 0.01;
  for (let step = 1; step <= steps; ++step) {
    const action = 0.06 + 0.5 * Math.exp(-step / (mode === 'craft' ? 45 : 40)) + noise(0.02);
    const stepMs = 28 + noise(6) + (mode === 'craft' ? 9 : 0);
    const row = { step, epoch: Math.floor((step - 1) / 50), action_loss: action };
    if (mode === 'craft') {
      const retention = 0.013 * (1 - Math.exp(-step / 30)) + noise(0.001);
      const lambdaBefore = lambda;
      lambda = Math.max(0, lambda + 0.5 * (retention - budget));
      const ratio = Math.min(1, Math.max(0, 0.35 - step / 1000 + noise(0.2)));
      Object.assign(row, {
        retention_loss: retention, retention_budget: budget, lambda_before: lambdaBefore, lambda_after: lambda,
        conflict_ratio: Math.round(ratio * 24) / 24, num_conflicts: Math.round(ratio * 24), num_tensors: 24,
      });
    }
    Object.assign(row, {
      grad_norm: 2.5 * Math.exp(-step / 60) + 0.3 + noise(0.1), lr: lrAt(step), nonfinite_skipped: 0,
      step_ms: stepMs, samples_per_s: (32 * 1000) / stepMs,
    });
    if (step % 20 === 0) {
      row.val_action_loss = action + 0.02 + noise(0.01);
      // Feature drift on the validation split: the baseline's grows far past the budget, CRaFT's stays near it
      // (wiggles from sin(), not rand(): the other curves keep their values).
      row.val_retention_loss = mode === 'craft' ? 0.011 * (1 - Math.exp(-step / 30)) + 0.0005 * Math.sin(step) : 0.4 * (1 - Math.exp(-step / 60)) + 0.005 * Math.sin(step);
    }
    rows.push(row);
  }
  return rows;
}

/** Writes a run directory; returns its path. */
export function writeRun(parent, dirName, { mode, name = dirName, steps = 200, seed = 1, conflicts = mode === 'craft' } = {}) {
  const dir = join(parent, dirName);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    schema_version: 1, craftgrad_version: '0.1.0',
    config: { name, mode, steps, lr: 3e-4, retention_budget: 0.01, seed },
  }, null, 2));
  const rows = makeRows(mode, steps, seed);
  writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  if (conflicts) {
    // The flagged tensors follow num_conflicts; early blocks conflict more often (structure to see).
    const rand = rng(seed + 100);
    const w = new ConflictLogWriter(dir, TENSOR_NAMES, { replace: true });
    for (const r of rows) {
      const order = TENSOR_NAMES.map((_, t) => ({ t, key: rand() + t / 30 })).sort((a, b) => a.key - b.key);
      const flags = new Uint8Array(TENSOR_NAMES.length);
      for (let i = 0; i < r.num_conflicts; ++i) flags[order[i].t] = 1;
      w.append(r.step, flags);
    }
    w.close();
  }
  return dir;
}
