// The bf16 products through cuBLASLt (native/cuda/gemm_lt.cc, loaded by native/cublaslt) on
// cuda:0, each case in a fresh process (test/helpers/cublaslt-child.mjs: the loader looks once
// per process). On the CUDA emulator's build (test/cuda-emulator/run.js) the child loads the
// emulator's cuBLASLt stand-in (test/cuda-emulator/cublaslt: bf16 rounding of the inputs, fp32
// accumulation over k in order), whose log and failure injection the emulator-only tests use;
// on a GPU, the machine's cuBLASLt. Checked:
// - the bf16 result against the fp32 path within a derived bound (any device), and on the
//   emulator bit for bit against a JS reference of the stand-in's arithmetic (which checks
//   the row-major to column-major mapping, the transposes, alpha, beta and the bf16 rounding);
// - bits run to run; the heuristic asked once per shape, without split-K, workspace sized once;
// - fp32 products stay on the hand-written kernels unless CRAFTGRAD_CUDA_FP32_GEMM=cublaslt;
// - without cuBLASLt: the fp32 kernels' bits and a one-line notice once;
// - cuBLASLt's failures reach JS as ERR_CRAFTGRAD_CUBLASLT errors, and the process goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/backend.js';
import { announceGpu, cublasLtForTests, emulated } from './helpers/gpu.mjs';
import { operands } from './helpers/cublaslt-operands.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const childPath = fileURLToPath(new URL('./helpers/cublaslt-child.mjs', import.meta.url));
const gpuSkip = announceGpu(import.meta.url);
const cuda = backendInfo().cuda;
const dir = tempDir(test, 'craftgrad-cublaslt-');

// The cuBLASLt the children load: the emulator's stand-in, or the machine's own.
const { env: ltEnv, skip: ltSkip } = cublasLtForTests(gpuSkip);
const emuSkip = gpuSkip || ltSkip || (!emulated && "needs the emulator's stand-in (its log and failure injection)");
if (ltSkip) console.log(`# cublaslt-cuda.test.mjs: cuBLASLt tests skipped (${ltSkip})`);

