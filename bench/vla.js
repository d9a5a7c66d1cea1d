#!/usr/bin/env node
// node bench/vla.js [--record] [--batch 2] [--steps 2] [--no-torch] [--no-full] [--full-batch 1] [--full-steps 3]
// node bench/vla.js --device cuda [--precision bf16] [--batch 8] ...  (GPU variant, full size: bench/vla-cuda.js)
// node bench/vla.js --device cuda --tiny ...  (a rehearsal of the GPU variant's code paths, the emulator allowed; never recorded)
// CRAFTGRAD_CPU_ISA=avx2 node bench/vla.js ...     (the AVX2 kernels on an AVX-512 machine)
// VLA-Adapter (VlaPolicy on random in-memory weights, bench/vla-shapes.js) on the CPU, issue
// #27's reduced shape: the real widths (DINOv2 ViT-L/14 with registers and LayerScale, SigLIP
// so400m/14, the fused projector 2176 → 8704 → 896 → 896, Qwen2.5-0.5B's decoder), 4 computed
// blocks per tower, 4 decoder layers, 2 views at 112 px (P = 128), S = 81 ids (BOS, 16 prompt,
// 64 queries), the Pro head with 4 blocks (chunk 8, A 7, proprio 8), LoRA r=32 alpha=64 on
// every linear:
//  1. the matrix products of the step's shapes in GFLOP/s against the fp32 peak measured in
//     the same run (fmaPeakGflops; target >= 50%);
//  2. the CRaFT training step's samples/s (Trainer.step: the model call, the fused surgery +
//     AdamW kernel, the dual update) against the same model in PyTorch with the seed's
//     per-tensor CRaFT loop (bench/vla_torch.py, /usr/bin/python3, same threads; target 1.5x);
//  3. one full-size CRaFT step (real depths, 224 px, vocab 151936, fp32 weights) at batch 1
//     in its own process: time and peak RSS.
// --record writes the section 'vla-cpu-<isa>' of bench/RESULTS.md.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { backendInfo, Trainer } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { benchNatives, recordSection } from './common.js';
import { describeMachine, bestTime, bestTimeAsync } from '../dist/bench/timing.js';
import { ofPeak, peakMeasured, peakTargetVerdict } from './peak-verdict.js';
import { FixedBatchSource, midTrainingB } from './qwen2-shapes.js';
import { VLA_BENCH, vlaBenchPolicy, vlaCraftStepFlops, vlaFixedBatch, vlaStepProducts } from './vla-shapes.js';

