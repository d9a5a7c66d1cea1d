// Training in bf16 on a CUDA device (#29; ARCHITECTURE.md §8 "Precision"): `--precision bf16`
// sends every product of a step to cuBLASLt with bf16 inputs and fp32 accumulation. Checked,
// for the built-in model, a tiny Qwen2 directory and a tiny VLA-Adapter directory, through
// the CLI:
// - a bf16 run follows the fp32 run: each of the first 30 steps' action loss, and the mean
//   action loss over the whole run (100 steps on a GPU or with CGEMU_FULL=1), within 1e-2
//   relative; and the products really went to cuBLASLt (on the emulator, its stand-in's call
//   log; everywhere, bits that differ from the fp32 run's). Why not every step of 100: the two
//   runs' weights drift apart as AdamW amplifies the rounding differences of near-zero
//   gradients, so single steps later in the run differ by more: measured on the emulator over
//   100 steps (bf16 products and the fused bf16 attention), the largest single-step difference
//   was 4.6e-4 (built-in), 1.8e-2 (VLA, first above 1e-2 at step 46) and 1.2e-1 (Qwen2, first
//   above 1e-2 at step 35), while the means over the 100 steps differed by 2.1e-5 (VLA) and
//   3.1e-3 (Qwen2). The test prints the largest single-step difference it sees;
// - the same bf16 run twice gives the same bits (metrics and checkpoint files);
// - a bf16 run stopped and resumed is bit-identical to the run without the stop; a resume
//   that changes --precision is refused;
// - 'auto' is bf16 where the GPU has bf16 tensor cores and cuBLASLt, fp32 without cuBLASLt;
//   --precision bf16 without cuBLASLt runs the fp32 kernels with a one-line notice;
// - out of device memory in the bf16 path is the usual clear error, not a crash.
// On the emulator the children load its cuBLASLt stand-in (test/cuda-emulator/cublaslt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { backendInfo } from '../dist/backend.js';
import { announceGpu, cublasLtForTests, emulated } from './helpers/gpu.mjs';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { tinyDir } from './helpers/qwen2-setup.mjs';
import { writeTinyVla, writeTinyVlaDataset } from './helpers/vla-tiny.mjs';
import { saveSequenceDatasetFile } from '../dist/index.js';
import { randn, rng } from './helpers/random.mjs';

const gpuSkip = announceGpu(import.meta.url);
const cuda = backendInfo().cuda;
const lt = cublasLtForTests(gpuSkip);
const ltEnv = lt.env;
function skipReason() {
  if (lt.skip) return lt.skip;
  const cc = Number(String(cuda.devices[0].computeCapability).split('.')[0]);
  return cc >= 8 ? undefined : `cuda:0 has compute capability ${cuda.devices[0].computeCapability} (bf16 needs 8.0)`;
}
const skip = skipReason();
if (skip) console.log(`# precision-cuda.test.mjs: bf16 training tests skipped (${skip})`);
// 100 steps is the span; the emulator runs kernels on one CPU core, so its runs are
// shorter unless CGEMU_FULL asks for the whole span (npm run test:cuda-emulator -- --full).
const STEPS = emulated && process.env.CGEMU_FULL !== '1' ? 30 : 100;
// Steps whose every action loss must be within 1e-2 of fp32's (see above).
const PER_STEP = 30;

const BUILT_IN = ['--tokens', '8', '--width', '32', '--blocks', '2', '--rank', '4', '--head-width', '24', '--chunk', '4', '--action-dims', '3',
  '--batch-size', '8'];
const COMMON = ['--val-every', '0', '--quiet', '--threads', '1', '--device', 'cuda:0'];

