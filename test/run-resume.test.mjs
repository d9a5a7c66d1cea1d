// Exact resume: N steps straight through against K steps, a resume and N − K more must
// give the same metrics rows (wall-clock fields aside), the same TensorBoard curves
// once TensorBoard's purge-on-START is applied, and byte-identical final checkpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunDirectory, RunError, inspect, formatInspection } from '../dist/index.js';
import { WALL_CLOCK_KEYS } from '../dist/run/metrics.js';
import { readTfEvents } from '../dist/formats/index.js';
import { train } from './fixtures/run-loop.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsCsv, metricsRows } from './helpers/run-files.mjs';

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-resume-');
  return dir;
}

const N = 30;

// What TensorBoard shows: files in name order, each START at step s purging the points
// read so far whose step is >= s. Every record's CRCs are checked by readTfEvents.
function tensorboardView(dir) {
  const files = readdirSync(dir).filter((n) => n.startsWith('events.out.tfevents.')).sort();
  const points = [];
  let starts = 0;
  for (const f of files) {
    for (const e of readTfEvents(join(dir, f))) {
      if (e.sessionLog?.status === 'START') {
        starts++;
        for (let i = points.length - 1; i >= 0; i--) if (points[i].step >= e.step) points.splice(i, 1);
      }
      if (e.scalars) {
        const s = { ...e.scalars };
        for (const k of WALL_CLOCK_KEYS) delete s[k];
        points.push({ step: e.step, scalars: s });
      }
    }
  }
  return { files: files.length, starts, points };
}

function ckptFiles(dir, step) {
  const d = join(dir, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
  return Object.fromEntries(readdirSync(d).map((n) => [n, readFileSync(join(d, n))]));
}

let reference; // the uninterrupted run, shared by the tests below
async function uninterrupted(t) {
  if (!reference) {
    const dir = mkdtempSync(join(tmpdir(), 'craftgrad-resume-ref-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const r = await train({ dir, steps: N, saveEvery: 5 });
    reference = { dir, theta: r.theta, lambda: r.lambda };
  }
  return reference;
}

function assertSameRun(ref, dir, r) {
  assert.deepEqual(metricsRows(dir), metricsRows(ref.dir), 'metrics.jsonl rows');
  assert.deepEqual(metricsCsv(dir).rows, metricsCsv(ref.dir).rows, 'metrics.csv rows');
  assert.deepEqual(metricsRows(dir).map((x) => x.step), Array.from({ length: N }, (_, i) => i + 1));
  for (let i = 0; i < ref.theta.length; i++) {
    assert.deepEqual(Buffer.from(r.theta[i].buffer), Buffer.from(ref.theta[i].buffer), `theta[${i}] bit-identical`);
  }
  assert.equal(r.lambda, ref.lambda);
  const a = ckptFiles(ref.dir, N);
  const b = ckptFiles(dir, N);
  assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
  for (const f of Object.keys(a)) assert.ok(a[f].equals(b[f]), `final checkpoint ${f} byte-identical`);
}

test('resume from the final checkpoint of a shorter run is bit-identical', async (t) => {
  const ref = await uninterrupted(t);
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 13, saveEvery: 5 });
  const r = await train({ dir, steps: N, saveEvery: 5, resume: true });
  assert.equal(r.startStep, 13);
  assertSameRun(ref, dir, r);
});

test('resume from an earlier checkpoint drops the later rows and TensorBoard points, and is bit-identical', async (t) => {
  const ref = await uninterrupted(t);
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 13, saveEvery: 5 });
  // As if killed after logging steps 11..13 but before checkpoint 13 was complete.
  rmSync(join(dir, 'checkpoints', 'step-000013'), { recursive: true });
  const r = await train({ dir, steps: N, saveEvery: 5, resume: true });
  assert.equal(r.startStep, 10);
  assertSameRun(ref, dir, r);

  const view = tensorboardView(dir);
  const refView = tensorboardView(ref.dir);
  assert.equal(view.files, 2, 'one event file per run segment');
  assert.equal(view.starts, 1, 'a START session log in the resumed segment');
  const startEvent = readTfEvents(join(dir, readdirSync(dir).filter((n) => n.startsWith('events.out')).sort()[1]))
    .find((e) => e.sessionLog);
  assert.equal(startEvent.step, 11, 'START at the first step the resumed segment logs');
  assert.deepEqual(view.points, refView.points, 'TensorBoard shows the same curves');
  assert.deepEqual(Object.keys(refView.points[0].scalars).sort(),
    Object.keys(metricsRows(ref.dir)[0]).filter((k) => k !== 'step').sort(), 'tags equal the JSONL keys');
});