/** Runs the product specs in a child with `env`: { info, tuning, results, stderr }. */
function child(products, env = {}) {
  const r = spawnSync(process.execPath, [childPath, JSON.stringify({ products })],
    { encoding: 'utf8', env: { ...process.env, ...ltEnv, ...env }, timeout: 300_000 });
  assert.equal(r.status, 0, `child failed (${r.status} ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  return { ...JSON.parse(line), stderr: r.stderr };
}

const f32 = Math.fround;
/** bf16 of an fp32 value, round to nearest even (NaN stays NaN). */
function bf16(x) {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, x);
  const u = buf.getUint32(0);
  if ((u & 0x7fffffff) > 0x7f800000) return NaN;
  buf.setUint32(0, (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0);
  return buf.getFloat32(0);
}
const opA = (p, a, i, k) => (p.transA ? a[k * p.M + i] : a[i * p.K + k]);
const opB = (p, b, k, j) => (p.transB ? b[j * p.K + k] : b[k * p.N + j]);

/** The stand-in's arithmetic: bf16 inputs, one fp32 accumulator over k in order, alpha·acc, + beta·c. */
function referenceBf16(p) {
  const { a, b, c0 } = operands(p);
  const out = new Float32Array(p.M * p.N);
  for (let i = 0; i < p.M; ++i) {
    for (let j = 0; j < p.N; ++j) {
      let acc = 0;
      for (let k = 0; k < p.K; ++k) acc = f32(acc + bf16(opA(p, a, i, k)) * bf16(opB(p, b, k, j)));  // the product is exact
      const v = f32(p.alpha * acc);
      out[i * p.N + j] = p.beta === 0 ? v : f32(c0[i * p.N + j] + v);
    }
  }
  return out;
}

/** The fp32 path's result (the CPU backend: the hand-written CUDA kernels give its bits). */
function referenceFp32(p) {
  const { a, b, c0 } = operands(p);
  const c = Float32Array.from(c0);
  binding.modelGemm({ M: p.M, N: p.N, K: p.K, alpha: p.alpha, a, transA: p.transA, b, transB: p.transB, beta: p.beta, c });
  return c;
}

/**
 * The bound of |bf16 result − fp32 result| per element. Rounding an input to bf16 (8
 * significant bits, round to nearest) moves it by at most u = 2⁻⁸ relative, so a product of
 * two rounded inputs is within (2u + u²)·|a||b| = (2⁻⁷ + 2⁻¹⁶)·|a||b| of the exact one; both
 * paths sum K fp32 terms, each within about K·2⁻²⁴ of Σ|terms| whatever the order; alpha·acc
 * and + beta·c round once each in both. So, with S = Σₖ|aᵢₖ||bₖⱼ|:
 *   |c_bf16 − c_fp32| ≤ |alpha|·S·(2⁻⁷ + 2⁻¹⁵ + 3·K·2⁻²⁴) + 2⁻²²·(|beta·c₀| + |alpha|·S).
 */
function bound(p, i, j) {
  const { a, b, c0 } = operands(p);
  let s = 0;
  for (let k = 0; k < p.K; ++k) s += Math.abs(opA(p, a, i, k) * opB(p, b, k, j));
  const alpha = Math.abs(p.alpha);
  return alpha * s * (2 ** -7 + 2 ** -15 + 3 * p.K * 2 ** -24) + 2 ** -22 * (Math.abs(p.beta * c0[i * p.N + j]) + alpha * s);
}

const sameBits = (x, y) => Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y));
function assertSameBits(got, want, what) {
  assert.equal(got.length, want.length, what);
  for (let e = 0; e < want.length; ++e) assert.ok(sameBits(f32(Number(got[e])), want[e]), `${what}: element ${e} is ${got[e]}, want ${want[e]}`);
}

const SHAPES = [
  { M: 5, N: 7, K: 9, transA: false, transB: false, alpha: 1, beta: 0, seed: 11 },
  { M: 6, N: 5, K: 33, transA: true, transB: false, alpha: -0.5, beta: 1, seed: 12 },
  { M: 17, N: 3, K: 70, transA: false, transB: true, alpha: 2, beta: 0, seed: 13 },
  { M: 4, N: 19, K: 1, transA: true, transB: true, alpha: 1, beta: 1, seed: 14 },
  { M: 33, N: 40, K: 130, transA: false, transB: false, alpha: 1, beta: 1, seed: 15 },
].map((p) => ({ ...p, precision: 'bf16', repeat: 3 }));

test('bf16 products: within the derived bound of the fp32 path, every transpose; on the emulator the stand-in\'s bits exactly; bits run to run', { skip: ltSkip }, (t) => {
  const { info, results, stderr } = child(SHAPES);
  t.diagnostic(`cuBLASLt ${info.version} from ${info.library}`);
  assert.equal(info.available, true);
  assert.doesNotMatch(stderr, /cuBLASLt is not available/);
  SHAPES.forEach((p, n) => {
    const what = `product ${n} (${p.M}×${p.K}·${p.K}×${p.N}, transA ${p.transA}, transB ${p.transB})`;
    assert.ok(results[n].c, `${what}: ${JSON.stringify(results[n].error)}`);
    const [first, ...again] = results[n].c;
    for (const run of again) assertSameBits(run, Float32Array.from(first, Number), `${what}, run to run`);
    const fp32 = referenceFp32(p);
    let worst = 0;
    for (let i = 0; i < p.M; ++i) {
      for (let j = 0; j < p.N; ++j) {
        const e = i * p.N + j, diff = Math.abs(Number(first[e]) - fp32[e]), lim = bound(p, i, j);
        assert.ok(diff <= lim, `${what}: (${i}, ${j}) differs from fp32 by ${diff} > ${lim}`);
        worst = Math.max(worst, diff / lim);
      }
    }
    t.diagnostic(`${what}: largest |bf16 − fp32| is ${(100 * worst).toFixed(1)}% of its bound`);
    if (emulated) assertSameBits(first, referenceBf16(p), `${what} against the stand-in's arithmetic`);
  });
});

test('bf16 rounding of the inputs: ties to even, NaN, overflow to Inf (K = 1, b = 1)', { skip: ltSkip }, () => {
  const a = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8), 'NaN', 3.4e38, 'Infinity', '-Infinity', 1e-40];
  const want = [1, 1 + 2 ** -6, 1 + 2 ** -7, -1, NaN, Infinity, Infinity, -Infinity, 2 ** -133];
  const p = { M: a.length, N: 1, K: 1, transA: false, transB: false, alpha: 1, beta: 0, a, b: [1], precision: 'bf16' };
  const { results } = child([p]);
  assert.ok(results[0].c, JSON.stringify(results[0].error));
  // A GPU may flush the bf16 subnormal; the emulator keeps it.
  const n = emulated ? want.length : want.length - 1;
  assertSameBits(results[0].c[0].slice(0, n), Float32Array.from(want.slice(0, n)), 'bf16(a)');
});