/** A model's CLI arguments, its files written under `root`. */
async function modelArgs(model, root) {
  if (model === 'built-in') return BUILT_IN;
  if (model === 'vla') {
    const vla = writeTinyVla(join(root, 'vla')).dir;
    return ['--model', vla, '--data', writeTinyVlaDataset(join(root, 'vla.safetensors'), { samples: 8 }), '--rank', '2', '--alpha', '4', '--batch-size', '2'];
  }
  const q = tinyDir();
  const data = join(root, 'qwen2.npz');
  const N = 16, P = 3, S = 2, K = 3, A = 2;
  const { hidden_size: width, vocab_size: vocab } = JSON.parse(readFileSync(join(q.dir, 'config.json'), 'utf8'));
  const r = rng(5);
  await saveSequenceDatasetFile(data, {
    size: N, prefixTokens: P, promptTokens: S, width, actionSize: K * A,
    prefix: randn(N * P * width, r, 1), inputIds: Int32Array.from({ length: N * S }, () => Math.floor(r() * vocab)),
    actions: randn(N * K * A, r, 0.5), task: new Int32Array(N), episode: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 2)), source: data,
  });
  return ['--model', q.dir, '--data', data, '--chunk', String(K), '--action-dims', String(A), '--rank', '4', '--alpha', '8', '--head-width', '8', '--batch-size', '4'];
}

function train(args, env = {}) {
  const r = runCli(['train', ...args], { env: { ...ltEnv, ...env }, timeout: 1_200_000 });
  return r;
}
function rows(dir) {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}
/** Each row without its wall-clock fields. */
function stable(rs) {
  return rs.map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !/time|elapsed|_ms$|per_s|wall|samples_per/.test(k))));
}
/** The newest checkpoint's files, name -> bytes (state.json without its wall-clock fields). */
function checkpointFiles(dir) {
  const cks = readdirSync(join(dir, 'checkpoints')).filter((n) => n.startsWith('step-')).sort();
  const ck = join(dir, 'checkpoints', cks.at(-1));
  const out = {};
  for (const f of readdirSync(ck).filter((n) => n.endsWith('.safetensors')).sort()) out[f] = readFileSync(join(ck, f)).toString('base64');
  return out;
}
const config = (dir) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).config;

for (const model of ['built-in', 'qwen2', 'vla']) {
  test(`${model}: ${STEPS} steps in bf16 follow fp32 (the first 30 steps and the run's mean loss within 1e-2 relative), through cuBLASLt; the same bf16 run twice gives the same bits`, { skip }, async (t) => {
    const root = tempDir(t, 'craftgrad-bf16-');
    const args = await modelArgs(model, root);
    const out = join(root, 'runs');
    const log = join(root, 'cublaslt.jsonl');
    const run = (name, precision, env = {}) => {
      const r = train([...args, ...COMMON, '--steps', String(STEPS), '--save-every', String(STEPS), '--out', out, '--name', name, '--precision', precision], env);
      assert.equal(r.code, 0, `${name}:\n${r.stdout}\n${r.stderr}`);
      return join(out, name);
    };
    const fp32 = run('fp32', 'fp32');
    const bf16 = run('bf16', 'bf16', emulated ? { CGEMU_CUBLASLT_LOG: log } : {});
    const again = run('bf16-again', 'bf16');
    assert.equal(config(bf16).precision, 'bf16');
    assert.equal(config(fp32).precision, 'fp32');
    const a = rows(fp32), b = rows(bf16);
    assert.equal(b.length, a.length);
    let differs = false, worst = 0, worstStep = 0;
    for (let i = 0; i < a.length; i++) {
      const rel = Math.abs(b[i].action_loss - a[i].action_loss) / Math.abs(a[i].action_loss);
      if (rel > worst) [worst, worstStep] = [rel, a[i].step];
      if (i < PER_STEP) assert.ok(rel <= 1e-2, `step ${a[i].step}: bf16 action loss ${b[i].action_loss} vs fp32 ${a[i].action_loss} (relative ${rel.toExponential(2)})`);
      if (b[i].action_loss !== a[i].action_loss) differs = true;
    }
    const mean = (rs) => rs.reduce((sum, row) => sum + row.action_loss, 0) / rs.length;
    const meanRel = Math.abs(mean(b) - mean(a)) / mean(a);
    t.diagnostic(`${model}: bf16 vs fp32 action loss over ${a.length} steps: largest single-step relative difference ${worst.toExponential(2)} (step ${worstStep}), of the means ${meanRel.toExponential(2)}`);
    assert.ok(meanRel <= 1e-2, `the mean action loss over ${a.length} steps: bf16 ${mean(b)} vs fp32 ${mean(a)} (relative ${meanRel.toExponential(2)})`);
    assert.ok(differs, 'the bf16 run gave the fp32 run\'s losses bit for bit: its products did not run in bf16');
    if (emulated) {
      const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(calls.some((c) => c.call === 'matmul'), 'no cublasLtMatmul call');
      // Each shape's plan: its inputs' type is CUDA_R_16BF (14 in library_types.h).
      const plans = calls.filter((c) => c.call === 'heuristic');
      assert.ok(plans.length > 0 && plans.every((c) => c.type === 14), `a product planned with inputs other than bf16: ${JSON.stringify(plans.find((c) => c.type !== 14))}`);
    }
    assert.deepEqual(stable(rows(again)), stable(b), 'the same bf16 run twice: the same metrics');
    assert.deepEqual(checkpointFiles(again), checkpointFiles(bf16), 'the same bf16 run twice: the same checkpoint tensors');
  });
}

