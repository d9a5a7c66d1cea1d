// Runs compareQwen2FrozenBf16 and compareVlaFrozenBf16 (frozen-bf16-compare.mjs) in a fresh process, for
// test/frozen-bf16-cuda.test.mjs: the cuBLASLt loader looks once per process, so the parent
// sets CRAFTGRAD_CUBLASLT_LIBRARY (the emulator's stand-in) for this child only. Exits 0 and
// prints one JSON line { lt: backendInfo().cublasLt } when every comparison holds; an
// assertion's message and a non-zero status otherwise.
import { binding } from '../../dist/native.js';
import { compareQwen2FrozenBf16, compareVlaFrozenBf16 } from './frozen-bf16-compare.mjs';

const info = binding.backendInfo().cublasLt;
if (!info.available) {
  console.error(`cuBLASLt is not available in the child: ${info.reason}`);
  process.exit(3);
}
await compareQwen2FrozenBf16({ lt: true });
await compareVlaFrozenBf16({ lt: true });
console.log(JSON.stringify({ lt: info }));
