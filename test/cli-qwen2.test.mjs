// `craftgrad train --model DIR --data FILE`: a tiny Hugging Face Qwen2 directory (written
// here, no download) trained from the command line like the built-in model: CRaFT and the
// baseline, checkpoints with a PEFT adapter and a policy file, exact resume, refusal of
// other base weights, --init-adapter / --init-policy, and the errors that name the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, cliPath } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { writeTinyHfModel } from './helpers/hf-tiny.mjs';
import { randn, rng } from './helpers/random.mjs';
import { mpiSkipReason, mpirun } from './helpers/mpi.mjs';
import { decodeSafetensors } from '../dist/formats/index.js';
import { saveSequenceDatasetFile } from '../dist/data/sequence-dataset.js';

const dir = tempDir(test, 'craftgrad-cli-qwen2-');
const SMALL = { hidden_size: 32, intermediate_size: 48, vocab_size: 64 };
const model = writeTinyHfModel(join(dir, 'model'), { config: SMALL });
const N = 24, P = 3, S = 2, D = 32, K = 4, A = 2;
const data = join(dir, 'data.npz');
{
  const r = rng(5);
  await saveSequenceDatasetFile(data, {
    size: N, prefixTokens: P, promptTokens: S, width: D, actionSize: K * A,
    prefix: randn(N * P * D, r, 1), inputIds: Int32Array.from({ length: N * S }, () => Math.floor(r() * SMALL.vocab_size)),
    actions: randn(N * K * A, r, 0.5),
    task: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 12)), episode: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 3)),
    source: data,
  });
}

