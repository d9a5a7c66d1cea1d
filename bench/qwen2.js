#!/usr/bin/env node
// node bench/qwen2.js [--record] [--batch 4] [--steps 2] [--no-torch] [--no-full] [--full-batch 4]
// CRAFTGRAD_CPU_ISA=avx2 node bench/qwen2.js ...     (the AVX2 kernels on an AVX-512 machine)
// node bench/qwen2.js --device cuda [--batch 16] ...  (GPU variant: bench/qwen2-cuda.js)
// node bench/qwen2.js --device cuda --precision bf16 --batch 8 ...  (the same in bf16 against PyTorch bf16 autocast, #29)
// node bench/qwen2.js --device cuda --tiny ...  (a rehearsal of the GPU variant's code paths, the emulator allowed; never recorded)
// The Qwen2 policy (Qwen2Policy on a random Hugging Face directory written to a temp dir) on
// the CPU, Qwen2.5-0.5B widths (D=896, 14/2 heads, MLP 4864) cut to 4 layers, LoRA r=64
// alpha=128 on all seven linears, P=48 prefix, S=8 prompt, Q=8 queries, A=7, head 256:
//  1. the matrix products of the step's shapes in GFLOP/s against the fp32 peak measured in
//     the same run (fmaPeakGflops; target >= 50%);
//  2. the CRaFT training step's samples/s (Trainer.step: the model call, the fused surgery +
//     AdamW kernel, the dual update) against the same model in PyTorch with the seed's
//     per-tensor CRaFT loop (bench/qwen2_torch.py, /usr/bin/python3, same threads; target 1.5x);
//  3. one full 24-layer 0.5B CRaFT step in its own process: time and peak RSS.
// --record writes the section 'qwen2-cpu-<isa>' of bench/RESULTS.md.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, Trainer } from '../dist/index.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { binding } from '../dist/native.js';
import { benchNatives, recordSection } from './common.js';
import { describeMachine, bestTime, bestTimeAsync } from '../dist/bench/timing.js';
import { ofPeak, peakMeasured, peakTargetVerdict } from './peak-verdict.js';
import { qwen25HalfBConfig, writeRandomQwen2Dir } from './qwen2-hf-dir.js';
import { FixedBatchSource, craftStepFlops, fixedBatch, midTrainingB, policyOptions, stepProducts } from './qwen2-shapes.js';

