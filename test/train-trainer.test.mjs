// The Trainer on a host-side task with closed-form gradients (helpers/train-task.mjs), checked
// step by step against a float64 re-implementation of the update rule; accumulation; the
// non-finite skip; ablation switches; validation; sinks; exact resume; thread counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Trainer, setThreads, backendInfo, trainerTensorGroups, trainerStateFromGroups } from '../dist/index.js';
import { METRIC_KEYS, CRAFT_METRIC_KEYS } from '../dist/train/index.js';
import { makeTask, taskGradients, craftStepReference, splitSet, maxRelErr } from './helpers/train-task.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { withoutWallClock } from './helpers/run-files.mjs';

const SIZES = [3, 40, 17, 1100];
const quiet = () => {};


test('CRaFT steps match a float64 re-implementation of the update rule, step by step', async () => {
  for (const clipNorm of [0, 0.5]) {
    const task = makeTask({ sizes: SIZES, seed: 3, batch: 2, targetScale: 0.5 });
    const o = { lr: 2e-2, warmup: 0, lambda: 0.3, lambdaLr: 0.5, retentionBudget: 0.05, clipNorm, projection: true };
    const trainer = new Trainer(task.source, { steps: 12, microBatches: 3, ...o, log: quiet });
    let sawConflict = false, sawNoConflict = false, lambdaMoved = false;
    for (let s = 0; s < 12; s++) {
      const theta = splitSet(task.source.params);
      const before = {
        theta, m: splitSet(trainer.optimizer.m), v: splitSet(trainer.optimizer.v), lambda: trainer.lambda,
        optimizerStep: trainer.optimizer.stepCount,
      };
      // Micro-batches of 2 samples, 3 of them: the mean over the 6 samples.
      const g = taskGradients(task, theta, task.state.next, 6);
      const want = craftStepReference(before, g, { ...o, dual: true });
      const { row, detail } = await trainer.step();
      assert.deepEqual(detail.conflicts, want.conflicts, `step ${s + 1} conflicts`);
      assert.equal(row.num_conflicts, want.numConflicts);
      assert.equal(row.conflict_ratio, want.numConflicts / SIZES.length);
      assert.ok(Math.abs(row.grad_norm - want.gradNorm) <= 1e-5 * want.gradNorm, `grad_norm ${row.grad_norm} vs ${want.gradNorm}`);
      assert.ok(Math.abs(row.retention_loss - g.retentionLoss) <= 1e-5 * Math.max(1e-3, g.retentionLoss));
      assert.ok(Math.abs(row.action_loss - g.actionLoss) <= 1e-5 * g.actionLoss);
      assert.equal(row.lambda_before, before.lambda);
      assert.ok(Math.abs(row.lambda_after - want.lambda) <= 1e-6 * Math.max(1e-3, want.lambda), `λ ${row.lambda_after} vs ${want.lambda}`);
      assert.equal(row.lambda_after, trainer.lambda);
      if (clipNorm > 0) assert.ok(detail.clipScale <= 1);
      SIZES.forEach((_, i) => {
        assert.ok(maxRelErr(task.source.params.view(i), want.theta[i]) < 1e-4, `step ${s + 1} θ[${i}] ${maxRelErr(task.source.params.view(i), want.theta[i])}`);
        assert.ok(maxRelErr(trainer.optimizer.m.view(i), want.m[i]) < 1e-4);
      });
      sawConflict ||= want.numConflicts > 0;
      sawNoConflict ||= want.numConflicts < SIZES.length;
      lambdaMoved ||= want.lambda !== before.lambda;
      assert.equal(row.step, s + 1);
    }
    assert.ok(sawConflict && sawNoConflict && lambdaMoved, 'the task exercises conflicts, non-conflicts and the dual');
    assert.equal(task.state.next, 12 * 6);
  }
});

