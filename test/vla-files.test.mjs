// VLA-Adapter checkpoint directories (src/model/vla): config.json / preprocessor_config.json,
// the frozen groups in native/core/vla_desc.cc's layout, the Prismatic base's renames, the
// head/proprio .pt files, every error naming its file and field, and what a checkpoint
// writes (PEFT adapter, .pt files read back by torch, merged model folded as PEFT folds).
//
// The expected names, shapes, group lengths and offsets are written out here from
// upstream's modules and vla_desc.cc's formulas, independently of src/model/vla. A later
// test compares the group lengths with binding.vlaTensors(config).frozen once the native
// side lands (this file runs without the addon). Tests that need torch skip, saying why,
// when /usr/bin/python3 lacks it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseVlaConfig, parseVlaPreprocessor, loadVlaDirectory, loadPrismaticBase, vlaFrozenLayout, headTrainableSpecs,
  initUntrainedLora, initFilmGen, vlaLoraModules, vlaPeftTargetModules, writeVlaCheckpointOutputs, exportMergedVla,
  writeVlaLoraAdapter, DATASET_STATISTICS_PLACEHOLDER, renamePrismaticKey, vlaRawModelConfig,
} from '../dist/model/vla/index.js';
import { FormatError, encodeSafetensors, decodeSafetensors } from '../dist/formats/index.js';
import { rng } from './helpers/random.mjs';
import { withTempDir } from './helpers/temp-dir.mjs';
import { py, torchMissing, torchSave, testTorchPtIo } from './helpers/vla-torch.mjs';

const NO_TORCH = torchMissing();
if (NO_TORCH) console.log(`# vla-files: torch tests skipped: ${NO_TORCH}`);
const torchTest = (name, fn) => test(name, NO_TORCH ? { skip: NO_TORCH } : {}, fn);
const IO = NO_TORCH ? undefined : testTorchPtIo();

// ---------------------------------------------------------------------------------------
// The tiny model: towers D 16 (cls + 2 registers, LayerScale, depth 3) and D 12 (no prefix,
// attn_pool, depth 2), patch 4 on 8×8 images (N = 4); Qwen2 D 32, 2 layers, 4/2 heads, I 48, V 40.

