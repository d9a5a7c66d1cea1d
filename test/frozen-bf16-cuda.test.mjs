// Frozen base weights stored in bf16 on the device (ARCHITECTURE.md §8 "Precision"):
// - a bf16 TensorSet ({ dtype: 'bf16' }): upload rounds to nearest even (ties to even, NaN
//   stays NaN, ±Inf stays, overflow gives ±Inf, -0 and subnormals kept), download widens
//   exactly, offsets in elements (odd ones too), across the 2^20-element upload chunks; 2 bytes
//   per element (byteLength);
// - its refusals: on the CPU (RangeError naming dtype), as any operand but a model step's
//   frozen weights (TypeError naming the operand and its dtype), with precision 'fp32';
// - the Qwen2 and VLA-Adapter steps with bf16 frozen weights (Qwen2Policy / VlaPolicy
//   { precision: 'bf16' }) against the
//   same step with fp32 frozen weights (bit for bit) and the fp32 step (bounds in
//   helpers/frozen-bf16-compare.mjs), in process (no cuBLASLt on the emulator) and in a child
//   with the cuBLASLt stand-in (or a GPU's cuBLASLt).
// Runs where a GPU (or the CUDA emulator: npm run test:cuda-emulator) is present; elsewhere the
// device tests skip with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/backend.js';
import { GradSet, gradSetInternals } from '../dist/gradset.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { announceGpu, gpuTest } from './helpers/gpu.mjs';
import { bf16, compareQwen2FrozenBf16, compareVlaFrozenBf16 } from './helpers/frozen-bf16-compare.mjs';
import { VlaPolicy } from '../dist/model/vla/vla-policy.js';
import { tinyVlaPolicy } from './helpers/vla-random.mjs';
import { SMALL, tinyDir, tinyPolicy } from './helpers/qwen2-setup.mjs';

const gpuSkip = announceGpu(import.meta.url);
const emulated = backendInfo().cuda.devices.some((d) => /emulator/i.test(d.name));
const childPath = fileURLToPath(new URL('./helpers/frozen-bf16-child.mjs', import.meta.url));

const same = (got, want, what) => {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
};

test('a bf16 TensorSet needs a device; dtype is checked', () => {
  assert.throws(() => new binding.TensorSet({ device: 'cpu', sizes: [4], dtype: 'bf16' }),
    (e) => e instanceof RangeError && /dtype 'bf16' needs a CUDA device \(device is 'cpu'\)/.test(e.message));
  assert.throws(() => new binding.TensorSet({ device: 'cpu', sizes: [4], dtype: 'fp16' }), (e) => e instanceof RangeError && /dtype/.test(e.message));
  const s = new binding.TensorSet({ device: 'cpu', sizes: [3], dtype: 'fp32' });
  assert.equal(s.dtype, 'fp32');
  assert.equal(s.byteLength, 12);
});

test('Qwen2Policy refuses precision bf16 on the CPU', async () => {
  const t = await tinyPolicy(tinyDir(SMALL), {}, { seed: 5 });
  assert.throws(() => Qwen2Policy.fromHfModel(t.policy.hf, { ...t.policy.options, precision: 'bf16' }),
    (e) => e instanceof RangeError && /options.precision bf16 needs a CUDA device/.test(e.message));
  assert.throws(() => Qwen2Policy.fromHfModel(t.policy.hf, { ...t.policy.options, precision: 'fp16' }), /options.precision/);
  assert.equal(t.policy.precision, 'fp32');
});

