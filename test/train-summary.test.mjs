// The summary `craftgrad train` prints at the end says how far from the retention budget
// the run ended: CRaFT's training and validation retention, a baseline's validation drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainSummary, budgetRatio } from '../dist/cli/train-summary.js';
import { tempDir } from './helpers/temp-dir.mjs';

function run(t, rows, craft) {
  const dir = join(tempDir(t, 'craftgrad-summary-'), craft ? 'craft' : 'baseline');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ schema_version: 1, config: { craft, budget: 2e-4 } }));
  writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  return trainSummary({
    dir, config: { craft, budget: 2e-4, dual: true, steps: 20 },
    outcome: { step: 20, startStep: 0, elapsedMs: 1000, trainSamples: 10, valSamples: 5, lastCheckpoint: undefined },
    reportPath: undefined, show: (p) => p,
  });
}

test('budgetRatio: a multiple of the budget, two decimals below 10×', () => {
  assert.equal(budgetRatio(1.3e-4, 2e-4), '0.65× the budget');
  assert.equal(budgetRatio(1.8e-2, 2e-4), '90.0× the budget');
  assert.equal(budgetRatio(2e-4, 2e-4), '1.00× the budget');
  assert.equal(budgetRatio(1.791e-7, 2e-4), '0.00090× the budget');  // not '0.00×'
  assert.equal(budgetRatio(0, 2e-4), '0.00× the budget');
});

test('CRaFT: training and validation retention against the budget', (t) => {
  const text = run(t, [
    { step: 10, action_loss: 0.2, retention_loss: 3e-4, retention_budget: 2e-4, lambda_after: 0.5, val_action_loss: 0.3, val_retention_loss: 2.5e-4 },
    { step: 20, action_loss: 0.1, retention_loss: 1.3e-4, retention_budget: 2e-4, lambda_after: 0.1, val_action_loss: 0.2, val_retention_loss: 1.5e-4 },
  ], true);
  assert.match(text, /\n {2}retention loss {4}1\.300e-4 against a budget of 2\.000e-4: 0\.65× the budget \(within\)\n/);
  assert.match(text, /\n {2}val retention {5}1\.500e-4 \(step 20\) against a budget of 2\.000e-4: 0\.75× the budget \(within\)\n/);
});

test('baseline: the validation drift against the budget a CRaFT run would hold', (t) => {
  const text = run(t, [
    { step: 10, action_loss: 0.2, val_action_loss: 0.3, val_retention_loss: 5e-3 },
    { step: 20, action_loss: 0.1, val_action_loss: 0.2, val_retention_loss: 1.8e-2 },
  ], false);
  assert.match(text, /\n {2}val retention {5}0\.0180 \(step 20\) against a budget of 2\.000e-4: 90\.0× the budget \(a baseline does not hold it\)\n/);
  assert.match(text, /baseline run: no λ or conflicts/);
  assert.doesNotMatch(text, /\n {2}retention loss /);
});

test('no validation: the summary says the val retention was not measured', (t) => {
  const text = run(t, [{ step: 20, action_loss: 0.1 }], false);
  assert.match(text, /val retention {5}not measured \(--val-every 0 or no validation split\)/);
});