const T0 = { embed_dim: 16, depth: 3, num_heads: 2, mlp_hidden: 24, patch_size: 4, reg_tokens: 2, class_token: 1, layer_scale: true };
const T1 = { embed_dim: 12, depth: 2, num_heads: 2, mlp_hidden: 20, patch_size: 4, reg_tokens: 0, class_token: 0, layer_scale: false, attn_pool: true };
const TEXT = {
  model_type: 'qwen2', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48,
  vocab_size: 40, rms_norm_eps: 1e-6, rope_theta: 10000.0, tie_word_embeddings: true, hidden_act: 'silu', use_sliding_window: false, torch_dtype: 'float32',
};
const CONFIG = {
  architectures: ['OpenVLAForActionPrediction'], model_type: 'openvla', use_fused_vision_backbone: true,
  timm_model_ids: ['vit_large_patch14_reg4_dinov2.lvd142m', 'vit_so400m_patch14_siglip_224'], timm_override_act_layers: [null, null],
  image_sizes: [8, 8], text_config: TEXT, craftgrad_tiny_towers: [T0, T1],
};
const PRE = {
  tvf_normalize_params: [
    { inplace: false, mean: [0.484375, 0.455078125, 0.40625], std: [0.228515625, 0.2236328125, 0.224609375] },
    { inplace: false, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  ],
};
const N = 4, D = 32, V = 40, L = 2, I = 48, KV = 16, Q = 3, A = 5, NB = 2, P8 = 6;

/** Tower tensors in vla_desc's order, per vitStemOffsets / vitBlockOffsets. */
function towerTensors(t, p) {
  const E = t.embed_dim, M = t.mlp_hidden, pp = t.patch_size;
  const stem = [[`${p}.patch_embed.proj.weight`, [E, 3, pp, pp]], [`${p}.patch_embed.proj.bias`, [E]], [`${p}.pos_embed`, [1, N, E]]];
  if (t.class_token) stem.push([`${p}.cls_token`, [1, 1, E]]);
  if (t.reg_tokens) stem.push([`${p}.reg_token`, [1, t.reg_tokens, E]]);
  const block = (b) => {
    const q = `${p}.blocks.${b}`;
    const out = [[`${q}.norm1.weight`, [E]], [`${q}.norm1.bias`, [E]], [`${q}.attn.qkv.weight`, [3 * E, E]], [`${q}.attn.qkv.bias`, [3 * E]],
      [`${q}.attn.proj.weight`, [E, E]], [`${q}.attn.proj.bias`, [E]]];
    if (t.layer_scale) out.push([`${q}.ls1.scale_factor`, [E]]);
    out.push([`${q}.norm2.weight`, [E]], [`${q}.norm2.bias`, [E]], [`${q}.mlp.fc1.weight`, [M, E]], [`${q}.mlp.fc1.bias`, [M]],
      [`${q}.mlp.fc2.weight`, [E, M]], [`${q}.mlp.fc2.bias`, [E]]);
    if (t.layer_scale) out.push([`${q}.ls2.scale_factor`, [E]]);
    return out;
  };
  const blocks = [];
  for (let b = 0; b < t.depth - 1; b++) blocks.push(block(b));
  const skipped = [...block(t.depth - 1), [`${p}.norm.weight`, [E]], [`${p}.norm.bias`, [E]]];
  if (t.attn_pool) {
    skipped.push([`${p}.attn_pool.latent`, [1, 1, E]], [`${p}.attn_pool.q.weight`, [E, E]], [`${p}.attn_pool.q.bias`, [E]],
      [`${p}.attn_pool.kv.weight`, [2 * E, E]], [`${p}.attn_pool.kv.bias`, [2 * E]], [`${p}.attn_pool.proj.weight`, [E, E]],
      [`${p}.attn_pool.proj.bias`, [E]], [`${p}.attn_pool.norm.weight`, [E]], [`${p}.attn_pool.norm.bias`, [E]],
      [`${p}.attn_pool.mlp.fc1.weight`, [M, E]], [`${p}.attn_pool.mlp.fc1.bias`, [M]], [`${p}.attn_pool.mlp.fc2.weight`, [E, M]],
      [`${p}.attn_pool.mlp.fc2.bias`, [E]]);
  }
  return { stem, blocks, skipped };
}

/** [group name, tensors in order] as vlaFrozenGroups lays them out; plus the tensors never computed. */
function expectedGroups() {
  const groups = [];
  const skipped = [];
  for (const [k, t] of [['featurizer', T0], ['fused_featurizer', T1]]) {
    const tw = towerTensors(t, `vision_backbone.${k}`);
    groups.push([`${k}.stem`, tw.stem]);
    tw.blocks.forEach((b, i) => groups.push([`${k}.blocks.${i}`, b]));
    skipped.push(...tw.skipped);
  }
  const Dv = 16 + 12, H = 4 * Dv;
  groups.push(['projector', [['projector.fc1.weight', [H, Dv]], ['projector.fc1.bias', [H]], ['projector.fc2.weight', [D, H]],
    ['projector.fc2.bias', [D]], ['projector.fc3.weight', [D, D]], ['projector.fc3.bias', [D]]]]);
  groups.push(['embed_tokens', [['language_model.model.embed_tokens.weight', [V, D]]]]);
  for (let l = 0; l < L; l++) {
    const p = `language_model.model.layers.${l}`;
    // qwen2LayerOffsets: inNorm, q W/B, k W/B, v W/B, o W, postNorm, gate, up, down.
    groups.push([`layers.${l}`, [[`${p}.input_layernorm.weight`, [D]], [`${p}.self_attn.q_proj.weight`, [D, D]], [`${p}.self_attn.q_proj.bias`, [D]],
      [`${p}.self_attn.k_proj.weight`, [KV, D]], [`${p}.self_attn.k_proj.bias`, [KV]], [`${p}.self_attn.v_proj.weight`, [KV, D]],
      [`${p}.self_attn.v_proj.bias`, [KV]], [`${p}.self_attn.o_proj.weight`, [D, D]], [`${p}.post_attention_layernorm.weight`, [D]],
      [`${p}.mlp.gate_proj.weight`, [I, D]], [`${p}.mlp.up_proj.weight`, [I, D]], [`${p}.mlp.down_proj.weight`, [D, I]]]]);
  }
  groups.push(['norm', [['language_model.model.norm.weight', [D]]]]);
  return { groups, skipped };
}

/** vla_desc.cc's group lengths from its formulas (vitStemOffsets, vitBlockOffsets, projectorOffsets, qwen2LayerOffsets). */
function expectedGroupLengths() {
  const out = [];
  for (const [k, t] of [['featurizer', T0], ['fused_featurizer', T1]]) {
    const E = t.embed_dim, M = t.mlp_hidden, pix = 3 * t.patch_size ** 2;
    out.push([`${k}.stem`, E * pix + E + N * E + (t.class_token ? E : 0) + t.reg_tokens * E]);
    const block = 2 * E + 3 * E * E + 3 * E + E * E + E + (t.layer_scale ? E : 0) + 2 * E + M * E + M + E * M + E + (t.layer_scale ? E : 0);
    for (let b = 0; b < t.depth - 1; b++) out.push([`${k}.blocks.${b}`, block]);
  }
  const Dv = 28, H = 112;
  out.push(['projector', H * Dv + H + D * H + D + D * D + D]);
  out.push(['embed_tokens', V * D]);
  const layer = D + D * D + D + 2 * (KV * D + KV) + D * D + D + 3 * I * D;
  for (let l = 0; l < L; l++) out.push([`layers.${l}`, layer]);
  out.push(['norm', D]);
  return out;
}

const size = (s) => s.reduce((a, b) => a * b, 1);

/** Seeded values for every tensor of the model file (name -> Float32Array). */
function modelValues(seed = 7) {
  const r = rng(seed, { centered: true });
  const { groups, skipped } = expectedGroups();
  const vals = new Map();
  for (const [, ts] of groups) for (const [n, s] of ts) vals.set(n, { shape: s, data: Float32Array.from({ length: size(s) }, () => r()) });
  for (const [n, s] of skipped) vals.set(n, { shape: s, data: Float32Array.from({ length: size(s) }, () => r()) });
  vals.set('action_queries.weight', { shape: [Q, D], data: Float32Array.from({ length: Q * D }, () => r()) });
  return vals;
}

function writeModelDir(dir, { vals = modelValues(), config = CONFIG, pre = PRE, drop = [], reshape = {} } = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (pre !== null) writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(pre, null, 2));
  const tensors = {};
  for (const [n, t] of vals) {
    if (drop.includes(n)) continue;
    const shape = reshape[n] ?? t.shape;
    const data = reshape[n] ? new Float32Array(size(shape)) : t.data;
    tensors[n] = { dtype: 'F32', shape, data };
  }
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  return vals;
}

const STATS_TEXT = '{\n  "tiny_dataset": {"action": {"q01": [0, 1], "q99": [1, 2]}, "num_transitions": 3}\n}\n';

