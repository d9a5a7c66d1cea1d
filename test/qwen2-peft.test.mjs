// PEFT LoRA adapter directories (names, shapes and adapter_config.json as PEFT writes
// them; read back with PEFT's defaults and named refusals) and policy.safetensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseQwen2Config, allocateLoraAdapter, writePeftAdapter, readPeftAdapter, loraTensorName,
  allocatePolicyWeights, writePolicyFile, readPolicyFile,
} from '../dist/model/qwen2/index.js';
import { FormatError, decodeSafetensors, encodeSafetensors } from '../dist/formats/index.js';
import { TINY_QWEN2_CONFIG } from './helpers/hf-tiny.mjs';
import { toBF16 } from './helpers/hf-tiny.mjs';
import { randn, rng } from './helpers/random.mjs';
import { withTempDir } from './helpers/temp-dir.mjs';

const cfg = parseQwen2Config(TINY_QWEN2_CONFIG, 'config.json');
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
// (out, in) of each linear layer for D=64, 4 heads of 16, 2 KV heads, MLP 128 — by hand.
const IO = { q_proj: [64, 64], k_proj: [32, 64], v_proj: [32, 64], o_proj: [64, 64], gate_proj: [128, 64], up_proj: [128, 64], down_proj: [64, 128] };
const GROUP = { q_proj: 'self_attn', k_proj: 'self_attn', v_proj: 'self_attn', o_proj: 'self_attn', gate_proj: 'mlp', up_proj: 'mlp', down_proj: 'mlp' };

function seededAdapter(rank, alpha, targets, seed) {
  const a = allocateLoraAdapter(cfg, { rank, alpha, targets });
  const rand = rng(seed);
  for (const pairs of a.layers) for (const t of a.targets) { pairs[t].a.set(randn(pairs[t].a.length, rand)); pairs[t].b.set(randn(pairs[t].b.length, rand)); }
  return a;
}

test('PEFT adapter: tensor names and shapes, adapter_config.json keys and values as PEFT writes them', () => withTempDir('craftgrad-peft-', async (dir) => {
  const ad = seededAdapter(8, 16, ALL, 1);
  await writePeftAdapter(dir, cfg, ad, { baseModelNameOrPath: 'Qwen/Qwen2.5-0.5B' });
  assert.deepEqual(readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const st = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'adapter_model.safetensors'))));
  assert.deepEqual(st.metadata, { format: 'pt' });
  const names = Object.keys(st.tensors).sort();
  assert.equal(names.length, 4 * 7 * 2);
  for (let l = 0; l < 4; l++) {
    for (const t of ALL) {
      const [out, inp] = IO[t];
      const A = st.tensors[`base_model.model.model.layers.${l}.${GROUP[t]}.${t}.lora_A.weight`];
      const B = st.tensors[`base_model.model.model.layers.${l}.${GROUP[t]}.${t}.lora_B.weight`];
      assert.deepEqual([A.dtype, ...A.shape], ['F32', 8, inp], `${l} ${t} A`);
      assert.deepEqual([B.dtype, ...B.shape], ['F32', out, 8], `${l} ${t} B`);
      assert.deepEqual(A.data, ad.layers[l][t].a);
      assert.deepEqual(B.data, ad.layers[l][t].b);
    }
  }
  assert.equal(loraTensorName(0, 'q_proj', 'A'), 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
  const text = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
  const json = JSON.parse(text);
  assert.deepEqual(Object.keys(json), Object.keys(json).slice().sort(), 'keys sorted, as PEFT writes them');
  assert.deepEqual(json, {
    alpha_pattern: {}, base_model_name_or_path: 'Qwen/Qwen2.5-0.5B', bias: 'none', fan_in_fan_out: false, inference_mode: true,
    init_lora_weights: true, layers_pattern: null, layers_to_transform: null, lora_alpha: 16, lora_dropout: 0, modules_to_save: null,
    peft_type: 'LORA', r: 8, rank_pattern: {}, revision: null, target_modules: ALL, task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false,
  });
}));

