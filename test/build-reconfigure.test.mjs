// Installing MPI or CUDA after craftgrad (issue #30): a build configured without them under
// AUTO is configured again once they are found (scripts/build-native.js), and every message
// that asks for a rebuild names a command that works from where craftgrad stands
// (src/rebuild.ts). Nothing is installed and nothing is compiled: the environment change
// is staged as the build sees it (a PATH with a fake `mpicxx` or `nvcc`, a build directory
// whose stamp says what its configuration found), and the commands run with
// CRAFTGRAD_BUILD_DRY_RUN=1, which says what the build would do and builds nothing.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decideBuild, probeEnvironment, readFound, readStamp, STAMP_FILE } from '../scripts/build-native.js';
import { rebuildCommand, rebuildAdvice } from '../dist/rebuild.js';
import { tempDir } from './helpers/temp-dir.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const modules = realpathSync(join(root, 'node_modules'));

const AUTO = { cuda: 'AUTO', mpi: 'AUTO', debug: false, extraArgs: [] };
const nothing = { cuda: null, mpi: [] };
const stampOf = (found, seen = nothing, settings = AUTO) => ({ settings, found, seen });

/** An executable shell script `name` in `dir` (a stand-in for mpicxx, nvcc, pkg-config). */
function fakeProgram(dir, name, body = 'exit 0') {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** A bin folder with node, npm and sh only: the PATH of a machine with no MPI and no nvcc on it. */
function bareBin(dir) {
  mkdirSync(dir, { recursive: true });
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(npm, 'npm is not on the PATH');
  symlinkSync(process.execPath, join(dir, 'node'));
  symlinkSync(realpathSync(npm), join(dir, 'npm'));
  symlinkSync(realpathSync('/bin/sh'), join(dir, 'sh'));
  return dir;
}

/** The environment of a user's shell with `PATH`: nothing of this process's CRAFTGRAD_* settings. */
function shellEnv(dir, path, extra = {}) {
  return {
    PATH: path, HOME: dir, npm_config_cache: join(dir, 'npm-cache'), npm_config_update_notifier: 'false',
    npm_config_fund: 'false', npm_config_audit: 'false', npm_config_offline: 'true', ...extra,
  };
}

/** A copy of the package's install and build scripts at `dir` (what a clone or node_modules/craftgrad holds of them). */
function stagePackage(dir, { linkModules }) {
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const f of ['build-native.js', 'install.js']) copyFileSync(join(root, 'scripts', f), join(dir, 'scripts', f));
  if (linkModules) symlinkSync(modules, join(dir, 'node_modules'), 'dir');
}

/** A build directory configured under AUTO that found neither MPI nor CUDA, having seen `seen`. */
function staleBuild(pkg, seen) {
  mkdirSync(join(pkg, 'build'), { recursive: true });
  writeFileSync(join(pkg, 'build', STAMP_FILE), JSON.stringify(stampOf({ cuda: false, mpi: false }, seen)));
}

/** The dry run's answer in a command's output. */
function dryRunOf(output) {
  const m = /craftgrad: dry run \(CRAFTGRAD_BUILD_DRY_RUN=1\), nothing built: (\{.*\})/.exec(output);
  assert.ok(m, `no dry-run line in:\n${output}`);
  return JSON.parse(m[1]);
}

/** `command` as the message gives it, through a shell in `cwd`. */
function runShell(command, cwd, env) {
  const r = spawnSync('/bin/sh', ['-c', command], { cwd, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${command} in ${cwd}:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

test('decideBuild: a build that found no MPI is configured again when MPI is found now, once', () => {
  const noneFound = stampOf({ cuda: false, mpi: false });
  const mpiNow = { cuda: null, mpi: ['mpicxx:/usr/bin/mpicxx'] };
  const d = decideBuild(noneFound, AUTO, mpiNow);
  assert.equal(d.action, 'rebuild');
  assert.equal(d.cause, 'environment');
  assert.match(d.reason, /MPI is found now \(mpicxx:\/usr\/bin\/mpicxx\) but the configured build has none/);
  // The same evidence seen at the last configure, and still no MPI found (say, a broken
  // wrapper): no rebuild on every build.
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: false }, mpiNow), AUTO, mpiNow).action, 'compile');
  // Something new besides (the -dev package after the runtime): configured again.
  const more = { cuda: null, mpi: [...mpiNow.mpi, 'pkg-config:mpi-cxx'] };
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: false }, mpiNow), AUTO, more).cause, 'environment');
  // Found already, or not asked for: reused.
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: true }), AUTO, mpiNow).action, 'compile');
  const mpiOff = { ...AUTO, mpi: 'OFF' };
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: false }, nothing, mpiOff), mpiOff, mpiNow).action, 'compile');
  // Nothing new: reused.
  assert.deepEqual(decideBuild(noneFound, AUTO, nothing).action, 'compile');
});

