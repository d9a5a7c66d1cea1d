#!/usr/bin/env node
// npm run test:cuda-emulator: runs the GPU test files on the CUDA backend built against the
// CPU emulator (test/cuda-emulator/README.md), in two builds of their own:
//   build-emulator/       first the emulator's self-test (test/cuda-emulator.test.mjs: each
//                         mistake it must catch, planted in a small kernel), then every GPU
//                         test file in the natural thread and CTA order, then the surgery,
//                         optimizer, layer and fused-attention files with the order reversed
//                         and shuffled, so a missing
//                         __syncthreads or an order-dependent result fails;
//   build-emulator-asan/  the same files once more under AddressSanitizer, so a kernel that
//                         reads or writes past its allocation stops with a report, and the
//                         self-test's AddressSanitizer cases.
// The regular build in build/ is left alone.
//   node test/cuda-emulator/run.js [--full] [--no-asan]
//   --full: also the tests that take minutes on a CPU; --no-asan: skip the second build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative } from '../../scripts/build-native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const full = process.argv.includes('--full');
const FILES = ['test/cuda.test.mjs', 'test/train-cuda.test.mjs', 'test/model-cuda.test.mjs', 'test/qwen2-binding.test.mjs',
  'test/qwen2-cuda.test.mjs', 'test/nccl-cuda.test.mjs', 'test/engine-fixtures-cuda.test.mjs', 'test/layers-cuda.test.mjs',
  'test/vla-cuda.test.mjs', 'test/cublaslt-cuda.test.mjs', 'test/bench-timing-cuda.test.mjs', 'test/attention-fused-cuda.test.mjs',
  'test/precision-cuda.test.mjs', 'test/frozen-bf16-cuda.test.mjs'];
const ORDER_FILES = ['test/cuda.test.mjs', 'test/train-cuda.test.mjs', 'test/qwen2-cuda.test.mjs', 'test/layers-cuda.test.mjs',
  'test/attention-fused-cuda.test.mjs'];
const SELFTEST = 'test/cuda-emulator.test.mjs';

function build(dir, extraArgs) {
  const status = buildNative(extraArgs, { cuda: 'EMULATOR', buildDir: join(root, dir, 'build') });
  if (status !== 0) process.exit(status);
}

function run(dir, files, env) {
  console.log(`# cuda-emulator (${dir}): ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} ${files.join(' ')}`);
  const r = spawnSync(process.execPath, ['--test', ...files], {
    cwd: root,
    // node-gyp-build loads the addon of <CRAFTGRAD_PREBUILD>/build/Release.
    env: { ...process.env, CRAFTGRAD_PREBUILD: join(root, dir), ...(full ? { CGEMU_FULL: '1' } : {}), ...env },
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

build('build-emulator', []);
// If the emulator no longer catches what it should, the GPU tests passing on it mean little.
run('build-emulator', [SELFTEST], {});
run('build-emulator', FILES, { CGEMU_SCHEDULE: 'forward' });
run('build-emulator', ORDER_FILES, { CGEMU_SCHEDULE: 'reverse' });
run('build-emulator', ORDER_FILES, { CGEMU_SCHEDULE: 'random:7' });

if (process.argv.includes('--no-asan')) process.exit(0);
// Node itself is not instrumented, so the sanitizer's runtime must be loaded first.
const libasan = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout?.trim() ?? '';
if (!libasan.startsWith('/') || !existsSync(libasan)) {
  console.log('# cuda-emulator: AddressSanitizer run skipped: gcc has no libasan.so here (Debian: apt-get install libasan8)');
  process.exit(0);
}
build('build-emulator-asan', ['--CDCGEMU_ASAN=ON']);
// precision-cuda.test.mjs trains whole runs through the CLI (minutes on the emulator); its native
// paths (cuBLASLt's plans, the bf16 conversion) run under the sanitizer in cublaslt-cuda.test.mjs.
const ASAN_FILES = FILES.filter((f) => f !== 'test/precision-cuda.test.mjs');
run('build-emulator-asan', ASAN_FILES, { LD_PRELOAD: libasan, ASAN_OPTIONS: 'detect_leaks=0' });
// The self-test binary links AddressSanitizer itself: no preload.
run('build-emulator-asan', ['--test-name-pattern=^AddressSanitizer', SELFTEST], {});
