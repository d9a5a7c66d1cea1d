// `craftgrad train --model DIR` on a tiny VLA-Adapter directory (test/helpers/vla-tiny.mjs,
// upstream's layout) and a VLA tensor file: CRaFT and the baseline train; every checkpoint
// holds upstream's files (the PEFT adapter of every all-linear module, the head and proprio
// .pt files of its step, the action queries, the statistics) besides craftgrad's own; a
// resumed run is bit-identical to an uninterrupted one; `craftgrad export --merged` writes a
// directory that loads as a VLA-Adapter model with the training folded in; bad inputs get
// one line naming the file and field, with nothing written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { findTorchPython } from './helpers/torch-python.mjs';
import { TINY_VLA, tinyVlaConfig, tinyVlaDataset, writeTinyVla, writeTinyVlaDataset } from './helpers/vla-tiny.mjs';
import { decodeSafetensors, encodeSafetensors } from '../dist/formats/index.js';
import { loadVlaDirectory, VlaPolicy } from '../dist/model/vla/index.js';
import { gatherVlaBatch, loadVlaDatasetFile } from '../dist/data/vla-dataset.js';

const TINY = ['--batch-size', '2', '--rank', '2', '--alpha', '4', '--quiet', '--threads', '2', '--val-every', '0'];
const py = findTorchPython();

