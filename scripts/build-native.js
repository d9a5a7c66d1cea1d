#!/usr/bin/env node
// Builds the native addon with cmake-js into build/Release/craftgrad.node.
//   CRAFTGRAD_CUDA=AUTO|ON|OFF (default AUTO: CUDA when nvcc is found)
//   CRAFTGRAD_MPI=AUTO|ON|OFF (default AUTO: multi-process training when MPI is found)
//   CRAFTGRAD_DEBUG=1 for a debug build.
//   CRAFTGRAD_BUILD_DRY_RUN=1 prints what would be done (reuse or reconfigure, and why) and
//   builds nothing (for tests and for checking a rebuild command).
// Extra arguments are passed to cmake-js (e.g. --arch=x64 from the prebuild shim).
//
// A configured build/ is reused (cmake-js `compile`) unless its settings changed or, for a
// setting left at AUTO, the build did not find MPI (or nvcc) and it is found now: CMake
// caches "not found", so installing MPI or CUDA after the first build would otherwise
// never reach the addon. build/craftgrad-settings.json records the settings, what the build
// found (build/craftgrad-found.json, written by CMakeLists.txt) and what probeEnvironment()
// saw when it was configured.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const STAMP_FILE = 'craftgrad-settings.json';
export const FOUND_FILE = 'craftgrad-found.json';

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The first executable `name` in the directories of env.PATH, then in `extraDirs`. */
function findProgram(name, env, extraDirs = []) {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  for (const dir of dirs) {
    const file = join(dir, name);
    if (isExecutable(file)) return file;
  }
  return null;
}

// FindMPI (CMake 3.18+) finds MPI for C++ through a compiler wrapper (MPI_HOME, I_MPI_ROOT,
// then the PATH) and, when no wrapper works, through pkg-config's mpi-cxx module. The C
// wrapper (mpicc) comes in the same packages (Debian: libopenmpi-dev, libmpich-dev).
// mpirun/mpiexec alone (Debian's openmpi-bin) is no evidence: CMake finds no MPI with it.
const MPI_WRAPPERS = ['mpicxx', 'mpiCC', 'mpic++', 'mpicc'];
const MPI_PKG_CONFIG = ['mpi-cxx', 'ompi-cxx'];

/**
 * What a configure would find now, as CMakeLists.txt looks for it: `cuda` the nvcc CMake's
 * check_language(CUDA) would take (CUDACXX, the PATH, CUDAToolkit_ROOT, /usr/local/cuda,
 * /usr/local/cuda-X.Y) or null; `mpi` the MPI evidence FindMPI would act on ('mpicxx:/usr/bin/mpicxx',
 * 'pkg-config:mpi-cxx'), empty when there is none. Only `env` is read (its PATH and
 * PKG_CONFIG_PATH included), so a test can stage the change a user's install makes.
 * @param {NodeJS.ProcessEnv} [env]
 * @param {{ cudaRoots?: string[] }} [options] where nvcc is looked for after the PATH
 *   (default: /usr/local/cuda and /usr/local/cuda-X.Y, newest first)
 */
export function probeEnvironment(env = process.env, options = {}) {
  let cuda = null;
  if (env.CUDACXX) cuda = env.CUDACXX;
  else {
    const roots = options.cudaRoots ?? defaultCudaRoots(env);
    cuda = findProgram('nvcc', env, roots.map((r) => join(r, 'bin')));
  }
  const mpi = [];
  const hints = [env.MPI_HOME, env.I_MPI_ROOT].filter(Boolean).map((h) => join(h, 'bin'));
  for (const name of MPI_WRAPPERS) {
    const file = findProgram(name, { PATH: [...hints, env.PATH ?? ''].join(delimiter) });
    if (file) mpi.push(`${name}:${file}`);
  }
  if (findProgram('pkg-config', env)) {
    for (const module of MPI_PKG_CONFIG) {
      const r = spawnSync('pkg-config', ['--exists', module], { env, stdio: 'ignore' });
      if (r.status === 0) mpi.push(`pkg-config:${module}`);
    }
  }
  return { cuda, mpi };
}

function defaultCudaRoots(env) {
  const roots = env.CUDAToolkit_ROOT ? [env.CUDAToolkit_ROOT] : [];
  roots.push('/usr/local/cuda');
  let versions = [];
  try {
    versions = readdirSync('/usr/local').filter((d) => /^cuda-\d+\.\d+$/.test(d))
      .sort((a, b) => b.slice(5).localeCompare(a.slice(5), 'en', { numeric: true }));
  } catch { /* no /usr/local */ }
  return [...roots, ...versions.map((d) => join('/usr/local', d))];
}