test('a resume with no valid checkpoint starts again from step 0 and still matches', async (t) => {
  const ref = await uninterrupted(t);
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 4, saveEvery: 100, keepLast: 2 });
  rmSync(join(dir, 'checkpoints'), { recursive: true });
  const r = await train({ dir, steps: N, saveEvery: 5, resume: true });
  assert.equal(r.startStep, 0);
  assertSameRun(ref, dir, r);
});

test('a resume whose configuration differs in keys that matter is refused, naming them', async (t) => {
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 6, saveEvery: 3 });
  await assert.rejects(
    train({ dir, steps: 10, resume: true, config: { lr: 0.1, betas: [0.9, 0.99] } }),
    (e) => e instanceof RunError && e.code === 'CONFIG_MISMATCH' && /lr \(saved 0\.05, requested 0\.1\)/.test(e.message)
      && /betas\.1|betas/.test(e.message) && e.message.includes(join(dir, 'config.json')),
  );
  // steps, save_every and log_every may change
  const r = await train({ dir, steps: 8, saveEvery: 4, logEvery: 2, resume: true });
  assert.equal(r.startStep, 6);
  assert.equal(r.step, 8);
});

test('a new run refuses a directory that already holds one; two writers are refused', async (t) => {
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 2, saveEvery: 1 });
  await assert.rejects(train({ dir, steps: 2 }), (e) => e.code === 'RUN_EXISTS' && e.message.includes(dir));
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.schema_version, 1);
  assert.match(cfg.craftgrad_version, /^\d+\.\d+\.\d+/);
  assert.equal(cfg.config.steps, 2);
  const a = await RunDirectory.open({ dir, config: cfg.config, resume: true, totalSteps: 2, progress: false });
  await assert.rejects(RunDirectory.open({ dir, config: cfg.config, resume: true, totalSteps: 2, progress: false }), (e) => e.code === 'LOCKED');
  a.close();
  const b = await RunDirectory.open({ dir, config: cfg.config, resume: true, totalSteps: 2, progress: false });
  b.close();
});

test('inspect reports a run and a checkpoint: tensors, shapes, step, λ, validity', async (t) => {
  const dir = join(tmp(t), 'run');
  const r = await train({ dir, steps: 6, saveEvery: 3, size: 10 });
  const x = await inspect(dir);
  assert.equal(x.kind, 'run');
  assert.deepEqual(x.run.checkpoints.map((c) => [c.step, c.valid]), [[6, true], [3, true]]);
  assert.equal(x.run.resumeFrom, join(dir, 'checkpoints', 'step-000006'));
  assert.equal(x.run.metricsRows, 6);
  const c = x.run.checkpoints[0];
  assert.equal(c.lambda, r.lambda);
  assert.equal(c.epoch, 0);
  assert.deepEqual(c.tensors.find((q) => q.group === 'model' && q.name === 'w0'), { group: 'model', name: 'w0', dtype: 'F32', shape: [10] });
  assert.ok(c.tensors.some((q) => q.group === 'optimizer' && q.name === 'v.w3'));
  const text = formatInspection(x);
  assert.match(text, /step-000006: step 6, valid, epoch 0, λ /);
  assert.match(text, /model\/w1 {2}F32 \[5\]/);
  const one = await inspect(join(dir, 'checkpoints', 'step-000003'));
  assert.equal(one.kind, 'checkpoint');
  assert.equal(one.checkpoint.valid, true);
  await assert.rejects(inspect(join(dir, 'nope')), (e) => e instanceof RunError && e.message.includes('nope'));
});

test('resume-mutable keys match at any depth and in any spelling; steps matters under a cosine schedule', async () => {
  const { diffConfigs, configHash } = await import('../dist/run/config.js');
  const saved = { trainer: { steps: 10, saveEvery: 5, lr: 1e-3, schedule: 'constant' }, run: { 'log-every': 1, out: 'runs' }, model: { hidden: [8, 8] } };
  const same = { trainer: { steps: 20, saveEvery: 7, lr: 1e-3, schedule: 'constant' }, run: { 'log-every': 3, out: 'elsewhere' }, model: { hidden: [8, 8] } };
  assert.deepEqual(diffConfigs(saved, same), []);
  assert.equal(configHash(saved), configHash(same));
  const other = { ...same, model: { hidden: [8, 16] }, trainer: { ...same.trainer, lr: 2e-3 } };
  assert.deepEqual(diffConfigs(saved, other).map((d) => d.key), ['model.hidden', 'trainer.lr']);
  assert.notEqual(configHash(saved), configHash(other));
  const cos = (steps) => ({ trainer: { steps, schedule: 'cosine' } });
  assert.deepEqual(diffConfigs(cos(10), cos(20)).map((d) => d.key), ['trainer.steps']);
});