function setup(t) {
  const root = tempDir(t, 'craftgrad-vla-cli-');
  const model = writeTinyVla(join(root, 'model')).dir;
  const data = writeTinyVlaDataset(join(root, 'data.safetensors'), { samples: 8 });
  const train = (name, extra = []) => {
    const r = runCli(['train', '--model', model, '--data', data, '--out', join(root, 'runs'), '--name', name, ...TINY, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return join(root, 'runs', name);
  };
  return { root, model, data, train };
}

const read = (p) => decodeSafetensors(new Uint8Array(readFileSync(p)), { source: p }).tensors;

test('CRaFT trains a VLA-Adapter directory; each checkpoint holds upstream\'s files; resume is bit-identical', (t) => {
  const { train } = setup(t);
  const full = train('full', ['--steps', '4', '--save-every', '2']);
  const ck = join(full, 'checkpoints', 'step-000004');
  const files = readdirSync(ck).sort();
  for (const f of ['action_head--4_checkpoint.pt', 'proprio_projector--4_checkpoint.pt', 'action_queries.safetensors', 'dataset_statistics.json',
    'lora_adapter', 'anchor.safetensors', 'model.safetensors', 'optimizer.safetensors', 'state.json', 'manifest.json']) {
    assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
  }
  const manifest = JSON.parse(readFileSync(join(ck, 'manifest.json'), 'utf8'));
  for (const f of ['lora_adapter/adapter_model.safetensors', 'lora_adapter/adapter_config.json', 'action_head--4_checkpoint.pt']) assert.ok(manifest.files[f], `manifest lists ${f}`);
  const metrics = readFileSync(join(full, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.length, 4);
  assert.ok(metrics.every((m) => Number.isFinite(m.action_loss) && m.retention_loss >= 0), 'finite losses');
  assert.ok(metrics.slice(1).some((m) => m.retention_loss > 0), 'the retention loss moves once the weights do');

  // The PEFT adapter: every module PEFT 0.11.1's all-linear adapts, the patch embeds as Conv2d factors.
  const adapter = read(join(ck, 'lora_adapter', 'adapter_model.safetensors'));
  const names = Object.keys(adapter);
  const r = 2, [d0, d1] = TINY_VLA.towers;
  assert.deepEqual(adapter['base_model.model.vision_backbone.featurizer.patch_embed.proj.lora_A.weight'].shape, [r, 3, 14, 14]);
  assert.deepEqual(adapter['base_model.model.vision_backbone.fused_featurizer.patch_embed.proj.lora_B.weight'].shape, [d1.embed_dim, r, 1, 1]);
  for (const m of ['vision_backbone.featurizer.blocks.2.attn.qkv', 'vision_backbone.fused_featurizer.attn_pool.kv', 'language_model.lm_head',
    'projector.fc3', 'language_model.model.layers.2.mlp.down_proj']) {
    assert.ok(names.includes(`base_model.model.${m}.lora_A.weight`) && names.includes(`base_model.model.${m}.lora_B.weight`), m);
  }
  // Never on the loss path: B stays 0 through training.
  assert.ok(adapter['base_model.model.vision_backbone.featurizer.blocks.2.attn.qkv.lora_B.weight'].data.every((v) => v === 0));
  assert.ok(adapter['base_model.model.projector.fc1.lora_B.weight'].data.some((v) => v !== 0), 'a trained factor moved');
  const cfg = JSON.parse(readFileSync(join(ck, 'lora_adapter', 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.r, r);
  assert.equal(cfg.lora_alpha, 4);
  assert.ok(cfg.target_modules.includes('qkv') && cfg.target_modules.includes('lm_head') && cfg.target_modules.includes('q_proj'));
  assert.deepEqual(Object.keys(read(join(ck, 'action_queries.safetensors'))), ['action_queries.weight']);
  assert.equal(d0.embed_dim, 32);

  // Resume from step 2: the same bits at step 4.
  const part = train('part', ['--steps', '2', '--save-every', '2']);
  const rr = runCli(['train', '--resume', part, '--steps', '4', '--quiet', '--threads', '2']);
  assert.equal(rr.code, 0, rr.stderr);
  for (const f of ['model.safetensors', 'anchor.safetensors', 'optimizer.safetensors', 'action_head--4_checkpoint.pt', 'proprio_projector--4_checkpoint.pt',
    'lora_adapter/adapter_model.safetensors', 'action_queries.safetensors']) {
    assert.deepEqual(readFileSync(join(part, 'checkpoints', 'step-000004', f)), readFileSync(join(ck, f)), `${f} after resume`);
  }
});

test('torch reads the .pt files a checkpoint holds (torch.load weights_only=True, module.-prefixed keys)', { skip: py.reason ?? false }, (t) => {
  const { train } = setup(t);
  const run = train('pt', ['--steps', '2']);
  const ck = join(run, 'checkpoints', 'step-000002');
  const out = execFileSync(py.python, ['-c', `
import sys, torch
h = torch.load(sys.argv[1], weights_only=True); p = torch.load(sys.argv[2], weights_only=True)
print(len(h), list(h)[0], h['module.model.fc2.weight'].shape[0], h['module.model.mlp_resnet_blocks.0.gating_factor'].numel(), list(p))
`, join(ck, 'action_head--2_checkpoint.pt'), join(ck, 'proprio_projector--2_checkpoint.pt')], { encoding: 'utf8' }).trim();
  // 4 + 3 blocks × (4 ffn + 16 projection + 1 gate + 2 film_gen) + 4 = 77 tensors.
  assert.equal(out, "77 module.model.layer_norm1.weight 7 1 ['module.fc1.weight', 'module.fc1.bias', 'module.fc2.weight', 'module.fc2.bias']");
});

test('the baseline (--no-craft) trains the action loss alone', (t) => {
  const { train } = setup(t);
  const run = train('base', ['--steps', '3', '--no-craft']);
  const metrics = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.length, 3);
  assert.ok(metrics.every((m) => Number.isFinite(m.action_loss) && m.retention_loss === undefined && m.lambda_after === undefined), JSON.stringify(metrics[0]));
});

test('export --merged writes a model whose folded weights give the trained policy\'s loss', async (t) => {
  const { root, model, data, train } = setup(t);
  const run = train('exp', ['--steps', '3', '--head-noise', '0', '--lr', '0.01']);
  const merged = join(root, 'merged');
  const r = runCli(['export', run, '--merged', merged]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'action_head--3_checkpoint.pt', 'dataset_statistics.json']) {
    assert.ok(existsSync(join(merged, f)), f);
  }
  // The trained policy: the base directory plus the checkpoint's trainable tensors.
  const ds = await loadVlaDatasetFile(data);
  const base = await loadVlaDirectory(model);
  const opts = { rank: 2, alpha: 4, inputIds: ds.inputIds, headNoise: 0 };
  const parts = (d) => ({
    dir: d.dir, towers: d.config.towers.map((x) => ({ ...x })), projectorHidden: d.config.projectorHidden,
    llm: { ...d.config.text }, frozen: d.frozen.map((g) => g.data),
    initial: Object.fromEntries([...(d.heads?.trainable ?? [])].map(([n, v]) => [n, { dtype: 'F32', shape: [...v.shape], data: v.data }])
      .concat(d.actionQueries ? [['action_queries.weight', { dtype: 'F32', shape: [d.actionQueries.length / d.config.text.hiddenSize, d.config.text.hiddenSize], data: d.actionQueries }]] : [])),
    queries: d.actionQueries ? d.actionQueries.length / d.config.text.hiddenSize : undefined,
  });
  const trained = VlaPolicy.create(parts(base), opts);
  const ckTensors = read(join(run, 'checkpoints', 'step-000003', 'model.safetensors'));
  trained.loadSomeTrainable(ckTensors, 'checkpoint');
  // The merged directory: LoRA folded (its own LoRA starts at B = 0), head, proprio and queries from its files.
  const m = await loadVlaDirectory(merged);
  const folded = VlaPolicy.create(parts(m), opts);
  const fresh = VlaPolicy.create(parts(base), opts);
  const batch = gatherVlaBatch(ds, base.normalize, [0, 1, 2, 3]);
  const want = trained.evaluate(batch).actionLoss, got = folded.evaluate(batch).actionLoss, before = fresh.evaluate(batch).actionLoss;
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `merged ${got} vs trained ${want}`);
  assert.ok(Math.abs(before - want) > 1e-3 * Math.abs(want), `training changed the loss (${before} → ${want}), so the check can fail`);
});

test('bad inputs get one line naming the file and field, and nothing is written', (t) => {
  const { root, model, data } = setup(t);
  const attempt = (args, re) => {
    const r = runCli(['train', '--out', join(root, 'runs'), '--name', 'bad', '--steps', '1', ...TINY, ...args]);
    assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(!existsSync(join(root, 'runs', 'bad')), 'no run directory');
  };
  // Images of another size than the model's.
  const wrong = join(root, 'wrong.safetensors');
  const d = tinyVlaDataset({ samples: 4 });
  d.images = { dtype: 'U8', shape: [4, 2, 14, 14, 3], data: new Uint8Array(4 * 2 * 14 * 14 * 3) };
  writeFileSync(wrong, encodeSafetensors(d));
  attempt(['--model', model, '--data', wrong], /wrong\.safetensors.*images.*14×14.*28/);
  // A config.json naming an unknown timm tower.
  const odd = writeTinyVla(join(root, 'odd')).dir;
  const cfg = tinyVlaConfig();
  cfg.timm_model_ids = ['vit_huge_patch14_clip_224', cfg.timm_model_ids[1]];
  writeFileSync(join(odd, 'config.json'), JSON.stringify(cfg));
  attempt(['--model', odd, '--data', data], /odd\/config\.json.*timm_model_ids.*vit_huge_patch14_clip_224/);
  // A misshapen tensor in the model file.
  const bent = writeTinyVla(join(root, 'bent')).dir;
  const w = read(join(bent, 'model.safetensors'));
  w['projector.fc2.bias'] = { dtype: 'F32', shape: [3], data: new Float32Array(3) };
  writeFileSync(join(bent, 'model.safetensors'), encodeSafetensors(w));
  attempt(['--model', bent, '--data', data], /bent\/model\.safetensors.*projector\.fc2\.bias/);
});

test('a Prismatic base VLM (checkpoints/*.pt, torch-written) trains with --vla-config, as the same weights in an HF directory do', { skip: py.reason ?? false }, async (t) => {
  const { torchSave } = await import('./helpers/vla-torch.mjs');
  const { root } = setup(t);
  // Upstream's 64 action placeholders: without action_queries.weight, a model has NUM_TOKENS = 64 queries.
  const data = writeTinyVlaDataset(join(root, 'data64.safetensors'), { samples: 8, spec: { ...TINY_VLA, queries: 64 } });
  // The HF directory without action queries (a Prismatic base has none: both start them at 0).
  const hf = writeTinyVla(join(root, 'hf')).dir;
  const w = read(join(hf, 'model.safetensors'));
  delete w['action_queries.weight'];
  writeFileSync(join(hf, 'model.safetensors'), encodeSafetensors(w));
  // The same weights as Prismatic saves them: {"model": {"projector", "llm_backbone", "vision_backbone"}}, upstream's renames undone.
  const entries = [];
  for (const [n, v] of Object.entries(w)) {
    let part, key;
    if (n.startsWith('vision_backbone.')) {
      part = 'vision_backbone';
      key = n.slice(16).replace(/^featurizer\./, 'dino_featurizer.').replace(/^fused_featurizer\./, 'siglip_featurizer.').replace(/scale_factor/g, 'gamma');
    } else if (n.startsWith('language_model.')) {
      part = 'llm_backbone';
      key = `llm.${n.slice(15)}`;
    } else {
      part = 'projector';
      key = n.replace(/^projector\.fc1\./, 'projector.0.').replace(/^projector\.fc2\./, 'projector.2.').replace(/^projector\.fc3\./, 'projector.4.');
    }
    entries.push([['model', part, key], v]);
  }
  entries.push([['model', 'llm_backbone', 'llm.lm_head.weight'], w['language_model.model.embed_tokens.weight']]);
  const base = join(root, 'prism');
  mkdirSync(join(base, 'checkpoints'), { recursive: true });
  writeFileSync(join(base, 'config.json'), JSON.stringify({ model: { vision_backbone_id: 'dinosiglip-vit-so-224px', llm_backbone_id: 'qwen25-0_5b-extra', arch_specifier: 'no-align+fused-gelu-mlp' } }));
  torchSave(join(base, 'checkpoints', 'latest-checkpoint.pt'), entries);
  const args = ['--data', data, '--out', join(root, 'runs'), '--steps', '2', '--head-noise', '0', ...TINY];
  const a = runCli(['train', '--model', hf, '--name', 'hf', ...args]);
  assert.equal(a.code, 0, a.stderr);
  const missing = runCli(['train', '--model', base, '--name', 'nocfg', ...args]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Prismatic base VLM: give --vla-config DIR/);
  const b = runCli(['train', '--model', base, '--vla-config', hf, '--name', 'prism', ...args]);
  assert.equal(b.code, 0, b.stderr);
  const loss = (n) => readFileSync(join(root, 'runs', n, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).action_loss);
  assert.deepEqual(loss('prism'), loss('hf'), 'the same weights give the same losses');
  assert.ok(existsSync(join(root, 'runs', 'prism', 'checkpoints', 'step-000002', 'lora_adapter', 'adapter_model.safetensors')));
});