test('rows hold exactly the ARCHITECTURE.md §5 keys; baseline rows lack the CRaFT keys', async () => {
  const craft = new Trainer(makeTask({ sizes: SIZES }).source, { steps: 2, valEvery: 2 });
  const r1 = (await craft.step()).row, r2 = (await craft.step()).row;
  const VAL = ['val_action_loss', 'val_retention_loss'];
  assert.deepEqual(Object.keys(r1).sort(), METRIC_KEYS.filter((k) => !VAL.includes(k)).sort());
  assert.deepEqual(Object.keys(r2).sort(), [...METRIC_KEYS].sort());
  // A baseline validation step measures the retention loss too; its training rows stay without CRaFT keys.
  const base = new Trainer(makeTask({ sizes: SIZES }).source, { steps: 2, mode: 'baseline', valEvery: 2 });
  const b1 = (await base.step()).row, b2 = (await base.step()).row;
  assert.deepEqual(Object.keys(b1).sort(), METRIC_KEYS.filter((k) => !VAL.includes(k) && !CRAFT_METRIC_KEYS.includes(k)).sort());
  assert.deepEqual(Object.keys(b2).sort(), METRIC_KEYS.filter((k) => !CRAFT_METRIC_KEYS.includes(k)).sort());
  assert.ok(b2.val_retention_loss > 0, 'the baseline drifted from θ0');
});

test('accumulation: 8 micro-batches of 1 and 4 of 2 give the same update to rounding', async () => {
  const a = makeTask({ sizes: SIZES, seed: 5, batch: 1 }), b = makeTask({ sizes: SIZES, seed: 5, batch: 2 });
  const ta = new Trainer(a.source, { steps: 4, microBatches: 8, lr: 1e-2, lambda: 0.2 });
  const tb = new Trainer(b.source, { steps: 4, microBatches: 4, lr: 1e-2, lambda: 0.2 });
  for (let s = 0; s < 4; s++) {
    const ra = (await ta.step()).row, rb = (await tb.step()).row;
    assert.ok(Math.abs(ra.action_loss - rb.action_loss) <= 1e-6 * ra.action_loss);
    assert.ok(Math.abs(ra.lambda_after - rb.lambda_after) <= 1e-6);
  }
  assert.ok(maxRelErr(a.source.params.data, Float64Array.from(b.source.params.data)) < 1e-5);
  assert.equal(a.state.next, b.state.next);
});

test('a step with a non-finite gradient or loss is skipped: nothing written, λ kept, counted and logged', async () => {
  for (const kind of ['grad', 'retgrad', 'loss', 'retloss']) {
    const poison = (first, out) => {
      if (first !== 2) return;  // the third step (1 sample per step)
      if (kind === 'grad') out.gAct[3][7] = NaN;
      if (kind === 'retgrad' && out.gRet) out.gRet[1][0] = Infinity;
      if (kind === 'loss') out.actionLoss = NaN;
      if (kind === 'retloss' && out.gRet) out.retentionLoss = Infinity;
    };
    const task = makeTask({ sizes: SIZES, seed: 7, poison });
    const logs = [];
    const trainer = new Trainer(task.source, { steps: 4, lambda: 0.1, lambdaLr: 1, retentionBudget: 0, log: (l) => logs.push(l) });
    await trainer.step();
    await trainer.step();
    const p = task.source.params.data.slice(), m = trainer.optimizer.m.data.slice(), v = trainer.optimizer.v.data.slice();
    const lambda = trainer.lambda, t = trainer.optimizer.stepCount;
    const { row, detail } = await trainer.step();
    assert.ok(detail.skipped, kind);
    assert.equal(row.nonfinite_skipped, 1);
    assert.equal(row.lambda_after, lambda);
    assert.ok(sameBits(task.source.params.data, p) && sameBits(trainer.optimizer.m.data, m) && sameBits(trainer.optimizer.v.data, v));
    assert.equal(trainer.optimizer.stepCount, t);
    assert.equal(logs.length, 1);
    assert.match(logs[0], /step 3 skipped/);
    const next = (await trainer.step()).row;
    assert.equal(next.nonfinite_skipped, 1);
    assert.ok(!sameBits(task.source.params.data, p), 'training goes on after a skipped step');
    assert.equal(trainer.optimizer.stepCount, t + 1);
  }
});