test('PEFT adapter: round trip, a subset of targets, and a bf16 adapter written by someone else', () => withTempDir('craftgrad-peft-', async (dir) => {
  const ad = seededAdapter(4, 6, ['v_proj', 'q_proj', 'down_proj'], 2);
  assert.deepEqual(ad.targets, ['q_proj', 'v_proj', 'down_proj']);
  await writePeftAdapter(join(dir, 'a'), cfg, ad);
  const back = await readPeftAdapter(join(dir, 'a'), cfg, { rank: 4, alpha: 6, targets: ['down_proj', 'q_proj', 'v_proj'] });
  assert.deepEqual(back.warnings, []);
  assert.equal(back.adapter.rank, 4);
  assert.equal(back.adapter.alpha, 6);
  assert.deepEqual(back.adapter.targets, ['q_proj', 'v_proj', 'down_proj']);
  for (let l = 0; l < 4; l++) for (const t of ad.targets) assert.deepEqual(back.adapter.layers[l][t], ad.layers[l][t]);
  assert.equal(back.adapter.layers[0].k_proj, undefined);
  // Overwriting an existing adapter replaces both files.
  const ad2 = seededAdapter(4, 6, ['q_proj', 'v_proj', 'down_proj'], 3);
  await writePeftAdapter(join(dir, 'a'), cfg, ad2);
  assert.deepEqual((await readPeftAdapter(join(dir, 'a'), cfg)).adapter.layers[2].v_proj, ad2.layers[2].v_proj);
  assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['adapter_config.json', 'adapter_model.safetensors'], 'no temporary files left');

  // A bf16 adapter on q/v with PEFT's defaults (r 8, lora_alpha 8 when absent; target_modules null = q_proj, v_proj), dropout 0.05.
  const tensors = {}, want = {};
  const rand = rng(4);
  for (let l = 0; l < 4; l++) for (const t of ['q_proj', 'v_proj']) {
    const [out, inp] = IO[t];
    for (const [f, shape] of [['A', [8, inp]], ['B', [out, 8]]]) {
      const { bits, back } = toBF16(randn(shape[0] * shape[1], rand));
      const name = `base_model.model.model.layers.${l}.self_attn.${t}.lora_${f}.weight`;
      tensors[name] = { dtype: 'BF16', shape, data: bits };
      want[name] = back;
    }
  }
  writeFileSync(join(dir, 'adapter_model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', target_modules: null, lora_dropout: 0.05, task_type: 'CAUSAL_LM', unknown_future_key: 1 }));
  const r = await readPeftAdapter(dir, cfg);
  assert.equal(r.adapter.rank, 8);
  assert.equal(r.adapter.alpha, 8);
  assert.deepEqual(r.adapter.targets, ['q_proj', 'v_proj']);
  assert.deepEqual(r.adapter.layers[3].v_proj.b, want['base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight']);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /lora_dropout 0\.05 is ignored/);
}));

test('PEFT adapter: unsupported settings, mismatches, and missing/extra/misshapen tensors are named errors', () => withTempDir('craftgrad-peft-', async (dir) => {
  const ad = seededAdapter(4, 8, ['q_proj', 'o_proj'], 5);
  await writePeftAdapter(dir, cfg, ad);
  const cfgPath = join(dir, 'adapter_config.json'), wPath = join(dir, 'adapter_model.safetensors');
  const good = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const badConfigs = [
    [{ peft_type: 'IA3' }, 'peft_type'], [{ use_rslora: true }, 'use_rslora'], [{ use_dora: true }, 'use_dora'], [{ bias: 'all' }, 'bias'],
    [{ fan_in_fan_out: true }, 'fan_in_fan_out'], [{ modules_to_save: ['lm_head'] }, 'modules_to_save'], [{ layers_to_transform: [0, 1] }, 'layers_to_transform'],
    [{ rank_pattern: { q_proj: 8 } }, 'rank_pattern'], [{ alpha_pattern: { q_proj: 8 } }, 'alpha_pattern'], [{ lora_bias: true }, 'lora_bias'],
    [{ target_modules: '.*proj' }, 'target_modules'], [{ target_modules: ['q_proj', 'lm_head'] }, 'target_modules'], [{ target_modules: [] }, 'target_modules'],
    [{ r: 0 }, 'r'], [{ lora_alpha: -1 }, 'lora_alpha'], [{ lora_dropout: 1.5 }, 'lora_dropout'],
  ];
  for (const [edit, field] of badConfigs) {
    writeFileSync(cfgPath, JSON.stringify({ ...good, ...edit }));
    await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.file === cfgPath && e.field === field && e.message.includes(cfgPath), JSON.stringify(edit));
  }
  writeFileSync(cfgPath, JSON.stringify(good));
  // Asked-for settings that the adapter does not have.
  await assert.rejects(readPeftAdapter(dir, cfg, { rank: 8 }), (e) => e instanceof FormatError && e.field === 'r' && /is 4 but this run asks for 8/.test(e.message));
  await assert.rejects(readPeftAdapter(dir, cfg, { alpha: 16 }), (e) => e instanceof FormatError && e.field === 'lora_alpha');
  await assert.rejects(readPeftAdapter(dir, cfg, { targets: ALL }), (e) => e instanceof FormatError && e.field === 'target_modules');
  // Tensor errors.
  const st = decodeSafetensors(new Uint8Array(readFileSync(wPath)));
  const rewrite = (edit) => { const t = { ...st.tensors }; edit(t); writeFileSync(wPath, encodeSafetensors(t)); };
  const qA = 'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight';
  rewrite((t) => { delete t[qA]; });
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.file === wPath && e.field === `tensors["${qA}"]` && /missing/.test(e.message));
  rewrite((t) => { t[qA] = { ...t[qA], shape: [64, 4] }; });
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.field === `tensors["${qA}"]` && /shape \[64, 4\] but \[4, 64\]/.test(e.message));
  const extra = 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight';
  rewrite((t) => { t[extra] = { dtype: 'F32', shape: [4, 64], data: new Float32Array(256) }; });
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.field === `tensors["${extra}"]` && /extra tensor/.test(e.message));
  rewrite((t) => { t[qA] = { dtype: 'I32', shape: [4, 64], data: new Int32Array(256) }; });
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.field === `tensors["${qA}"].dtype`);
  rmSync(wPath);
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.file === wPath && /missing/.test(e.message));
  rmSync(cfgPath);
  await assert.rejects(readPeftAdapter(dir, cfg), (e) => e instanceof FormatError && e.file === cfgPath && /missing/.test(e.message));
  // Writing checks the adapter against the model.
  const bad = seededAdapter(4, 8, ['q_proj'], 6);
  bad.layers[2].q_proj.b = new Float32Array(3);
  await assert.rejects(writePeftAdapter(join(dir, 'w'), cfg, bad), /adapter\.layers\[2\]\.q_proj\.b must be a Float32Array of 64×4/);
}));

