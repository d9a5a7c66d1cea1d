import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate, dualUpdate } from '../dist/index.js';
import { metricKeys, METRIC_KEYS } from '../dist/train/index.js';

const close = (a, b) => assert.ok(Math.abs(a - b) <= 1e-15 + 1e-12 * Math.abs(b), `${a} != ${b}`);

test('warmup rises linearly from 0.1·lr to lr, then constant', () => {
  const s = { lr: 1e-3, warmup: 10 };
  close(learningRate(0, s), 1e-4);
  close(learningRate(5, s), 1e-3 * (0.1 + 0.9 * 0.5));
  close(learningRate(10, s), 1e-3);
  close(learningRate(1000, s), 1e-3);
  close(learningRate(0, { lr: 1e-3 }), 1e-3);
});

test('multistep multiplies by 0.1 from each decay step on', () => {
  const s = { lr: 1, kind: 'multistep', warmup: 2, decayAfter: [5, 8] };
  close(learningRate(4, s), 1);
  close(learningRate(5, s), 0.1);
  close(learningRate(7, s), 0.1);
  close(learningRate(8, s), 0.1 * 0.1);
  close(learningRate(1, s), 0.55);
});

test('cosine goes from lr after warmup to minLr at totalSteps and stays there', () => {
  const s = { lr: 1, kind: 'cosine', warmup: 10, minLr: 0.1, totalSteps: 110 };
  close(learningRate(10, s), 1);
  close(learningRate(60, s), 0.1 + 0.9 * 0.5);
  close(learningRate(35, s), 0.1 + 0.9 * (1 + Math.cos(Math.PI * 0.25)) / 2);
  close(learningRate(110, s), 0.1);
  close(learningRate(500, s), 0.1);
});

test('schedule arguments are validated', () => {
  assert.throws(() => learningRate(0, { lr: -1 }), RangeError);
  // The peak lr is > 0, as the options table says (and the Trainer and AdamW check): 0 trains nothing.
  assert.throws(() => learningRate(0, { lr: 0 }), /^RangeError: schedule\.lr must be a finite number > 0, got 0$/);
  // The rate of a step may reach 0: the end of a cosine schedule to minLr 0.
  assert.equal(learningRate(10, { lr: 1, kind: 'cosine', totalSteps: 10 }), 0);
  assert.throws(() => learningRate(0, { lr: 1, kind: 'linear' }), RangeError);
  assert.throws(() => learningRate(0, { lr: 1, kind: 'cosine', totalSteps: 0 }), RangeError);
  assert.throws(() => learningRate(-1, { lr: 1 }), RangeError);
  assert.throws(() => learningRate(0, { lr: 1, warmpu: 3 }), TypeError);
});

test('dual update: projected ascent, clamped at 0, untouched by a non-finite loss', () => {
  close(dualUpdate(0.05, 0.1, 0.3, 0.1), 0.05 + 0.1 * 0.2);
  assert.equal(dualUpdate(0.01, 1, 0, 0.1), 0);
  assert.equal(dualUpdate(0.05, 1, NaN, 0.1), 0.05);
  assert.equal(dualUpdate(0.05, 1, Infinity, 0.1), 0.05);
});

test('metric keys: ARCHITECTURE.md §5, CRaFT keys absent in baseline mode', () => {
  assert.deepEqual([...METRIC_KEYS], ['step', 'epoch', 'action_loss', 'retention_loss', 'retention_budget', 'lambda_before',
    'lambda_after', 'conflict_ratio', 'num_conflicts', 'num_tensors', 'grad_norm', 'lr', 'nonfinite_skipped', 'step_ms',
    'samples_per_s', 'val_action_loss', 'val_retention_loss']);
  assert.ok(!metricKeys('baseline').includes('lambda_after'));
  assert.ok(metricKeys('baseline').includes('grad_norm'));
});