test('the heuristic is asked once per shape, without split-K, for a 32 MiB workspace; one handle', { skip: emuSkip }, () => {
  const log = join(dir, 'heuristic.jsonl');
  const A = { M: 9, N: 6, K: 40, transA: false, transB: false, alpha: 1, beta: 0, precision: 'bf16' };
  const B = { M: 3, N: 12, K: 7, transA: true, transB: false, alpha: 1, beta: 1, precision: 'bf16' };
  const products = [{ ...A, seed: 1, repeat: 3 }, { ...B, seed: 2, repeat: 2 }, { ...A, seed: 3 }, { ...A, transB: true, seed: 4 }];
  const { results } = child(products, { CGEMU_CUBLASLT_LOG: log });
  products.forEach((p, n) => assertSameBits(results[n].c.at(-1), referenceBf16(p), `product ${n}`));
  const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const of = (name) => calls.filter((c) => c.call === name);
  assert.equal(of('create').length, 1);
  assert.equal(of('heuristic').length, 3, 'A, B and A with B transposed');
  assert.equal(of('matmul').length, 3 + 2 + 1 + 1);
  for (const h of of('heuristic')) {
    assert.equal(h.mask, 0, 'reduction-scheme mask: none (no split-K)');
    assert.equal(h.workspace, 32 * 2 ** 20);
    assert.equal(h.type, 14, 'CUDA_R_16BF inputs');
  }
  // Column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLASLt's m is craftgrad's N.
  assert.deepEqual(of('heuristic').map((h) => [h.m, h.n, h.k]), [[6, 9, 40], [12, 3, 7], [6, 9, 40]]);
  for (const m of of('matmul')) assert.equal(m.splits, 1);
});

