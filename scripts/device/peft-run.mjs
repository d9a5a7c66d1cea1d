#!/usr/bin/env node
// The craftgrad half of the transformers + peft check (check_peft.py; issue #18 item 3): a
// tiny Qwen2 directory (F32, written by the tests' helper, no download), a short
// `craftgrad train --model` run on DEVICE, then the losses of its last checkpoint on a fixed
// batch, evaluated by craftgrad (Qwen2Policy on the CPU, the checkpoint's parameters and
// anchor), written with the batch and the policy's options as JSON for check_peft.py, which
// computes the same losses with transformers' Qwen2ForCausalLM and PEFT's LoRA.
//   node scripts/device/peft-run.mjs WORK_DIR [DEVICE] > peft.json   (the JSON outside WORK_DIR, which is replaced)
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyHfModel } from '../../test/helpers/hf-tiny.mjs';
import { randn, rng } from '../../test/helpers/random.mjs';
import { saveSequenceDatasetFile } from '../../dist/data/sequence-dataset.js';
import { Qwen2Policy } from '../../dist/model/qwen2/index.js';
import { readSafetensorsFile } from '../../dist/formats/safetensors.js';

const [work, device = 'cuda'] = process.argv.slice(2);
if (!work) {
  console.error('usage: node scripts/device/peft-run.mjs WORK_DIR [DEVICE]');
  process.exit(2);
}
rmSync(work, { recursive: true, force: true });
const SIZES = { hidden_size: 64, intermediate_size: 128, vocab_size: 128 };
const model = writeTinyHfModel(join(work, 'model'), { config: SIZES });
const N = 24, P = 3, S = 2, K = 4, A = 3, D = SIZES.hidden_size;
const r = rng(11);
const data = {
  size: N, prefixTokens: P, promptTokens: S, width: D, actionSize: K * A,
  prefix: randn(N * P * D, r, 1), inputIds: Int32Array.from({ length: N * S }, () => Math.floor(r() * SIZES.vocab_size)),
  actions: randn(N * K * A, r, 0.5),
  task: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 12)), episode: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 3)),
  source: 'peft-run',
};
await saveSequenceDatasetFile(join(work, 'data.npz'), data);

const opts = { rank: 4, alpha: 8, headWidth: 16, chunk: K, actionDims: A, seed: 3 };
const cli = fileURLToPath(new URL('../../bin/craftgrad.js', import.meta.url));
const run = spawnSync(process.execPath, [cli, 'train', '--model', model.dir, '--data', join(work, 'data.npz'), '--device', device, '--precision', 'fp32',
  '--rank', String(opts.rank), '--alpha', String(opts.alpha), '--head-width', String(opts.headWidth), '--chunk', String(K),
  '--action-dims', String(A), '--seed', String(opts.seed), '--batch-size', '6', '--steps', '8', '--warmup', '1', '--lr', '0.01',
  '--val-every', '0', '--out', work, '--name', 'run', '--quiet'], { encoding: 'utf8' });
if (run.status !== 0) {
  console.error(`craftgrad train failed:\n${run.stdout}\n${run.stderr}`);
  process.exit(1);
}
const ckDir = join(work, 'run', 'checkpoints');
const checkpoint = join(ckDir, readdirSync(ckDir).filter((n) => n.startsWith('step-')).sort().at(-1));

// The checkpoint's parameters and anchor, evaluated on the first B samples.
const policy = await Qwen2Policy.fromHfDirectory(model.dir, { ...opts, prefixTokens: P, promptTokens: S });
policy.loadSomeTrainable((await readSafetensorsFile(join(checkpoint, 'model.safetensors'))).tensors, 'model.safetensors');
policy.loadAnchor((await readSafetensorsFile(join(checkpoint, 'anchor.safetensors'))).tensors, 'anchor.safetensors');
const B = 4;
const batch = { size: B, prefix: data.prefix.subarray(0, B * P * D), inputIds: data.inputIds.subarray(0, B * S), actions: data.actions.subarray(0, B * K * A) };
const losses = policy.evaluate(batch, { retention: true });
const c = policy.config;
console.log(JSON.stringify({
  model: model.dir, checkpoint, device,
  policy: { P, S, Q: K, A, bridgeLayer: c.bridgeLayer, bridgeSpan: c.bridgeSpan, pooling: c.pooling, anchorType: c.anchorType },
  batch: { size: B, prefix: [...batch.prefix], input_ids: [...batch.inputIds], actions: [...batch.actions] },
  craftgrad: losses,
}));