test('policy file: round trip with exact shapes, and every error named', () => withTempDir('craftgrad-peft-', async (dir) => {
  const shape = { queries: 8, width: 64, headWidth: 32, actionDims: 7 };
  const p = allocatePolicyWeights(shape);
  const rand = rng(9);
  for (const k of ['actionQueries', 'fc1Weight', 'fc1Bias', 'fc2Weight', 'fc2Bias']) p[k].set(randn(p[k].length, rand));
  const path = join(dir, 'policy.safetensors');
  await writePolicyFile(path, p);
  const st = decodeSafetensors(new Uint8Array(readFileSync(path)));
  assert.deepEqual(Object.fromEntries(Object.entries(st.tensors).map(([n, t]) => [n, t.shape])), {
    action_queries: [8, 64], 'head.fc1.weight': [32, 64], 'head.fc1.bias': [32], 'head.fc2.weight': [7, 32], 'head.fc2.bias': [7],
  });
  const back = await readPolicyFile(path, shape);
  for (const k of ['actionQueries', 'fc1Weight', 'fc1Bias', 'fc2Weight', 'fc2Bias']) assert.deepEqual(back[k], p[k], k);
  await assert.rejects(readPolicyFile(path, { ...shape, queries: 4 }), (e) => e instanceof FormatError && e.file === path && e.field === 'tensors["action_queries"]' && /\[8, 64\] but \[4, 64\]/.test(e.message));
  await assert.rejects(readPolicyFile(path, { ...shape, actionDims: 6 }), (e) => e instanceof FormatError && e.field === 'tensors["head.fc2.weight"]');
  const rewrite = (edit) => { const t = { ...st.tensors }; edit(t); writeFileSync(path, encodeSafetensors(t)); };
  rewrite((t) => { delete t['head.fc1.bias']; });
  await assert.rejects(readPolicyFile(path, shape), (e) => e instanceof FormatError && e.field === 'tensors["head.fc1.bias"]' && /missing/.test(e.message));
  rewrite((t) => { t['head.fc3.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) }; });
  await assert.rejects(readPolicyFile(path, shape), (e) => e instanceof FormatError && e.field === 'tensors["head.fc3.weight"]' && /extra tensor/.test(e.message));
  rewrite((t) => { t['head.fc2.bias'] = { dtype: 'F32', shape: [7], data: Float32Array.of(0, 0, Infinity, 0, 0, 0, 0) }; });
  await assert.rejects(readPolicyFile(path, shape), (e) => e instanceof FormatError && e.field === 'tensors["head.fc2.bias"]' && /non-finite value \(Infinity\) at flat index 2/.test(e.message));
  p.fc2Bias = new Float32Array(6);
  await assert.rejects(writePolicyFile(path, p), /policy\.fc2Bias must be a Float32Array of 7 values/);
  assert.deepEqual(readdirSync(dir), ['policy.safetensors'], 'a failed write leaves the old file and no temporary');
}));