test('fp32 products stay on the hand-written kernels unless CRAFTGRAD_CUDA_FP32_GEMM=cublaslt', { skip: emuSkip }, () => {
  const products = SHAPES.slice(0, 3).map((p) => ({ ...p, precision: undefined, repeat: 1 }));
  const plain = join(dir, 'fp32-default.jsonl'), opted = join(dir, 'fp32-cublaslt.jsonl');
  const byDefault = child(products, { CGEMU_CUBLASLT_LOG: plain });
  assert.equal(byDefault.tuning.fp32Gemm, 'kernels');
  assert.equal(existsSync(plain) ? readFileSync(plain, 'utf8').includes('"matmul"') : false, false, 'no cuBLASLt call');
  const withLt = child(products, { CGEMU_CUBLASLT_LOG: opted, CRAFTGRAD_CUDA_FP32_GEMM: 'cublaslt' });
  assert.equal(withLt.tuning.fp32Gemm, 'cublaslt');
  const calls = readFileSync(opted, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(calls.filter((c) => c.call === 'matmul').length, products.length);
  for (const h of calls.filter((c) => c.call === 'heuristic')) assert.equal(h.type, 0, 'CUDA_R_32F inputs');
  products.forEach((p, n) => {
    // The kernels give the CPU's bits; so does the stand-in's fp32 path (one fma chain in k order).
    assertSameBits(byDefault.results[n].c[0], referenceFp32(p), `product ${n}, kernels`);
    assertSameBits(withLt.results[n].c[0], referenceFp32(p), `product ${n}, stand-in fp32`);
  });
  const odd = child(products.slice(0, 1), { CRAFTGRAD_CUDA_FP32_GEMM: 'tf32' });
  assert.equal(odd.tuning.fp32Gemm, 'kernels');
  assert.match(odd.tuning.note, /CRAFTGRAD_CUDA_FP32_GEMM='tf32' is not kernels or cublaslt; using the kernels/);
});

test('without cuBLASLt, bf16 products are the fp32 kernels\' bits, with a one-line notice once; info says why', { skip: gpuSkip }, () => {
  const missing = join(dir, 'no-such-libcublasLt.so.13');
  const products = SHAPES.slice(0, 3).map((p) => ({ ...p, repeat: 2 }));
  const { info, results, stderr } = child(products, { CRAFTGRAD_CUBLASLT_LIBRARY: missing });
  assert.equal(info.available, false);
  assert.match(info.reason, /cuBLASLt could not be loaded \(.*no-such-libcublasLt\.so\.13.*CRAFTGRAD_CUBLASLT_LIBRARY names that file/);
  const notices = stderr.split('\n').filter((l) => /cuBLASLt is not available/.test(l));
  assert.equal(notices.length, 1, stderr);
  assert.match(notices[0], /^craftgrad: cuBLASLt is not available, so products run on the hand-written fp32 CUDA kernels \(bf16 requests in fp32\): cuBLASLt could not be loaded .*CRAFTGRAD_CUBLASLT_LIBRARY/);
  products.forEach((p, n) => {
    for (const run of results[n].c) assertSameBits(run, referenceFp32(p), `product ${n}`);
  });
});

test('a cuBLASLt older than 12 is not used (the notice, the fp32 kernels)', { skip: emuSkip }, () => {
  const p = { ...SHAPES[0], repeat: 1 };
  const { info, results, stderr } = child([p], { CGEMU_CUBLASLT_VERSION: '11800' });
  assert.equal(info.available, false);
  assert.match(info.reason, /is a cuBLASLt older than 12 \(cublasLtGetVersion\(\) = 11800\); craftgrad needs cuBLASLt 12 or newer/);
  assert.match(stderr, /cuBLASLt is not available/);
  assertSameBits(results[0].c[0], referenceFp32(p), 'the fp32 kernels');
});

for (const [fail, message] of [
  ['create', /cublasLtCreate failed: CUBLAS_STATUS_NOT_INITIALIZED/],
  ['heuristic', /cublasLtMatmulAlgoGetHeuristic failed: CUBLAS_STATUS_NOT_SUPPORTED \(.*\), cublasStatus_t 15/],
  ['noalgo', /cuBLASLt offers no algorithm without split-K for the bf16 product 5×9 · 9×7 \(0 offered\)/],
  ['matmul', /cublasLtMatmul failed: CUBLAS_STATUS_EXECUTION_FAILED/],
]) {
  test(`cuBLASLt failing in ${fail}: ERR_CRAFTGRAD_CUBLASLT in JS, and the process goes on`, { skip: emuSkip }, () => {
    const bf = { ...SHAPES[0], repeat: 1 };
    const fp = { ...SHAPES[0], precision: 'fp32', repeat: 1 };
    const { results } = child([bf, fp, bf], { CGEMU_CUBLASLT_FAIL: fail });
    for (const n of [0, 2]) {
      assert.ok(results[n].error, `product ${n} should fail`);
      assert.equal(results[n].error.code, 'ERR_CRAFTGRAD_CUBLASLT');
      assert.match(results[n].error.message, message);
    }
    assertSameBits(results[1].c[0], referenceFp32(fp), 'an fp32 product after the failure');
  });
}

test('with CRAFTGRAD_CUDA_FP32_GEMM=cublaslt the model steps\' products go through cuBLASLt (on the emulator: still the CPU\'s bits)', { skip: emuSkip }, () => {
  // test/model-cuda.test.mjs's AdapterPolicy steps against the CPU, in a child with the
  // opt-in: the stand-in's fp32 path is one fma chain in k order, the kernels' and the CPU's
  // arithmetic, so those comparisons must still hold bit for bit, and every product (strided
  // operands, batched LoRA gradients, beta 1) went through cublasLtMatmul.
  const log = join(dir, 'model-fp32.jsonl');
  const env = { ...process.env, ...ltEnv, CRAFTGRAD_CUDA_FP32_GEMM: 'cublaslt', CGEMU_CUBLASLT_LOG: log };
  delete env.NODE_TEST_CONTEXT;  // else the inner runner reports to this one instead of to stdout
  const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=AdapterPolicy on cuda matches the CPU', fileURLToPath(new URL('./model-cuda.test.mjs', import.meta.url))],
    { encoding: 'utf8', env, timeout: 600_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# pass [1-9]/);
  const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(calls.filter((c) => c.call === 'matmul').length > 100, 'the steps\' products went to cuBLASLt');
  assert.ok(calls.filter((c) => c.call === 'heuristic').every((h) => h.type === 0 && h.mask === 0));
});
