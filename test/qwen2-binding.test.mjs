// The raw qwen2Step binding and Qwen2Policy refuse bad calls before any kernel runs, with
// an error naming the argument; the layout comes from native/core (qwen2Tensors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../dist/native.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { SMALL, tinyDir, tinyPolicy } from './helpers/qwen2-setup.mjs';

const written = tinyDir(SMALL);

async function setup(options = {}) {
  const t = await tinyPolicy(written, options, { seed: 4 });
  const p = t.policy;
  const raw = (over = {}) => ({
    config: p.config, mode: 'craft', params: handle(p.params), anchor: handle(p.anchor),
    gAct: handle(p.newGradSet()), gRet: handle(p.newGradSet()),
    frozen: { embedTokens: p.hf.weights.embedTokens, layers: p.hf.weights.layers.map((l) => l.data), finalNorm: p.hf.weights.finalNorm },
    prefix: t.batch.prefix, inputIds: t.batch.inputIds, actions: t.batch.actions, batch: t.batch.size, accumulate: false, scale: 1, ...over,
  });
  return { ...t, raw };
}

// The GradSet's native handle, as src/ passes it.
import { GradSet, gradSetInternals } from '../dist/gradset.js';
const handle = (g) => gradSetInternals(g);

test('qwen2Tensors: PEFT and policy names with their shapes, the anchor leading', async () => {
  const { policy } = await setup({ targets: ['q_proj', 'down_proj'] });
  const t = binding.qwen2Tensors(policy.config);
  assert.deepEqual(t.trainable.slice(0, 2), [
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', shape: [4, 32] },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', shape: [32, 4] },
  ]);
  assert.deepEqual(t.trainable[3], { name: 'base_model.model.model.layers.0.mlp.down_proj.lora_B.weight', shape: [32, 4] });
  assert.deepEqual(t.trainable.slice(-5), [
    { name: 'action_queries', shape: [3, 32] }, { name: 'head.fc1.weight', shape: [8, 32] }, { name: 'head.fc1.bias', shape: [8] },
    { name: 'head.fc2.weight', shape: [2, 8] }, { name: 'head.fc2.bias', shape: [2] },
  ]);
  assert.equal(t.anchorTensors, 4 * 2 * 2 + 1);
  assert.deepEqual(policy.trainableNames, t.trainable.map((d) => d.name));
});

