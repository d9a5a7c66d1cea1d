// cuBLASLt at the N-API boundary, in plain `npm test`: how it is found and what is said when it
// is not (each case in a child process: the loader looks once per process), `craftgrad info`'s
// line, and the checks of modelGemm's precision option. The products themselves run on the
// CUDA emulator's build with its cuBLASLt stand-in, or on a GPU (test/cublaslt-cuda.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/backend.js';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const dir = tempDir(test, 'craftgrad-cublaslt-');
const cudaCompiled = backendInfo().cuda.compiled;

/** backendInfo().cublasLt in a fresh process with `env`. */
function probe(env) {
  const code = `import('${new URL('../dist/native.js', import.meta.url).href}').then(({ binding }) => {
    console.log(JSON.stringify(binding.backendInfo().cublasLt));
  });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('backendInfo().cublasLt says whether cuBLASLt can be used, and the file and version or why not', (t) => {
  const info = backendInfo().cublasLt;
  assert.equal(typeof info.available, 'boolean');
  if (info.available) {
    assert.match(info.version, /^1[2-9]\.\d+\.\d+$/);
    assert.match(info.library, /libcublasLt/);
  } else if (cudaCompiled && !process.env.CRAFTGRAD_CUBLASLT_LIBRARY) {
    // Nothing found by the default search: it says where it looked and what to set.
    assert.match(info.reason, /cuBLASLt could not be loaded \(.*libcublasLt\.so\.13.*libcublasLt\.so\.12.*\); also looked in \/usr\/local\/cuda\/lib64 and in PyTorch's nvidia wheels: .*CRAFTGRAD_CUBLASLT_LIBRARY/);
  } else if (!cudaCompiled) {
    assert.match(info.reason, /no CUDA backend/);
  }
  t.diagnostic(`this machine's cuBLASLt: ${JSON.stringify(info)}`);
});

test('CRAFTGRAD_CUBLASLT_LIBRARY naming a missing file: not available, and the reason names the variable', () => {
  const info = probe({ CRAFTGRAD_CUBLASLT_LIBRARY: join(dir, 'no-such-libcublasLt.so.13') });
  assert.equal(info.available, false);
  assert.match(info.reason, cudaCompiled ? /cuBLASLt could not be loaded \(.*no-such-libcublasLt\.so\.13.*\) — CRAFTGRAD_CUBLASLT_LIBRARY names that file/ : /no CUDA backend/);
});

test('a library that is not cuBLASLt is refused by name, with the symbol it lacks; a file that is no library, with the loader\'s words', { skip: !cudaCompiled && 'this build has no CUDA backend (cuBLASLt is not looked for)' }, () => {
  const libm = spawnSync('gcc', ['-print-file-name=libm.so.6'], { encoding: 'utf8' }).stdout?.trim();
  const lib = libm && libm.startsWith('/') ? libm : '/lib/x86_64-linux-gnu/libm.so.6';
  assert.match(probe({ CRAFTGRAD_CUBLASLT_LIBRARY: lib }).reason, /is not a usable cuBLASLt: it has no cublasLtGetVersion/);
  const bogus = join(dir, 'libcublasLt.so.13');
  writeFileSync(bogus, 'not an ELF file');
  assert.match(probe({ CRAFTGRAD_CUBLASLT_LIBRARY: bogus }).reason, /cuBLASLt could not be loaded \(.*libcublasLt\.so\.13.*(invalid ELF header|file too short)/);
});

test('craftgrad info has a cuBLASLt line', () => {
  const r = runCli(['info'], { env: { CRAFTGRAD_CUBLASLT_LIBRARY: join(dir, 'missing.so') } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, cudaCompiled ? /\n {2}cuBLASLt: not available: craftgrad: cuBLASLt could not be loaded .*missing\.so/ : /\n {2}cuBLASLt: not available: this build of craftgrad has no CUDA backend/);
  const json = JSON.parse(runCli(['info', '--json']).stdout);
  assert.equal(typeof json.cublasLt.available, 'boolean');
});

test('modelGemm checks its precision option before anything runs', () => {
  const base = { M: 2, N: 2, K: 2, alpha: 1, a: new Float32Array(4), transA: false, b: new Float32Array(4), transB: false, beta: 0, c: new Float32Array(4) };
  assert.throws(() => binding.modelGemm({ ...base, precision: 'bf16' }), { name: 'RangeError', message: /precision 'bf16' needs a CUDA device \(device is 'cpu'\)/ });
  assert.throws(() => binding.modelGemm({ ...base, device: 'cpu', precision: 'bf16' }), { name: 'RangeError', message: /needs a CUDA device/ });
  assert.throws(() => binding.modelGemm({ ...base, precision: 'fp16' }), { name: 'RangeError', message: /precision must be one of 'fp32', 'bf16', got 'fp16'/ });
  assert.throws(() => binding.modelGemm({ ...base, precision: 16 }), { name: 'TypeError', message: /precision/ });
  // fp32 is the default and the CPU's only precision: the same bits either way.
  const a = Float32Array.from([1, 2, 3, 4]), b = Float32Array.from([0.5, -1, 2, 0.25]);
  const c1 = new Float32Array(4), c2 = new Float32Array(4);
  binding.modelGemm({ ...base, a, b, c: c1 });
  binding.modelGemm({ ...base, a, b, c: c2, precision: 'fp32' });
  assert.deepEqual(c1, c2);
  assert.deepEqual(Array.from(c1), [4.5, -0.5, 9.5, -2]);
});