/** Head and proprio tensors (file keys without module.), with film_gen, seeded. */
function headValues({ blocks = NB, seed = 11 } = {}) {
  const r = rng(seed, { centered: true });
  const head = [['model.layer_norm1.weight', [A * D]], ['model.layer_norm1.bias', [A * D]], ['model.fc1.weight', [D, A * D]], ['model.fc1.bias', [D]]];
  for (let b = 0; b < blocks; b++) {
    const p = `model.mlp_resnet_blocks.${b}.`;
    head.push([`${p}gating_factor`, [1]], [`${p}ffn.0.weight`, [D]], [`${p}ffn.0.bias`, [D]], [`${p}ffn.1.weight`, [D, D]], [`${p}ffn.1.bias`, [D]]);
    for (const l of ['q_proj', 'k_self', 'v_self', 'k_adapter', 'v_adapter', 'k_task', 'v_task', 'o_proj']) head.push([`${p}${l}.weight`, [D, D]], [`${p}${l}.bias`, [D]]);
    head.push([`${p}film_gen.0.weight`, [2 * D, D]], [`${p}film_gen.0.bias`, [2 * D]]);
  }
  head.push(['model.layer_norm2.weight', [D]], ['model.layer_norm2.bias', [D]], ['model.fc2.weight', [A, D]], ['model.fc2.bias', [A]]);
  const proprio = [['fc1.weight', [D, P8]], ['fc1.bias', [D]], ['fc2.weight', [D, D]], ['fc2.bias', [D]]];
  const fill = (list) => list.map(([n, s]) => [n, { dtype: 'F32', shape: s, data: Float32Array.from({ length: size(s) }, () => r()) }]);
  return { head: fill(head), proprio: fill(proprio) };
}

/** bf16 round-to-nearest-even of a float32, computed here by bit arithmetic. */
function bf16(x) {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0];
  const r = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
  return new Float32Array(new Uint32Array([r >>> 0]).buffer)[0];
}

function writeHeadFiles(dir, { step = 100, blocks = NB, bf16Names = ['model.fc1.weight'], extra = null } = {}) {
  const { head, proprio } = headValues({ blocks });
  const entries = head.map(([n, t]) => [[`module.${n}`], t]);
  torchSave(join(dir, `action_head--${step}_checkpoint.pt`), entries, { bf16: bf16Names.map((n) => [`module.${n}`]) });
  torchSave(join(dir, `proprio_projector--${step}_checkpoint.pt`), proprio.map(([n, t]) => [[`module.${n}`], t]));
  if (extra) extra(dir);
  return { head, proprio };
}

