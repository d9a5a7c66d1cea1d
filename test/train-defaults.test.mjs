// One set of defaults (src/train/defaults.ts): the Trainer's absent options and the
// CLI's default run configuration come from the same table, so `new Trainer(source,
// { steps })` and `craftgrad train` train with the same hyper-parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Trainer, TRAINER_DEFAULTS } from '../dist/index.js';
import { TRAIN_DEFAULTS } from '../dist/train/run-config.js';
import { trainerOptions } from '../dist/train/session.js';
import { makeTask } from './helpers/train-task.mjs';

const SIZES = [3, 40];

test("the CLI's default run configuration gives the Trainer exactly the Trainer's own defaults (but valEvery)", () => {
  const fromCli = new Trainer(makeTask({ sizes: SIZES }).source, trainerOptions(TRAIN_DEFAULTS, [], () => {})).options;
  const fromTrainer = new Trainer(makeTask({ sizes: SIZES }).source, { steps: TRAIN_DEFAULTS.steps }).options;
  // The one stated difference (defaults.ts): the CLI always has a validation split.
  assert.equal(fromTrainer.valEvery, 0);
  assert.equal(fromCli.valEvery, 100);
  assert.deepEqual({ ...fromCli, valEvery: 0 }, fromTrainer);
});

test('both take their values from TRAINER_DEFAULTS', () => {
  const o = new Trainer(makeTask({ sizes: SIZES }).source, { steps: 100 }).options;
  for (const [key, value] of Object.entries(TRAINER_DEFAULTS)) {
    assert.deepEqual(o[key], Array.isArray(value) ? [...value] : value, `Trainer option ${key}`);
  }
  const cli = {
    grad_accum: 'microBatches', lr: 'lr', warmup: 'warmup', schedule: 'schedule', decay_after: 'decayAfter', min_lr: 'minLr',
    clip: 'clipNorm', weight_decay: 'weightDecay', projection: 'projection', dual: 'dual', lambda: 'lambda',
    budget: 'retentionBudget', dual_lr: 'lambdaLr', eps: 'surgeryEps',
  };
  for (const [cliKey, key] of Object.entries(cli)) {
    assert.deepEqual(TRAIN_DEFAULTS[cliKey], Array.isArray(TRAINER_DEFAULTS[key]) ? [...TRAINER_DEFAULTS[key]] : TRAINER_DEFAULTS[key], `--${cliKey}`);
  }
  assert.equal(TRAIN_DEFAULTS.val_time_limit * 1000, TRAINER_DEFAULTS.valTimeLimitMs);
  assert.equal(TRAIN_DEFAULTS.craft, TRAINER_DEFAULTS.mode === 'craft');
});

test("the README's default run keeps its figures: budget 2e-4, dual step 100, lr 1e-3, warmup 50", () => {
  assert.deepEqual([TRAIN_DEFAULTS.budget, TRAIN_DEFAULTS.dual_lr, TRAIN_DEFAULTS.lr, TRAIN_DEFAULTS.warmup], [2e-4, 100, 1e-3, 50]);
});