// The run's flags; a test overrides some by name (yargs would make a repeated flag an array).
const BASE = {
  model: model.dir, data, chunk: K, 'action-dims': A, rank: 4, alpha: 8, 'head-width': 8, 'batch-size': 4, 'save-every': 4,
  'val-every': 6, warmup: 2, out: dir, threads: 1,
};
const runArgs = (over = {}) => Object.entries({ ...BASE, ...over }).flatMap(([k, v]) => [`--${k}`, ...[v].flat().map(String)]).concat('--quiet');
const rows = (name) => readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const untimed = (rs) => rs.map(({ step_ms, samples_per_s, ...rest }) => rest);
const ck = (name, step, file) => join(dir, name, 'checkpoints', `step-${String(step).padStart(6, '0')}`, file);
const tensors = (path) => decodeSafetensors(readFileSync(path)).tensors;
function train(over, extra = []) {
  const r = runCli(['train', ...runArgs(over), ...extra]);
  assert.equal(r.code, 0, `craftgrad train ${JSON.stringify(over)}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

test('CRaFT on a Qwen2 directory: retention 0 at the start, checkpoints hold a PEFT adapter, a policy file and the base record', () => {
  const r = train({ name: 'a', steps: 12, 'lora-targets': ['q_proj', 'v_proj', 'down_proj'] });
  assert.match(r.stdout, /on .*model \(Qwen2, LoRA r=4 on 3 linear layers\)/);
  const rs = rows('a');
  assert.equal(rs.length, 12);
  // LoRA B = 0 and the anchor is the initial weights: the features have not moved.
  assert.equal(rs[0].retention_loss, 0);
  assert.ok(rs.at(-1).retention_loss > 0, 'training moved the features');
  assert.ok(rs.some((row) => row.val_action_loss !== undefined), 'validation ran');

  const adapter = tensors(ck('a', 12, 'adapter/adapter_model.safetensors'));
  const names = Object.keys(adapter).sort();
  assert.equal(names.length, 4 /* layers */ * 3 /* targets */ * 2);
  const kv = (SMALL.hidden_size / 4) * 2; // head_dim × num_key_value_heads
  for (let l = 0; l < 4; l++) {
    const at = (m, f) => adapter[`base_model.model.model.layers.${l}.${m}.lora_${f}.weight`];
    assert.deepEqual(at('self_attn.q_proj', 'A').shape, [4, D]);
    assert.deepEqual(at('self_attn.q_proj', 'B').shape, [D, 4]);
    assert.deepEqual(at('self_attn.v_proj', 'B').shape, [kv, 4]);
    assert.deepEqual(at('mlp.down_proj', 'A').shape, [4, SMALL.intermediate_size]);
    assert.deepEqual(at('mlp.down_proj', 'B').shape, [D, 4]);
  }
  const cfg = JSON.parse(readFileSync(ck('a', 12, 'adapter/adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
  assert.equal(cfg.lora_dropout, 0);
  assert.equal(cfg.bias, 'none');
  assert.equal(cfg.base_model_name_or_path, model.dir);
  // The adapter holds the trained factors: the same values as the checkpoint's model group.
  const trained = tensors(ck('a', 12, 'model.safetensors'));
  for (const n of names) assert.deepEqual(adapter[n].data, trained[n].data, n);

  const policy = tensors(ck('a', 12, 'policy.safetensors'));
  assert.deepEqual(Object.fromEntries(Object.entries(policy).map(([n, t]) => [n, t.shape])), {
    action_queries: [K, D], 'head.fc1.weight': [8, D], 'head.fc1.bias': [8], 'head.fc2.weight': [A, 8], 'head.fc2.bias': [A],
  });

  const state = JSON.parse(readFileSync(ck('a', 12, 'state.json'), 'utf8'));
  assert.equal(state.model.kind, 'qwen2_policy');
  assert.equal(state.model.base.config.hidden_size, SMALL.hidden_size);
  const sha = createHash('sha256').update(readFileSync(join(model.dir, 'model.safetensors'))).digest('hex');
  assert.deepEqual(state.model.base.files.map((f) => [f.file, f.sha256]), [['model.safetensors', sha]]);
});

test('a stopped Qwen2 run resumed is bit-identical to the uninterrupted one', () => {
  train({ name: 'b', steps: 6, 'lora-targets': ['q_proj', 'v_proj', 'down_proj'] });
  const r = runCli(['train', '--resume', join(dir, 'b'), '--steps', '12', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(untimed(rows('b')), untimed(rows('a')));
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'anchor.safetensors', 'policy.safetensors', 'adapter/adapter_model.safetensors']) {
    assert.ok(readFileSync(ck('b', 12, f)).equals(readFileSync(ck('a', 12, f))), f);
  }
});

test('a resume against other base weights is refused, naming the file and both sha256', () => {
  const other = join(dir, 'other-model');
  writeTinyHfModel(other, { config: SMALL, seed: 2 });
  const r = runCli(['train', '--resume', join(dir, 'b'), '--steps', '14', '--model', other, '--quiet']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not the base model this run was trained on: model\.safetensors has sha256 [0-9a-f]{64} but the checkpoint was trained on [0-9a-f]{64}/);
  // The same weights in another place are fine (the directory may move).
  const moved = join(dir, 'moved-model');
  cpSync(model.dir, moved, { recursive: true });
  const ok = runCli(['train', '--resume', join(dir, 'b'), '--steps', '13', '--model', moved, '--quiet']);
  assert.equal(ok.code, 0, ok.stderr);
});

test('the baseline (--no-craft) trains the action loss alone', () => {
  train({ name: 'base', steps: 4 }, ['--no-craft']);
  const rs = rows('base');
  assert.equal(rs.length, 4);
  assert.ok(rs.every((row) => row.retention_loss === undefined && Number.isFinite(row.action_loss)));
});

test('--init-adapter and --init-policy start from saved weights, and the anchor is those weights', () => {
  train({
    name: 'init', steps: 4, 'lora-targets': ['q_proj', 'v_proj', 'down_proj'],
    'init-adapter': ck('a', 12, 'adapter'), 'init-policy': ck('a', 12, 'policy.safetensors'),
  });
  const anchor = tensors(ck('init', 4, 'anchor.safetensors'));
  const from = tensors(ck('a', 12, 'model.safetensors'));
  assert.ok(Object.keys(anchor).length > 0);
  for (const [n, t] of Object.entries(anchor)) assert.deepEqual(t.data, from[n].data, n);
  // Starting at the anchor: no drift before the first update.
  assert.equal(rows('init')[0].retention_loss, 0);
});

test('bad Qwen2 options are refused with the option or file and field named', () => {
  let n = 0;
  const fail = (over, pattern) => {
    const r = runCli(['train', ...runArgs({ name: `bad-${n++}`, steps: 2, ...over })]);
    assert.notEqual(r.code, 0, JSON.stringify(over));
    assert.match(r.stderr, pattern, r.stderr);
  };
  fail({ data: 'synthetic' }, /--model needs --data FILE/);
  fail({ 'base-weights': data }, /--base-weights applies to the built-in model/);
  fail({ 'lora-targets': 'lm_head' }, /lora-targets/);
  fail({ chunk: 3 }, /data\.npz.*actions/);
  fail({ 'init-adapter': ck('a', 12, 'adapter'), rank: 8 }, /adapter_config\.json.*\br\b/);
  fail({ model: join(dir, 'nope') }, /--model .*nope: no such file or directory/);
  const built = runCli(['train', '--steps', '2', '--out', dir, '--name', 'builtin-init', '--init-policy', data, '--quiet']);
  assert.equal(built.code, 2);
  assert.match(built.stderr, /--init-policy applies to a Qwen2 model/);
});

const mpiSkip = mpiSkipReason();
test('2 ranks (MPI) train a Qwen2 run like one process', (t) => {
  if (mpiSkip) return t.skip(mpiSkip);
  const one = runCli(['train', ...runArgs({ steps: 6, 'batch-size': 5, name: 'mpi1' })]);
  assert.equal(one.code, 0, one.stderr);
  const two = mpirun(2, [process.execPath, cliPath, 'train', ...runArgs({ steps: 6, 'batch-size': 5, name: 'mpi2' })], { timeout: 120_000 });
  assert.equal(two.code, 0, `${two.stdout}\n${two.stderr}`);
  const a = rows('mpi1'), b = rows('mpi2');
  assert.equal(b.length, a.length);
  a.forEach((row, i) => {
    for (const k of ['action_loss', 'retention_loss', 'grad_norm', 'lambda_after']) {
      const rel = Math.abs(b[i][k] - row[k]) / Math.max(1e-12, Math.abs(row[k]));
      assert.ok(rel <= 1e-5 || Math.abs(b[i][k] - row[k]) < 1e-9, `step ${row.step} ${k}: ${b[i][k]} vs ${row[k]}`);
    }
  });
});