async function rejects(p, { file, field, message }) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof FormatError, `a FormatError, got ${e?.constructor?.name}: ${e?.message}`);
    if (file !== undefined) assert.equal(e.file, file, e.message);
    if (field !== undefined) assert.equal(e.field, field, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------

test('config: the tiny towers, the released model\'s timm shapes, and the preprocessor\'s normalisation', () => {
  const c = parseVlaConfig(CONFIG, 'config.json');
  assert.equal(c.tinyTowers, true);
  assert.deepEqual({ ...c.towers[0] }, {
    timmId: 'vit_large_patch14_reg4_dinov2.lvd142m', embedDim: 16, depth: 3, numHeads: 2, mlpHidden: 24, patchSize: 4,
    classToken: 1, regTokens: 2, layerScale: true, layerNormEps: 1e-6, attnPool: false, imageSize: 8,
  });
  assert.equal(c.towers[1].attnPool, true);
  assert.equal(c.projectorHidden, 112);
  assert.equal(c.text.hiddenSize, 32);
  assert.equal(vlaRawModelConfig(c).towers[1].classToken, 0);

  // The released VLA-Adapter config (pretrained_models/configs/config.json), no override.
  const { craftgrad_tiny_towers: _, ...real } = CONFIG;
  const r = parseVlaConfig({
    ...real, image_sizes: [224, 224],
    text_config: { ...TEXT, hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864, vocab_size: 151936, rope_theta: 1e6 },
  }, 'config.json');
  assert.deepEqual([r.towers[0].embedDim, r.towers[0].depth, r.towers[0].numHeads, r.towers[0].mlpHidden, r.towers[0].patchSize, r.towers[0].classToken, r.towers[0].regTokens, r.towers[0].layerScale],
    [1024, 24, 16, 4096, 14, 1, 4, true]);
  assert.deepEqual([r.towers[1].embedDim, r.towers[1].depth, r.towers[1].numHeads, r.towers[1].mlpHidden, r.towers[1].classToken, r.towers[1].regTokens, r.towers[1].layerScale, r.towers[1].attnPool],
    [1152, 27, 16, 4304, 0, 0, false, true]);
  assert.equal(r.projectorHidden, 8704); // fc1 2176 -> 8704
  assert.equal(r.tinyTowers, false);

  const fail = (raw, field, re) => assert.throws(() => parseVlaConfig(raw, 'dir/config.json'), (e) => {
    assert.ok(e instanceof FormatError);
    assert.equal(e.file, 'dir/config.json');
    assert.equal(e.field, field);
    if (re) assert.match(e.message, re);
    return true;
  });
  fail({ ...real, timm_model_ids: ['vit_large_patch14_reg4_dinov2.lvd142m', 'vit_huge_patch14_clip_224'] }, 'timm_model_ids[1]', /vit_huge_patch14_clip_224/);
  fail({ ...CONFIG, use_fused_vision_backbone: false }, 'use_fused_vision_backbone');
  fail({ ...CONFIG, model_type: 'qwen2' }, 'model_type');
  fail({ ...CONFIG, image_sizes: [8, 12] }, 'image_sizes');
  fail({ ...CONFIG, image_sizes: [10, 10] }, 'image_sizes[0]');
  fail({ ...CONFIG, timm_override_act_layers: ['gelu_tanh', null] }, 'timm_override_act_layers');
  fail({ ...CONFIG, craftgrad_tiny_towers: [T0, { ...T1, num_heads: 5 }] }, 'craftgrad_tiny_towers[1].num_heads');
  fail({ ...CONFIG, craftgrad_tiny_towers: [T0, { ...T1, patch_size: 2 }] }, 'craftgrad_tiny_towers');

  const n = parseVlaPreprocessor(PRE, 'p.json');
  assert.deepEqual([...n[0].mean], [0.484375, 0.455078125, 0.40625]);
  assert.deepEqual([...n[1].std], [0.5, 0.5, 0.5]);
  assert.throws(() => parseVlaPreprocessor({}, 'p.json'), (e) => e.field === 'tvf_normalize_params' && e.file === 'p.json');
  assert.throws(() => parseVlaPreprocessor({ tvf_normalize_params: [PRE.tvf_normalize_params[0], { mean: [0.5, 0.5], std: [1, 1, 1] }] }, 'p.json'),
    (e) => e.field === 'tvf_normalize_params[1].mean');
});

test('frozen layout: every group has vla_desc.cc\'s length and its tensors at the offsets of its formulas', () => {
  const layout = vlaFrozenLayout(parseVlaConfig(CONFIG, 'config.json'));
  assert.deepEqual(layout.map((g) => [g.name, g.floats]), expectedGroupLengths());
  const { groups } = expectedGroups();
  assert.deepEqual(layout.map((g) => [g.name, g.tensors.map((t) => [t.name, [...t.shape]])]), groups);
});

test('HF directory: config, frozen groups filled in order, queries apart, statistics verbatim; sharded the same', async () => {
  await withTempDir('vla-dir-', async (dir) => {
    const vals = writeModelDir(dir);
    writeFileSync(join(dir, 'dataset_statistics.json'), STATS_TEXT);
    const m = await loadVlaDirectory(dir);
    assert.equal(m.kind, 'hf');
    assert.equal(m.heads, null);
    assert.equal(m.datasetStatistics.text, STATS_TEXT);
    assert.deepEqual(m.dtypes, ['F32']);
    assert.equal(m.files.length, 1);
    assert.equal(m.normalize[0].mean[0], 0.484375);
    const { groups } = expectedGroups();
    assert.deepEqual(m.frozen.map((g) => g.name), groups.map(([n]) => n));
    for (const [i, [name, ts]] of groups.entries()) {
      const want = new Float32Array(ts.reduce((s, [, sh]) => s + size(sh), 0));
      let o = 0;
      for (const [n] of ts) { want.set(vals.get(n).data, o); o += vals.get(n).data.length; }
      assert.deepEqual(m.frozen[i].data, want, name);
    }
    assert.deepEqual(m.actionQueries, vals.get('action_queries.weight').data);
    // queries must have the rows the run says
    await rejects(loadVlaDirectory(dir, { queries: 64 }), { file: join(dir, 'model.safetensors'), field: 'tensors["action_queries.weight"]' });

    // The same tensors in two shards with an index.
    const shard = join(dir, 'sharded');
    mkdirSync(shard);
    copyFileSync(join(dir, 'config.json'), join(shard, 'config.json'));
    copyFileSync(join(dir, 'preprocessor_config.json'), join(shard, 'preprocessor_config.json'));
    const names = [...vals.keys()];
    const halves = [names.slice(0, 40), names.slice(40)];
    const weightMap = {};
    halves.forEach((h, i) => {
      const f = `model-0000${i + 1}-of-00002.safetensors`;
      const t = {};
      for (const n of h) { t[n] = { dtype: 'F32', shape: vals.get(n).shape, data: vals.get(n).data }; weightMap[n] = f; }
      writeFileSync(join(shard, f), encodeSafetensors(t));
    });
    writeFileSync(join(shard, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const s = await loadVlaDirectory(shard);
    assert.equal(s.files.length, 2);
    s.frozen.forEach((g, i) => assert.deepEqual(g.data, m.frozen[i].data, g.name));
  });
});

test('HF directory errors name the file and the tensor or field', async () => {
  await withTempDir('vla-err-', async (root) => {
    const d = (n) => join(root, n);
    // misshapen (a computed tensor) and missing (one never computed: still required)
    writeModelDir(d('shape'), { reshape: { 'vision_backbone.featurizer.blocks.1.attn.qkv.weight': [48, 15] } });
    await rejects(loadVlaDirectory(d('shape')), { file: join(d('shape'), 'model.safetensors'), field: 'tensors["vision_backbone.featurizer.blocks.1.attn.qkv.weight"]', message: /\[48, 15\].*\[48, 16\]/ });
    writeModelDir(d('missing'), { drop: ['vision_backbone.fused_featurizer.attn_pool.kv.bias'] });
    await rejects(loadVlaDirectory(d('missing')), { file: join(d('missing'), 'model.safetensors'), field: 'tensors["vision_backbone.fused_featurizer.attn_pool.kv.bias"]', message: /missing/ });
    // a misshapen never-computed tensor is refused too
    writeModelDir(d('skipped'), { reshape: { 'vision_backbone.featurizer.blocks.2.mlp.fc1.weight': [24, 15] } });
    await rejects(loadVlaDirectory(d('skipped')), { field: 'tensors["vision_backbone.featurizer.blocks.2.mlp.fc1.weight"]' });
    // an untied lm_head is required
    writeModelDir(d('untied'), { config: { ...CONFIG, text_config: { ...TEXT, tie_word_embeddings: false } } });
    await rejects(loadVlaDirectory(d('untied')), { field: 'tensors["language_model.lm_head.weight"]', message: /missing/ });
    // an unknown timm id and a missing preprocessor name their files
    const { craftgrad_tiny_towers: _, ...real } = CONFIG;
    writeModelDir(d('timm'), { config: { ...real, timm_model_ids: ['vit_large_patch14_reg4_dinov2.lvd142m', 'vit_base_patch16_224'] } });
    await rejects(loadVlaDirectory(d('timm')), { file: join(d('timm'), 'config.json'), field: 'timm_model_ids[1]' });
    writeModelDir(d('pre'), { pre: null });
    await rejects(loadVlaDirectory(d('pre')), { file: join(d('pre'), 'preprocessor_config.json'), message: /missing/ });
  });
});

torchTest('head files: module. stripped, bf16 widened, vla_desc names and order, film_gen apart; wrong block counts and foreign globals named', async () => {
  await withTempDir('vla-head-', async (dir) => {
    writeModelDir(dir);
    const { head, proprio } = writeHeadFiles(dir);
    const m = await loadVlaDirectory(dir, { torchPt: IO });
    const h = m.heads;
    assert.deepEqual([h.headBlocks, h.actionDims, h.proprioDim, h.step], [NB, A, P8, '100']);
    const specs = headTrainableSpecs({ hiddenSize: D, actionDims: A, headBlocks: NB, proprioDim: P8 });
    assert.deepEqual([...h.trainable.keys()], specs.map(([n]) => n));
    // vla_desc order: proprio first, then per block ffn, linears, gating_factor last.
    assert.equal(specs[0][0], 'proprio_projector.fc1.weight');
    assert.equal(specs[8][0], 'action_head.model.mlp_resnet_blocks.0.ffn.0.weight');
    assert.equal(specs[8 + 20][0], 'action_head.model.mlp_resnet_blocks.0.gating_factor');
    for (const [n, t] of head) {
      const got = n.includes('film_gen') ? h.filmGen.get(`action_head.${n}`) : h.trainable.get(`action_head.${n}`);
      const want = n === 'model.fc1.weight' ? t.data.map(bf16) : t.data;
      assert.deepEqual(got.data, want, n);
    }
    assert.equal(h.filmGen.size, 2 * NB);
    for (const [n, t] of proprio) assert.deepEqual(h.trainable.get(`proprio_projector.${n}`).data, t.data, n);

    await rejects(loadVlaDirectory(dir, { torchPt: IO, head: { headBlocks: 1 } }), {
      file: join(dir, 'action_head--100_checkpoint.pt'), field: 'module.model.mlp_resnet_blocks.1.gating_factor',
    });
    await rejects(loadVlaDirectory(dir, { torchPt: IO, head: { actionDims: 7 } }), { file: join(dir, 'action_head--100_checkpoint.pt'), field: 'module.model.fc2.weight' });
    await rejects(loadVlaDirectory(dir, { torchPt: IO, head: { proprioDim: 8 } }), { file: join(dir, 'proprio_projector--100_checkpoint.pt'), field: 'module.fc1.weight' });

    // Three blocks for a 2-layer model.
    const three = join(dir, 'three');
    writeModelDir(three);
    writeHeadFiles(three, { blocks: 3 });
    await rejects(loadVlaDirectory(three, { torchPt: IO }), { file: join(three, 'action_head--100_checkpoint.pt'), field: 'module.model.mlp_resnet_blocks.2.gating_factor', message: /3 head blocks.*2 layers/ });
    // A gap in the blocks is a missing key.
    const gap = join(dir, 'gap');
    writeModelDir(gap);
    const hv = headValues();
    torchSave(join(gap, 'action_head--5_checkpoint.pt'), hv.head.filter(([n]) => !n.startsWith('model.mlp_resnet_blocks.0.k_task')).map(([n, t]) => [[`module.${n}`], t]));
    await rejects(loadVlaDirectory(gap, { torchPt: IO }), { file: join(gap, 'action_head--5_checkpoint.pt'), field: 'module.model.mlp_resnet_blocks.0.k_task.weight', message: /missing/ });
    // Two steps need a choice.
    const two = join(dir, 'two');
    writeModelDir(two);
    writeHeadFiles(two, { step: 100 });
    writeHeadFiles(two, { step: 200 });
    await rejects(loadVlaDirectory(two, { torchPt: IO }), { file: two, field: 'step' });
    assert.equal((await loadVlaDirectory(two, { torchPt: IO, head: { step: 200 } })).heads.step, '200');

    // A .pt naming a global outside the state-dict allowlist is refused, naming the file and the global.
    const foreign = join(dir, 'foreign');
    writeModelDir(foreign);
    writeHeadFiles(foreign);
    py(`
import datetime
sd = torch.load(sys.argv[1])
sd['module.when'] = datetime.date(2020, 1, 1)
torch.save(sd, sys.argv[1])
`, join(foreign, 'action_head--100_checkpoint.pt'));
    await rejects(loadVlaDirectory(foreign, { torchPt: IO }), { file: join(foreign, 'action_head--100_checkpoint.pt'), message: /datetime/ });
  });
});

/** The Prismatic checkpoint's {"model": {...}} entries for the model's values (upstream's renames undone). */
function prismaticEntries(vals, { vision = true } = {}) {
  const out = [];
  for (const [n, t] of vals) {
    if (n === 'action_queries.weight') continue;
    let part, key;
    if (n.startsWith('vision_backbone.')) {
      part = 'vision_backbone';
      key = n.slice('vision_backbone.'.length).replace(/^featurizer\./, 'dino_featurizer.').replace(/^fused_featurizer\./, 'siglip_featurizer.').replace(/scale_factor/g, 'gamma');
    } else if (n.startsWith('language_model.')) {
      part = 'llm_backbone';
      key = `llm.${n.slice('language_model.'.length)}`;
    } else {
      part = 'projector';
      key = n.replace(/^projector\.fc1\./, 'projector.0.').replace(/^projector\.fc2\./, 'projector.2.').replace(/^projector\.fc3\./, 'projector.4.');
    }
    if (part === 'vision_backbone' && !vision) continue;
    out.push([['model', part, key], { dtype: 'F32', shape: t.shape, data: t.data }]);
  }
  // Prismatic's LLM state dict holds the tied lm_head under its own name.
  out.push([['model', 'llm_backbone', 'llm.lm_head.weight'], { dtype: 'F32', shape: [V, D], data: vals.get('language_model.model.embed_tokens.weight').data }]);
  return out;
}

test('Prismatic renames follow finetune.py:794-802', () => {
  assert.equal(renamePrismaticKey('vision_backbone.dino_featurizer.blocks.3.ls2.gamma'), 'vision_backbone.featurizer.blocks.3.ls2.scale_factor');
  assert.equal(renamePrismaticKey('vision_backbone.siglip_featurizer.attn_pool.kv.weight'), 'vision_backbone.fused_featurizer.attn_pool.kv.weight');
  assert.equal(renamePrismaticKey('llm_backbone.llm.model.layers.0.mlp.up_proj.weight'), 'language_model.model.layers.0.mlp.up_proj.weight');
  assert.equal(renamePrismaticKey('projector.projector.4.bias'), 'projector.fc3.bias');
});

torchTest('Prismatic base: the renamed checkpoint fills the same groups; no vision_backbone is a clear error', async () => {
  await withTempDir('vla-prism-', async (root) => {
    const cfgDir = join(root, 'configs');
    const vals = writeModelDir(cfgDir);
    const base = join(root, 'prism');
    mkdirSync(join(base, 'checkpoints'), { recursive: true });
    writeFileSync(join(base, 'config.json'), JSON.stringify({ model: { model_id: 'prism-tiny', vision_backbone_id: 'dinosiglip-vit-so-224px', llm_backbone_id: 'qwen25-0_5b-extra', arch_specifier: 'no-align+fused-gelu-mlp' } }));
    torchSave(join(base, 'checkpoints', 'step-000010-epoch-01-loss=0.5.pt'), prismaticEntries(vals), { bf16: [['model', 'projector', 'projector.0.weight']] });
    const hf = await loadVlaDirectory(cfgDir);
    const p = await loadPrismaticBase(base, { configDir: cfgDir, torchPt: IO });
    assert.equal(p.kind, 'prismatic');
    assert.equal(p.actionQueries, null);
    assert.deepEqual(p.dtypes, ['BF16', 'F32']);
    assert.match(p.files[0].file, /^checkpoints\/step-000010/);
    p.frozen.forEach((g, i) => {
      if (g.name === 'projector') {
        const w = hf.frozen[i].data.map((x, j) => (j < 112 * 28 ? bf16(x) : x));
        assert.deepEqual(g.data, w, g.name);
      } else {
        assert.deepEqual(g.data, hf.frozen[i].data, g.name);
      }
    });

    const novis = join(root, 'novis');
    mkdirSync(join(novis, 'checkpoints'), { recursive: true });
    copyFileSync(join(base, 'config.json'), join(novis, 'config.json'));
    torchSave(join(novis, 'checkpoints', 'latest-checkpoint.pt'), prismaticEntries(vals, { vision: false }));
    await rejects(loadPrismaticBase(novis, { configDir: cfgDir, torchPt: IO }), {
      file: join(novis, 'checkpoints', 'latest-checkpoint.pt'), field: '["model"]["vision_backbone"]', message: /towers' weights are needed.*timm/,
    });
    // An unknown key (after the renames) names the key as stored.
    const extra = join(root, 'extra');
    mkdirSync(join(extra, 'checkpoints'), { recursive: true });
    copyFileSync(join(base, 'config.json'), join(extra, 'config.json'));
    torchSave(join(extra, 'checkpoints', 'latest-checkpoint.pt'), [...prismaticEntries(vals), [['model', 'projector', 'projector.6.weight'], { dtype: 'F32', shape: [2], data: new Float32Array(2) }]]);
    await rejects(loadPrismaticBase(extra, { configDir: cfgDir, torchPt: IO }), { field: '["model"]["projector"]["projector.6.weight"]' });
  });
});

/** Trained tensors by vla_desc name (LoRA factors non-zero, queries, head), seeded. */
function trainedTensors(c, rank, heads) {
  const r = rng(99, { centered: true });
  const m = new Map();
  for (const mod of vlaLoraModules(c)) {
    if (!mod.trained) continue;
    m.set(`base_model.model.${mod.module}.lora_A.weight`, Float32Array.from({ length: rank * mod.in }, () => r()));
    m.set(`base_model.model.${mod.module}.lora_B.weight`, Float32Array.from({ length: mod.out * rank }, () => r()));
  }
  m.set('action_queries.weight', Float32Array.from({ length: Q * D }, () => r()));
  for (const [k, v] of heads.trainable) m.set(k, v.data);
  return m;
}

/** PEFT 0.11.1's LoRA modules on this model, written out from its all-linear rule: name -> [A shape, B shape]. */
function expectedPeftModules(rank) {
  const out = new Map();
  const lin = (m, o, i) => out.set(m, [[rank, i], [o, rank]]);
  for (const [k, t] of [['featurizer', T0], ['fused_featurizer', T1]]) {
    const p = `vision_backbone.${k}`, E = t.embed_dim, M = t.mlp_hidden;
    out.set(`${p}.patch_embed.proj`, [[rank, 3, 4, 4], [E, rank, 1, 1]]);
    for (let b = 0; b < t.depth; b++) {
      lin(`${p}.blocks.${b}.attn.qkv`, 3 * E, E); lin(`${p}.blocks.${b}.attn.proj`, E, E);
      lin(`${p}.blocks.${b}.mlp.fc1`, M, E); lin(`${p}.blocks.${b}.mlp.fc2`, E, M);
    }
    if (t.attn_pool) {
      lin(`${p}.attn_pool.q`, E, E); lin(`${p}.attn_pool.kv`, 2 * E, E); lin(`${p}.attn_pool.proj`, E, E);
      lin(`${p}.attn_pool.mlp.fc1`, M, E); lin(`${p}.attn_pool.mlp.fc2`, E, M);
    }
  }
  lin('projector.fc1', 112, 28); lin('projector.fc2', D, 112); lin('projector.fc3', D, D);
  for (let l = 0; l < L; l++) {
    const p = `language_model.model.layers.${l}`;
    lin(`${p}.self_attn.q_proj`, D, D); lin(`${p}.self_attn.k_proj`, KV, D); lin(`${p}.self_attn.v_proj`, KV, D); lin(`${p}.self_attn.o_proj`, D, D);
    lin(`${p}.mlp.gate_proj`, I, D); lin(`${p}.mlp.up_proj`, I, D); lin(`${p}.mlp.down_proj`, D, I);
  }
  lin('language_model.lm_head', V, D);
  return out;
}

const UNTRAINED = (m) => /featurizer\.blocks\.2\.|fused_featurizer\.blocks\.1\.|attn_pool|lm_head/.test(m);

torchTest('checkpoint outputs: PEFT adapter (keys, shapes, config), .pt files torch reads with module. keys, queries, statistics', async () => {
  await withTempDir('vla-out-', async (dir) => {
    const base = join(dir, 'base');
    writeModelDir(base);
    writeHeadFiles(base);
    writeFileSync(join(base, 'dataset_statistics.json'), STATS_TEXT);
    const m = await loadVlaDirectory(base, { torchPt: IO });
    const rank = 2, alpha = 4;
    const trained = trainedTensors(m.config, rank, m.heads);
    const untrained = initUntrainedLora(m.config, rank, 1234);
    const ck = join(dir, 'run--10_chkpt');
    await writeVlaCheckpointOutputs(ck, {
      config: m.config, step: 10, rank, alpha, trained, untrained, datasetStatistics: m.datasetStatistics, baseModelNameOrPath: base,
      head: { hiddenSize: D, actionDims: A, headBlocks: NB, proprioDim: P8, filmGen: m.heads.filmGen }, torchPt: IO ?? (await import('../dist/model/vla/index.js')).defaultTorchPtIo(),
    });

    // The adapter: exactly PEFT's modules, shapes, trained values as given, untrained A seeded and B = 0.
    const { tensors, metadata } = decodeSafetensors(readFileSync(join(ck, 'lora_adapter', 'adapter_model.safetensors')));
    assert.deepEqual(metadata, { format: 'pt' });
    const want = expectedPeftModules(rank);
    const names = new Set();
    for (const [mod, [as, bs]] of want) {
      for (const [f, s] of [['A', as], ['B', bs]]) {
        const n = `base_model.model.${mod}.lora_${f}.weight`;
        names.add(n);
        assert.ok(tensors[n], `adapter lacks ${n}`);
        assert.deepEqual(tensors[n].shape, s, n);
        assert.equal(tensors[n].dtype, 'F32');
        if (UNTRAINED(mod)) {
          if (f === 'B') assert.ok(tensors[n].data.every((x) => x === 0), `${n} is zero`);
          else assert.deepEqual(tensors[n].data, untrained.get(n).data, n);
        } else {
          assert.deepEqual(tensors[n].data, trained.get(n), n);
        }
      }
    }
    assert.deepEqual(Object.keys(tensors).sort(), [...names].sort());
    // gaussian init: std 1/r over all untrained A values
    const as = [...untrained].filter(([n]) => n.endsWith('lora_A.weight')).flatMap(([, t]) => [...t.data]);
    const std = Math.sqrt(as.reduce((s, x) => s + x * x, 0) / as.length);
    assert.ok(Math.abs(std - 1 / rank) < 0.05, `untrained A std ${std}`);
    assert.deepEqual(initUntrainedLora(m.config, rank, 1234).get('base_model.model.language_model.lm_head.lora_A.weight').data,
      untrained.get('base_model.model.language_model.lm_head.lora_A.weight').data);
    assert.notDeepEqual(initUntrainedLora(m.config, rank, 1235).get('base_model.model.language_model.lm_head.lora_A.weight').data,
      untrained.get('base_model.model.language_model.lm_head.lora_A.weight').data);

    const cfg = JSON.parse(readFileSync(join(ck, 'lora_adapter', 'adapter_config.json'), 'utf8'));
    assert.deepEqual(cfg.target_modules, ['down_proj', 'fc1', 'fc2', 'fc3', 'gate_proj', 'k_proj', 'kv', 'lm_head', 'o_proj', 'proj', 'q', 'q_proj', 'qkv', 'up_proj', 'v_proj']);
    assert.deepEqual(vlaPeftTargetModules(m.config), cfg.target_modules);
    assert.equal(cfg.r, rank);
    assert.equal(cfg.lora_alpha, alpha);
    assert.equal(cfg.init_lora_weights, 'gaussian');
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, null);
    assert.equal(cfg.base_model_name_or_path, base);
    assert.deepEqual(Object.keys(cfg), Object.keys(cfg).sort());

    // The .pt files as upstream's load_checkpoint reads them.
    const out = JSON.parse(py(`
res = {}
for f in sys.argv[1:]:
    sd = torch.load(f, weights_only=True)
    res[os.path.basename(f)] = [[k, str(v.dtype), list(v.shape), float(v.double().sum())] for k, v in sd.items()]
print(json.dumps(res))
`, join(ck, 'action_head--10_checkpoint.pt'), join(ck, 'proprio_projector--10_checkpoint.pt')));
    const hv = headValues();
    const sum = (d) => d.reduce((s, x) => s + x, 0);
    const headWant = hv.head.map(([n, t]) => [`module.${n}`, 'torch.float32', t.shape, sum(n === 'model.fc1.weight' ? t.data.map(bf16) : t.data)]);
    assert.deepEqual(out['action_head--10_checkpoint.pt'].map(([k, dt, s]) => [k, dt, s]), headWant.map(([k, dt, s]) => [k, dt, s]));
    out['action_head--10_checkpoint.pt'].forEach(([k, , , s], i) => assert.ok(Math.abs(s - headWant[i][3]) < 1e-4, k));
    assert.deepEqual(out['proprio_projector--10_checkpoint.pt'].map(([k]) => k), ['module.fc1.weight', 'module.fc1.bias', 'module.fc2.weight', 'module.fc2.bias']);

    const q = decodeSafetensors(readFileSync(join(ck, 'action_queries.safetensors'))).tensors['action_queries.weight'];
    assert.deepEqual(q.shape, [Q, D]);
    assert.deepEqual(q.data, trained.get('action_queries.weight'));
    assert.equal(readFileSync(join(ck, 'dataset_statistics.json'), 'utf8'), STATS_TEXT);

    // Without statistics: the documented placeholder. A missing trained factor is refused.
    const ck2 = join(dir, 'nostats');
    await writeVlaCheckpointOutputs(ck2, {
      config: m.config, step: 'latest', rank, alpha, trained, untrained, datasetStatistics: null, baseModelNameOrPath: null,
      head: { hiddenSize: D, actionDims: A, headBlocks: NB, proprioDim: 0, filmGen: initFilmGen(D, NB, 3) }, torchPt: IO ?? (await import('../dist/model/vla/index.js')).defaultTorchPtIo(),
    });
    assert.deepEqual(JSON.parse(readFileSync(join(ck2, 'dataset_statistics.json'), 'utf8')), DATASET_STATISTICS_PLACEHOLDER);
    assert.ok(existsSync(join(ck2, 'action_head--latest_checkpoint.pt')));
    assert.ok(!existsSync(join(ck2, 'proprio_projector--latest_checkpoint.pt')));
    const partial = new Map(trained);
    partial.delete('base_model.model.projector.fc2.lora_B.weight');
    await assert.rejects(writeVlaLoraAdapter(join(dir, 'bad'), { config: m.config, rank, alpha, trained: partial, untrained, baseModelNameOrPath: null }), /projector\.fc2\.lora_B/);
  });
});

torchTest('merged export: W + (alpha/r)·B·A in every trained linear, the conv fold, queries replaced, head files beside', async () => {
  await withTempDir('vla-merge-', async (dir) => {
    const base = join(dir, 'base');
    writeModelDir(base);
    writeHeadFiles(base);
    const m = await loadVlaDirectory(base, { torchPt: IO });
    const rank = 2, alpha = 3;
    const trained = trainedTensors(m.config, rank, m.heads);
    const outDir = join(dir, 'merged');
    mkdirSync(outDir);
    writeFileSync(join(outDir, 'stale.txt'), 'old');
    const io = IO ?? (await import('../dist/model/vla/index.js')).defaultTorchPtIo();
    await exportMergedVla(outDir, {
      baseDir: base, config: m.config, rank, alpha, trained, step: 7, datasetStatistics: null, torchPt: io,
      head: { hiddenSize: D, actionDims: A, headBlocks: NB, proprioDim: P8, filmGen: m.heads.filmGen },
    });
    assert.ok(!existsSync(join(outDir, 'stale.txt')), 'the old directory was replaced whole');
    for (const f of ['config.json', 'preprocessor_config.json', 'model.safetensors', 'action_head--7_checkpoint.pt', 'proprio_projector--7_checkpoint.pt', 'dataset_statistics.json']) {
      assert.ok(existsSync(join(outDir, f)), f);
    }
    // The LoRA factors for python, in PEFT's shapes.
    const adapter = join(dir, 'lora');
    await writeVlaLoraAdapter(adapter, { config: m.config, rank, alpha, trained, untrained: initUntrainedLora(m.config, rank, 1), baseModelNameOrPath: base });
    const res = JSON.parse(py(`
base = read_st(sys.argv[1]); merged = read_st(sys.argv[2]); lora = read_st(sys.argv[3]); s = float(sys.argv[4])
out = {'keys_equal': list(base.keys()) == list(merged.keys()) or sorted(base.keys()) == sorted(merged.keys()), 'errors': {}, 'unchanged': [], 'changed': []}
for k in base:
    mod = k[:-len('.weight')] if k.endswith('.weight') else None
    A = lora.get('base_model.model.%s.lora_A.weight' % mod) if mod else None
    if k == 'action_queries.weight':
        continue
    if A is None or 'blocks.2.' in k and 'fused' not in k or 'fused_featurizer.blocks.1.' in k or 'attn_pool' in k:
        if not torch.equal(base[k], merged[k]): out['changed'].append(k)
        continue
    B = lora['base_model.model.%s.lora_B.weight' % mod]
    W = base[k].double()
    if A.dim() == 4:
        # PEFT's Conv2d get_delta_weight: conv2d(A.permute(1,0,2,3), B).permute(1,0,2,3)
        delta = torch.nn.functional.conv2d(A.double().permute(1, 0, 2, 3), B.double()).permute(1, 0, 2, 3)
    else:
        delta = B.double() @ A.double()
    want = W + s * delta
    out['errors'][k] = float((merged[k].double() - want).abs().max())
    out['unchanged'].append(bool(torch.equal(base[k], merged[k])))
out['queries'] = merged['action_queries.weight'].flatten().tolist()
print(json.dumps(out))
`, join(base, 'model.safetensors'), join(outDir, 'model.safetensors'), join(adapter, 'adapter_model.safetensors'), String(alpha / rank)));
    assert.ok(res.keys_equal);
    assert.deepEqual(res.changed, [], 'tensors without a trained LoRA are copied unchanged');
    const folded = Object.keys(res.errors);
    // 2 patch embeds + 4·2 + 4·1 tower linears + 3 projector + 7·2 decoder linears
    assert.equal(folded.length, 2 + 8 + 4 + 3 + 14);
    assert.ok(folded.includes('vision_backbone.featurizer.patch_embed.proj.weight'));
    for (const [k, e] of Object.entries(res.errors)) assert.ok(e < 1e-5, `${k}: max error ${e}`);
    assert.ok(res.unchanged.every((u) => u === false), 'every folded weight changed');
    assert.deepEqual(Float32Array.from(res.queries), trained.get('action_queries.weight'));
    // a bad rank is refused before anything is written
    await assert.rejects(exportMergedVla(join(dir, 'never'), { baseDir: base, config: m.config, rank: 0, alpha, trained, step: 7, datasetStatistics: null, torchPt: io, head: {} }), RangeError);
    assert.ok(!existsSync(join(dir, 'never')));
  });
});