/**
 * What the configured build in `buildDir` found: { cuda, mpi } (true, false, or null when
 * unknown), from build/craftgrad-found.json, else (a build configured before that file
 * existed) from CMakeCache.txt.
 */
export function readFound(buildDir) {
  try {
    const found = JSON.parse(readFileSync(join(buildDir, FOUND_FILE), 'utf8'));
    return { cuda: found.cuda ?? null, mpi: found.mpi ?? null };
  } catch { /* fall back to the cache */ }
  let cache;
  try {
    cache = readFileSync(join(buildDir, 'CMakeCache.txt'), 'utf8');
  } catch {
    return { cuda: null, mpi: null };
  }
  const entry = (name) => new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm').exec(cache)?.[1];
  const cudaCompiler = entry('CMAKE_CUDA_COMPILER');
  const cudaMode = entry('CRAFTGRAD_CUDA');
  const mpiLibs = entry('MPI_CXX_LIB_NAMES');
  return {
    cuda: cudaMode === 'OFF' ? false : cudaCompiler === undefined ? false : !/NOTFOUND$/.test(cudaCompiler) && cudaCompiler !== '',
    mpi: entry('CRAFTGRAD_MPI') === 'OFF' ? false : !!mpiLibs,
  };
}

/** The stamp of `buildDir`: { settings, found, seen }, or undefined. A stamp written before found/seen were recorded is its settings alone. */
export function readStamp(buildDir) {
  let text;
  try {
    text = readFileSync(join(buildDir, STAMP_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const stamp = JSON.parse(text);
    if (stamp && typeof stamp === 'object' && stamp.settings) return stamp;
    return { settings: stamp, found: readFound(buildDir), seen: null };
  } catch {
    return { settings: null, found: { cuda: null, mpi: null }, seen: null };
  }
}

function describeSettings(s) {
  return `CRAFTGRAD_CUDA=${s.cuda} CRAFTGRAD_MPI=${s.mpi}${s.debug ? ' CRAFTGRAD_DEBUG=1' : ''}${s.extraArgs.length ? ' ' + s.extraArgs.join(' ') : ''}`;
}

/**
 * Whether the configured build can be reused (a pure function: no file or process is read).
 * @param {{ settings: object|null, found: { cuda: boolean|null, mpi: boolean|null }, seen: { cuda: string|null, mpi: string[] }|null }|undefined} stamp
 *   readStamp()'s answer for the build directory
 * @param {{ cuda: string, mpi: string, debug: boolean, extraArgs: string[] }} settings the requested settings
 * @param {{ cuda: string|null, mpi: string[] }} now probeEnvironment()'s answer
 * @returns {{ action: 'compile'|'rebuild', cause: 'none'|'unconfigured'|'settings'|'environment', reason: string }}
 *   cause 'environment': the settings are unchanged but MPI or nvcc is found now where the
 *   build found none (scripts/install.js rebuilds an addon that loads only for this cause)
 */
export function decideBuild(stamp, settings, now) {
  if (!stamp) return { action: 'rebuild', cause: 'unconfigured', reason: 'no configured build' };
  if (JSON.stringify(stamp.settings) !== JSON.stringify(settings)) {
    const was = stamp.settings && typeof stamp.settings === 'object' && 'cuda' in stamp.settings ? describeSettings(stamp.settings) : 'unknown settings';
    return { action: 'rebuild', cause: 'settings', reason: `the settings changed (configured with ${was}, now ${describeSettings(settings)})` };
  }
  const seenMpi = new Set(stamp.seen?.mpi ?? []);
  const newMpi = now.mpi.filter((m) => !seenMpi.has(m));
  const reasons = [];
  if (settings.mpi === 'AUTO' && stamp.found?.mpi !== true && newMpi.length > 0) {
    reasons.push(`MPI is found now (${newMpi.join(', ')}) but the configured build has none`);
  }
  if (settings.cuda === 'AUTO' && stamp.found?.cuda !== true && now.cuda && now.cuda !== (stamp.seen?.cuda ?? null)) {
    reasons.push(`nvcc is found now (${now.cuda}) but the configured build has no CUDA backend`);
  }
  if (reasons.length) return { action: 'rebuild', cause: 'environment', reason: reasons.join('; ') };
  return { action: 'compile', cause: 'none', reason: 'the configured build is up to date with its settings and what it can find' };
}

/**
 * The requested settings (CRAFTGRAD_CUDA, CRAFTGRAD_MPI, CRAFTGRAD_DEBUG and the extra
 * arguments), or a string saying which variable is wrong.
 */
export function requestedSettings(env = process.env, extraArgs = [], cudaOverride = undefined) {
  const cuda = cudaOverride ?? (env.CRAFTGRAD_CUDA ?? 'AUTO').toUpperCase();
  if (cudaOverride === undefined && !['AUTO', 'ON', 'OFF'].includes(cuda)) {
    return `CRAFTGRAD_CUDA must be AUTO, ON or OFF, got '${env.CRAFTGRAD_CUDA}'`;
  }
  const mpi = (env.CRAFTGRAD_MPI ?? 'AUTO').toUpperCase();
  if (!['AUTO', 'ON', 'OFF'].includes(mpi)) return `CRAFTGRAD_MPI must be AUTO, ON or OFF, got '${env.CRAFTGRAD_MPI}'`;
  return { cuda, mpi, debug: env.CRAFTGRAD_DEBUG === '1', extraArgs };
}

/**
 * What buildNative would do in `buildDir` with `env`: { settings, decision, seen } (or
 * { error } for a wrong variable). scripts/install.js asks it whether a local build that
 * loads is stale.
 */
export function planBuild(buildDir = join(root, 'build'), env = process.env, extraArgs = [], cudaOverride = undefined) {
  const settings = requestedSettings(env, extraArgs, cudaOverride);
  if (typeof settings === 'string') return { error: settings };
  const seen = probeEnvironment(env);
  return { settings, seen, decision: decideBuild(readStamp(buildDir), settings, seen) };
}

/**
 * @param {string[]} extraArgs passed to cmake-js
 * @param {{ cuda?: string, buildDir?: string }} [options] the CUDA mode (default: the
 *   CRAFTGRAD_CUDA variable, checked) and the build directory (default build/);
 *   test/cuda-emulator/run.js builds the EMULATOR mode into its own directory.
 */
export function buildNative(extraArgs = [], options = {}) {
  const dryRun = process.env.CRAFTGRAD_BUILD_DRY_RUN === '1';
  if (!which('cmake') && !dryRun) {
    console.error('craftgrad: building the native addon needs cmake >= 3.18 and a C++17 compiler ' +
      '(Debian/Ubuntu: apt-get install cmake g++).');
    return 1;
  }
  const buildDir = options.buildDir ?? join(root, 'build');
  const plan = planBuild(buildDir, process.env, extraArgs, options.cuda);
  if (plan.error) {
    console.error(`craftgrad: ${plan.error}`);
    return 1;
  }
  const { settings, seen, decision } = plan;
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  // cmake-js `compile` configures only when build/ has no CMake cache, and CMake caches
  // what it did not find: `rebuild` (from scratch) when decideBuild says so.
  const args = [cmakeJs, decision.action, '--out', buildDir, `--CDCRAFTGRAD_CUDA=${settings.cuda}`, `--CDCRAFTGRAD_MPI=${settings.mpi}`, ...extraArgs];
  if (settings.debug) args.push('--debug');
  if (dryRun) {
    console.log(`craftgrad: dry run (CRAFTGRAD_BUILD_DRY_RUN=1), nothing built: ${JSON.stringify({ buildDir, ...decision, args: args.slice(1) })}`);
    return 0;
  }
  if (decision.cause === 'environment') console.log(`craftgrad: configuring the build again: ${decision.reason}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('craftgrad: native build failed (see README "Troubleshooting"; CRAFTGRAD_CUDA=OFF skips the GPU backend).');
    return r.status ?? 1;
  }
  const found = readFound(buildDir);
  writeFileSync(join(buildDir, STAMP_FILE), JSON.stringify({ settings, found, seen }));
  const has = (x) => (x === true ? 'yes' : x === false ? 'no' : '?');
  console.log(`craftgrad: native addon built in ${((Date.now() - started) / 1000).toFixed(0)} s ` +
    `(CRAFTGRAD_CUDA=${settings.cuda}: CUDA ${has(found.cuda)}; CRAFTGRAD_MPI=${settings.mpi}: MPI ${has(found.mpi)})`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(buildNative(process.argv.slice(2)));