async function runRows(options, taskOptions = {}, steps = 3) {
  const task = makeTask({ sizes: SIZES, seed: 11, targetScale: 2, ...taskOptions });
  const trainer = new Trainer(task.source, { steps, lr: 1e-2, lambda: 0.4, lambdaLr: 0.5, retentionBudget: 0.01, ...options });
  const rows = [], details = [], params = [];
  for (let s = 0; s < steps; s++) {
    const r = await trainer.step();
    rows.push(r.row); details.push(r.detail); params.push(task.source.params.data.slice());
  }
  return { rows: rows.map(withoutWallClock), details, params, task, trainer };
}

test('ablation: projection off changes only the conflicting tensors and the conflict/norm metrics', async () => {
  // Step 1 starts at the anchor (g_ret = 0: nothing can conflict), so both runs agree
  // there; step 2 is the one with conflicts.
  const on = await runRows({}, {}, 2), off = await runRows({ projection: false }, {}, 2);
  assert.ok(sameBits(on.params[0], off.params[0]));
  assert.equal(on.rows[0].num_conflicts, 0);
  assert.ok(on.rows[1].num_conflicts > 0 && on.rows[1].num_conflicts < SIZES.length, 'the task has some conflicts');
  assert.equal(off.rows[1].num_conflicts, 0);
  const differing = Object.keys(on.rows[1]).filter((k) => on.rows[1][k] !== off.rows[1][k]).sort();
  assert.deepEqual(differing, ['conflict_ratio', 'grad_norm', 'num_conflicts']);
  const sizes = on.task.source.params.sizes, offsets = on.task.source.params.offsets;
  sizes.forEach((n, i) => {
    const a = on.params[1].subarray(offsets[i], offsets[i] + n), b = off.params[1].subarray(offsets[i], offsets[i] + n);
    assert.equal(!sameBits(a, b), on.details[1].conflicts[i] === 1, `tensor ${i}`);
  });
});

test('ablation: dual off keeps λ fixed and changes nothing in the first step', async () => {
  const on = await runRows({}), off = await runRows({ dual: false });
  assert.ok(off.rows.every((r) => r.lambda_before === 0.4 && r.lambda_after === 0.4));
  assert.notEqual(on.rows[0].lambda_after, 0.4);
  assert.ok(sameBits(on.params[0], off.params[0]));
  const differing = Object.keys(on.rows[0]).filter((k) => on.rows[0][k] !== off.rows[0][k]);
  assert.deepEqual(differing, ['lambda_after']);
  assert.ok(!sameBits(on.params[2], off.params[2]), 'λ feeds later steps');
});

test('ablation: baseline asks for no retention gradient and equals CRaFT with λ = 0, no projection, no dual', async () => {
  const base = await runRows({ mode: 'baseline' });
  const zero = await runRows({ lambda: 0, projection: false, dual: false });
  assert.equal(base.task.state.retentionCalls, 0);
  assert.ok(base.task.state.calls > 0);
  assert.equal(zero.task.state.retentionCalls, zero.task.state.calls);
  base.params.forEach((p, s) => assert.ok(sameBits(p, zero.params[s]), `step ${s + 1}`));
  base.rows.forEach((r, s) => {
    for (const k of CRAFT_METRIC_KEYS) assert.ok(!(k in r), k);
    for (const k of Object.keys(r)) assert.equal(r[k], zero.rows[s][k], k);
  });
  assert.ok(base.details.every((d) => d.conflicts.every((c) => c === 0)));
});

test('fused and unfused optimizer steps agree (bit for bit without clipping, to rounding with it)', async () => {
  const fused = await runRows({}), unfused = await runRows({ fused: false });
  fused.params.forEach((p, s) => assert.ok(sameBits(p, unfused.params[s]), `step ${s + 1}`));
  fused.rows.forEach((r, s) => {
    for (const k of Object.keys(r)) {
      if (k === 'grad_norm') assert.ok(Math.abs(r[k] - unfused.rows[s][k]) <= 1e-6 * r[k]);
      else assert.equal(r[k], unfused.rows[s][k], k);
    }
  });
  const fc = await runRows({ clipNorm: 0.1 }), uc = await runRows({ clipNorm: 0.1, fused: false });
  assert.ok(fc.details[0].clipScale < 1);
  assert.ok(maxRelErr(fc.params[2], Float64Array.from(uc.params[2])) < 1e-5);
});

