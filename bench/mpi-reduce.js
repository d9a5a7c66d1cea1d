#!/usr/bin/env node
// node bench/mpi-reduce.js [--record] [--reps N] [--steps N] [--runs N]
// mpirun -np 2 node bench/mpi-reduce.js [--reps N]     (the reduction part only)
//
// Data-parallel training's communication (README "Multi-process training", docs/DATA-PARALLEL.md):
// 1. Reducing both gradient sets of the VLA-adapter-like layout (src/bench/layouts.ts) with
//    binding.mpi.sumInRankOrder (the trainer's deterministic rank-order sum) against
//    MPI_Allreduce (binding.mpi.allreduceSum) of the same bytes, timed interleaved in one
//    job; target: within 1.2×.
// 2. The step time (step_ms in metrics.jsonl) of `craftgrad train` on the built-in default
//    model with 2 ranks against one process.
// Without a launcher it starts part 1 under `mpirun -np 2` itself, then runs part 2.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { vlaAdapterLayout } from '../dist/bench/layouts.js';
import { describeMachine } from '../dist/bench/timing.js';
import { detectLauncher } from '../dist/parallel/launcher.js';
import { median, mpirunSync, recordSection, seededFloats } from './common.js';

const { values: args } = parseArgs({
  options: {
    record: { type: 'boolean', default: false }, reps: { type: 'string', default: '11' },
    steps: { type: 'string', default: '300' }, runs: { type: 'string', default: '3' }, json: { type: 'boolean', default: false },
  },
});
const self = fileURLToPath(import.meta.url);
const bin = fileURLToPath(new URL('../bin/craftgrad.js', import.meta.url));
const MB = 1e6;

if (!binding.mpi.compiled) {
  console.error('bench/mpi-reduce.js: this build of the addon has no MPI (install libopenmpi-dev and rebuild it); nothing measured.');
  process.exit(1);
}

if (detectLauncher()) {
  const r = reduceBench(Number(args.reps));
  if (r && args.json) console.log(`MPI-REDUCE-JSON ${JSON.stringify(r)}`);
  else if (r) console.log(reduceTable(r));
  process.exit(0);
}

// ---- not under a launcher: part 1 under mpirun -np 2, then part 2 ----
const loadBefore = loadavg()[0];
// 911 MB per call at well under 1 GB/s here: minutes, more on a busy machine.
const job = mpirunSync(2, [process.execPath, self, '--json', '--reps', args.reps], { timeout: 3_600_000 });
const line = /^MPI-REDUCE-JSON (.*)$/m.exec(job.stdout ?? '');
if (job.status !== 0 || !line) {
  console.error(`mpirun -np 2 ${self} failed (exit ${job.status ?? job.signal}${job.error ? `, ${job.error.message}` : ''}):\n${job.stdout}\n${job.stderr}`);
  process.exit(1);
}
const reduce = JSON.parse(line[1]);
const reduceText = reduceTable(reduce);
console.log(reduceText);
const steps = stepBench(Number(args.steps), Number(args.runs));
const stepText = stepTable(steps);
console.log(stepText);
// Other processes on a shared machine slow some reps down: the load says how busy it was.
const loadText = `1-minute load average: ${loadBefore.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (2 cores).`;
console.log(loadText);
if (args.record) {
  const info = backendInfo();
  recordSection('mpi-reduce', `## Data parallel over MPI, 2 ranks (\`node bench/mpi-reduce.js --record\`)

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${describeMachine()}; kernels ${info.cpu.isa}; ${info.mpi.library}
- Both ranks on this one machine: MPI moves the bytes through shared memory (Open MPI's vader BTL, single-copy off), not a network; 2 ranks on 2 cores.
- Command: \`node bench/mpi-reduce.js ${process.argv.slice(2).join(' ')}\` (starts the reduction part under \`mpirun --oversubscribe -np 2\` itself).
- ${loadText} The machine is shared with other sessions: these are what this run took, not bounds.

${reduceText}

${stepText}`);
  console.log('recorded in bench/RESULTS.md');
}

/**
 * On every rank: both gradient sets of the VLA-adapter-like layout (each rank its own seeded
 * values), reduced by each method in turn, the order alternating rep to rep; each call starts
 * after a barrier and its time is the slowest rank's. Returns rank 0's figures (others: null).
 */