gpuTest('a bf16 set rounds to nearest even on upload and widens on download', () => {
  const cases = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), Number.NaN, -Number.NaN, Infinity, -Infinity, 3.4e38, -3.4e38,
    3.3895313892515355e38, 0, -0, 1e-40, -1e-40, 2 ** -133, Math.PI, 65504.3, 1e-3, 123456.789];
  const src = Float32Array.from(cases);
  const s = new binding.TensorSet({ device: 'cuda:0', sizes: [5, src.length - 5], dtype: 'bf16' });
  try {
    assert.equal(s.dtype, 'bf16');
    assert.equal(s.length, src.length);
    assert.equal(s.byteLength, 2 * src.length);
    const zeros = new Float32Array(src.length);
    s.download(zeros);
    same(zeros, new Float32Array(src.length), 'a new set is zeros');
    s.upload(src);
    const got = new Float32Array(src.length);
    s.download(got);
    same(got, Float32Array.from(src, bf16), 'round trip');
    // The rounding itself, case by case.
    assert.equal(got[1], 1, 'a tie rounds to the even 1');
    assert.equal(got[2], 1 + 2 ** -6, 'a tie rounds to the even 1 + 2^-6');
    assert.equal(got[3], -1);
    assert.ok(Number.isNaN(got[4]) && Number.isNaN(got[5]), 'NaN stays NaN');
    assert.equal(got[6], Infinity);
    assert.equal(got[7], -Infinity);
    assert.equal(got[8], Infinity, 'past the largest bf16: Inf');
    assert.equal(got[9], -Infinity);
    assert.equal(got[10], 3.3895313892515355e38, 'the largest bf16 stays');
    assert.ok(Object.is(got[12], -0), '-0 stays');
    assert.equal(got[15], 2 ** -133, 'a bf16 subnormal stays');
    // Parts at odd offsets (elements, not floats), and fill.
    s.upload(Float32Array.of(2, 3, 5), 7);
    const part = new Float32Array(4);
    s.download(part, 6);
    same(part, Float32Array.of(bf16(src[6]), 2, 3, 5), 'odd offset');
    assert.throws(() => s.upload(new Float32Array(3), src.length - 2), RangeError);
    assert.throws(() => s.download(new Float32Array(src.length + 1)), RangeError);
    s.fill(1 + 2 ** -8);
    s.download(got);
    same(got, new Float32Array(src.length).fill(1), 'fill rounds');
  } finally {
    s.dispose();
  }
  // Across the upload's 2^20-element chunks, and an odd length.
  const n = 2 ** 20 + 5;
  const big = new Float32Array(n);
  for (let i = 0; i < n; i++) big[i] = Math.sin(i) * 1000 + i;
  const b = new binding.TensorSet({ device: 'cuda:0', sizes: [n], dtype: 'bf16' });
  try {
    b.upload(big);
    const back = new Float32Array(n);
    b.download(back);
    same(back, Float32Array.from(big, bf16), 'chunked round trip');
  } finally {
    b.dispose();
  }
});