test('decideBuild: a build without CUDA is configured again when nvcc is found now', () => {
  const d = decideBuild(stampOf({ cuda: false, mpi: true }), AUTO, { cuda: '/usr/local/cuda/bin/nvcc', mpi: [] });
  assert.equal(d.cause, 'environment');
  assert.match(d.reason, /nvcc is found now \(\/usr\/local\/cuda\/bin\/nvcc\) but the configured build has no CUDA backend/);
  const seenBefore = { cuda: '/usr/local/cuda/bin/nvcc', mpi: [] };
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: true }, seenBefore), AUTO, seenBefore).action, 'compile');
  assert.equal(decideBuild(stampOf({ cuda: true, mpi: true }), AUTO, seenBefore).action, 'compile');
  const cpuOnly = { ...AUTO, cuda: 'OFF' };
  assert.equal(decideBuild(stampOf({ cuda: false, mpi: true }, nothing, cpuOnly), cpuOnly, seenBefore).action, 'compile');
});

test('decideBuild: no configured build, or other settings, is a build from scratch', () => {
  assert.deepEqual(decideBuild(undefined, AUTO, nothing), { action: 'rebuild', cause: 'unconfigured', reason: 'no configured build' });
  const d = decideBuild(stampOf({ cuda: false, mpi: false }), { ...AUTO, mpi: 'ON' }, nothing);
  assert.equal(d.cause, 'settings');
  assert.match(d.reason, /configured with CRAFTGRAD_CUDA=AUTO CRAFTGRAD_MPI=AUTO, now CRAFTGRAD_CUDA=AUTO CRAFTGRAD_MPI=ON/);
});

test('readStamp/readFound: what the build found, from CMakeLists.txt\'s file or, for an older build, the CMake cache', (t) => {
  const dir = tempDir(t, 'craftgrad-stamp-');
  assert.equal(readStamp(dir), undefined);
  assert.deepEqual(readFound(dir), { cuda: null, mpi: null });
  // A build configured before craftgrad-found.json existed: the settings alone, the cache.
  writeFileSync(join(dir, STAMP_FILE), JSON.stringify(AUTO));
  writeFileSync(join(dir, 'CMakeCache.txt'), [
    'CMAKE_CUDA_COMPILER:FILEPATH=NOTFOUND', 'CRAFTGRAD_CUDA:STRING=AUTO', 'CRAFTGRAD_MPI:STRING=AUTO', 'MPI_CXX_LIB_NAMES:STRING=', ''].join('\n'));
  assert.deepEqual(readStamp(dir), { settings: AUTO, found: { cuda: false, mpi: false }, seen: null });
  writeFileSync(join(dir, 'CMakeCache.txt'), [
    'CMAKE_CUDA_COMPILER:STRING=/usr/local/bin/nvcc', 'CRAFTGRAD_CUDA:STRING=AUTO', 'MPI_CXX_LIB_NAMES:STRING=mpi_cxx;mpi', ''].join('\n'));
  assert.deepEqual(readFound(dir), { cuda: true, mpi: true });
  // Such a stamp with MPI found now: configured again (its old settings are the same).
  assert.equal(decideBuild({ ...readStamp(dir), found: { cuda: true, mpi: false } }, AUTO, { cuda: null, mpi: ['mpicc:/x'] }).cause, 'environment');
  // CMakeLists.txt's own record wins.
  writeFileSync(join(dir, 'craftgrad-found.json'), '{"cuda": false, "mpi": true}\n');
  assert.deepEqual(readFound(dir), { cuda: false, mpi: true });
});

test('CMakeLists.txt records what the configuration found, where build-native.js reads it', () => {
  const cmake = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  assert.match(cmake, /file\(WRITE \$\{CMAKE_BINARY_DIR\}\/craftgrad-found\.json\s+"\{\\"cuda\\": \$\{_craftgrad_found_cuda\}, \\"mpi\\": \$\{_craftgrad_found_mpi\}\}\\n"\)/);
  assert.ok(cmake.indexOf('craftgrad-found.json') > cmake.indexOf('set(CRAFTGRAD_WITH_MPI ON)'), 'written before MPI is decided');
});

