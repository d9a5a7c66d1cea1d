// The CUDA tuning overrides (native/cuda/tuning.h) as backendInfo().cuda.tuning reports
// them: read strictly, a value that does not parse ignored with a note. Child processes,
// since the addon reads the environment once. Needs a build with the CUDA backend (not a
// GPU): the overrides are parsed whether or not a device is present.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { backendInfo } from '../dist/index.js';

const compiled = backendInfo().cuda.compiled;
const skip = compiled ? false : 'this build has no CUDA backend (built without nvcc), so it has no CUDA tuning';
if (skip) console.log(`# cuda-tuning: skipped, ${skip}`);

const index = new URL('../dist/index.js', import.meta.url).href;
function tuningWith(env) {
  const clean = { ...process.env };
  delete clean.CRAFTGRAD_CUDA_GEMM;
  delete clean.CRAFTGRAD_CUDA_GROUP_BYTES;
  delete clean.CRAFTGRAD_CUDA_FP32_GEMM;
  const r = spawnSync(process.execPath,
    ['--input-type=module', '-e', `import { backendInfo } from '${index}'; console.log(JSON.stringify(backendInfo().cuda.tuning));`],
    { env: { ...clean, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('without overrides: kernels by shape, groups of 40% of L2, fp32 products on the kernels', { skip }, () => {
  assert.deepEqual(tuningWith({}), { gemm: 'auto', groupBytes: null, fp32Gemm: 'kernels' });
});

test('valid overrides are reported as read', { skip }, () => {
  for (const gemm of ['auto', 'simple', 'tiled64', 'tiled128', 'small32']) assert.equal(tuningWith({ CRAFTGRAD_CUDA_GEMM: gemm }).gemm, gemm);
  assert.deepEqual(tuningWith({ CRAFTGRAD_CUDA_GEMM: 'tiled128', CRAFTGRAD_CUDA_GROUP_BYTES: '33554432' }),
    { gemm: 'tiled128', groupBytes: 33554432, fp32Gemm: 'kernels' });
  assert.equal(tuningWith({ CRAFTGRAD_CUDA_FP32_GEMM: 'cublaslt' }).fp32Gemm, 'cublaslt');
  assert.equal(tuningWith({ CRAFTGRAD_CUDA_FP32_GEMM: 'kernels' }).fp32Gemm, 'kernels');
});

test('a value that does not parse is ignored with a note naming the variable and the value', { skip }, () => {
  const t = tuningWith({ CRAFTGRAD_CUDA_GEMM: 'tiled65' });
  assert.equal(t.gemm, 'auto');
  assert.match(t.note, /CRAFTGRAD_CUDA_GEMM='tiled65' is not one of auto, simple, tiled64, tiled128, small32/);
  for (const bad of ['64M', '0', '-5', '1e6', 'lots', '99999999999999999999']) {
    const g = tuningWith({ CRAFTGRAD_CUDA_GROUP_BYTES: bad });
    assert.equal(g.groupBytes, null, bad);
    assert.match(g.note, new RegExp(`CRAFTGRAD_CUDA_GROUP_BYTES='${bad}' is not a positive whole number of bytes`));
  }
  const both = tuningWith({ CRAFTGRAD_CUDA_GEMM: 'x', CRAFTGRAD_CUDA_GROUP_BYTES: 'y' });
  assert.match(both.note, /CRAFTGRAD_CUDA_GEMM='x'.*; CRAFTGRAD_CUDA_GROUP_BYTES='y'/);
  const fp32 = tuningWith({ CRAFTGRAD_CUDA_FP32_GEMM: 'TF32' });
  assert.equal(fp32.fp32Gemm, 'kernels');
  assert.match(fp32.note, /CRAFTGRAD_CUDA_FP32_GEMM='TF32' is not kernels or cublaslt; using the kernels/);
});