gpuTest('a bf16 set is refused wherever fp32 is read, naming the operand and its dtype', async () => {
  const s = new binding.TensorSet({ device: 'cuda:0', sizes: [4, 4], dtype: 'bf16' });
  const f = new binding.TensorSet({ device: 'cuda:0', sizes: [4, 4] });
  const like = new binding.TensorSet({ device: 'cuda:0', like: s });  // sizes only: fp32
  try {
    assert.equal(like.dtype, 'fp32');
    assert.equal(like.length, 8);
    const bf = (name) => (e) => e instanceof TypeError && new RegExp(`${name} is a TensorSet of dtype 'bf16'`).test(e.message);
    assert.throws(() => new binding.TensorSet({ view: s, offset: 0, sizes: [4] }), bf('view'));
    assert.throws(() => binding.copy({ dst: f, src: s, count: 4 }), bf('src'));
    assert.throws(() => binding.copy({ dst: s, src: f, count: 4 }), bf('dst'));
    const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1, gradScale: 1 };
    assert.throws(() => binding.adamw(s, f, like, f, hp), bf('params'));
    assert.throws(() => binding.craftReduce(s, f, { lambda: 1, eps: 1e-8, projection: true }), bf('act'));

    // The Qwen2 step: bf16 params refused; bf16 frozen only with precision 'bf16'.
    const t = await tinyPolicy(tinyDir(SMALL), {}, { seed: 5 });
    const gpu = Qwen2Policy.fromHfModel(t.policy.hf, { ...t.policy.options, device: 'cuda:0' });
    const w = t.policy.hf.weights;
    const arrays = [w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm];
    const frozen = new binding.TensorSet({ device: 'cuda:0', sizes: arrays.map((a) => a.length), dtype: 'bf16' });
    const h = gradSetInternals;
    const raw = (o) => ({
      config: gpu.config, mode: 'craft', params: h(gpu.params), anchor: h(gpu.anchor), gAct: h(gpu.newGradSet()), gRet: h(gpu.newGradSet()),
      frozen, prefix: t.batch.prefix, inputIds: t.batch.inputIds, actions: t.batch.actions, batch: t.batch.size, accumulate: false, scale: 1, ...o,
    });
    try {
      assert.throws(() => binding.qwen2Step(raw({})), (e) => e instanceof RangeError && /frozen is a TensorSet of dtype 'bf16', which needs precision 'bf16'/.test(e.message));
      assert.throws(() => binding.qwen2Step(raw({ precision: 'fp32' })), /needs precision 'bf16'/);
      const pset = new binding.TensorSet({ device: 'cuda:0', like: h(gpu.params), dtype: 'bf16' });
      assert.throws(() => binding.qwen2Step(raw({ params: pset, precision: 'bf16' })), bf('params'));
      pset.dispose();
      const short = new binding.TensorSet({ device: 'cuda:0', sizes: arrays.slice(1).map((a) => a.length), dtype: 'bf16' });
      assert.throws(() => binding.qwen2Step(raw({ frozen: short, precision: 'bf16' })), (e) => e instanceof RangeError && /frozen has 5 tensors/.test(e.message));
      short.dispose();
      // The right set with precision bf16 runs.
      frozen.upload(Float32Array.from(arrays.flatMap((a) => Array.from(a))));
      const r = binding.qwen2Step(raw({ precision: 'bf16' }));
      assert.ok(Number.isFinite(r.actionLoss) && Number.isFinite(r.retentionLoss));
    } finally {
      frozen.dispose();
      gpu.dispose();
    }
  } finally {
    s.dispose();
    f.dispose();
    like.dispose();
  }
});

gpuTest('Qwen2 step with bf16 frozen weights: equal to the fp32 frozen set in bf16, near the fp32 step (bf16 attention) without cuBLASLt', async () => {
  const lt = backendInfo().cublasLt.available;
  await compareQwen2FrozenBf16({ lt });
});

test('VlaPolicy refuses precision bf16 on the CPU', () => {
  const t = tinyVlaPolicy({ seed: 6, batch: 1 });
  assert.equal(t.policy.precision, 'fp32');
  assert.equal(t.policy.frozenDeviceBytes, 0);
  assert.throws(() => VlaPolicy.create(t.policy.parts, { ...t.policy.options, precision: 'bf16' }),
    (e) => e instanceof RangeError && /options.precision bf16 needs a CUDA device/.test(e.message));
});

gpuTest('VLA step with bf16 frozen weights: equal to the fp32 frozen set in bf16, near the fp32 step (bf16 attention) without cuBLASLt', async () => {
  const lt = backendInfo().cublasLt.available;
  await compareVlaFrozenBf16({ lt });
});

// The products in bf16 through cuBLASLt: the emulator's stand-in (built beside its addon), or a GPU's.
const standIn = process.env.CRAFTGRAD_PREBUILD ? join(process.env.CRAFTGRAD_PREBUILD, 'build', 'cuda-emulator', 'libcublasLt.so.13') : '';
const ltSkip = gpuSkip || (emulated && !existsSync(standIn) ? `the emulator's cuBLASLt stand-in is not built (${standIn})` : false);
test('Qwen2 and VLA steps with bf16 frozen weights and bf16 products through cuBLASLt (a child process)', { skip: ltSkip }, () => {
  const r = spawnSync(process.execPath, [childPath], {
    encoding: 'utf8', timeout: 600_000,
    env: { ...process.env, ...(emulated ? { CRAFTGRAD_CUBLASLT_LIBRARY: standIn } : {}) },
  });
  if (r.status === 3 && !emulated) {
    console.log(`# frozen-bf16-cuda.test.mjs: no cuBLASLt on this GPU machine: ${r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 0, `child failed (${r.status} ${r.signal}):\n${r.stdout}\n${r.stderr}`);
});
