#!/usr/bin/env node
// node bench/mpi-sharded.js [--ranks 2] [--reps 5] [--record]
// The sharded (ZeRO-1) data-parallel step against the plain one (docs/ARCHITECTURE.md §7),
// under `mpirun -np <ranks>`: per optimizer step, the bytes each rank hands to MPI for the
// other ranks (World.bytesSent: the payload of every collective the step makes) and the
// step's wall time (median over the measured steps of a launch, then median over launches).
// The designs alternate launch by launch (interleaved repetitions), which comes first
// alternating too. Two layouts:
//   default: the built-in model with the defaults of `craftgrad train` (synthetic data);
//   large:   a host gradient source (fixed gradients, no model) of 16 tensors, ~4.2 M
//            floats: the step is communication, pass 1 and AdamW only.
// Each rank uses one CPU thread (--threads 1), so the ranks do not fight over the cores.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const { values: args } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    design: { type: 'string' },
    layout: { type: 'string' },
    steps: { type: 'string', default: '20' },
    ranks: { type: 'string', default: '2' },
    reps: { type: 'string', default: '5' },
    record: { type: 'boolean', default: false },
  },
});

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function child() {
  const { World } = await import('../dist/parallel/world.js');
  const { DataParallelSource, startRanks } = await import('../dist/parallel/index.js');
  const { ShardedStep } = await import('../dist/train/sharded-step.js');
  const { Trainer } = await import('../dist/train/trainer.js');
  const { HostGradientSource } = await import('../dist/train/host-source.js');
  const { GradSet } = await import('../dist/gradset.js');
  const { setThreads } = await import('../dist/index.js');
  setThreads(1);
  const world = World.open();
  const sharded = args.design === 'sharded';
  const warm = 3, steps = Number(args.steps);
  let source, options, rankModel;
  if (args.layout === 'default') {
    const { openSessionModel } = await import('../dist/train/session-model.js');
    const { trainerOptions } = await import('../dist/train/session.js');
    const { TRAIN_DEFAULTS } = await import('../dist/train/run-config.js');
    const c = { ...TRAIN_DEFAULTS, val_every: 0, steps: warm + steps };
    const opened = await openSessionModel(c, { resume: false, log: () => {}, keyName: (k) => k, shard: { rank: world.rank, ranks: world.size } });
    source = opened.source;
    rankModel = opened.rankModel;
    options = trainerOptions(opened.config, [], () => {});
  } else {
    const sizes = Array.from({ length: 16 }, (_, i) => 262_144 + 17 * i);
    const fill = (seed) => sizes.map((n, t) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + t * 1.3 + i * 0.001) * 1e-3));
    const gAct = GradSet.fromArrays(fill(world.rank + 1)).data, gRet = GradSet.fromArrays(fill(world.rank + 11)).data;
    source = new HostGradientSource({
      params: GradSet.fromArrays(fill(0)),
      compute: () => ({ actionLoss: 1, retentionLoss: 1e-3, gAct, gRet, samples: 1 }),
    });
    options = { steps: warm + steps, lambda: 0.1, warmup: 0, valEvery: 0 };
  }
  const shard = sharded ? new ShardedStep(world, source.params.sizes) : undefined;
  const trainer = new Trainer(new DataParallelSource(source, world, options.microBatches ?? 1, { sharded }), options, { shard });
  if (rankModel) startRanks(world, trainer, rankModel, { startStep: 0 });
  // Time inside the collectives (World's own methods; World.sum goes through allgather).
  let commMs = 0;
  for (const name of ['sumInRankOrder', 'reduceScatterInRankOrder', 'allgatherSegments', 'allgather']) {
    const f = world[name].bind(world);
    world[name] = (...a) => {
      const t = performance.now();
      try {
        return f(...a);
      } finally {
        commMs += performance.now() - t;
      }
    };
  }
  for (let i = 0; i < warm; i++) await trainer.step();
  const ms = [], bytes = [], comm = [];
  for (let i = 0; i < steps; i++) {
    world.barrier();
    const b = world.bytesSent, c = commMs, t = performance.now();
    await trainer.step();
    ms.push(performance.now() - t);
    bytes.push(world.bytesSent - b);
    comm.push(commMs - c);
  }
  const mine = [median(ms), median(bytes), median(comm), 2 * trainer.optimizer.m.numElements];
  const all = world.allgather(mine);
  if (world.rank === 0) {
    console.log(JSON.stringify({
      design: args.design, layout: args.layout, ranks: world.size, numElements: source.params.numElements, numTensors: source.params.numTensors,
      stepMs: Math.max(...all.map((r) => r[0])), bytes: all.map((r) => r[1]), commMs: Math.max(...all.map((r) => r[2])), optimizerFloats: all.map((r) => r[3]),
    }));
  }
  world.markComplete();
}

