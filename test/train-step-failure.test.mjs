// A step that fails: rolled back to the last completed step when it failed before changing
// any kept state (so a checkpoint of it resumes exactly), refused further steps when it
// failed part-way; and the run session saves the last completed step before it reports
// the failure (ARCHITECTURE.md §5: a failure during training saves what can be saved).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Trainer, AdapterPolicySource, HostGradientSource } from '../dist/index.js';
import { makeTask } from './helpers/train-task.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { smallRun } from './helpers/small-run.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';

const SIZES = [3, 40, 17];

/** The task's source with accumulate() failing on the calls listed (1-based), once each. */
function failingTask(failOnCalls) {
  const task = makeTask({ sizes: SIZES, batch: 2 });
  const accumulate = task.source.accumulate.bind(task.source);
  let calls = 0;
  task.source.accumulate = (...args) => {
    calls += 1;
    if (failOnCalls.includes(calls)) throw new Error(`injected failure in call ${calls}`);
    return accumulate(...args);
  };
  return task;
}

function sameState(a, b) {
  assert.deepEqual(a.json, b.json);
  for (const k of ['params', 'm', 'v']) assert.ok(sameBits(a[k].toFlat(), b[k].toFlat()), k);
}

test('a step that fails while computing is rolled back: state() is the last completed step, and stepping on matches a run that never failed', async () => {
  // microBatches 2: the failure comes after the first micro-batch has drawn its samples.
  const opts = { steps: 5, microBatches: 2, lr: 0.05, warmup: 0 };
  const failing = failingTask([6]);  // step 3's second micro-batch
  const t = new Trainer(failing.source, opts);
  await t.step();
  await t.step();
  await assert.rejects(t.step(), /injected failure in call 6/);
  assert.equal(t.atStepBoundary, true);
  assert.equal(t.stepIndex, 2);

  const clean = new Trainer(makeTask({ sizes: SIZES, batch: 2 }).source, opts);
  await clean.step();
  await clean.step();
  sameState(t.state(), clean.state());

  await t.run();
  await clean.run();
  sameState(t.state(), clean.state());
});

test('a step that fails after it changed the state refuses further steps until a state is restored', async () => {
  let validations = 0;
  const source = new HostGradientSource({
    params: [new Float32Array([1, 2]), new Float32Array([3])],
    compute: () => ({ actionLoss: 1, gAct: [new Float32Array([1, 1]), new Float32Array([1])], retentionLoss: 0,
      gRet: [new Float32Array([0, 1]), new Float32Array([1])] }),
    validate: () => { validations += 1; throw new Error('injected validation failure'); },
  });
  const t = new Trainer(source, { steps: 4, valEvery: 2, lr: 0.05, warmup: 0 });
  await t.step();
  const saved = t.state();
  await assert.rejects(t.step(), /injected validation failure/);
  assert.equal(validations, 1);
  assert.equal(t.atStepBoundary, false);
  await assert.rejects(t.step(), /an earlier step failed part-way; restore a state/);
  t.restoreState(saved);
  assert.equal(t.atStepBoundary, true);
  assert.equal(t.stepIndex, 1);
});

test('the run session saves the last completed step when a step fails, and a resume from it ends as an uninterrupted run', async (t) => {
  const root = tempDir(t, 'craftgrad-stepfail-');
  const config = { steps: 6, save_every: 100, val_every: 3 };

  const original = AdapterPolicySource.prototype.accumulate;
  let calls = 0;
  AdapterPolicySource.prototype.accumulate = function (...args) {
    calls += 1;
    const result = original.apply(this, args);  // the sampler has drawn step 5's samples
    if (calls === 5) throw new Error('injected device failure');
    return result;
  };
  const failed = join(root, 'failed');
  try {
    await assert.rejects(smallRun(failed, config), (e) => {
      assert.equal(e.code, 'TRAINING_FAILED');
      assert.match(e.message, /training failed during step 5: injected device failure/);
      assert.match(e.message, /step-000004 \(step 4\)/);
      return true;
    });
  } finally {
    AdapterPolicySource.prototype.accumulate = original;
  }
  assert.deepEqual(readdirSync(join(failed, 'checkpoints')).filter((n) => n.startsWith('step-')), ['step-000004']);

  await smallRun(failed, config, true);
  const straight = join(root, 'straight');
  await smallRun(straight, config);
  assert.deepEqual(metricsRows(failed), metricsRows(straight));
  for (const file of ['model.safetensors', 'optimizer.safetensors']) {
    assert.ok(readFileSync(join(failed, 'checkpoints', 'step-000006', file)).equals(readFileSync(join(straight, 'checkpoints', 'step-000006', file))), file);
  }
});