test('a bf16 run stopped and resumed is bit-identical to the run without the stop; a resume cannot change --precision', { skip }, async (t) => {
  const root = tempDir(t, 'craftgrad-bf16-resume-');
  const out = join(root, 'runs');
  const base = [...BUILT_IN, ...COMMON, '--out', out, '--save-every', '3', '--precision', 'bf16'];
  assert.equal(train([...base, '--steps', '6', '--name', 'whole']).code, 0);
  assert.equal(train([...base, '--steps', '3', '--name', 'split']).code, 0);
  const resumed = train(['--resume', join(out, 'split'), '--steps', '6', '--quiet']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(stable(rows(join(out, 'split'))), stable(rows(join(out, 'whole'))));
  assert.deepEqual(checkpointFiles(join(out, 'split')), checkpointFiles(join(out, 'whole')));
  const changed = train(['--resume', join(out, 'split'), '--steps', '7', '--precision', 'fp32', '--quiet']);
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /--precision/);
});

test("'auto' is bf16 with cuBLASLt and fp32 without; --precision bf16 without cuBLASLt runs the fp32 kernels with a one-line notice", { skip }, (t) => {
  const root = tempDir(t, 'craftgrad-bf16-auto-');
  const out = join(root, 'runs');
  const base = [...BUILT_IN, ...COMMON, '--out', out, '--steps', '2', '--save-every', '2'];
  const auto = train([...base, '--name', 'auto']);
  assert.equal(auto.code, 0, auto.stderr);
  assert.equal(config(join(out, 'auto')).precision, 'bf16');
  const missing = { CRAFTGRAD_CUBLASLT_LIBRARY: join(root, 'no-such-libcublasLt.so') };
  const noLt = train([...base, '--name', 'auto-no-lt'], missing);
  assert.equal(noLt.code, 0, noLt.stderr);
  assert.equal(config(join(out, 'auto-no-lt')).precision, 'fp32');
  const forced = train([...base, '--name', 'bf16-no-lt', '--precision', 'bf16'], missing);
  assert.equal(forced.code, 0, forced.stderr);
  const notices = forced.stderr.split('\n').filter((l) => /cuBLASLt is not available/.test(l));
  assert.equal(notices.length, 1, forced.stderr);
});

test('out of device memory in a bf16 step is a clear error naming the device and the bytes, not a crash (emulator)', { skip }, (t) => {
  if (!emulated) {
    t.skip("needs the CUDA emulator (its device memory is set small by CGEMU_DEVICE_MEMORY)");
    return;
  }
  const root = tempDir(t, 'craftgrad-bf16-oom-');
  // Enough for the model and its fp32 step, not for cuBLASLt's 32 MiB workspace.
  const env = { CGEMU_DEVICE_MEMORY: String(24 * 2 ** 20) };
  const base = [...BUILT_IN, ...COMMON, '--out', join(root, 'runs'), '--steps', '1', '--save-every', '1'];
  const fp32 = train([...base, '--name', 'fp32', '--precision', 'fp32'], env);
  assert.equal(fp32.code, 0, `the fp32 step fits in 24 MiB:\n${fp32.stderr}`);
  const bf16 = train([...base, '--name', 'bf16', '--precision', 'bf16'], env);
  assert.equal(bf16.signal ?? null, null, bf16.stderr);
  assert.equal(bf16.code, 1, bf16.stderr);
  assert.match(bf16.stderr, /out of (device )?memory|cudaMalloc|ERR_CRAFTGRAD_CUDA_OOM/i);
  assert.match(bf16.stderr, /cuda:0/);
  assert.match(bf16.stderr, /cuBLASLt workspace/);
});
