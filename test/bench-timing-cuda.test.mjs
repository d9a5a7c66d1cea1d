// The repository build's GPU timing natives that bench/bf16-cuda.js and the step benchmarks
// use (bench/native/bench_natives.cc, issue #29): cudaModelGemmTime / cudaModelGemmSetTime with
// and without their precision argument (fp32 callers unchanged), and cudaAttentionTime over
// the attention's forms (causal grouped-query, bidirectional, cross-key with a gate), forward
// and backward; each returns one finite, non-negative time per rep, and bad arguments are
// refused with a message. The times themselves mean nothing here (the emulator's are the
// CPU's); this checks that the paths the GPU session relies on run.
// Runs where the addon has CUDA (npm run test:cuda-emulator builds it on the emulator);
// elsewhere each test skips with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/index.js';
import { announceGpu } from './helpers/gpu.mjs';

const skip = announceGpu(import.meta.url);
const bench = binding.bench;
const lt = backendInfo().cublasLt;
const times = (ms, reps) => {
  assert.ok(ms instanceof Float64Array, 'a Float64Array');
  assert.equal(ms.length, reps);
  for (const t of ms) assert.ok(Number.isFinite(t) && t >= 0, `time ${t}`);
};

test('cudaModelGemmTime and cudaModelGemmSetTime: fp32 without a precision, and with fp32', { skip }, () => {
  times(bench.cudaModelGemmTime(0, 24, 16, 8, false, true, 3, 0), 3);
  times(bench.cudaModelGemmTime(0, 24, 16, 8, true, false, 2, 1, 'fp32'), 2);
  times(bench.cudaModelGemmSetTime(0, [[16, 8, 24], [8, 16, 24]], true, false, 2, 0, true), 2);
});

test('cudaModelGemmTime and cudaModelGemmSetTime in bf16 (cuBLASLt)', { skip: skip || (!lt.available && `cuBLASLt not available: ${lt.reason}`) }, () => {
  times(bench.cudaModelGemmTime(0, 24, 16, 8, false, true, 3, 0, 'bf16'), 3);
  times(bench.cudaModelGemmSetTime(0, [[16, 8, 24], [8, 16, 24]], true, false, 2, 0, false, 'bf16'), 2);
});

test('the product timers refuse a precision other than fp32 or bf16', { skip }, () => {
  assert.throws(() => bench.cudaModelGemmTime(0, 8, 8, 8, false, false, 1, 0, 'fp16'), /precision must be 'fp32' or 'bf16', got 'fp16'/);
  assert.throws(() => bench.cudaModelGemmSetTime(0, [[8, 8, 8]], false, false, 1, 0, false, 3), /precision must be 'fp32' or 'bf16'/);
});

const shapes = {
  'causal grouped-query': { B: 2, T: 9, heads: 4, kvHeads: 2, hd: 16, scale: 0.25, causal: true },
  bidirectional: { B: 2, T: 7, heads: 2, kvHeads: 2, hd: 24, scale: 0.2, causal: false },
  'cross-key, gated': { B: 1, T: 4, Tk: 11, heads: 2, kvHeads: 2, hd: 16, scale: 0.25, causal: false, gateBegin: 6, gateEnd: 11 },
};
for (const [name, shape] of Object.entries(shapes)) {
  test(`cudaAttentionTime: ${name}, forward and backward (1 and 2 streams)`, { skip }, () => {
    times(bench.cudaAttentionTime({ device: 0, ...shape, backward: false, reps: 2 }), 2);
    times(bench.cudaAttentionTime({ device: 0, ...shape, backward: true, reps: 2 }), 2);
    times(bench.cudaAttentionTime({ device: 0, ...shape, backward: true, streams: 2, reps: 1 }), 1);
  });
}

test('cudaAttentionTime refuses a bad shape, precision or device', { skip }, () => {
  const s = shapes['causal grouped-query'];
  assert.throws(() => bench.cudaAttentionTime({ device: 0, ...s, Tk: 5, backward: false, reps: 1 }), /causal attention needs Tk == T/);
  assert.throws(() => bench.cudaAttentionTime({ device: 0, ...s, heads: 3, backward: false, reps: 1 }), /heads must be a multiple of kvHeads/);
  assert.throws(() => bench.cudaAttentionTime({ device: 0, ...s, precision: 'fp16', backward: false, reps: 1 }), /precision must be one of 'fp32', 'bf16', got 'fp16'/);
  assert.throws(() => bench.cudaAttentionTime({ device: 99, ...s, backward: false, reps: 1 }), /device/);
  assert.throws(() => bench.cudaAttentionTime({ device: 0, ...s, backward: false, reps: 0 }), /reps/);
});