test('clipping changes the update but not the reported (pre-clip) grad norm', async () => {
  const plain = await runRows({}, {}, 1), clipped = await runRows({ clipNorm: 0.01 }, {}, 1);
  assert.equal(plain.rows[0].grad_norm, clipped.rows[0].grad_norm);
  assert.ok(Math.abs(clipped.details[0].clipScale - 0.01 / (plain.rows[0].grad_norm + 1e-6)) < 1e-12);
  assert.ok(!sameBits(plain.params[0], clipped.params[0]));
});

test('lr follows the schedule; validation every val_every steps with the time limit', async () => {
  const calls = [];
  const task = makeTask({ sizes: SIZES });
  const validate = task.source.validate;
  Object.defineProperty(task.source, 'validate', { value: (o) => { calls.push(o); return validate(o); } });
  const trainer = new Trainer(task.source, { steps: 6, lr: 1e-2, warmup: 2, schedule: 'multistep', decayAfter: [4], valEvery: 3, valTimeLimitMs: 1234 });
  const rows = [];
  for (let s = 0; s < 6; s++) rows.push((await trainer.step()).row);
  assert.deepEqual(rows.map((r) => r.lr), [1e-3, 1e-2 * (0.1 + 0.45), 1e-2, 1e-2, 1e-2 * 0.1, 1e-2 * 0.1]);
  assert.deepEqual(rows.map((r) => 'val_action_loss' in r), [false, false, true, false, false, true]);
  assert.deepEqual(calls, [{ timeLimitMs: 1234 }, { timeLimitMs: 1234 }]);
  assert.equal(trainer.done, true);
});

test('sinks get every row and the per-tensor conflict flags; close() closes them', async () => {
  const got = [];
  let closed = 0;
  const sink = { write: async (row, detail) => { got.push([row.step, detail.conflicts.length]); }, close: () => { closed++; } };
  const trainer = new Trainer(makeTask({ sizes: SIZES }).source, { steps: 3, sinks: [sink] });
  await trainer.run();
  await trainer.close();
  assert.deepEqual(got, [[1, 4], [2, 4], [3, 4]]);
  assert.equal(closed, 1);
});

test('exact resume: N steps straight equal K steps + state/restore into a fresh trainer + N−K steps', async () => {
  const opts = { steps: 9, microBatches: 2, lr: 1e-2, lambda: 0.3, lambdaLr: 0.5, retentionBudget: 0.01, schedule: 'cosine', warmup: 2, clipNorm: 1 };
  const straightTask = makeTask({ sizes: SIZES, seed: 21, targetScale: 2 });
  const straight = new Trainer(straightTask.source, opts);
  const rows = [];
  for (let s = 0; s < 9; s++) rows.push((await straight.step()).row);

  const firstTask = makeTask({ sizes: SIZES, seed: 21, targetScale: 2 });
  const first = new Trainer(firstTask.source, opts);
  await first.run({ until: 4 });
  const state = first.state();
  const json = JSON.parse(JSON.stringify(state.json));  // what state.json would hold
  for (let s = 0; s < 2; s++) await first.step();  // the state is a copy: later steps do not leak into it

  const resumedTask = makeTask({ sizes: SIZES, seed: 21, targetScale: 2 });
  const resumed = new Trainer(resumedTask.source, opts);
  // Through the named tensor groups the checkpoint files hold (copied, as a file would be).
  const names = firstTask.source.paramNames;
  const groups = trainerTensorGroups(state, names);
  const copied = Object.fromEntries(Object.entries(groups).map(([g, t]) => [g, Object.fromEntries(Object.entries(t).map(([k, x]) => [k, x.slice()]))]));
  assert.deepEqual(Object.keys(copied.optimizer).slice(0, 2), ['t0.exp_avg', 't0.exp_avg_sq']);
  resumed.restoreState(trainerStateFromGroups(json, copied, names, resumedTask.source.params));
  const tail = [];
  while (!resumed.done) tail.push((await resumed.step()).row);
  assert.deepEqual(tail.map(withoutWallClock), rows.slice(4).map(withoutWallClock));
  assert.ok(sameBits(resumedTask.source.params.data, straightTask.source.params.data));
  assert.ok(sameBits(resumed.optimizer.m.data, straight.optimizer.m.data));
  assert.ok(sameBits(resumed.optimizer.v.data, straight.optimizer.v.data));
  assert.equal(resumed.lambda, straight.lambda);
  assert.equal(resumed.optimizer.stepCount, straight.optimizer.stepCount);
});

