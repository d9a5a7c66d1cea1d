#!/usr/bin/env node
// Builds the native addon with cmake-js into build/Release/craftgrad.node.
//   CRAFTGRAD_CUDA=AUTO|ON|OFF (default AUTO: CUDA when nvcc is found)
//   CRAFTGRAD_MPI=AUTO|ON|OFF (default AUTO: multi-process training when MPI is found)
//   CRAFTGRAD_DEBUG=1 for a debug build.
// Extra arguments are passed to cmake-js (e.g. --arch=x64 from the prebuild shim).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/**
 * @param {string[]} extraArgs passed to cmake-js
 * @param {{ cuda?: string, buildDir?: string }} [options] the CUDA mode (default: the
 *   CRAFTGRAD_CUDA variable, checked) and the build directory (default build/);
 *   test/cuda-emulator/run.js builds the EMULATOR mode into its own directory.
 */
export function buildNative(extraArgs = [], options = {}) {
  if (!which('cmake')) {
    console.error('craftgrad: building the native addon needs cmake >= 3.18 and a C++17 compiler ' +
      '(Debian/Ubuntu: apt-get install cmake g++).');
    return 1;
  }
  const cuda = options.cuda ?? (process.env.CRAFTGRAD_CUDA ?? 'AUTO').toUpperCase();
  if (options.cuda === undefined && !['AUTO', 'ON', 'OFF'].includes(cuda)) {
    console.error(`craftgrad: CRAFTGRAD_CUDA must be AUTO, ON or OFF, got '${process.env.CRAFTGRAD_CUDA}'`);
    return 1;
  }
  const mpi = (process.env.CRAFTGRAD_MPI ?? 'AUTO').toUpperCase();
  if (!['AUTO', 'ON', 'OFF'].includes(mpi)) {
    console.error(`craftgrad: CRAFTGRAD_MPI must be AUTO, ON or OFF, got '${process.env.CRAFTGRAD_MPI}'`);
    return 1;
  }
  const buildDir = options.buildDir ?? join(root, 'build');
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  // cmake-js `compile` configures only when build/ has no CMake cache, so a changed
  // setting would be silently ignored: rebuild from scratch when it differs from the
  // one the existing build/ was configured with.
  const settings = JSON.stringify({ cuda, mpi, debug: process.env.CRAFTGRAD_DEBUG === '1', extraArgs });
  const stamp = join(buildDir, 'craftgrad-settings.json');
  const same = existsSync(stamp) && readFileSync(stamp, 'utf8') === settings;
  const args = [cmakeJs, same ? 'compile' : 'rebuild', '--out', buildDir, `--CDCRAFTGRAD_CUDA=${cuda}`, `--CDCRAFTGRAD_MPI=${mpi}`, ...extraArgs];
  if (process.env.CRAFTGRAD_DEBUG === '1') args.push('--debug');
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('craftgrad: native build failed (see README "Troubleshooting"; CRAFTGRAD_CUDA=OFF skips the GPU backend).');
    return r.status ?? 1;
  }
  writeFileSync(stamp, settings);
  console.log(`craftgrad: native addon built in ${((Date.now() - started) / 1000).toFixed(0)} s (CRAFTGRAD_CUDA=${cuda})`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(buildNative(process.argv.slice(2)));
