// What the CUDA emulator catches (test/cuda-emulator/README.md): each case of its
// self-test (test/cuda-emulator/selftest/selftest.cu) plants one mistake in a small
// kernel, or is a correct control, and runs in a child process here. The binary exists
// only after an emulator build (npm run test:cuda-emulator); without it every test is
// skipped with the reason. The AddressSanitizer case needs build-emulator-asan/ as well.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const binary = (dir) => join(root, dir, 'build', 'cuda-emulator', 'cgemu-selftest');
const BIN = binary('build-emulator');
const ASAN_BIN = binary('build-emulator-asan');

const skipReason = existsSync(BIN) ? '' : `no emulator build (${BIN} is missing; npm run test:cuda-emulator builds it)`;
const asanSkipReason = existsSync(ASAN_BIN) ? '' : `no AddressSanitizer emulator build (${ASAN_BIN} is missing)`;
if (skipReason) console.log(`# cuda-emulator.test.mjs: emulator self-test skipped (${skipReason})`);

// The emulator's settings come from each test, never from the caller's environment.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CGEMU_')));

function runCase(bin, name, env = {}) {
  const r = spawnSync(bin, [name], { encoding: 'utf8', timeout: 60_000, env: { ...baseEnv, ...env } });
  assert.equal(r.error, undefined, `${name}: ${r.error}`);
  return r;
}