test('bad arguments: a named RangeError or TypeError, gradients untouched', async () => {
  const { raw, policy, batch } = await setup();
  const g = policy.newGradSet();
  g.data.fill(7);
  const cases = [
    [{ inputIds: Int32Array.from(batch.inputIds, (v, i) => (i === 3 ? 64 : v)) }, /inputIds\[3\] is 64, outside the vocabulary \[0, 64\)/],
    [{ inputIds: Int32Array.from(batch.inputIds, (v, i) => (i === 0 ? -1 : v)) }, /inputIds\[0\] is -1/],
    [{ inputIds: Float32Array.from(batch.inputIds) }, /inputIds must be an Int32Array/],
    [{ prefix: batch.prefix.subarray(1) }, /prefix has \d+ elements but batch×prefixTokens×hiddenSize needs/],
    [{ actions: new Float32Array(3) }, /actions has 3 elements/],
    [{ batch: 0 }, /batch must be an integer from 1/],
    [{ scale: NaN }, /scale must be a finite number/],
    [{ mode: 'train' }, /mode must be one of 'craft', 'baseline', 'eval', 'evalRetention'/],
    [{ gAct: handle(g), gRet: handle(g) }, /gAct and gRet overlap in memory/],
    [{ gAct: handle(policy.params) }, /gAct and params overlap in memory/],
    [{ anchor: handle(policy.params) }, /anchor has \d+ elements but the policy's anchor layout needs/],
  ];
  for (const [over, re] of cases) assert.throws(() => binding.qwen2Step(raw(over)), re, JSON.stringify(Object.keys(over)));
  const bad = (f) => raw({ frozen: { ...raw().frozen, ...f } });
  assert.throws(() => binding.qwen2Step(bad({ layers: raw().frozen.layers.slice(1) })), /frozen.layers has 3 entries but numLayers is 4/);
  assert.throws(() => binding.qwen2Step(bad({ finalNorm: new Float32Array(3) })), /frozen.finalNorm has 3 elements/);
  assert.throws(() => binding.qwen2Step(bad({ layers: [new Float32Array(5), ...raw().frozen.layers.slice(1)] })), /frozen.layers\[0\] has 5 elements but one decoder layer needs/);
  // The operand reader: host inputs overlapping a written set (host sets), a detached Int32Array.
  const n = policy.params.numElements, layers = raw().frozen.layers;
  const wide = new Float32Array(batch.actions.length + n);
  wide.set(batch.actions);
  const hostSet = (a) => new binding.TensorSet({ device: 'cpu', sizes: [a.length], data: a });
  assert.throws(() => binding.qwen2Step(raw({ actions: wide.subarray(0, batch.actions.length), gAct: hostSet(wide.subarray(1, 1 + n)) })),
    (e) => e instanceof RangeError && e.message === 'gAct and actions overlap in memory');
  const lw = layers[2].length, under = new Float32Array(lw + n);
  under.set(layers[2]);
  const over = raw({ gRet: hostSet(under.subarray(lw - 2, lw - 2 + n)) });
  over.frozen = { ...over.frozen, layers: [...layers.slice(0, 2), under.subarray(0, lw), ...layers.slice(3)] };
  assert.throws(() => binding.qwen2Step(over), (e) => e instanceof RangeError && e.message === 'gRet and frozen.layers[2] overlap in memory');
  const ids = batch.inputIds.slice();
  structuredClone(ids.buffer, { transfer: [ids.buffer] });
  assert.throws(() => binding.qwen2Step(raw({ inputIds: ids })), (e) => e instanceof TypeError && e.message === "inputIds's buffer is detached");
  for (const [field, value, re] of [
    ['bridgeLayer', 5, /config.bridgeLayer must be an integer from 0 to numLayers=4, got 5/],
    ['targets', ['qkv'], /config.targets\[0\] must be one of q_proj/],
    ['bridgeSpan', 'all', /bridgeSpan must be one of 'prefix', 'prefix\+prompt'/],
    ['numKvHeads', 3, /config.numKvHeads must divide numHeads/],
    ['prefixTokens', 0, /config.bridgeSpan 'prefix' covers no tokens/],
  ]) assert.throws(() => binding.qwen2Step(raw({ config: { ...policy.config, [field]: value } })), re, field);
  assert.ok(g.data.every((v) => v === 7), 'nothing written');
});

test('Qwen2Policy options and calls: named errors', async () => {
  await assert.rejects(Qwen2Policy.fromHfDirectory(written.dir, { actionDims: 2 }), /options.chunk is required/);
  await assert.rejects(Qwen2Policy.fromHfDirectory(written.dir, { chunk: 2, actionDims: 2, pooling: 'sum' }), /options.pooling must be one of 'mean', 'max'/);
  await assert.rejects(Qwen2Policy.fromHfDirectory(written.dir, { chunk: 2, actionDims: 2, targets: ['lm_head'] }), /options.targets has "lm_head"|options.targets has 'lm_head'|lm_head/);
  await assert.rejects(Qwen2Policy.fromHfDirectory(written.dir, { chunk: 2, actionDims: 2, lr: 1 }), /lr/);
  const { policy, batch } = await setup();
  assert.throws(() => policy.craftStep(batch, policy.newGradSet(), new Float32Array(3)), /gRet must be a GradSet/);
  const g = policy.newGradSet();
  assert.throws(() => policy.craftStep(batch, g, g), /gAct and gRet must be different GradSets/);
});

test('a fresh policy: LoRA B = 0 and the anchor equal to the weights, so retention is 0 and g_ret is 0', async () => {
  const policy = await Qwen2Policy.fromHfDirectory(written.dir, { rank: 4, prefixTokens: 2, promptTokens: 1, chunk: 2, actionDims: 3, headWidth: 8, seed: 3 });
  assert.equal(policy.config.alpha, 8, 'alpha defaults to 2·rank');
  assert.equal(policy.config.bridgeLayer, 2, 'bridge layer defaults to ⌊(L+1)/2⌋');
  const batch = { size: 2, prefix: new Float32Array(2 * 2 * 32).fill(0.3), inputIds: Int32Array.of(5, 9), actions: new Float32Array(12).fill(0.1) };
  const gAct = policy.newGradSet(), gRet = policy.newGradSet();
  const r = policy.craftStep(batch, gAct, gRet);
  assert.equal(r.retentionLoss, 0);
  assert.ok(gRet.data.every((v) => v === 0));
  assert.ok(gAct.data.some((v) => v !== 0));
});

test('the async forms give the same bits as the synchronous ones', async () => {
  const { policy, batch } = await setup();
  const sync = [policy.newGradSet(), policy.newGradSet()], asy = [policy.newGradSet(), policy.newGradSet()];
  const a = policy.craftStep(batch, ...sync);
  const b = await policy.craftStepAsync(batch, ...asy);
  assert.deepEqual(b, a);
  assert.deepEqual(asy[0].data, sync[0].data);
  assert.deepEqual(asy[1].data, sync[1].data);
  const base = await policy.baselineStepAsync(batch, asy[1]);
  assert.equal(base.actionLoss, a.actionLoss);
  assert.deepEqual(asy[1].data, sync[0].data);
});

const cudaInfo = binding.backendInfo().cuda;
const noGpu = !cudaInfo.available ? `no usable GPU (${cudaInfo.compiled ? cudaInfo.reason : 'CUDA backend not compiled'})` : false;
if (noGpu) console.log(`# qwen2-binding: CUDA test skipped: ${noGpu}`);

test('on CUDA the step refuses host frozen arrays (they must be uploaded once, as a TensorSet)', { skip: noGpu }, async () => {
  const { raw, policy } = await setup();
  const onGpu = (g) => handle(GradSet.zeros(g.sizes, { device: 'cuda:0' }));
  const args = raw({ params: onGpu(policy.params), anchor: onGpu(policy.anchor), gAct: onGpu(policy.params), gRet: onGpu(policy.params) });
  assert.throws(() => binding.qwen2Step(args), (e) => e instanceof TypeError && /frozen must be a TensorSet on cuda:0/.test(e.message));
});
