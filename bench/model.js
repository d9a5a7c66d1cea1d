#!/usr/bin/env node
// node bench/model.js [--record] [--batch 32] [--steps 20] [--no-torch]
// node bench/model.js --device cuda [--batch 32] [--steps 20] [--no-torch]   (GPU: bench/model-cuda.js)
// The built-in AdapterPolicy on the CPU, default configuration:
//  1. the matrix products on the model's own shapes, in GFLOP/s and as a fraction of the
//     fp32 peak measured in the same run (a tight loop of independent FMAs of the ISA in
//     use, AVX-512 or AVX2, on every pool thread: fmaPeakGflops; "not measured" when the
//     probe gives no valid peak, e.g. the generic kernels);
//  2. training-step throughput (samples/s): Trainer.step over the built-in source, CRaFT
//     (craftStep: shared forward, anchor forward, stacked backward; the fused surgery +
//     AdamW kernel; the dual update) and baseline, against the same
//     model and the per-tensor CRaFT loop of ARCHITECTURE.md §1 in PyTorch (bench/model_torch.py,
//     run with /usr/bin/python3 on the same threads).
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AdapterPolicy, backendInfo, setThreads, syntheticDataset, Sampler, gatherBatch } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { benchNatives, recordSection } from './common.js';
import { describeMachine as machine, bestTime as timeIt } from '../dist/bench/timing.js';
import { secondsPerTrainerStep } from './trainer-steps.js';
import { ofPeak, peakMeasured, peakTargetVerdict } from './peak-verdict.js';


const { values: args } = parseArgs({
  options: {
    record: { type: 'boolean', default: false }, batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '20' }, 'no-torch': { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
  },
});
if (args.device !== 'cpu') {
  if (!/^cuda(:\d+)?$/.test(args.device)) throw new RangeError(`--device must be cpu, cuda or cuda:N, got '${args.device}'`);
  const { runCudaModelBench } = await import('./model-cuda.js');
  await runCudaModelBench(args);
  process.exit(0);
}
const batchSize = Number(args.batch), steps = Number(args.steps);
const info = backendInfo();
const threads = info.cpu.threads;

// ---- peak ----
const peak = benchNatives('bench/model.js').fmaPeakGflops(1.0);

// ---- matrix products on the model's shapes ----
const model = AdapterPolicy.create({}, { seed: 0 });
const c = model.config;
const M = batchSize * c.tokens, D = c.width, r = c.rank;
const shapes = [
  ['block forward  h·W_effᵀ', M, D, D, false, true],
  ['input grad     dZ·W_eff (2 streams)', 2 * M, D, D, false, false],
  ['LoRA           h·Aᵀ', M, r, D, false, true],
  ['LoRA grad      dZᵀ·u', D, r, M, true, false],
  ['LoRA grad      Vᵀ·h', r, D, M, true, false],
];
const gemmRows = [];
function gemmGflops(m, n, k, ta, tb) {
  const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25), out = new Float32Array(m * n);
  const reps = Math.max(3, Math.round(2e9 / (2 * m * n * k)));
  const t = timeIt(() => { for (let i = 0; i < reps; i++) binding.modelGemm({ M: m, N: n, K: k, alpha: 1, a, transA: ta, b, transB: tb, beta: 0, c: out }); }, { reps: 5, warmup: 1 }) / reps;
  return (2 * m * n * k) / t / 1e9;
}
for (const [label, m, n, k, ta, tb] of shapes) gemmRows.push({ label, m, n, k, gflops: gemmGflops(m, n, k, ta, tb) });
// The same on one thread against the one-thread peak: the kernels' own efficiency, without
// the fork-join cost that dominates the small products on two threads.
setThreads(1);
const peak1 = benchNatives('bench/model.js').fmaPeakGflops(0.5);
shapes.forEach(([, m, n, k, ta, tb], i) => { gemmRows[i].gflops1 = gemmGflops(m, n, k, ta, tb); });
setThreads(threads);

// ---- training steps ----
const ds = syntheticDataset({ tasks: 8, episodesPerTask: 4, stepsPerEpisode: 16, tokens: c.tokens, width: c.width, chunk: c.chunk, actionDims: c.actionDims });
const sampler = new Sampler(ds.size, { batchSize, seed: 0, dropLast: true });
// Mid-training weights: B ≠ 0 so the retention stream is not trivially zero.
for (let l = 0; l < c.blocks; l++) { const v = model.params.view(2 * l + 1); for (let i = 0; i < v.length; i++) v[i] = 0.01 * Math.sin(i); }
const craftS = await secondsPerTrainerStep(model, ds, { batchSize, steps, mode: 'craft' });
const baseS = await secondsPerTrainerStep(model, ds, { batchSize, steps, mode: 'baseline' });
const gAct = model.newGradSet(), gRet = model.newGradSet();
const batch = gatherBatch(ds, sampler.next());
const modelOnlyS = timeIt(() => model.craftStep(batch, gAct, gRet), { reps: 20, warmup: 2 });

// Matrix-product flops of one CRaFT model call (forward, anchor forward, stacked backward).
const F = 2 * D, H = c.headWidth, KA = c.chunk * c.actionDims, B = batchSize, L = c.blocks;
const blockFwd = 2 * M * D * D + 2 * D * D * r;
const fwdFlops = L * blockFwd + 2 * B * F * H + 2 * B * H * KA;
const bwdFlops = 2 * B * H * KA * 2 + 2 * B * F * H * 2 + L * (2 * M * D * r * 7 + 2 * 2 * M * D * D);
const stepFlops = 2 * L * blockFwd + 2 * B * F * H + 2 * B * H * KA + bwdFlops;