// The case exits 0 with its pass line: the emulator reacted as the case expects.
function expectPass(r, name) {
  const detail = `${name}: status ${r.status}, signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.status, 0, detail);
  assert.match(r.stdout, new RegExp(`^pass ${name}: `), detail);
}

function selftest(name, fn, reason = () => skipReason) {
  test(name, (t) => {
    if (reason()) {
      t.skip(reason());
      return;
    }
    fn();
  });
}

// Each mistake the binary plants, and the cgemu: line that must say what went wrong.
const CAUGHT = {
  'config-block-1025': /cgemu: invalid configuration: .*block \(1025, 1, 1\)/,
  'config-grid-y-65536': /cgemu: invalid configuration: .*grid \(1, 65536, 1\)/,
  'config-grid-z-65536': /cgemu: invalid configuration: .*grid \(1, 1, 65536\)/,
  'config-grid-zero': /cgemu: invalid configuration: .*grid \(0, 1, 1\)/,
  'config-shared-48k-plus-1': /cgemu: invalid configuration: .*49153 bytes of shared memory/,
  'host-pointer': /cgemu: fillKernel .*kernel argument 0 .* is neither device nor pinned memory/,
  'use-after-free': /cgemu: fillKernel .*kernel argument 0 .* is neither device nor pinned memory/,
  'divergent-sync': /cgemu: divergentSyncKernel .*wait at different call sites/,
  'deadlock': /cgemu: deadlockKernel .*deadlock: 32 threads wait forever/,
  'shuffle-after-return': /cgemu: shuffleAfterReturnKernel .*a thread returned while others of its warp wait at a shuffle/,
  'shuffle-partial-mask': /cgemu: partialMaskKernel .*with mask 0x0000ffff does not cover every live lane/,
  'memcpy-out-of-range': /cgemu: cudaMemcpyAsync: destination .* is not device memory/,
};
// Correct code must pass without a word from the emulator.
const CONTROLS = { 'float4-aligned': {}, 'stale-read': {}, 'out-of-memory': { CGEMU_DEVICE_MEMORY: '1048576' } };
const SCHEDULES = ['forward', 'reverse', 'random:1', 'random:7', 'random:123456'];
const OTHERS = ['ok', 'missing-sync', 'shared-unwritten', 'float4-misaligned', 'oob-write'];

selftest('every case of the self-test binary is tested here', () => {
  const r = spawnSync(BIN, ['--list'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const listed = r.stdout.trim().split('\n').sort();
  assert.deepEqual(listed, [...Object.keys(CAUGHT), ...Object.keys(CONTROLS), ...OTHERS].sort());
});

selftest('an unknown case is refused', () => {
  const r = runCase(BIN, 'no-such-case');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
});

for (const schedule of SCHEDULES) {
  selftest(`ok: barriers, shuffles and shared memory give the right sums under CGEMU_SCHEDULE=${schedule}`, () => {
    const r = runCase(BIN, 'ok', { CGEMU_SCHEDULE: schedule });
    expectPass(r, 'ok');
    assert.match(r.stdout, new RegExp(`CGEMU_SCHEDULE=${schedule}\n$`));
    assert.equal(r.stderr, '');
  });
}

for (const [name, env] of Object.entries(CONTROLS)) {
  selftest(`${name}: passes and the emulator says nothing`, () => {
    const r = runCase(BIN, name, env);
    expectPass(r, name);
    assert.equal(r.stderr, '');
  });
}

for (const [name, message] of Object.entries(CAUGHT)) {
  selftest(`${name}: the emulator reports it with the CUDA error`, () => {
    const r = runCase(BIN, name);
    expectPass(r, name);
    assert.match(r.stderr, message);
  });
}

selftest('missing-sync: a kernel without its __syncthreads gives different results in two thread orders', () => {
  const wrong = (schedule) => {
    const r = runCase(BIN, 'missing-sync', { CGEMU_SCHEDULE: schedule });
    expectPass(r, 'missing-sync');
    const m = /: (\d+) of 384 elements wrong/.exec(r.stdout);
    assert.ok(m, r.stdout);
    return Number(m[1]);
  };
  const forward = wrong('forward'), reverse = wrong('reverse');
  assert.notEqual(forward, reverse, 'the two orders gave the same result');
  assert.ok(Math.max(forward, reverse) > 0, 'neither order gave a wrong result');
});

selftest('shared-unwritten: shared memory no thread of the CTA wrote reads as NaN, not as zeros or stale values', () => {
  const r = runCase(BIN, 'shared-unwritten');
  expectPass(r, 'shared-unwritten');
  // Two half launches of 3 CTAs, 64 unwritten floats each, around a launch that wrote all.
  assert.match(r.stdout, /: 384 reads of unwritten shared memory, all NaN\n$/);
});

selftest('float4-misaligned: UBSan stops the process at the misaligned float4 load', () => {
  const r = runCase(BIN, 'float4-misaligned');
  assert.notEqual(r.status, 0, `the process survived: ${r.stdout}`);
  assert.match(r.stderr, /selftest\.cu:\d+:\d+: runtime error: .*misaligned address .*float4/);
  assert.doesNotMatch(r.stdout, /^pass/m);
});

selftest('oob-write: a build without AddressSanitizer refuses the case rather than corrupt its heap', () => {
  const r = runCase(BIN, 'oob-write');
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^fail oob-write: this build has no AddressSanitizer/);
});

// Run by test/cuda-emulator/run.js again after it builds build-emulator-asan/.
selftest('AddressSanitizer: the ok case runs clean', () => {
  const r = runCase(ASAN_BIN, 'ok', { ASAN_OPTIONS: 'detect_leaks=0' });
  expectPass(r, 'ok');
  assert.doesNotMatch(r.stderr, /AddressSanitizer/);
}, () => asanSkipReason);

selftest('AddressSanitizer: a kernel writing one float past its allocation stops with a report', () => {
  const r = runCase(ASAN_BIN, 'oob-write', { ASAN_OPTIONS: 'detect_leaks=0' });
  assert.notEqual(r.status, 0, `the process survived: ${r.stdout}`);
  assert.match(r.stderr, /AddressSanitizer: heap-buffer-overflow/);
  assert.match(r.stderr, /WRITE of size 4 .*\n(.*\n)*?.*fillKernel/);
  assert.doesNotMatch(r.stdout, /^pass/m);
}, () => asanSkipReason);
