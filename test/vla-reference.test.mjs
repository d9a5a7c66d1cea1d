// The VLA-Adapter test helpers in Python (test/helpers/make_tiny_vla.py, vla_reference.py):
// the generator writes the upstream layout (read back here with craftgrad's own safetensors
// decoder), the float64 reference runs from its CLI, and its self-check (finite differences,
// structural facts, and upstream's head/projector/timm code where their source is on the
// machine) passes. Needs a python3 with torch (1.13 is enough); skips and says so without one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSafetensors } from '../dist/formats/index.js';
import { tempDir } from './helpers/temp-dir.mjs';

const helpers = join(dirname(fileURLToPath(import.meta.url)), 'helpers');
const PYTHONS = [...new Set([process.env.PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean))];
const python = PYTHONS.find((p) => spawnSync(p, ['-c', 'import torch, numpy']).status === 0);

function torchMissing(t) {
  if (python) return false;
  const why = `none of ${PYTHONS.join(', ')} can import torch and numpy`;
  console.log(`# skipped: ${why}`);
  t.skip(why);
  return true;
}

function py(args, timeout = 300_000) {
  const r = spawnSync(python, args, { encoding: 'utf8', timeout });
  assert.equal(r.status, 0, `${args[0]} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const st = (path) => decodeSafetensors(new Uint8Array(readFileSync(path)));

test('make_tiny_vla.py writes the VLA-Adapter directory layout, names and dtypes', (t) => {
  if (torchMissing(t)) return;
  const dir = tempDir(t, 'craftgrad-tinyvla-');
  for (const [sub, extra] of [['f32', []], ['bf16', ['--bf16', '--seed', '3']]]) {
    const d = join(dir, sub);
    py([join(helpers, 'make_tiny_vla.py'), d, ...extra]);
    assert.deepEqual(readdirSync(d).sort(), [
      'action_head--0_checkpoint.pt', 'anchor.safetensors', 'batch.safetensors', 'config.json', 'dataset_statistics.json',
      'lora.safetensors', 'model.safetensors', 'preprocessor_config.json', 'proprio_projector--0_checkpoint.pt', 'tiny_spec.json',
    ]);
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    assert.deepEqual(cfg.timm_model_ids, ['vit_large_patch14_reg4_dinov2.lvd142m', 'vit_so400m_patch14_siglip_224']);
    assert.equal(cfg.use_fused_vision_backbone, true);
    assert.deepEqual(cfg.image_sizes, [28, 28]);
    assert.equal(cfg.norm_stats, undefined);
    assert.deepEqual(cfg.craftgrad_tiny_towers.map((x) => [x.embed_dim, x.depth, x.num_heads, x.patch_size, x.reg_tokens, x.class_token, x.layer_scale]),
      [[32, 3, 4, 14, 4, true, true], [48, 3, 4, 14, 0, false, false]]);
    const tc = cfg.text_config;
    assert.deepEqual([tc.hidden_size, tc.num_hidden_layers, tc.num_attention_heads, tc.num_key_value_heads, tc.intermediate_size, tc.vocab_size],
      [64, 3, 4, 2, 128, 64]);

    const m = st(join(d, 'model.safetensors'));
    const dtype = sub === 'bf16' ? 'BF16' : 'F32';
    const shape = (n) => { assert.ok(m.tensors[n], `model.safetensors has ${n}`); assert.equal(m.tensors[n].dtype, dtype, n); return m.tensors[n].shape; };
    assert.deepEqual(shape('vision_backbone.featurizer.cls_token'), [1, 1, 32]);
    assert.deepEqual(shape('vision_backbone.featurizer.reg_token'), [1, 4, 32]);
    assert.deepEqual(shape('vision_backbone.featurizer.pos_embed'), [1, 4, 32]);
    assert.deepEqual(shape('vision_backbone.featurizer.patch_embed.proj.weight'), [32, 3, 14, 14]);
    assert.deepEqual(shape('vision_backbone.featurizer.blocks.2.ls2.scale_factor'), [32]);
    assert.deepEqual(shape('vision_backbone.fused_featurizer.pos_embed'), [1, 4, 48]);
    assert.deepEqual(shape('vision_backbone.fused_featurizer.blocks.0.attn.qkv.weight'), [144, 48]);
    assert.deepEqual(shape('vision_backbone.fused_featurizer.attn_pool.kv.weight'), [96, 48]);
    assert.deepEqual(shape('vision_backbone.fused_featurizer.attn_pool.latent'), [1, 1, 48]);
    assert.equal(m.tensors['vision_backbone.fused_featurizer.blocks.0.ls1.scale_factor'], undefined);
    assert.equal(m.tensors['vision_backbone.fused_featurizer.cls_token'], undefined);
    assert.deepEqual(shape('projector.fc1.weight'), [320, 80]);
    assert.deepEqual(shape('projector.fc2.weight'), [64, 320]);
    assert.deepEqual(shape('projector.fc3.weight'), [64, 64]);
    assert.deepEqual(shape('language_model.model.layers.2.self_attn.k_proj.weight'), [32, 64]);
    assert.deepEqual(shape('language_model.model.norm.weight'), [64]);
    assert.deepEqual(shape('action_queries.weight'), [4, 64]);
    assert.equal(m.tensors['language_model.lm_head.weight'], undefined, 'tied: no lm_head');

    const b = st(join(d, 'batch.safetensors')).tensors;
    assert.deepEqual([b.images.dtype, ...b.images.shape], ['U8', 2, 2, 28, 28, 3]);
    assert.deepEqual([b.proprio.dtype, ...b.proprio.shape], ['F32', 2, 8]);
    assert.deepEqual([b.actions.dtype, ...b.actions.shape], ['F32', 2, 56]);
    assert.deepEqual([b.input_ids.dtype, ...b.input_ids.shape], ['I32', 2, 8]);
    assert.ok(b.actions.data.every((x) => x >= -1 && x <= 1));
    assert.equal(b.input_ids.data[0], tc.bos_token_id);

    const lora = st(join(d, 'lora.safetensors')).tensors;
    const conv = 'base_model.model.vision_backbone.featurizer.patch_embed.proj';
    assert.deepEqual(lora[`${conv}.lora_A.weight`].shape, [4, 3, 14, 14]);
    assert.deepEqual(lora[`${conv}.lora_B.weight`].shape, [32, 4, 1, 1]);
    assert.deepEqual(lora['base_model.model.language_model.model.layers.0.mlp.down_proj.lora_A.weight'].shape, [4, 128]);
    assert.deepEqual(lora['base_model.model.language_model.lm_head.lora_B.weight'].shape, [64, 4]);
    assert.deepEqual(st(join(d, 'anchor.safetensors')).tensors['action_queries.weight'].shape, [4, 64]);

    const pre = JSON.parse(readFileSync(join(d, 'preprocessor_config.json'), 'utf8'));
    assert.deepEqual(pre.tvf_normalize_params[0].mean, [0.484375, 0.455078125, 0.40625]);
    assert.deepEqual(pre.input_sizes, [[3, 28, 28], [3, 28, 28]]);
    const stats = JSON.parse(readFileSync(join(d, 'dataset_statistics.json'), 'utf8'));
    assert.deepEqual(Object.keys(stats.tiny_dataset.action).sort(), ['mask', 'max', 'mean', 'min', 'q01', 'q99', 'std']);
  }
});

test('vla_reference.py CLI: losses and gradients for every trainable tensor', (t) => {
  if (torchMissing(t)) return;
  const d = tempDir(t, 'craftgrad-vlaref-');
  py([join(helpers, 'make_tiny_vla.py'), d]);
  const out = join(d, 'out.safetensors');
  const printed = JSON.parse(py([join(helpers, 'vla_reference.py'), '--model', d, '--batch', join(d, 'batch.safetensors'),
    '--lora', join(d, 'lora.safetensors'), '--anchor', join(d, 'anchor.safetensors'),
    '--options', JSON.stringify({ head_noise: 'batch', span: 'vision+prompt' }), '--out', out]));
  const { tensors, metadata } = st(out);
  const meta = JSON.parse(metadata.reference);
  assert.equal(tensors.action_loss.dtype, 'F64');
  assert.deepEqual(tensors.action_loss.shape, []);
  assert.equal(tensors.action_loss.data[0], printed.action_loss);
  assert.equal(tensors.retention_loss.data[0], printed.retention_loss);
  assert.ok(printed.action_loss > 0 && printed.retention_loss > 0);
  assert.deepEqual(tensors.predicted_actions.shape, [2, 8, 7]);
  assert.deepEqual(tensors.features.shape, [2, 128]);
  // LoRA factors on the path (2 towers x (patch embed + 2 of 3 blocks x 4) + 3 projector + 3 x 7 decoder),
  // the queries, 4 proprio tensors, 71 head tensors (film_gen excluded)
  assert.equal(meta.trainables.length, 2 * (2 * (1 + 2 * 4) + 3 + 3 * 7) + 1 + 4 + 71);
  for (const name of meta.trainables) {
    for (const loss of ['action', 'retention']) {
      const g = tensors[`${loss}_grad/${name}`];
      assert.ok(g && g.dtype === 'F64' && g.data.every(Number.isFinite), `${loss}_grad/${name}`);
    }
  }
  assert.ok(meta.trainables.includes('action_head.model.mlp_resnet_blocks.2.gating_factor'));
  assert.ok(meta.off_path_lora.includes('base_model.model.vision_backbone.featurizer.blocks.2.attn.qkv.lora_A.weight'));
  assert.ok(meta.off_path_lora.includes('base_model.model.language_model.lm_head.lora_A.weight'));
  assert.deepEqual([meta.P, meta.S, meta.T, meta.Q, meta.bridge_layer], [8, 8, 16, 4, 2]);
});

test('vla_reference_selfcheck.py: finite differences, structure, and upstream where present', (t) => {
  if (torchMissing(t)) return;
  const d = tempDir(t, 'craftgrad-vlacheck-');
  const r = spawnSync(python, [join(helpers, 'vla_reference_selfcheck.py'), d], { encoding: 'utf8', timeout: 600_000 });
  for (const line of r.stdout.split('\n')) if (line.startsWith('skip') || line.startsWith('FAIL')) console.log(`# ${line}`);
  assert.equal(r.status, 0, `self-check failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^0 failure\(s\)$/m);
});