const { values: args } = parseArgs({
  options: {
    record: { type: 'boolean', default: false }, batch: { type: 'string', default: '2' }, steps: { type: 'string', default: '2' },
    'no-torch': { type: 'boolean', default: false }, 'no-full': { type: 'boolean', default: false },
    'full-batch': { type: 'string', default: '1' }, 'full-steps': { type: 'string', default: '3' },
    device: { type: 'string', default: 'cpu' }, precision: { type: 'string', default: 'fp32' }, size: { type: 'string' },
    tiny: { type: 'boolean', default: false },
  },
});
const positive = (name, text) => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got '${text}'`);
  return n;
};
if (args.precision !== 'fp32' && args.precision !== 'bf16') throw new RangeError(`--precision must be fp32 or bf16, got '${args.precision}'`);
if (args.precision === 'bf16' && args.device === 'cpu') {
  console.error('bench/vla.js: --precision bf16 needs --device cuda[:N] (the CPU computes products in fp32); nothing measured.');
  process.exit(1);
}
if (args.tiny && args.device === 'cpu') throw new RangeError('--tiny rehearses the GPU variant: give --device cuda[:N]');
if (args.device !== 'cpu') {
  if (!/^cuda(:\d+)?$/.test(args.device)) throw new RangeError(`--device must be cpu, cuda or cuda:N, got '${args.device}'`);
  const { runVlaCudaBench } = await import('./vla-cuda.js');
  // The GPU default is batch 8 (#29); an explicit --batch wins.
  const batchText = process.argv.some((a) => a === '--batch' || a.startsWith('--batch=')) ? args.batch : '8';
  await runVlaCudaBench({ ...args, batch: positive('batch', batchText), steps: positive('steps', args.steps) });
  process.exit(0);
}
const batchSize = positive('batch', args.batch), steps = positive('steps', args.steps);
const fullBatch = positive('full-batch', args['full-batch']), fullSteps = positive('full-steps', args['full-steps']);
const info = backendInfo();
const threads = info.cpu.threads;
const loads = [['start', loadavg()[0]]];
const mark = (what) => loads.push([what, loadavg()[0]]);

// ---- the full-size model, in its own process (peak RSS of the step alone), first: nothing of
// this process's own model is then resident beside it ----
let full = null, fullError = null;
if (!args['no-full']) {
  const child = fileURLToPath(new URL('./vla-full-step.js', import.meta.url));
  // One libuv pool thread: every asynchronous step on the same thread, so one CPU workspace
  // (it is per thread: with the default pool each thread that runs a step keeps its own).
  const res = spawnSync(process.execPath, [child, String(fullBatch), String(fullSteps)], { encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: '1' } });
  if (res.status !== 0) fullError = `exit ${res.status ?? res.signal}: ${(res.stderr || String(res.error)).trim().split('\n').slice(-3).join(' / ')}`;
  else full = JSON.parse(res.stdout.trim().split('\n').pop());
  if (fullError) console.error(`full-size step not run: ${fullError}`);
  mark('full step');
}

// ---- peak and products ----
const bench = benchNatives('bench/vla.js');
const peak = bench.fmaPeakGflops(1.0);
const size = VLA_BENCH.reduced;
const policy = vlaBenchPolicy(size);
const c = policy.config;
// Each product timed in PRODUCT_ROUNDS rounds over the whole list, its best kept: a burst of
// another tenant's load then costs one round of a product, not its figure.
const PRODUCT_ROUNDS = 3;
const gemmRows = vlaStepProducts(c, batchSize).map(([label, m, n, k, ta, tb]) => ({ label, m, n, k, ta, tb, gflops: 0 }));
for (let round = 0; round < PRODUCT_ROUNDS; round++) {
  for (const g of gemmRows) {
    const { m, n, k } = g;
    const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25), out = new Float32Array(m * n);
    const reps = Math.max(3, Math.round(1e9 / (2 * m * n * k)));
    const t = bestTime(() => { for (let i = 0; i < reps; i++) binding.modelGemm({ M: m, N: n, K: k, alpha: 1, a, transA: g.ta, b, transB: g.tb, beta: 0, c: out }); }, { reps: 3, warmup: 1 }) / reps;
    g.gflops = Math.max(g.gflops, (2 * m * n * k) / t / 1e9);
  }
}
mark('products');

// ---- training step ----
midTrainingB(policy);
const batch = vlaFixedBatch(policy, batchSize);
const trainer = new Trainer(new FixedBatchSource(policy, batch), {
  steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
});
const craftS = (await bestTimeAsync(async () => { for (let i = 0; i < steps; i++) await trainer.step(); }, { reps: 3, warmup: 1 })) / steps;
const gAct = policy.newGradSet(), gRet = policy.newGradSet();
const modelOnlyS = bestTime(() => policy.craftStep(batch, gAct, gRet), { reps: 3, warmup: 1 });
const flops = vlaCraftStepFlops(c, batchSize);
const trainable = policy.params.numElements;
policy.dispose();
mark('craftgrad step');

// ---- PyTorch peer ----
let torch = null;
if (!args['no-torch']) {
  const script = fileURLToPath(new URL('./vla_torch.py', import.meta.url));
  // PyTorch's OpenMP threads and OpenBLAS's own threads oversubscribe the cores together:
  // run both settings of OPENBLAS_NUM_THREADS and keep the faster.
  for (const blasThreads of ['1', String(threads)]) {
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: blasThreads };
    const res = spawnSync('/usr/bin/python3', [script, '--batch', String(batchSize), '--steps', String(steps), '--reps', '3',
      '--threads', String(threads)], { encoding: 'utf8', env, maxBuffer: 16 << 20 });
    if (res.status !== 0) {
      console.error(`PyTorch peer not run: ${res.stderr || res.error}`);
      break;
    }
    const r = JSON.parse(res.stdout.trim().split('\n').pop());
    torch = torch && torch.craft_s <= r.craft_s ? torch : { ...r, blasThreads };
  }
  mark('PyTorch');
}

// ---- report ----
const [dino, siglip] = c.towers;
const P = c.views * (dino.imageSize / dino.patchSize) ** 2, T = c.inputIds + P;
const lines = [];
const load = `load average (1 min) ${loads.map(([w, l]) => `${l.toFixed(1)} at ${w}`).join(', ')} (${threads} threads; the machine is shared)`;
const isaEnv = process.env.CRAFTGRAD_CPU_ISA ? `CRAFTGRAD_CPU_ISA=${process.env.CRAFTGRAD_CPU_ISA} ` : '';
lines.push(`- machine: ${describeMachine()}; ISA ${info.cpu.isa}${isaEnv ? ` (${isaEnv.trim()}: the AVX2 kernels on this AVX-512 machine, not an AVX2-only CPU)` : ''}, ${threads} threads; ${load}`);
lines.push(`- command: \`${isaEnv}node bench/vla.js${args.record ? ' --record' : ''}\` (batch ${batchSize}, ${steps} steps per timing, best of 3); date ${new Date().toISOString().slice(0, 10)}`);
lines.push(`- model: VLA-Adapter, real widths, reduced depth, random fp32 weights in memory: DINOv2 tower D=${dino.embedDim} (${dino.numHeads} heads, MLP ${dino.mlpHidden}, cls + ${dino.regTokens} registers, LayerScale) and SigLIP tower D=${siglip.embedDim} (${siglip.numHeads} heads, MLP ${siglip.mlpHidden}), ` +
  `depth ${dino.depth} (blocks 0..${dino.depth - 2} computed), patch ${dino.patchSize}, ${c.views} views at ${dino.imageSize} px (P=${P}); projector ${dino.embedDim + siglip.embedDim}→${c.projectorHidden}→${c.hiddenSize}→${c.hiddenSize}; ` +
  `Qwen2.5-0.5B decoder widths cut to ${c.numLayers} layers (D=${c.hiddenSize}, ${c.numHeads}/${c.numKvHeads} heads, MLP ${c.intermediateSize}, vocab ${c.vocabSize}: only the embedding gather reads it); ` +
  `S=${c.inputIds} ids (BOS, ${c.inputIds - 1 - c.queries} prompt, Q=${c.queries} queries; T=${T}); Pro head ${c.headBlocks} blocks, chunk ${c.chunk}, A=${c.actionDims}, proprio ${c.proprioDim}; ` +
  `LoRA r=${c.rank} alpha=${c.alpha} (VLA-Adapter's LIBERO runs) on every linear; m=${c.bridgeLayer} ${c.pooling}/${c.anchorType}; ${trainable} trainable values`);
