// What the GPU test files share: whether a usable CUDA device is present, the reason their
// GPU tests skip when it is not, and the guard that turns such a skip into a failure where
// a GPU was promised.
import test from 'node:test';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../../dist/index.js';

const cuda = backendInfo().cuda;

/** True when the CUDA backend is compiled in and sees at least one device. */
export const gpu = cuda.compiled && cuda.available && cuda.devices.length > 0;

/** Why the GPU tests skip ('' with a GPU). */
export const gpuSkipReason = gpu ? '' : `no CUDA device: ${cuda.compiled ? cuda.reason : 'this build has no CUDA backend'}`;

/**
 * Says once per file (`import.meta.url`) on which device its GPU tests run or why they skip,
 * and returns node:test's `skip` option for them (false with a GPU). With
 * CGTEST_REQUIRE_GPU=1 (scripts/device/session.sh sets it on the GPU machine, where a skip
 * would report success with nothing tested; a test knob, not CRAFTGRAD_*: the CLI takes
 * those for options) a file whose GPU tests would skip throws instead, so it fails.
 */
export function announceGpu(fileUrl) {
  const file = basename(fileURLToPath(fileUrl));
  if (gpu) {
    console.log(`# ${file}: running on ${cuda.devices.map((d) => `${d.name} (sm ${d.computeCapability})`).join(', ')}`);
    return false;
  }
  if (process.env.CGTEST_REQUIRE_GPU === '1') throw new Error(`CGTEST_REQUIRE_GPU=1 but the GPU tests would be skipped: ${gpuSkipReason}`);
  console.log(`# ${file}: GPU tests skipped (${gpuSkipReason})`);
  return gpuSkipReason;
}

/** True when the CUDA device is the emulator (test/cuda-emulator). */
export const emulated = cuda.devices.some((d) => /emulator/i.test(d.name));

/**
 * The cuBLASLt a GPU test's children load, and why its tests skip: on the emulator its
 * stand-in, built beside the emulator's addon (CRAFTGRAD_PREBUILD); on a GPU the machine's
 * own. `gpuSkip` is announceGpu's answer. { env (for the children), standIn, skip }.
 */
export function cublasLtForTests(gpuSkip) {
  const standIn = process.env.CRAFTGRAD_PREBUILD ? join(process.env.CRAFTGRAD_PREBUILD, 'build', 'cuda-emulator', 'libcublasLt.so.13') : '';
  const env = emulated ? { CRAFTGRAD_CUBLASLT_LIBRARY: standIn } : {};
  let skip;
  if (gpuSkip) skip = gpuSkip;
  else if (emulated && !existsSync(standIn)) skip = `the emulator's cuBLASLt stand-in is not built (${standIn})`;
  else if (!emulated && !backendInfo().cublasLt.available) skip = `no cuBLASLt on this machine: ${backendInfo().cublasLt.reason}`;
  return { env, standIn, skip };
}

/** A test that runs only with a GPU and otherwise skips, printing gpuSkipReason. */
export function gpuTest(name, fn) {
  test(name, { skip: gpu ? false : gpuSkipReason }, fn);
}
