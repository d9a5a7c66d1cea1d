// End to end with the real Trainer (ARCHITECTURE.md §5) and a HostGradientSource: a run
// directory with checkpoints, K steps, a resume through the checkpoint files, N − K more,
// against N straight (ARCHITECTURE.md §6). run-resume.test.mjs checks the run layer alone,
// with the surgery + JS AdamW loop of fixtures/run-loop.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as craftgrad from '../dist/index.js';
import { float32Groups } from '../dist/run/run-directory.js';
import { rng } from './helpers/random.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';

const { RunDirectory } = craftgrad;
const SIZES = [3, 40, 17, 300];

// Closed-form task: g_act = θ − T_s (T_s pseudo-random per sample index), g_ret = 4(θ − θ0).
function makeSource() {
  const r = rng(5, { centered: true });
  const theta0 = SIZES.map((n) => Float32Array.from({ length: n }, () => r()));
  const state = { next: 0 };
  const source = new craftgrad.HostGradientSource({
    params: theta0.map((a) => a.slice()),
    names: SIZES.map((_, i) => `t${i}`),
    compute(params, wantRetention) {
      const rt = rng(1000 + state.next++, { centered: true });
      let actionLoss = 0;
      const gAct = SIZES.map((n, i) => Float32Array.from({ length: n }, (_, j) => {
        const e = params[i][j] - rt() * 2;
        actionLoss += 0.5 * e * e;
        return e;
      }));
      const out = { actionLoss, gAct, samples: 1 };
      if (wantRetention) {
        let retentionLoss = 0;
        out.gRet = SIZES.map((n, i) => Float32Array.from({ length: n }, (_, j) => {
          const e = params[i][j] - theta0[i][j];
          retentionLoss += 2 * e * e;
          return 4 * e;
        }));
        out.retentionLoss = retentionLoss;
      }
      return out;
    },
    saveState: () => ({ next: state.next }),
    restoreState: (s) => { state.next = s.next; },
  });
  return source;
}

const OPTS = { lr: 1e-2, lambda: 0.3, lambdaLr: 0.5, retentionBudget: 0.01, microBatches: 2, clipNorm: 1 };

async function trainTo(dir, steps, resume) {
  const config = { ...OPTS, steps, save_every: 3 };
  const run = await RunDirectory.open({ dir, config, resume, totalSteps: steps, progress: false });
  const source = makeSource();
  const trainer = new craftgrad.Trainer(source, { ...OPTS, steps, sinks: [run.metricsSink], log: () => {} });
  const names = source.paramNames;
  if (run.resumed) {
    const groups = float32Groups(run.resumed.tensors);
    trainer.restoreState(craftgrad.trainerStateFromGroups(run.resumed.trainerState, groups, names, source.params));
  }
  const save = async () => {
    const st = trainer.state();
    await run.saveCheckpoint(st.json.step, craftgrad.trainerTensorGroups(st, names), st.json);
  };
  while (!trainer.done) {
    await trainer.step();
    if (trainer.state(false).json.step % 3 === 0) await save();
  }
  await save();
  await trainer.close();
  run.close();
  return { params: source.params.toFlat(), startStep: run.startStep };
}

test('Trainer + RunDirectory: K steps, resume from the checkpoint files, N − K more equals N straight', async (t) => {
  const root = tempDir(t, 'craftgrad-trainer-run-');
  const straight = await trainTo(join(root, 'a'), 10, false);
  await trainTo(join(root, 'b'), 5, false); // checkpoints at 3 and the end (5)
  rmSync(join(root, 'b', 'checkpoints', 'step-000005'), { recursive: true }); // resume from 3: rows 4, 5 replaced
  const resumed = await trainTo(join(root, 'b'), 10, true);
  assert.equal(resumed.startStep, 3);
  assert.deepEqual(metricsRows(join(root, 'b')), metricsRows(join(root, 'a')));
  assert.ok(Buffer.from(resumed.params.buffer).equals(Buffer.from(straight.params.buffer)), 'final weights bit-identical');
  const a = readFileSync(join(root, 'a', 'checkpoints', 'step-000010', 'optimizer.safetensors'));
  const b = readFileSync(join(root, 'b', 'checkpoints', 'step-000010', 'optimizer.safetensors'));
  assert.ok(a.equals(b), 'optimizer state bit-identical');
});