lines.push(`- fp32 peak measured in this run: ${peakMeasured(peak) ? `${peak.toFixed(0)} GFLOP/s` : 'not measured'} (fmaPeakGflops, ${threads} threads)`);
lines.push('');
lines.push(`Each product: the best of ${PRODUCT_ROUNDS} rounds over the list (3 timings after a warm-up per round).`);
lines.push('');
lines.push(`| matrix product (M×N×K) | GFLOP/s, ${threads} threads | of peak |`);
lines.push('|---|---:|---:|');
for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${ofPeak(g.gflops, peak)} |`);
const callG = flops.total / modelOnlyS / 1e9;
lines.push(`| whole craftStep call (${(flops.total / 1e9).toFixed(0)} GFLOP of products / call time, incl. element-wise work) | ${callG.toFixed(0)} | ${ofPeak(callG, peak)} |`);
const share = Object.entries(flops.parts).map(([k, v]) => `${k} ${(100 * v / flops.total).toFixed(0)}%`).join(', ');
lines.push('');
lines.push(`Products of one CRaFT call by part (forward, anchor forward, two-stream backward; the head one stream): ${share}.`);
lines.push('');
lines.push('| CRaFT training step | craftgrad samples/s | PyTorch samples/s | ratio |');
lines.push('|---|---:|---:|---:|');
lines.push(`| Trainer.step (model call, fused surgery + AdamW, dual update), batch ${batchSize} | ${(batchSize / craftS).toFixed(2)} | ${torch ? (batchSize / torch.craft_s).toFixed(2) : 'n/a'} | ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x` : 'n/a'} |`);
lines.push(`| model call alone (craftStep) | ${(batchSize / modelOnlyS).toFixed(2)} | | |`);
if (torch) lines.push(`\nPyTorch ${torch.version}, ${torch.threads} threads, OPENBLAS_NUM_THREADS=${torch.blasThreads} (the faster of 1 and ${threads}); BLAS: ${torch.blas}. Same shapes, fp32, eager attention (timm's non-fused path), PEFT-style LoRA, the seed's per-tensor CRaFT loop, torch.optim.AdamW.`);
lines.push('');
lines.push(`Targets: ${peakTargetVerdict(gemmRows, peak, 0.5)} CRaFT step >= 1.5x PyTorch: ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x (${torch.craft_s / craftS >= 1.5 ? 'met' : 'not met'})` : 'not measured (no PyTorch)'}.`);
if (!args['no-full']) {
  const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  lines.push('');
  const shape = `Full size (DINOv2 24 blocks → 23 computed, SigLIP 27 → 26, 24 decoder layers, 24 head blocks, vocab 151936, 2 views at 224 px → P=512), fp32 random weights, CRaFT Trainer.step at batch ${fullBatch}, its own process`;
  if (full) {
    lines.push(`${shape}: setup (weights + policy) ${full.setupS.toFixed(1)} s; step ${full.stepS.map((s) => s.toFixed(1)).join(', ')} s (the first includes the arena's first allocation; ${(full.flops / 1e12).toFixed(2)} TFLOP of products per call: ${(full.flops / Math.min(...full.stepS) / 1e9).toFixed(0)} GFLOP/s over the fastest step, ${ofPeak(full.flops / Math.min(...full.stepS) / 1e9, peak)} of the peak); ` +
      `peak RSS ${gib(full.maxRss)} (after each step: ${full.maxRssByStep.map(gib).join(', ')}; UV_THREADPOOL_SIZE=1), of which frozen weights ${gib(full.weightBytes)} (${(full.frozenFloats / 1e9).toFixed(3)} G floats; RSS ${gib(full.rssAfterWeights)} once they are filled, ${gib(full.rssAfterPolicy)} with the policy's ${(full.trainable / 1e6).toFixed(1)} M trainable values and its sets).`);
  } else {
    lines.push(`${shape}: not measured (${fullError}).`);
  }
}
const text = lines.join('\n');
console.log(text);
if (args.record) recordSection(`vla-cpu-${info.cpu.isa}`, `## VLA-Adapter policy on the CPU (${info.cpu.isa})\n\n${text}`);
