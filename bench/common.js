// Recording benchmark results in bench/RESULTS.md, and picking the GPU a benchmark runs on
// (repository only; not shipped).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { backendInfo } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { describeCudaTuning } from '../dist/cli/commands/info.js';

/** Replaces (or appends) the section between the markers of `id` in bench/RESULTS.md. */
/**
 * The benchmark-only natives (bench/native, `binding.bench`): a build made in this repository
 * has them; an addon from the npm package or a prebuild does not, and the benchmark stops.
 */
export function benchNatives(command) {
  if (binding.bench) return binding.bench;
  console.error(`${command}: this addon has no benchmark natives (bench/native); build it in the repository with \`npm run build:native\`.`);
  process.exit(1);
}

export function recordSection(id, markdown) {
  const file = new URL('./RESULTS.md', import.meta.url);
  const start = `<!-- ${id}:start -->`, end = `<!-- ${id}:end -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8')
    : '# Benchmark results\n\nEvery figure is a ratio to a baseline or to a physical floor measured in the same run.\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(start), j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}

/**
 * The CUDA device a GPU benchmark runs on, from `--device cuda|cuda:N`, or null after
 * saying why there is none. The CPU emulator (test/cuda-emulator) is refused: its
 * timings say nothing about a GPU and must never reach bench/RESULTS.md (allowEmulator: a
 * benchmark's --tiny rehearsal, which never records).
 * @returns {{ index: number, name: string, device: string, info: object } | null}
 */
export function benchCudaDevice(flag, command, { allowEmulator = false } = {}) {
  const cuda = backendInfo().cuda;
  if (!cuda.available) {
    console.error(`${command} --device ${flag}: no usable CUDA device (${cuda.compiled ? cuda.reason : 'this build has no CUDA backend'}); nothing measured.`);
    return null;
  }
  const index = Number(/^cuda:(\d+)$/.exec(flag)?.[1] ?? '0');
  const info = cuda.devices[index];
  if (!info) {
    console.error(`${command}: no CUDA device ${index} (${cuda.devices.length} visible); nothing measured.`);
    return null;
  }
  if (/emulator/i.test(info.name) && !allowEmulator) {
    console.error(`${command}: cuda:${index} is ${info.name}, whose timings mean nothing (test/cuda-emulator/README.md); nothing measured.`);
    return null;
  }
  return { index, name: info.name, device: `cuda:${index}`, info };
}

/** The CUDA tuning overrides in effect (native/cuda/tuning.h), for a record's header. */
export function cudaTuningText() {
  const t = backendInfo().cuda.tuning;
  return t ? describeCudaTuning(t) : 'n/a (no CUDA backend)';
}

/**
 * `n` floats, uniform in [-scale/2, scale/2), from a 32-bit LCG seeded with `seed`: the same
 * bytes on every run and machine, so that benchmarks time the same data.
 */
export function seededFloats(n, seed, scale = 1) {
  const d = new Float32Array(n);
  const next = seededUniform(seed);
  for (let i = 0; i < n; ++i) d[i] = next() * scale;
  return d;
}

/** The generator behind seededFloats: each call, the next number in [-0.5, 0.5). */
export function seededUniform(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/**
 * `mpirun -np n command...` to completion, with what Open MPI needs in a container: root
 * allowed, more ranks than cores, and no single-copy (CMA needs ptrace, often forbidden).
 * The same settings as test/helpers/mpi.mjs. Returns spawnSync's result (stdout as text).
 */
export function mpirunSync(n, command, { env = {}, timeout = 600_000 } = {}) {
  const mpiEnv = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl_vader_single_copy_mechanism: 'none' };
  return spawnSync('mpirun', ['--oversubscribe', '-np', String(n), ...command],
    { encoding: 'utf8', env: { ...process.env, ...mpiEnv, ...env }, timeout, maxBuffer: 64 << 20 });
}

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