// ---- PyTorch peer ----
let torch = null;
if (!args['no-torch']) {
  const script = fileURLToPath(new URL('./model_torch.py', import.meta.url));
  // PyTorch's OpenMP threads and OpenBLAS's own threads oversubscribe the cores together;
  // run both settings of OPENBLAS_NUM_THREADS and keep the faster figure of each step kind.
  for (const blasThreads of ['1', String(threads)]) {
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: blasThreads };
    const res = spawnSync('/usr/bin/python3', [script, '--batch', String(batchSize), '--steps', String(steps), '--threads', String(threads)], { encoding: 'utf8', env });
    if (res.status !== 0) {
      console.error(`PyTorch baseline not run: ${res.stderr || res.error}`);
      break;
    }
    const r = JSON.parse(res.stdout.trim().split('\n').pop());
    torch = torch ? { ...torch, craft_s: Math.min(torch.craft_s, r.craft_s), baseline_s: Math.min(torch.baseline_s, r.baseline_s) } : r;
  }
}

const lines = [];
lines.push(`- machine: ${machine()}; ISA ${info.cpu.isa}, ${threads} threads`);
lines.push(`- command: \`node bench/model.js${args.record ? ' --record' : ''}\` (batch ${batchSize}, ${steps} steps per timing, best of 5); date ${new Date().toISOString().slice(0, 10)}`);
lines.push(`- config: T=${c.tokens} D=${D} L=${L} r=${r} alpha=${c.alpha} m=${c.bridgeBlock} ${c.pooling}/${c.anchorType} H=${H} K=${c.chunk} A=${c.actionDims} (${model.params.numElements} trainable values)`);
const probe = { avx512: '20 independent AVX-512 FMA chains', avx2: '12 independent AVX2 (FMA3, 256-bit) FMA chains' }[info.cpu.isa];
const gflopsText = (p) => (peakMeasured(p) ? `${p.toFixed(0)} GFLOP/s` : 'not measured');
lines.push(`- fp32 peak measured in this run: ${gflopsText(peak)} (${threads} threads, ${probe ? `each a loop of ${probe}` : `no peak probe for ISA ${info.cpu.isa}`}: fmaPeakGflops)`);
lines.push(`- one-thread fp32 peak measured the same way: ${gflopsText(peak1)}`);
lines.push('');
lines.push(`| matrix product (M×N×K) | GFLOP/s, ${threads} threads | of peak | GFLOP/s, 1 thread | of 1-thread peak |`);
lines.push('|---|---:|---:|---:|---:|');
for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${ofPeak(g.gflops, peak)} | ${g.gflops1.toFixed(0)} | ${ofPeak(g.gflops1, peak1)} |`);
lines.push(`| whole craftStep call (matmul flops / call time, incl. element-wise work) | ${(stepFlops / modelOnlyS / 1e9).toFixed(0)} | ${ofPeak(stepFlops / modelOnlyS / 1e9, peak)} | | |`);
lines.push('');
lines.push('| training step | craftgrad samples/s | PyTorch samples/s | ratio |');
lines.push('|---|---:|---:|---:|');
const row = (label, s, ts) => lines.push(`| ${label} | ${(batchSize / s).toFixed(0)} | ${ts ? (batchSize / ts).toFixed(0) : 'n/a'} | ${ts ? `${(ts / s).toFixed(2)}x` : 'n/a'} |`);
row('CRaFT (Trainer.step: model, fused surgery + AdamW, dual update)', craftS, torch?.craft_s);
row('baseline (Trainer.step: model, AdamW)', baseS, torch?.baseline_s);
lines.push(`| model call alone (craftStep) | ${(batchSize / modelOnlyS).toFixed(0)} | | |`);
if (torch) lines.push(`\nPyTorch ${torch.version}, ${torch.threads} threads (torch.set_num_threads), same model in fp32, CRaFT as the seed's per-tensor loop (one host sync per tensor); BLAS: ${torch.blas}; best of OPENBLAS_NUM_THREADS=1 and =${threads}.`);
const big = gemmRows.slice(0, 2), lora = gemmRows.slice(2);
const range = (rows, key, ref) => rows.map((g) => ofPeak(g[key], ref)).join(', ');
lines.push('');
const shares = peakMeasured(peak)
  ? `The D×D products that carry most of the flops reach ${range(big, 'gflops', peak)} on ${threads} threads; the rank-${r} LoRA products ${range(lora, 'gflops', peak)} ` +
    `(${range(lora, 'gflops1', peak1)} of the one-thread peak). `
  : '';
lines.push(`Targets: ${peakTargetVerdict(gemmRows, peak)} ${shares}` +
  `A LoRA tile is one vector wide, so every FMA needs its own broadcast load; the weight gradients ` +
  `use a column tile (the rows as vector lanes, one cache line of A per step), and each thread packs its own copy of the B panel. ` +
  `The whole call's rate also counts GELU, pooling, copies and the losses. Step throughput >= PyTorch's: ` +
  (torch ? `${(torch.craft_s / craftS).toFixed(2)}x (CRaFT) and ${(torch.baseline_s / baseS).toFixed(2)}x (baseline).` : 'not measured (no PyTorch).'));
lines.push('');
lines.push('Debian\'s python3-torch calls the system libblas.so.3, which is the unoptimised reference BLAS unless OpenBLAS is installed ' +
  '(`apt-get install libopenblas0-pthread`; with the reference BLAS the PyTorch CRaFT step ran at ~46 samples/s). The figures above use OpenBLAS. ' +
  'The machine is shared with other sessions: every timing is the best of 5, and the peak is re-measured in each run.');
const text = lines.join('\n');
console.log(text);
if (args.record) recordSection('model-cpu', `## Built-in model on the CPU\n\n${text}`);
