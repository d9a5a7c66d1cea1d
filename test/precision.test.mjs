// --precision and the models' `precision` option where no GPU is needed (#29): what 'auto'
// resolves to, bf16 refused on the CPU at every layer (CLI, session API, model classes, the
// raw binding), config.json recording the resolved value, and a resume that changes it
// refused. The GPU side (bf16 against fp32, run-to-run bits, resume) is precision-cuda.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdapterPolicy } from '../dist/index.js';
import { resolvePrecision, bf16Unsupported } from '../dist/precision.js';
import { binding } from '../dist/native.js';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { smallRun } from './helpers/small-run.mjs';
import { tinyDir, tinyPolicy } from './helpers/qwen2-setup.mjs';

const SMALL_CLI = ['--tokens', '8', '--width', '32', '--blocks', '2', '--rank', '4', '--head-width', '24', '--chunk', '4',
  '--action-dims', '3', '--batch-size', '8', '--val-every', '0', '--threads', '1', '--quiet', '--device', 'cpu'];

test("resolvePrecision: 'auto' is fp32 on the CPU; bf16 there is refused naming the option; other values refused", () => {
  assert.equal(resolvePrecision('auto', 'cpu', '--precision'), 'fp32');
  assert.equal(resolvePrecision('fp32', 'cpu', '--precision'), 'fp32');
  assert.match(bf16Unsupported('cpu'), /CPU computes in fp32/);
  assert.throws(() => resolvePrecision('bf16', 'cpu', '--precision'), (e) => e instanceof RangeError && /^--precision bf16 needs a CUDA device \(the device is cpu\)/.test(e.message));
  assert.throws(() => resolvePrecision('fp16', 'cpu', 'options.precision'), (e) => e instanceof RangeError && /options\.precision must be 'auto', 'fp32' or 'bf16', got 'fp16'/.test(e.message));
  assert.throws(() => resolvePrecision(16, 'cpu', 'options.precision'), (e) => e instanceof TypeError && /options\.precision must be a string/.test(e.message));
});

test('the model classes take precision (fp32 by default); bf16 on the CPU is refused before anything is made', async () => {
  const m = AdapterPolicy.create({ tokens: 4, width: 8, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 2 });
  assert.equal(m.precision, 'fp32');
  assert.equal(AdapterPolicy.create({ tokens: 4, width: 8, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 2 }, { precision: 'auto' }).precision, 'fp32');
  assert.throws(() => AdapterPolicy.create({}, { precision: 'bf16' }), /options\.precision bf16 needs a CUDA device/);
  const written = tinyDir();
  await assert.rejects(tinyPolicy(written, { precision: 'bf16' }), /options\.precision bf16 needs a CUDA device/);
  const { policy } = await tinyPolicy(written, { precision: 'fp32' });
  assert.equal(policy.precision, 'fp32');
});

test("the raw step calls refuse precision 'bf16' on the CPU (naming the device) and values other than fp32/bf16", async () => {
  const written = tinyDir();
  const { policy, batch } = await tinyPolicy(written);
  const gA = policy.newGradSet(), gR = policy.newGradSet();
  const fp32 = policy.craftStep(batch, gA, gR);
  // The binding's own check, below the class's: the same arguments the class builds, with precision changed.
  const args = (precision) => {
    let captured;
    const orig = binding.qwen2Step;
    try {
      binding.qwen2Step = (a) => { captured = a; return orig(a); };
      policy.craftStep(batch, gA, gR);
    } finally {
      binding.qwen2Step = orig;
    }
    assert.ok(captured, 'the class calls binding.qwen2Step');
    return { ...captured, precision };
  };
  assert.throws(() => binding.qwen2Step(args('bf16')), (e) => e instanceof RangeError && /precision 'bf16' needs a CUDA device \(device is 'cpu'\)/.test(e.message));
  assert.throws(() => binding.qwen2Step(args('fp16')), (e) => e instanceof RangeError && /precision/.test(e.message));
  assert.deepEqual(binding.qwen2Step(args('fp32')), fp32, "precision 'fp32' is the default's result");
});

test('craftgrad train: --precision auto records fp32 on the CPU, bf16 is refused in one line, a resume cannot change it', (t) => {
  const root = tempDir(t, 'craftgrad-precision-');
  const out = join(root, 'runs');
  const r = runCli(['train', '--steps', '2', '--out', out, '--name', 'a', ...SMALL_CLI]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(out, 'a', 'config.json'), 'utf8')).config.precision, 'fp32');
  const bad = runCli(['train', '--steps', '2', '--out', out, '--name', 'b', '--precision', 'bf16', ...SMALL_CLI]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^craftgrad: --precision bf16 needs a CUDA device \(the device is cpu\): the CPU computes in fp32$/m);
  const typo = runCli(['train', '--steps', '2', '--out', out, '--name', 'c', '--precision', 'half', ...SMALL_CLI]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /precision/);
  // A run's saved precision is checked like its other settings: fp32 saved, bf16 asked for.
  const resumed = runCli(['train', '--resume', join(out, 'a'), '--steps', '3', '--precision', 'fp32', '--quiet']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const refused = runCli(['train', '--resume', join(out, 'a'), '--steps', '4', '--precision', 'bf16', '--quiet']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--precision/);
});

test('the session API resolves precision itself: auto is fp32 on the CPU, bf16 there is refused before the run directory exists', async (t) => {
  const root = tempDir(t, 'craftgrad-precision-api-');
  await smallRun(join(root, 'auto'), { steps: 1, save_every: 1, val_every: 0, precision: 'auto' });
  assert.equal(JSON.parse(readFileSync(join(root, 'auto', 'config.json'), 'utf8')).config.precision, 'fp32');
  await assert.rejects(smallRun(join(root, 'bf16'), { steps: 1, precision: 'bf16' }), /precision bf16 needs a CUDA device/);
  assert.throws(() => readFileSync(join(root, 'bf16', 'config.json')), /ENOENT/);
});

test("craftgrad info says per GPU what --precision auto gives and why (a described machine)", async () => {
  const { infoText } = await import('../dist/cli/commands/info.js');
  const { backendInfo } = await import('../dist/backend.js');
  const real = backendInfo();
  const gpu = (index, cc) => ({ index, name: `GPU ${index}`, totalMemory: 2 ** 34, computeCapability: cc });
  const machine = (cublasLt) => ({
    ...real, cuda: { ...real.cuda, compiled: true, available: true, driverVersion: 13000, runtimeVersion: 13000, devices: [gpu(0, '9.0'), gpu(1, '7.0')] },
    cublasLt,
  });
  const withLt = infoText(machine({ available: true, version: '13.0.0', library: '/x/libcublasLt.so.13' }), 'npm rebuild');
  assert.match(withLt, /cuda:0 GPU 0, 16\.0 GiB, compute capability 9\.0; --precision auto: bf16$/m);
  assert.match(withLt, /cuda:1 GPU 1, 16\.0 GiB, compute capability 7\.0; --precision auto: fp32 \(cuda:1 has compute capability 7\.0 \(bf16 tensor cores need 8\.0 or newer\)\)$/m);
  const noLt = infoText(machine({ available: false, reason: 'libcublasLt.so.13: not found' }), 'npm rebuild');
  assert.match(noLt, /cuda:0 .*--precision auto: fp32 \(cuBLASLt is not available \(libcublasLt\.so\.13: not found\)\)$/m);
});
