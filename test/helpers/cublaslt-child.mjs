// Runs products on cuda:0 in a fresh process (the cuBLASLt loader looks once per process, and
// reads CRAFTGRAD_CUBLASLT_LIBRARY, CRAFTGRAD_CUDA_FP32_GEMM and the emulator's CGEMU_CUBLASLT_*
// at that moment), for test/cublaslt-cuda.test.mjs.
//   node cublaslt-child.mjs '<json: { products: [{ M, N, K, transA, transB, alpha, beta, seed, precision, repeat }] }>'
// Prints one JSON line: { info (backendInfo().cublasLt), results: [{ c: [[...] per repeat] } | { error: { code, message } }] }.
// The operands are operands(spec) of test/helpers/cublaslt-operands.mjs, so the parent
// rebuilds the same ones.
import { binding } from '../../dist/native.js';
import { operands } from './cublaslt-operands.mjs';

const { products } = JSON.parse(process.argv[2]);
const results = [];
for (const p of products) {
  const { a, b, c0 } = operands(p);
  const runs = [];
  let error;
  for (let r = 0; r < (p.repeat ?? 1) && !error; ++r) {
    const c = Float32Array.from(c0);
    try {
      binding.modelGemm({ M: p.M, N: p.N, K: p.K, alpha: p.alpha, a, transA: p.transA, b, transB: p.transB, beta: p.beta, c,
        device: 'cuda:0', ...(p.precision ? { precision: p.precision } : {}) });
      // JSON has no NaN, Infinity or -0: those go as strings (Number() reads them back).
      runs.push(Array.from(c, (x) => (Number.isFinite(x) && !Object.is(x, -0) ? x : String(Object.is(x, -0) ? '-0' : x))));
    } catch (e) {
      error = { code: e.code, message: e.message, name: e.name };
    }
  }
  results.push(error ? { error } : { c: runs });
}
console.log(JSON.stringify({ info: binding.backendInfo().cublasLt, tuning: binding.backendInfo().cuda.tuning, results }));
