// node bench/optimizer.js --device cuda[:N] [--reps N] [--record]
// The GPU side of the optimizer-step benchmark (ARCHITECTURE.md §3, §5), on the VLA-adapter-like layout,
// GradSets that live on the GPU (synchronous calls, wall clock: launches, the call's one
// stream sync and, for craftReduce, the result object included):
//   fused   = craftReduce (pass 1: a, r read; statistics copied back once) + stepFused
//             (one launch: a, r, p, m, v read once; p, m, v written once)
//   unfused = surgery into a buffer (a, r read; out written) + AdamW (out, p, m, v read; p, m, v written)
// against the HBM floor of docs/ARCHITECTURE.md §3 (20 bytes per element read + 12 written) over the
// bandwidth of a device-to-device copy timed with CUDA events in the same run
// (binding.bench.cudaTimeCopy: the faster of a same-size copy and a 256 M-element one).
// Called from bench/optimizer.js; prints JSON and a table; --record writes the
// 'optimizer-cuda' section of bench/RESULTS.md (only figures measured in this run).
import { performance } from 'node:perf_hooks';
import { AdamW, GradSet, backendInfo, craftReduce, surgery } from '../dist/index.js';
import { vlaAdapterLayout } from '../dist/bench/layouts.js';
import { benchCudaDevice, benchNatives, cudaTuningText, recordSection, seededFloats } from './common.js';
import { optimizerTable } from './optimizer-table.js';

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function hostFill(total, seed, scale, abs = false) {
  const d = seededFloats(total, seed, scale);
  if (abs) for (let i = 0; i < total; ++i) d[i] = Math.abs(d[i]);
  return d;
}

export async function runCudaOptimizerBench(args) {
  const picked = benchCudaDevice(args.device, 'bench/optimizer.js');
  if (!picked) return 2;
  const device = picked.index;
  const dev = picked.info;
  const info = backendInfo();
  const reps = Number(args.reps ?? 20);
  const sizes = vlaAdapterLayout();
  const opts = { device: `cuda:${device}` };
  const act = GradSet.zeros(sizes, opts), ret = GradSet.zeros(sizes, opts), params = GradSet.zeros(sizes, opts);
  const n = act.numElements;
  act.set(hostFill(n, 1, 1e-2));
  ret.set(hostFill(n, 2, 1e-2));
  params.set(hostFill(n, 3, 1));
  const opt = new AdamW(params);
  opt.m.set(hostFill(n, 4, 1e-3));
  opt.v.set(hostFill(n, 5, 1e-6, true));
  const out = GradSet.zeros(sizes, opts);
  const hyper = { lr: 5e-4, gradScale: 1 };
  const lambda = 0.05;
  const red = craftReduce(act, ret, { lambda });

  const variants = {
    fused: () => {
      const r = craftReduce(act, ret, { lambda });
      opt.stepFused(act, ret, r.coefficients, hyper);
    },
    pass2: () => opt.stepFused(act, ret, red.coefficients, hyper),
    reduce: () => craftReduce(act, ret, { lambda }),
    unfused: () => {
      surgery(act, ret, { lambda, out });
      opt.step(out, hyper);
    },
    surgery: () => surgery(act, ret, { lambda, out }),
    adamw: () => opt.step(out, hyper),
  };
  // Interleaved rep by rep after three warm-ups of each.
  const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < reps + 3; ++i) {
    for (const [k, fn] of Object.entries(variants)) {
      const t0 = performance.now();
      fn();
      if (i >= 3) samples[k].push(performance.now() - t0);
    }
  }
  const med = {}, best = {};
  for (const [k, t] of Object.entries(samples)) {
    med[k] = median(t);
    best[k] = Math.min(...t);
  }

  const copyMs = (elements) => median(benchNatives('bench/optimizer-cuda.js').cudaTimeCopy(device, elements, reps));
  const copySame = (8 * n) / (copyMs(n) * 1e-3) / 1e9;
  const copyBig = (8 * 256 * 2 ** 20) / (copyMs(256 * 2 ** 20) * 1e-3) / 1e9;
  const copyGBs = Math.max(copySame, copyBig);
  const floorMs = ((32 * n) / (copyGBs * 1e9)) * 1e3;
  const twoPassFloorMs = ((40 * n) / (copyGBs * 1e9)) * 1e3;

  const result = {
    benchmark: 'optimizer-cuda',
    date: new Date().toISOString().slice(0, 10),
    device: { index: device, name: dev.name, computeCapability: dev.computeCapability },
    craftgrad: info.version,
    tensors: sizes.length,
    elements: n,
    reps,
    copyGBs: { sameSize: copySame, big: copyBig },
    floorMs,
    twoPassFloorMs,
    medianMs: med,
    bestMs: best,
    conflicts: red.numConflicts,
  };
  console.log(JSON.stringify(result));

  const f = (x) => x.toFixed(3);
  const x = (t) => (t / floorMs).toFixed(2);
  const table = optimizerTable({ med, best, floorMs, n, msDigits: 3, gbDigits: 0 });
  const summary = `${sizes.length} tensors, ${(n / 1e6).toFixed(1)} M elements on ${dev.name}; device-to-device copy ` +
    `${copyGBs.toFixed(0)} GB/s (same size ${copySame.toFixed(0)}, 256 M elements ${copyBig.toFixed(0)}); floor ${f(floorMs)} ms ` +
    `(two-pass floor ${f(twoPassFloorMs)} ms). Median: fused step ${x(med.fused)}× floor, its pass 2 + AdamW ` +
    `${x(med.pass2)}× floor (target 1.3×); unfused / fused = ${(med.unfused / med.fused).toFixed(2)}×.`;
  console.log(table);
  console.log(summary);

  if (args.record) {
    recordSection('optimizer-cuda', `## Optimizer step (fused surgery + AdamW), CUDA (\`node bench/optimizer.js --device cuda --record\`)

- Date: ${result.date}
- GPU: ${dev.name} (sm ${dev.computeCapability}); CUDA tuning: ${cudaTuningText()}
- Layout: VLA-adapter-like (src/bench/layouts.ts), GradSets on the GPU. Floor: 32 bytes per element (a, r, p, m, v read; p, m, v written) over the bandwidth of a device-to-device copy timed with CUDA events in the same run. Wall clock of synchronous calls (one stream sync each), ${reps} reps interleaved after 3 warm-ups; median and best.
- The trainer's step is pass 1 then the fused pass 2 + AdamW (the host decides skip and clipping in between), so a and r are read twice: 40 B/element, 1.25× the 32 B floor.

${table}

${summary}`);
    console.log('recorded in bench/RESULTS.md');
  }
  return 0;
}