test('probeEnvironment sees what a user installs: MPI\'s compiler wrappers, pkg-config\'s mpi-cxx, nvcc', (t) => {
  const dir = tempDir(t, 'craftgrad-probe-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const env = { PATH: bin };
  assert.deepEqual(probeEnvironment(env, { cudaRoots: [] }), nothing);
  // Not executable: not a program.
  writeFileSync(join(bin, 'mpicxx'), '');
  assert.deepEqual(probeEnvironment(env, { cudaRoots: [] }), nothing);
  const mpicxx = fakeProgram(bin, 'mpicxx');
  const nvcc = fakeProgram(join(dir, 'cuda', 'bin'), 'nvcc');
  assert.deepEqual(probeEnvironment(env, { cudaRoots: [join(dir, 'cuda')] }), { cuda: nvcc, mpi: [`mpicxx:${mpicxx}`] });
  // CUDACXX names the compiler; MPI_HOME's bin is searched; pkg-config answers for mpi-cxx.
  const mpiHome = join(dir, 'openmpi');
  const mpicc = fakeProgram(join(mpiHome, 'bin'), 'mpicc');
  fakeProgram(bin, 'pkg-config', '[ "$1" = --exists ] && [ "$2" = mpi-cxx ]');
  assert.deepEqual(probeEnvironment({ ...env, CUDACXX: '/opt/nvcc', MPI_HOME: mpiHome }, { cudaRoots: [] }),
    { cuda: '/opt/nvcc', mpi: [`mpicxx:${mpicxx}`, `mpicc:${mpicc}`, 'pkg-config:mpi-cxx'] });
});

test('rebuildCommand: `npm run build:native` in a clone, `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in the project of a dependency', () => {
  assert.deepEqual(rebuildCommand('/home/me/src/craftgrad', {}), { form: 'clone', command: 'npm run build:native', cwd: '/home/me/src/craftgrad' });
  assert.deepEqual(rebuildCommand('/home/me/app/node_modules/craftgrad', {}),
    { form: 'dependency', command: 'CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad', cwd: '/home/me/app' });
  // Nested (a dependency's dependency) or pnpm's store: npm rebuild in the outermost project.
  assert.equal(rebuildCommand('/home/me/app/node_modules/.pnpm/craftgrad@0.1.0/node_modules/craftgrad', {}).cwd, '/home/me/app');
  assert.deepEqual(rebuildCommand('/usr/local/lib/node_modules/craftgrad', { npm_config_prefix: '/usr/local' }),
    { form: 'global', command: 'CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild -g craftgrad', cwd: '/usr/local/lib' });
  assert.equal(rebuildAdvice('/home/me/app/node_modules/craftgrad', {}), '`CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in /home/me/app');
  // This checkout is a clone, and its package.json has the script the clone form runs.
  assert.equal(rebuildCommand().form, 'clone');
  assert.equal(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts['build:native'], 'node scripts/build-native.js');
});

test('in a clone, the message\'s `npm run build:native` configures again once MPI or nvcc is found', (t) => {
  const dir = tempDir(t, 'craftgrad-clone-');
  const clone = join(dir, 'craftgrad');
  stagePackage(clone, { linkModules: true });
  const bare = bareBin(join(dir, 'bin'));
  const installed = join(dir, 'installed-later');
  mkdirSync(installed);
  const path = `${installed}:${bare}`;
  const env = shellEnv(dir, path, { CRAFTGRAD_BUILD_DRY_RUN: '1' });
  // Configured when nothing was installed: it saw what the probe sees on this PATH now.
  staleBuild(clone, probeEnvironment({ PATH: path }));

  const { command, cwd } = rebuildCommand(clone, env);
  assert.equal(command, 'npm run build:native');
  assert.equal(cwd, clone);
  const before = dryRunOf(runShell(command, cwd, env));
  assert.equal(before.action, 'compile', before.reason);
  assert.equal(before.buildDir, join(clone, 'build'));

  // apt-get install libopenmpi-dev, as the build sees it: an MPI compiler wrapper on the PATH.
  const mpicxx = fakeProgram(installed, 'mpicxx');
  const after = dryRunOf(runShell(command, cwd, env));
  assert.equal(after.action, 'rebuild');
  assert.equal(after.cause, 'environment');
  assert.ok(after.reason.includes(`mpicxx:${mpicxx}`), after.reason);
  assert.deepEqual(after.args.slice(0, 3), ['rebuild', '--out', join(clone, 'build')]);

  // The CUDA toolkit likewise.
  const nvcc = fakeProgram(installed, 'nvcc');
  assert.ok(dryRunOf(runShell(command, cwd, env)).reason.includes(`nvcc is found now (${nvcc})`));
});

test('in a clone, npm install\'s hook builds again a local build that loads but found no MPI, once MPI is found', (t) => {
  const addon = require('node-gyp-build').path(root);
  const dir = tempDir(t, 'craftgrad-clone-install-');
  const clone = join(dir, 'craftgrad');
  stagePackage(clone, { linkModules: true });
  mkdirSync(join(clone, 'build', 'Release'), { recursive: true });
  symlinkSync(addon, join(clone, 'build', 'Release', 'craftgrad.node'));
  const bare = bareBin(join(dir, 'bin'));
  const installed = join(dir, 'installed-later');
  mkdirSync(installed);
  const path = `${installed}:${bare}`;
  const env = shellEnv(dir, path, { CRAFTGRAD_BUILD_DRY_RUN: '1' });
  staleBuild(clone, probeEnvironment({ PATH: path }));
  // What npm runs for the "install" script.
  const hook = () => spawnSync(process.execPath, ['scripts/install.js'], { cwd: clone, env, encoding: 'utf8', timeout: 60_000 });
  let r = hook();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /craftgrad: using build\/Release\/craftgrad\.node/);
  assert.doesNotMatch(r.stdout, /dry run/);
  fakeProgram(installed, 'mpicxx');
  r = hook();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /build\/Release\/craftgrad\.node loads, but MPI is found now \(mpicxx:.*\) but the configured build has none: building it again/);
  assert.equal(dryRunOf(r.stdout).cause, 'environment');
});

