// Checkpoints a user can load: every tensor stored with its real shape, the frozen base and
// a model description in the checkpoint, loadCheckpoint / AdapterPolicy.fromCheckpoint
// giving the run's model back, and checkpoints of the previous version (model and optimizer
// tensors 1-D, no base, no description) still loaded and resumed bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  AdapterPolicy, AdapterPolicySource, loadCheckpoint, checkCheckpoint, trainableLayout, frozenLayout, anchorLayout,
  resolveModelConfig, modelConfigFromRunConfig, decodeSafetensors, encodeSafetensors, RunError, Trainer, trainerTensorGroups,
} from '../dist/index.js';
import { SMALL, smallRun, smallValSplit } from './helpers/small-run.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-ckshape-');
  return dir;
}

const shapesOf = (file) => Object.fromEntries(Object.entries(decodeSafetensors(readFileSync(file)).tensors).map(([k, t]) => [k, t.shape]));
const ck = (run, step) => join(run, 'checkpoints', `step-${String(step).padStart(6, '0')}`);

/** Rewrites a checkpoint as craftgrad 0.1.0 wrote it: model and optimizer 1-D, no base.safetensors, no state.model. */
function rewriteAsPreviousVersion(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const put = (name, bytes) => {
    writeFileSync(join(dir, name), bytes);
    manifest.files[name] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  };
  for (const group of ['model', 'optimizer']) {
    const { tensors, metadata } = decodeSafetensors(readFileSync(join(dir, `${group}.safetensors`)));
    const flat = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { dtype: 'F32', shape: [t.data.length], data: t.data.slice() }]));
    put(`${group}.safetensors`, encodeSafetensors(flat, metadata));
  }
  rmSync(join(dir, 'base.safetensors'));
  delete manifest.files['base.safetensors'];
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  delete state.model;
  put('state.json', Buffer.from(JSON.stringify(state, null, 2) + '\n'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

test('every checkpoint tensor has its real shape; the base and the model description are in it', async (t) => {
  const run = join(tmp(t), 'run');
  await smallRun(run);
  const dir = ck(run, 6);
  const config = resolveModelConfig(modelConfigFromRunConfig(SMALL));
  const layout = (specs) => Object.fromEntries(specs.map((s) => [s.name, s.shape]));
  const trainable = layout(trainableLayout(config));
  assert.deepEqual(shapesOf(join(dir, 'model.safetensors')), trainable);
  assert.deepEqual(shapesOf(join(dir, 'anchor.safetensors')), layout(anchorLayout(config)));
  assert.deepEqual(shapesOf(join(dir, 'base.safetensors')), layout(frozenLayout(config)));
  const moments = Object.fromEntries(Object.entries(trainable).flatMap(([k, s]) => [[`${k}.exp_avg`, s], [`${k}.exp_avg_sq`, s]]));
  assert.deepEqual(shapesOf(join(dir, 'optimizer.safetensors')), moments);
  assert.equal(shapesOf(join(dir, 'model.safetensors'))['blocks.0.lora_A'].length, 2);

  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
  assert.deepEqual(state.model, { kind: 'adapter_policy', config: { ...config }, base: { kind: 'seeded', seed: SMALL.seed } });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.ok(manifest.files['base.safetensors'], 'the manifest lists base.safetensors');
  assert.equal((await checkCheckpoint(dir)).valid, true);
  // The stored base is the seeded one the run used.
  const seeded = AdapterPolicy.create(config, { seed: SMALL.seed }).frozenTensors();
  const stored = decodeSafetensors(readFileSync(join(dir, 'base.safetensors'))).tensors;
  for (const [k, x] of Object.entries(seeded)) assert.deepEqual(stored[k].data, x.data, k);
});

test('loadCheckpoint reads a checkpoint, a copy of one, or a run directory (its newest)', async (t) => {
  const root = tmp(t), run = join(root, 'run');
  await smallRun(run);
  const fromRun = await loadCheckpoint(run);
  assert.equal(fromRun.step, 6);
  assert.equal(fromRun.dir, ck(run, 6));
  assert.equal(fromRun.config.width, SMALL.width);
  assert.deepEqual(fromRun.tensors.model['head.fc1.weight'].shape, [SMALL.head_width, 2 * SMALL.width]);
  assert.equal(fromRun.model.kind, 'adapter_policy');
  assert.equal(typeof fromRun.trainer, 'object');
  const copy = join(root, 'my-checkpoint');
  cpSync(ck(run, 3), copy, { recursive: true });
  assert.equal((await loadCheckpoint(copy)).step, 3);

  await assert.rejects(loadCheckpoint(join(root, 'nope')), (e) => e instanceof RunError && /no such checkpoint or run directory/.test(e.message));
  await assert.rejects(loadCheckpoint(root), (e) => e instanceof RunError && /nor a run directory with a valid checkpoint/.test(e.message));
  writeFileSync(join(copy, 'model.safetensors'), 'garbage');
  await assert.rejects(loadCheckpoint(copy), (e) => e instanceof RunError && /not a valid checkpoint/.test(e.message) && /model\.safetensors \(size\)/.test(e.message));
});

test("AdapterPolicy.fromCheckpoint gives the run's model: its validation loss is the run's, bit for bit", async (t) => {
  const run = join(tmp(t), 'run');
  await smallRun(run);
  const logged = metricsRows(run).find((r) => r.step === 6).val_action_loss;
  assert.equal(typeof logged, 'number');
  for (const dir of [run, ck(run, 6)]) {
    const model = await AdapterPolicy.fromCheckpoint(dir);
    assert.deepEqual(model.baseOrigin, { kind: 'seeded', seed: SMALL.seed });
    const val = smallValSplit();
    const source = new AdapterPolicySource(model, val, { batchSize: SMALL.batch_size, val });
    assert.equal(source.validate({ timeLimitMs: 1e9 }).actionLoss, logged);
  }
  // The step-3 model is another one: the comparison can fail.
  const earlier = await AdapterPolicy.fromCheckpoint(ck(run, 3));
  const val = smallValSplit();
  assert.notEqual(new AdapterPolicySource(earlier, val, { batchSize: SMALL.batch_size, val }).validate({ timeLimitMs: 1e9 }).actionLoss, logged);
  await assert.rejects(AdapterPolicy.fromCheckpoint(run, { gpu: true }), /options has an unknown key|unknown/);
});

test('a checkpoint of the previous version (1-D tensors, no base) still loads and resumes bit for bit', async (t) => {
  const root = tmp(t), straight = join(root, 'straight'), resumed = join(root, 'resumed');
  await smallRun(straight);
  cpSync(straight, resumed, { recursive: true });
  rmSync(ck(resumed, 6), { recursive: true });
  rewriteAsPreviousVersion(ck(resumed, 3));
  assert.deepEqual(shapesOf(join(ck(resumed, 3), 'model.safetensors'))['blocks.0.lora_A'], [SMALL.rank * SMALL.width]);
  assert.equal((await checkCheckpoint(ck(resumed, 3))).valid, true);

  // Loaded: the same weights as the shaped step-3 checkpoint.
  const a = await AdapterPolicy.fromCheckpoint(ck(resumed, 3)), b = await AdapterPolicy.fromCheckpoint(ck(straight, 3));
  assert.deepEqual(a.params.data, b.params.data);
  assert.deepEqual(a.frozen.data, b.frozen.data);
  assert.deepEqual(a.anchor.data, b.anchor.data);

  // Resumed: the same rows and byte-identical tensors at step 6.
  await smallRun(resumed, {}, true);
  assert.deepEqual(metricsRows(resumed), metricsRows(straight));
  for (const f of ['model', 'optimizer', 'anchor', 'base']) {
    assert.ok(readFileSync(join(ck(resumed, 6), `${f}.safetensors`)).equals(readFileSync(join(ck(straight, 6), `${f}.safetensors`))), f);
  }
});

test('a run on a base weights file records its sha256, and a resume on a changed file is refused', async (t) => {
  const root = tmp(t), run = join(root, 'run'), basePath = join(root, 'base.safetensors');
  const config = resolveModelConfig(modelConfigFromRunConfig(SMALL));
  const frozen = AdapterPolicy.create(config, { seed: 7 }).frozenTensors();
  const bytes = encodeSafetensors(frozen);
  writeFileSync(basePath, bytes);
  await smallRun(run, { base_weights: basePath });
  const state = JSON.parse(readFileSync(join(ck(run, 6), 'state.json'), 'utf8'));
  assert.deepEqual(state.model.base, { kind: 'file', path: basePath, sha256: createHash('sha256').update(bytes).digest('hex') });
  const model = await AdapterPolicy.fromCheckpoint(run);
  assert.deepEqual(model.frozen.data, AdapterPolicy.create(config, { seed: 7 }).frozen.data);

  frozen['blocks.1.bias'].data[0] += 1;
  writeFileSync(basePath, encodeSafetensors(frozen));
  rmSync(ck(run, 6), { recursive: true });
  await assert.rejects(smallRun(run, { base_weights: basePath }, true), /frozen base weights differ from the checkpoint's \(tensor 'blocks\.1\.bias'\)/);
});

test('trainerTensorGroups with shapes: moments get their parameter shape; a wrong shape names the tensor', () => {
  const model = AdapterPolicy.create(modelConfigFromRunConfig(SMALL), { seed: 1 });
  const val = smallValSplit();
  const source = new AdapterPolicySource(model, val, { batchSize: 4 });
  const state = new Trainer(source, { steps: 1 }).state();
  const groups = trainerTensorGroups(state, source.paramNames, source.paramShapes);
  assert.deepEqual(groups.model['head.fc2.weight'].shape, [SMALL.chunk * SMALL.action_dims, SMALL.head_width]);
  assert.deepEqual(groups.optimizer['head.fc2.weight.exp_avg_sq'].shape, [SMALL.chunk * SMALL.action_dims, SMALL.head_width]);
  assert.ok(groups.model['blocks.0.lora_A'].data instanceof Float32Array);
  assert.ok(trainerTensorGroups(state, source.paramNames).model['blocks.0.lora_A'] instanceof Float32Array, 'without shapes: bare arrays');
  const bad = source.paramShapes.map((s) => [...s]);
  bad[1] = [SMALL.width, SMALL.rank + 1];
  assert.throws(() => trainerTensorGroups(state, source.paramNames, bad), /shapes\[1\] \(blocks\.0\.lora_B\) must be dimensions whose product is 128/);
  assert.throws(() => trainerTensorGroups(state, source.paramNames, bad.slice(1)), /shapes must list 8 shapes/);
});

test('fromCheckpoint: a tensor of the wrong shape is an error naming the file and tensor', async (t) => {
  const run = join(tmp(t), 'run');
  await smallRun(run);
  const dir = ck(run, 6);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const { tensors, metadata } = decodeSafetensors(readFileSync(join(dir, 'model.safetensors')));
  const wrong = Object.fromEntries(Object.entries(tensors).map(([k, x]) => [k, { ...x, data: x.data.slice() }]));
  wrong['head.fc1.bias'].shape = [2, SMALL.head_width / 2];
  const bytes = encodeSafetensors(wrong, metadata);
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  manifest.files['model.safetensors'] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  await assert.rejects(AdapterPolicy.fromCheckpoint(dir),
    (e) => e.message.includes(join(dir, 'model.safetensors')) && /tensor 'head\.fc1\.bias' has shape \[2, 12\], expected \[24\]/.test(e.message));
});
