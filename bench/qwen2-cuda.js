// The GPU variant of bench/qwen2.js (node bench/qwen2.js --device cuda[:N] [--batch 16]
// [--steps 2] [--layers 24] [--no-torch] [--record]): the full Qwen2.5-0.5B shape (24
// layers, vocab 151936, random BF16 weights in a temp directory), the benchmark's P/S/Q, LoRA
// r=64 on all seven linears, everything on the device (Qwen2Policy's `device` option):
//  1. the step's matrix products with the model's CUDA product kernel (cudaModelGemmTime),
//     against the fp32 CUDA-core peak from the device's properties;
//  2. the CRaFT Trainer.step's samples/s (model call, fused surgery + AdamW on the device, dual
//     update) against bench/qwen2_torch.py on the same GPU (fp32, TF32 off), and PyTorch's
//     peak allocated memory.
// Refuses clearly (exit 1, nothing measured) without a usable CUDA device or when this build's
// Qwen2Policy cannot run on one. --record writes the 'qwen2-cuda' section of bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../dist/index.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { bestTime, bestTimeAsync, describeMachine } from '../dist/bench/timing.js';
import { benchCudaDevice, benchNatives, cudaTuningText, recordSection } from './common.js';
import { qwen25HalfBConfig, writeRandomQwen2Dir } from './qwen2-hf-dir.js';
import { FixedBatchSource, craftStepFlops, fixedBatch, midTrainingB, policyOptions, stepProducts } from './qwen2-shapes.js';

export async function runQwen2CudaBench(args) {
  const picked = benchCudaDevice(args.device, 'bench/qwen2.js');
  if (!picked) process.exit(1);
  const { device, index } = picked;
  const bench = benchNatives('bench/qwen2.js');
  const { batch: batchSize, steps, layers } = args;
  const props = bench.cudaDeviceProps(index);
  const peak = props.fp32LanesPerSM > 0 ? (props.multiprocessors * props.fp32LanesPerSM * 2 * props.clockKHz * 1e3) / 1e9 : Number.NaN;
  const work = mkdtempSync(join(tmpdir(), 'craftgrad-qwen2-cuda-bench-'));
  try {
    const dir = writeRandomQwen2Dir(join(work, 'qwen2'), qwen25HalfBConfig({ num_hidden_layers: layers }));
    let policy;
    try {
      policy = await Qwen2Policy.fromHfDirectory(dir, policyOptions({ device }));
    } catch (e) {
      console.error(`bench/qwen2.js --device ${args.device}: this build's Qwen2Policy cannot run on ${device} (${e.message}); nothing measured.`);
      process.exit(1);
    }
    const c = policy.config;
    const gemmRows = stepProducts(c, batchSize).map(([label, m, n, k, ta, tb]) => {
      const ms = bench.cudaModelGemmTime(index, m, n, k, ta, tb, 20, 0);
      return { label, m, n, k, gflops: (2 * m * n * k) / (Math.min(...ms) / 1e3) / 1e9 };
    });
    midTrainingB(policy);
    const batch = fixedBatch(policy, batchSize);
    const trainer = new Trainer(new FixedBatchSource(policy, batch), {
      steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
    });
    const craftS = (await bestTimeAsync(async () => { for (let i = 0; i < steps; i++) await trainer.step(); }, { reps: 3, warmup: 1 })) / steps;
    const gAct = policy.newGradSet(), gRet = policy.newGradSet();
    const modelOnlyS = bestTime(() => policy.craftStep(batch, gAct, gRet), { reps: 3, warmup: 1 });
    const stepFlops = craftStepFlops(c, batchSize);
    const trainable = policy.params.numElements;
    policy.dispose();

    let torch = null;
    if (!args['no-torch']) {
      const script = fileURLToPath(new URL('./qwen2_torch.py', import.meta.url));
      const res = spawnSync('python3', [script, '--device', device, '--batch', String(batchSize), '--steps', String(steps), '--reps', '3',
        '--layers', String(layers), '--vocab', String(c.vocabSize)], { encoding: 'utf8' });
      if (res.status !== 0) console.error(`PyTorch peer not run: ${res.stderr || res.error}`);
      else torch = JSON.parse(res.stdout.trim().split('\n').pop());
    }

    const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a');
    const lines = [];
    lines.push(`- device: ${device} ${picked.info.name} (compute capability ${props.computeCapability}, ${props.multiprocessors} SMs); fp32 CUDA-core peak from its properties: ${Number.isFinite(peak) ? `${peak.toFixed(0)} GFLOP/s` : 'unknown'}`);
    lines.push(`- CUDA tuning: ${cudaTuningText()}; host: ${describeMachine()}`);
    lines.push(`- command: \`node bench/qwen2.js --device ${args.device} --batch ${batchSize}${args.record ? ' --record' : ''}\` (${steps} steps per timing, best of 3); date ${new Date().toISOString().slice(0, 10)}`);
    lines.push(`- model: Qwen2.5-0.5B shape, ${c.numLayers} layers, vocab ${c.vocabSize}, random BF16 weights; LoRA r=${c.rank} alpha=${c.alpha} on all seven linears; P=${c.prefixTokens} S=${c.promptTokens} Q=${c.queries} A=${c.actionDims} head ${c.headWidth}; ${trainable} trainable values`);
    lines.push('');
    lines.push('| matrix product (M×N×K) | GFLOP/s | of fp32 peak |');
    lines.push('|---|---:|---:|');
    for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${pct(g.gflops / peak)} |`);
    lines.push(`| whole craftStep call (${(stepFlops / 1e9).toFixed(0)} GFLOP of products / call time) | ${(stepFlops / modelOnlyS / 1e9).toFixed(0)} | ${pct(stepFlops / modelOnlyS / 1e9 / peak)} |`);
    lines.push('');
    lines.push('| CRaFT training step | craftgrad samples/s | PyTorch samples/s | ratio |');
    lines.push('|---|---:|---:|---:|');
    lines.push(`| Trainer.step, batch ${batchSize} | ${(batchSize / craftS).toFixed(1)} | ${torch ? (batchSize / torch.craft_s).toFixed(1) : 'n/a'} | ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x` : 'n/a'} |`);
    lines.push(`| model call alone (craftStep) | ${(batchSize / modelOnlyS).toFixed(1)} | | |`);
    if (torch) lines.push(`\nPyTorch ${torch.version} on ${torch.device}, fp32 (TF32 off), eager attention, the seed's per-tensor CRaFT loop; its peak allocated memory ${(torch.peak_bytes / 2 ** 30).toFixed(2)} GiB.`);
    const text = lines.join('\n');
    console.log(text);
    if (args.record) recordSection('qwen2-cuda', `## Qwen2 policy on the GPU\n\n${text}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