test('a trainer run gives the same bits for any thread count', async () => {
  const threads = backendInfo().cpu.threads;
  const big = [5, 200000, 300001, 2048];
  const run = async (n) => {
    setThreads(n);
    const task = makeTask({ sizes: big, seed: 2 });
    const trainer = new Trainer(task.source, { steps: 2, lambda: 0.2, clipNorm: 10 });
    const rows = [];
    while (!trainer.done) rows.push((await trainer.step()).row);
    return { p: task.source.params.data, rows: rows.map(withoutWallClock) };
  };
  try {
    const one = await run(1), four = await run(4);
    assert.ok(sameBits(one.p, four.p));
    assert.deepEqual(one.rows, four.rows);
  } finally {
    setThreads(threads);
  }
});

test('bad options are rejected with errors that name them', () => {
  const { source } = makeTask({ sizes: SIZES });
  assert.throws(() => new Trainer(source, {}), /options.steps/);
  assert.throws(() => new Trainer(source, { steps: 1, lamda: 1 }), /unknown option 'lamda'/);
  assert.throws(() => new Trainer(source, { steps: 1, mode: 'plain' }), /options.mode/);
  assert.throws(() => new Trainer(source, { steps: 1, microBatches: 0 }), /options.microBatches/);
  assert.throws(() => new Trainer(source, { steps: 1, lambda: -1 }), /options.lambda/);
  assert.throws(() => new Trainer(source, { steps: 2, warmup: 2, schedule: 'cosine' }), /totalSteps/);
  assert.throws(() => new Trainer({}, { steps: 1 }), /GradientSource/);
});

test('HostGradientSource: flat gradients, names, and clear errors for missing CRaFT outputs', async () => {
  const { HostGradientSource } = await import('../dist/index.js');
  const flat = new HostGradientSource({
    params: [new Float32Array([1, 2]), new Float32Array([3])],
    compute: (p, wantRet) => ({ actionLoss: 1, gAct: new Float32Array([1, 1, 1]), gRet: wantRet ? new Float32Array(3) : undefined, retentionLoss: 0 }),
  });
  assert.deepEqual(flat.paramNames, ['param.0', 'param.1']);
  const t = new Trainer(flat, { steps: 1, lr: 0.1, weightDecay: 0 });
  await t.step();
  assert.ok(flat.params.data.every((x, i) => x < [1, 2, 3][i]));
  const noRet = new HostGradientSource({ params: [new Float32Array(2)], compute: () => ({ actionLoss: 1, gAct: [new Float32Array(2)] }) });
  await assert.rejects(new Trainer(noRet, { steps: 1 }).step(), /no gRet in CRaFT mode/);
  const wrong = new HostGradientSource({ params: [new Float32Array(2)], compute: () => ({ actionLoss: 1, gAct: [new Float32Array(3)] }) });
  await assert.rejects(new Trainer(wrong, { steps: 1, mode: 'baseline' }).step(), /gAct\[0\] must be a Float32Array of 2 elements/);
  assert.throws(() => new HostGradientSource({ params: [new Float32Array(2)], names: ['a', 'b'], compute() {} }), /names/);
});

test('options: defaults resolved (TRAINER_DEFAULTS, PyTorch AdamW) and JSON-serializable', () => {
  const t = new Trainer(makeTask({ sizes: SIZES }).source, { steps: 10 });
  const o = JSON.parse(JSON.stringify(t.options));
  assert.equal(o.lr, 1e-3);
  assert.equal(o.warmup, 50);
  assert.equal(o.retentionBudget, 2e-4);
  assert.equal(o.lambdaLr, 100);
  assert.deepEqual(o.betas, [0.9, 0.999]);
  assert.equal(o.adamEps, 1e-8);
  assert.equal(o.weightDecay, 0.01);
  assert.equal(o.mode, 'craft');
  assert.equal(o.projection, true);
  assert.equal(o.dual, true);
  assert.equal(o.fused, true);
  assert.equal(o.microBatches, 1);
});