test('as a dependency, the message\'s `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` builds node_modules/craftgrad from source', (t) => {
  const dir = tempDir(t, 'craftgrad-dependency-');
  const project = join(dir, 'app');
  const pkg = join(project, 'node_modules', 'craftgrad');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', private: true, dependencies: { craftgrad: '*' } }));
  stagePackage(pkg, { linkModules: false });
  // The dependencies npm would have installed beside it (only these two are reached).
  for (const dep of ['cmake-js', 'node-gyp-build']) symlinkSync(join(modules, dep), join(project, 'node_modules', dep), 'dir');
  const bare = bareBin(join(dir, 'bin'));
  const installed = join(dir, 'installed-later');
  mkdirSync(installed);
  const path = `${installed}:${bare}`;
  // npm hides an install script's output unless told; the command is the message's own.
  const env = shellEnv(dir, path, { CRAFTGRAD_BUILD_DRY_RUN: '1', npm_config_foreground_scripts: 'true' });
  staleBuild(pkg, probeEnvironment({ PATH: path }));
  fakeProgram(installed, 'mpicxx');

  const { command, cwd, form } = rebuildCommand(pkg, env);
  assert.equal(form, 'dependency');
  assert.equal(cwd, project);
  assert.equal(command, 'CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad');
  const run = dryRunOf(runShell(command, cwd, env));
  assert.equal(run.buildDir, join(pkg, 'build'));
  assert.equal(run.action, 'rebuild');
  assert.equal(run.cause, 'environment');
  assert.ok(existsSync(join(pkg, 'build', STAMP_FILE)), 'the dry run removed the build');
});

test('every message that asks for a rebuild gives the command for where craftgrad stands', async () => {
  const { noMpiMessage } = await import('../dist/parallel/world.js');
  const { infoText } = await import('../dist/cli/commands/info.js');
  const { backendInfo } = await import('../dist/index.js');
  const dependency = '/home/me/app/node_modules/craftgrad';
  assert.match(noMpiMessage('OMPI_COMM_WORLD_SIZE=2', dependency, {}),
    /no MPI support: install an MPI implementation \(Debian: apt-get install libopenmpi-dev\), then rebuild craftgrad with `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in \/home\/me\/app /);
  assert.match(noMpiMessage('OMPI_COMM_WORLD_SIZE=2'), new RegExp(`then rebuild craftgrad with \`npm run build:native\` in ${root.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `));
  assert.doesNotMatch(noMpiMessage('x'), /craftgrad: /, 'the CLI adds the one prefix');
  // `craftgrad info` on a build with neither backend.
  const info = backendInfo();
  const text = infoText({ ...info, cuda: { ...info.cuda, compiled: false }, mpi: { ...info.mpi, compiled: false } }, rebuildAdvice(dependency, {}));
  assert.match(text, /MPI: not compiled into this build \(.*apt-get install libopenmpi-dev, then `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in \/home\/me\/app\)/);
  assert.match(text, /CUDA: not compiled into this build \(.*nvcc on the PATH or in \/usr\/local\/cuda, then `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in \/home\/me\/app\)/);
  // No message in src/ names a rebuild command of its own: they all come from src/rebuild.ts.
  const { readdirSync } = await import('node:fs');
  const offenders = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|cc|cu|h)$/.test(e.name) && !p.endsWith(join('src', 'rebuild.ts')) && /npm rebuild|npm run build:native/.test(readFileSync(p, 'utf8'))) offenders.push(p);
    }
  };
  for (const dir of ['src', 'native']) walk(join(root, dir));
  assert.deepEqual(offenders, []);
});