async function parent() {
  const { backendInfo } = await import('../dist/index.js');
  const { describeMachine } = await import('../dist/bench/timing.js');
  const { recordSection } = await import('./common.js');
  const { execSync } = await import('node:child_process');
  const self = fileURLToPath(import.meta.url);
  const ranks = Number(args.ranks), reps = Number(args.reps);
  const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_btl_vader_single_copy_mechanism: 'none' };
  const layouts = [['default', 30], ['large', 15]];
  const results = {};
  for (const [layout, steps] of layouts) {
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 ? ['sharded', 'plain'] : ['plain', 'sharded'];
      for (const design of order) {
        const r = spawnSync('mpirun', ['--oversubscribe', '-np', String(ranks), process.execPath, self, '--child', '--design', design, '--layout', layout, '--steps', String(steps)],
          { encoding: 'utf8', env, timeout: 600_000 });
        const line = r.stdout?.split('\n').find((l) => l.startsWith('{'));
        if (r.status !== 0 || !line) {
          console.error(`mpirun failed (${layout}, ${design}):\n${r.stdout}\n${r.stderr}`);
          process.exit(1);
        }
        const x = JSON.parse(line);
        (results[`${layout}/${design}`] ??= []).push(x);
        console.error(`${layout} ${design} rep ${rep + 1}: step ${x.stepMs.toFixed(2)} ms, comm ${x.commMs.toFixed(2)} ms, ${x.bytes.join('/')} bytes`);
      }
    }
  }
  let cpu = 'unknown';
  try {
    cpu = /Model name:\s*(.*)/.exec(execSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? cpu;
  } catch { /* no lscpu */ }
  const info = backendInfo();
  const row = (layout, design) => {
    const xs = results[`${layout}/${design}`];
    const x = xs[0];
    const steps = xs.map((r) => r.stepMs);
    return { x, stepMs: median(steps), lo: Math.min(...steps), hi: Math.max(...steps), commMs: median(xs.map((r) => r.commMs)), bytes: median(xs.map((r) => Math.max(...r.bytes))) };
  };
  const lines = [
    `## Data parallel: the sharded (ZeRO-1) step against the plain one, ${ranks} ranks`,
    '',
    `- machine: ${cpu} (lscpu); ${describeMachine()}; ISA ${info.cpu.isa}; ${ranks} ranks under Open MPI's mpirun on one machine (shared-memory transport), one thread each`,
    `- command: \`node bench/mpi-sharded.js --ranks ${ranks} --reps ${reps}${args.record ? ' --record' : ''}\`; date ${new Date().toISOString().slice(0, 10)}`,
    `- per launch: 3 warm-up steps, then the median of ${layouts.map(([l, s]) => `${s} (${l})`).join(' / ')} steps; the table gives the median over ${reps} launches per design, the designs interleaved`,
    '- bytes: what the busiest rank hands to MPI for the other ranks in one optimizer step (World.bytesSent: the collectives\' payload, the loss sums and per-tensor partials included; the transport\'s own traffic not counted; a training session adds 8 bytes per step to agree on stopping, and under the sharded design 8 more to agree on checkpoints)',
    '- comm: wall time inside the collectives, waiting for the other rank included (the slowest rank); step: Trainer.step() (the slowest rank)',
    '',
    '| layout | floats (tensors) | design | bytes sent / step / rank | comm ms / step | step ms | step ms, launches min–max | optimizer floats / rank (m+v) |',
    '|---|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const [layout] of layouts) {
    for (const design of ['plain', 'sharded']) {
      const r = row(layout, design);
      lines.push(`| ${layout} | ${r.x.numElements.toLocaleString('en-US')} (${r.x.numTensors}) | ${design} | ${r.bytes.toLocaleString('en-US')} | ${r.commMs.toFixed(2)} | ${r.stepMs.toFixed(2)} | ${r.lo.toFixed(1)}–${r.hi.toFixed(1)} | ${Math.max(...r.x.optimizerFloats).toLocaleString('en-US')} |`);
    }
  }
  lines.push('', 'sharded / plain:');
  for (const [layout] of layouts) {
    const p = row(layout, 'plain'), s = row(layout, 'sharded');
    lines.push(`- ${layout}: bytes ${(s.bytes / p.bytes).toFixed(3)}, comm time ${(s.commMs / p.commMs).toFixed(2)}, step time ${(s.stepMs / p.stepMs).toFixed(2)}`);
  }
  lines.push('', 'A machine shared with other sessions: the times are what these launches took, not bounds. Where the',
    'min–max ranges of the two designs overlap, the medians\' ratio is within the launch-to-launch spread and says',
    'nothing about which design is faster; the bytes and the optimizer floats are exact counts.');
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection('mpi-sharded', text);
}

await (args.child ? child() : parent());