function reduceBench(reps) {
  const mpi = binding.mpi;
  mpi.init();
  const rank = mpi.rank(), size = mpi.size();
  const elements = vlaAdapterLayout().reduce((s, n) => s + n, 0);
  const pristine = [seededFloats(elements, 1 + 2 * rank, 1e-2), seededFloats(elements, 2 + 2 * rank, 1e-2)];
  const sets = pristine.map((p) => p.slice());
  const methods = { rankOrder: (a) => mpi.sumInRankOrder(a), allreduce: (a) => mpi.allreduceSum(a) };
  const times = { rankOrder: [], allreduce: [] };
  const once = (name) => {
    sets.forEach((s, i) => s.set(pristine[i]));  // each call reduces the same values
    mpi.barrier();
    const t0 = process.hrtime.bigint();
    methods[name](sets);
    const mine = Number(process.hrtime.bigint() - t0) / 1e9;
    return Math.max(...mpi.allgather(new Float64Array([mine])));
  };
  once('rankOrder'), once('allreduce');  // warm-up: first-touch of MPI's buffers
  for (let i = 0; i < reps; ++i) {
    const order = i % 2 ? ['allreduce', 'rankOrder'] : ['rankOrder', 'allreduce'];
    for (const name of order) times[name].push(once(name));
  }
  mpi.finalize();
  if (rank !== 0) return null;
  return {
    ranks: size, library: backendInfo().mpi.library, elements, bytes: 2 * 4 * elements, reps,
    rankOrder: { median: median(times.rankOrder), best: Math.min(...times.rankOrder) },
    allreduce: { median: median(times.allreduce), best: Math.min(...times.allreduce) },
  };
}

function reduceTable(r) {
  const ratio = r.rankOrder.median / r.allreduce.median;
  // Bus bandwidth as NCCL's tests define it for an all-reduce: bytes · 2(N−1)/N per second.
  const bus = (t) => ((r.bytes * 2 * (r.ranks - 1)) / r.ranks / t / 1e9).toFixed(2);
  const row = (name, t) => `| ${name} | ${(t.median * 1e3).toFixed(0)} | ${(t.best * 1e3).toFixed(0)} | ${bus(t.median)} |`;
  return [
    `Reducing both gradient sets of the VLA-adapter-like layout across ${r.ranks} ranks: 2 × ${r.elements.toLocaleString('en-US')} floats = ${(r.bytes / MB).toFixed(1)} MB per rank. ` +
      `${r.reps} reps of each after one warm-up, interleaved (order alternating); each rep's time is the slowest rank's; median and best.`,
    '',
    '| method | median ms | best ms | bus bandwidth GB/s (median) |',
    '|---|---:|---:|---:|',
    row('sumInRankOrder (all-to-all + rank-order sum + all-gather)', r.rankOrder),
    row('MPI_Allreduce (MPI_SUM, Open MPI\'s choice of algorithm)', r.allreduce),
    '',
    `sumInRankOrder / MPI_Allreduce: **${ratio.toFixed(2)}×** on the medians (${(r.rankOrder.best / r.allreduce.best).toFixed(2)}× on the best times); ` +
      `target within 1.2× on the medians: **${ratio <= 1.2 ? 'met' : 'not met'}**.`,
  ].join('\n');
}

/** Medians of step_ms, steps after the first `skip`, of each configuration's runs (interleaved). */
function stepBench(steps, runs) {
  const skip = Math.min(20, Math.floor(steps / 4));
  const configs = [
    { name: '1 process, 2 threads (the default)', ranks: 1, threads: 2 },
    { name: '1 process, 1 thread', ranks: 1, threads: 1 },
    { name: '2 ranks, 1 thread each', ranks: 2, threads: 1 },
    { name: '2 ranks, 2 threads each (the default: 4 threads on 2 cores)', ranks: 2, threads: 2 },
  ];
  const out = mkdtempSync(join(tmpdir(), 'craftgrad-mpi-bench-'));
  try {
    for (const c of configs) c.medians = [];
    for (let run = 0; run < runs; ++run) {
      for (const c of configs) {
        const name = `r${c.ranks}t${c.threads}-${run}`;
        const command = [process.execPath, bin, 'train', '--steps', String(steps), '--quiet', '--out', out, '--name', name,
          '--threads', String(c.threads), '--val-every', '0', '--save-every', '0'];
        const r = c.ranks === 1 ? spawnSync(command[0], command.slice(1), { encoding: 'utf8' }) : mpirunSync(c.ranks, command);
        if (r.status !== 0) throw new Error(`${command.join(' ')} (${c.ranks} ranks) failed:\n${r.stdout}\n${r.stderr}`);
        const rows = readFileSync(join(out, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
          .filter((row) => row.step > skip);
        c.medians.push(median(rows.map((row) => row.step_ms)));
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return { steps, skip, runs, configs: configs.map(({ name, ranks, threads, medians }) => ({ name, ranks, threads, stepMs: median(medians), medians })) };
}

function stepTable(s) {
  const base = s.configs[0].stepMs;
  return [
    `Step time of \`craftgrad train\` on the built-in default model (batch 32, synthetic data; --val-every 0 --save-every 0), ${s.steps} steps: ` +
      `the median step_ms (rank 0's metrics.jsonl) over steps ${s.skip + 1}–${s.steps}, then the median over ${s.runs} runs of each configuration, run interleaved.`,
    '',
    '| configuration | step ms | × the default one-process run | runs (ms) |',
    '|---|---:|---:|---|',
    ...s.configs.map((c) => `| ${c.name} | ${c.stepMs.toFixed(2)} | ${(c.stepMs / base).toFixed(2)} | ${c.medians.map((m) => m.toFixed(2)).join(', ')} |`),
  ].join('\n');
}
