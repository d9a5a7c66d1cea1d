// The Trainer with the run layer (ARCHITECTURE.md §6): rows into a RunDirectory's sinks, checkpoints
// through its files, and a resume from them that continues bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, RunDirectory, trainerTensorGroups, trainerStateFromGroups } from '../dist/index.js';
import { makeTask } from './helpers/train-task.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { metricsRows } from './helpers/run-files.mjs';

const SIZES = [3, 40, 17, 1100];
const OPTS = { steps: 8, microBatches: 2, lr: 1e-2, lambda: 0.3, lambdaLr: 0.5, retentionBudget: 0.01, warmup: 2, schedule: 'cosine', clipNorm: 1 };

async function trainInto(dir, { resume = false, until }) {
  const task = makeTask({ sizes: SIZES, seed: 21, targetScale: 2 });
  const trainer = new Trainer(task.source, OPTS);
  const run = await RunDirectory.open({ dir, config: { ...trainer.options, seed: 21 }, resume, totalSteps: OPTS.steps, progress: false, tensorboard: false });
  const names = task.source.paramNames;
  if (run.resumed) {
    trainer.restoreState(trainerStateFromGroups(run.resumed.trainerState, run.resumed.tensors, names, task.source.params));
  }
  while (trainer.stepIndex < until) {
    const { row } = await trainer.step();
    run.log(row);
    if (run.checkpointDue(row.step, 3) || row.step === until) {
      const state = trainer.state(false);  // live views: saveCheckpoint writes them before the next step
      await run.saveCheckpoint(row.step, trainerTensorGroups(state, names), state.json);
    }
  }
  run.close();
  return { task, trainer };
}


test('trainer + RunDirectory: stop after 5 steps, resume from the files, equal to 8 steps straight', async () => {
  const root = mkdtempSync(join(tmpdir(), 'craftgrad-train-run-'));
  try {
    const straight = await trainInto(join(root, 'straight'), { until: 8 });
    await trainInto(join(root, 'resumed'), { until: 5 });
    const resumed = await trainInto(join(root, 'resumed'), { resume: true, until: 8 });
    assert.equal(resumed.trainer.stepIndex, 8);
    assert.ok(sameBits(resumed.task.source.params.data, straight.task.source.params.data));
    assert.ok(sameBits(resumed.trainer.optimizer.m.data, straight.trainer.optimizer.m.data));
    assert.equal(resumed.trainer.lambda, straight.trainer.lambda);
    assert.deepEqual(metricsRows(join(root, 'resumed')), metricsRows(join(root, 'straight')));
    assert.equal(metricsRows(join(root, 'straight')).length, 8);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
