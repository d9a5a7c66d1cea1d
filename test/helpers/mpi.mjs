// Running commands under Open MPI's mpirun for the multi-process tests: whether they can
// run here (mpirun installed, the addon built with MPI), and mpirun with the options a
// container on two cores needs (root allowed, more ranks than cores).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Why the multi-process tests cannot run here, or undefined when they can. */
export function mpiSkipReason() {
  if (spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' }).status !== 0) {
    return 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev, then rebuild the addon)';
  }
  const binding = require('node-gyp-build')(new URL('../..', import.meta.url).pathname);
  if (!binding.mpi?.compiled) return 'this build of the addon has no MPI (rebuild it with libopenmpi-dev installed: node scripts/build-native.js)';
  return undefined;
}

// Root may run the ranks (CI runs as root); vader's single-copy mechanism needs ptrace,
// which containers often forbid.
const MPI_ENV = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl_vader_single_copy_mechanism: 'none' };
const mpirunArgs = (n, command) => ['--oversubscribe', '-np', String(n), ...command];

/** `mpirun -np n command...` to completion: { code, signal, stdout, stderr }. */
export function mpirun(n, command, { cwd, env = {}, timeout = 180_000 } = {}) {
  const r = spawnSync('mpirun', mpirunArgs(n, command), { cwd, encoding: 'utf8', env: { ...process.env, ...MPI_ENV, ...env }, timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `mpirun -np n command...` in the background (a ChildProcess; stdout/stderr collected in .out). */
export function mpirunSpawn(n, command, { cwd, env = {} } = {}) {
  const child = spawn('mpirun', mpirunArgs(n, command), { cwd, env: { ...process.env, ...MPI_ENV, ...env } });
  child.out = '';
  child.stdout.on('data', (d) => (child.out += d));
  child.stderr.on('data', (d) => (child.out += d));
  child.done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

/** The pid of the rank `rank` of the job whose ranks carry `tag` in MPI_TEST_TAG, or undefined. */
export function rankPid(tag, rank) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
    } catch {
      continue;  // gone, or not ours to read
    }
    if (environ.includes(`MPI_TEST_TAG=${tag}`) && environ.includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(entry);
  }
  return undefined;
}