test('checkpoint tensor groups: errors name the missing or mis-sized tensor', () => {
  const task = makeTask({ sizes: SIZES });
  const t = new Trainer(task.source, { steps: 1 });
  const state = t.state();
  const names = task.source.paramNames;
  const groups = trainerTensorGroups(state, names);
  delete groups.optimizer['t2.exp_avg_sq'];
  assert.throws(() => trainerStateFromGroups(state.json, groups, names, task.source.params), /optimizer has no float32 tensor 't2.exp_avg_sq'/);
  groups.model.t1 = new Float32Array(3);
  assert.throws(() => trainerStateFromGroups(state.json, groups, names, task.source.params), /model tensor 't1' has 3 elements, expected 40/);
  assert.throws(() => trainerTensorGroups(state, ['a']), /names must list 4/);
});

test('a source that overwrites on the first micro-batch gives the same bits as zeroing', async () => {
  const a = makeTask({ sizes: SIZES, seed: 9 }), b = makeTask({ sizes: SIZES, seed: 9 });
  assert.equal(a.source.supportsOverwrite, true);
  const calls = [];
  // b hides supportsOverwrite: the trainer zeroes and always adds.
  const hidden = {
    params: b.source.params, paramNames: b.source.paramNames,
    accumulate: (gAct, gRet, scale, overwrite) => { calls.push(overwrite); return b.source.accumulate(gAct, gRet, scale); },
    saveState: () => b.source.saveState(), restoreState: (s) => b.source.restoreState(s),
  };
  const ta = new Trainer(a.source, { steps: 3, microBatches: 3, lr: 1e-2, lambda: 0.2 });
  const tb = new Trainer(hidden, { steps: 3, microBatches: 3, lr: 1e-2, lambda: 0.2 });
  await ta.run();
  await tb.run();
  assert.ok(calls.every((x) => x === false));
  assert.ok(sameBits(a.source.params.data, b.source.params.data));
  assert.equal(ta.lambda, tb.lambda);
});

test('per-tensor conflict flags reach the conflict log (conflicts.json, conflicts.bin) through a sink', async () => {
  const { ConflictLogWriter, readConflictLog } = await import('../dist/index.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-train-conflicts-'));
  try {
    const task = makeTask({ sizes: SIZES, seed: 11, targetScale: 2 });
    const writer = new ConflictLogWriter(dir, task.source.paramNames);
    const seen = [];
    const sink = { write: (row, detail) => { writer.append(row.step, detail.conflicts); seen.push(detail.conflicts.slice()); }, close: () => writer.close() };
    const trainer = new Trainer(task.source, { steps: 4, lr: 1e-2, lambda: 0.4, sinks: [sink] });
    await trainer.run();
    await trainer.close();
    const log = readConflictLog(dir);
    assert.deepEqual(log.steps, [1, 2, 3, 4]);
    assert.deepEqual(log.names, [...task.source.paramNames]);
    assert.deepEqual(Array.from(log.flags), seen.flatMap((f) => Array.from(f)));
    assert.ok(seen.some((f) => f.some((x) => x === 1)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreState rejects a malformed state before changing anything', () => {
  const task = makeTask({ sizes: SIZES });
  const t = new Trainer(task.source, { steps: 2 });
  const good = t.state();
  const before = task.source.params.data.slice();
  const bad = (patch) => ({ ...good, json: { ...good.json, ...patch } });
  assert.throws(() => t.restoreState(bad({ schemaVersion: 2 })), /schemaVersion/);
  assert.throws(() => t.restoreState(bad({ step: -1 })), /state.json.step/);
  assert.throws(() => t.restoreState(bad({ lambda: NaN })), /state.json.lambda/);
  assert.throws(() => t.restoreState(bad({ epoch: 1.5 })), /state.json.epoch/);
  assert.throws(() => t.restoreState(bad({ meters: { samples: 1 } })), /nonfiniteSkipped/);
  assert.throws(() => t.restoreState({ ...good, params: makeTask({ sizes: [1, 2] }).source.params }), /layout/);
  assert.ok(sameBits(task.source.params.data, before));
});