const { values: args } = parseArgs({
  options: {
    record: { type: 'boolean', default: false }, batch: { type: 'string' }, steps: { type: 'string', default: '2' },
    'no-torch': { type: 'boolean', default: false }, 'no-full': { type: 'boolean', default: false },
    'full-batch': { type: 'string', default: '4' }, layers: { type: 'string' }, device: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'fp32' }, tiny: { type: 'boolean', default: false },
  },
});
const positive = (name, text) => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got '${text}'`);
  return n;
};
if (args.precision !== 'fp32' && args.precision !== 'bf16') throw new RangeError(`--precision must be fp32 or bf16, got '${args.precision}'`);
if (args.precision === 'bf16' && args.device === 'cpu') {
  console.error('bench/qwen2.js: --precision bf16 needs --device cuda[:N] (the CPU computes products in fp32); nothing measured.');
  process.exit(1);
}
if (args.tiny && args.device === 'cpu') throw new RangeError('--tiny rehearses the GPU variant: give --device cuda[:N]');
if (args.device !== 'cpu') {
  if (!/^cuda(:\d+)?$/.test(args.device)) throw new RangeError(`--device must be cpu, cuda or cuda:N, got '${args.device}'`);
  const { runQwen2CudaBench } = await import('./qwen2-cuda.js');
  await runQwen2CudaBench({ ...args, batch: positive('batch', args.batch ?? '16'), steps: positive('steps', args.steps), layers: positive('layers', args.layers ?? (args.tiny ? '1' : '24')) });
  process.exit(process.exitCode ?? 0);
}
const batchSize = positive('batch', args.batch ?? '4'), steps = positive('steps', args.steps), layers = positive('layers', args.layers ?? '4');
const fullBatch = positive('full-batch', args['full-batch']);
const info = backendInfo();
const threads = info.cpu.threads;
const loadAtStart = loadavg()[0];
const work = mkdtempSync(join(tmpdir(), 'craftgrad-qwen2-bench-'));
try {
  // ---- peak and products ----
  const bench = benchNatives('bench/qwen2.js');
  const peak = bench.fmaPeakGflops(1.0);
  const dir = writeRandomQwen2Dir(join(work, `qwen2-${layers}l`), qwen25HalfBConfig({ num_hidden_layers: layers, vocab_size: 1024 }));
  const policy = await Qwen2Policy.fromHfDirectory(dir, policyOptions());
  const c = policy.config;
  const gemmRows = stepProducts(c, batchSize).map(([label, m, n, k, ta, tb]) => {
    const a = new Float32Array(m * k).fill(0.5), b = new Float32Array(k * n).fill(0.25), out = new Float32Array(m * n);
    const reps = Math.max(3, Math.round(1e9 / (2 * m * n * k)));
    const t = bestTime(() => { for (let i = 0; i < reps; i++) binding.modelGemm({ M: m, N: n, K: k, alpha: 1, a, transA: ta, b, transB: tb, beta: 0, c: out }); }, { reps: 5, warmup: 1 }) / reps;
    return { label, m, n, k, gflops: (2 * m * n * k) / t / 1e9 };
  });

  // ---- training step ----
  midTrainingB(policy);
  const batch = fixedBatch(policy, batchSize);
  const trainer = new Trainer(new FixedBatchSource(policy, batch), {
    steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
  });
  const craftS = (await bestTimeAsync(async () => { for (let i = 0; i < steps; i++) await trainer.step(); }, { reps: 3, warmup: 1 })) / steps;
  const gAct = policy.newGradSet(), gRet = policy.newGradSet();
  const modelOnlyS = bestTime(() => policy.craftStep(batch, gAct, gRet), { reps: 3, warmup: 1 });
  const stepFlops = craftStepFlops(c, batchSize);
  policy.dispose();

  // ---- PyTorch peer ----
  let torch = null;
  if (!args['no-torch']) {
    const script = fileURLToPath(new URL('./qwen2_torch.py', import.meta.url));
    // PyTorch's OpenMP threads and OpenBLAS's own threads oversubscribe the cores together:
    // run both settings of OPENBLAS_NUM_THREADS and keep the faster.
    for (const blasThreads of ['1', String(threads)]) {
      const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: blasThreads };
      const res = spawnSync('/usr/bin/python3', [script, '--batch', String(batchSize), '--steps', String(steps), '--reps', '3',
        '--threads', String(threads), '--layers', String(layers)], { encoding: 'utf8', env });
      if (res.status !== 0) {
        console.error(`PyTorch peer not run: ${res.stderr || res.error}`);
        break;
      }
      const r = JSON.parse(res.stdout.trim().split('\n').pop());
      torch = torch && torch.craft_s <= r.craft_s ? torch : { ...r, blasThreads };
    }
  }

  // ---- the full 24-layer model, in its own process (peak RSS of the step alone) ----
  let full = null;
  if (!args['no-full']) {
    const fullDir = writeRandomQwen2Dir(join(work, 'qwen2-24l'), qwen25HalfBConfig());
    const child = fileURLToPath(new URL('./qwen2-full-step.js', import.meta.url));
    const res = spawnSync(process.execPath, [child, fullDir, String(fullBatch), '3'], { encoding: 'utf8' });
    if (res.status !== 0) console.error(`full 24-layer step not run: ${res.stderr || res.error}`);
    else full = JSON.parse(res.stdout.trim().split('\n').pop());
    rmSync(fullDir, { recursive: true, force: true });
  }

  // ---- report ----
  const T = c.prefixTokens + c.promptTokens + c.queries;
  const lines = [];
  const load = `load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end (${threads} threads; the machine is shared)`;
  lines.push(`- machine: ${describeMachine()}; ISA ${info.cpu.isa}${process.env.CRAFTGRAD_CPU_ISA ? ` (CRAFTGRAD_CPU_ISA=${process.env.CRAFTGRAD_CPU_ISA})` : ''}, ${threads} threads; ${load}`);
  lines.push(`- command: \`${process.env.CRAFTGRAD_CPU_ISA ? `CRAFTGRAD_CPU_ISA=${process.env.CRAFTGRAD_CPU_ISA} ` : ''}node bench/qwen2.js${args.record ? ' --record' : ''}\` (batch ${batchSize}, ${steps} steps per timing, best of 3); date ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`- model: Qwen2.5-0.5B widths cut to ${c.numLayers} layers (D=${c.hiddenSize}, ${c.numHeads}/${c.numKvHeads} heads, MLP ${c.intermediateSize}, vocab ${c.vocabSize}: only the embedding gather reads it), random BF16 weights; ` +
    `LoRA r=${c.rank} alpha=${c.alpha} on ${c.targets.join(',')}; P=${c.prefixTokens} S=${c.promptTokens} Q=${c.queries} (T=${T}) A=${c.actionDims} head ${c.headWidth}; m=${c.bridgeLayer} ${c.pooling}/${c.anchorType}; ${policy.params.numElements} trainable values`);
  lines.push(`- fp32 peak measured in this run: ${peakMeasured(peak) ? `${peak.toFixed(0)} GFLOP/s` : 'not measured'} (fmaPeakGflops, ${threads} threads)`);
  lines.push('');
  lines.push(`| matrix product (M×N×K) | GFLOP/s, ${threads} threads | of peak |`);
  lines.push('|---|---:|---:|');
  for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${ofPeak(g.gflops, peak)} |`);
  const callG = stepFlops / modelOnlyS / 1e9;
  lines.push(`| whole craftStep call (${(stepFlops / 1e9).toFixed(0)} GFLOP of products / call time, incl. element-wise work) | ${callG.toFixed(0)} | ${ofPeak(callG, peak)} |`);
  lines.push('');
  lines.push('| CRaFT training step | craftgrad samples/s | PyTorch samples/s | ratio |');
  lines.push('|---|---:|---:|---:|');
  lines.push(`| Trainer.step (model call, fused surgery + AdamW, dual update), batch ${batchSize} | ${(batchSize / craftS).toFixed(2)} | ${torch ? (batchSize / torch.craft_s).toFixed(2) : 'n/a'} | ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x` : 'n/a'} |`);
  lines.push(`| model call alone (craftStep) | ${(batchSize / modelOnlyS).toFixed(2)} | | |`);
  if (torch) lines.push(`\nPyTorch ${torch.version}, ${torch.threads} threads, OPENBLAS_NUM_THREADS=${torch.blasThreads} (the faster of 1 and ${threads}); BLAS: ${torch.blas}. Same shapes, fp32, eager attention, the seed's per-tensor CRaFT loop, torch.optim.AdamW.`);
  lines.push('');
  lines.push(`Targets: ${peakTargetVerdict(gemmRows, peak, 0.5)} CRaFT step >= 1.5x PyTorch: ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x (${torch.craft_s / craftS >= 1.5 ? 'met' : 'not met'})` : 'not measured (no PyTorch)'}.`);
  if (full) {
    const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    lines.push('');
    lines.push(`Full Qwen2.5-0.5B shape (24 layers, vocab 151936, BF16 file widened to fp32 on load), CRaFT Trainer.step at batch ${fullBatch} (same P/S/Q), its own process: ` +
      `load ${full.loadS.toFixed(1)} s; step ${full.stepS.map((s) => s.toFixed(1)).join(', ')} s (first includes the arena's first allocation); ` +
      `peak RSS ${gib(full.maxRss)} (${gib(full.rssAfterLoad)} after loading the weights).`);
  }
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection(`qwen2-cpu-${info.cpu.isa}`, `## Qwen2 policy on the CPU (${info.cpu.isa})\n\n${text}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
