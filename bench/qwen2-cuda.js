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
// --precision bf16 (#29): the policy in bf16 (bench/precision.js: the policy's option where the
// build has it, else precision 'bf16' on each step call), the products' table left to
// bench/bf16-cuda.js (against the bf16 peak), PyTorch under torch.autocast bf16 with SDPA
// attention (bench/qwen2_torch.py --autocast bf16 --attention sdpa), and the device memory of
// each side: PyTorch's max_memory_allocated (and reserved), craftgrad's device memory in use
// after the timed steps minus before the policy was made (cudaMemGetInfo; craftgrad keeps its
// workspace at its high-water size for the process, so this covers its weights, sets,
// workspace and the bf16 operand buffers; an allocation freed inside a step is not seen).
// Writes the 'qwen2-cuda-bf16' section instead; refuses without cuBLASLt.
// --tiny (never recorded): a rehearsal of every code path at test widths on any CUDA device,
// the emulator included, the PyTorch peer on the CPU at the same widths.
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
import { bf16Refusal, deviceBytesInUse, policyWithPrecision } from './precision.js';

/** --tiny: Qwen2 at test widths (the same for the PyTorch peer). */
const TINY = { hidden_size: 32, intermediate_size: 48, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 64 };

export async function runQwen2CudaBench(args) {
  if (args.tiny && args.record) {
    console.error('bench/qwen2.js: --tiny is a rehearsal of the code paths: its figures are never recorded (drop --record)');
    process.exit(1);
  }
  const picked = benchCudaDevice(args.device, 'bench/qwen2.js', { allowEmulator: !!args.tiny });
  if (!picked) process.exit(1);
  const { device, index } = picked;
  const bench = benchNatives('bench/qwen2.js');
  const { batch: batchSize, steps, layers } = args;
  const precision = args.precision ?? 'fp32', bf16 = precision === 'bf16';
  if (bf16 && bf16Refusal()) {
    console.error(`bench/qwen2.js --precision bf16: ${bf16Refusal()}; nothing measured.`);
    process.exit(1);
  }
  const props = bench.cudaDeviceProps(index);
  const peak = props.fp32LanesPerSM > 0 ? (props.multiprocessors * props.fp32LanesPerSM * 2 * props.clockKHz * 1e3) / 1e9 : Number.NaN;
  const work = mkdtempSync(join(tmpdir(), 'craftgrad-qwen2-cuda-bench-'));
  try {
    const cfg = qwen25HalfBConfig({ num_hidden_layers: layers, ...(args.tiny ? TINY : {}) });
    // The PyTorch peer first, in its own process: its GPU memory is all freed when it exits,
    // while craftgrad keeps its workspace for the life of this process (the peer would
    // otherwise run beside it).
    let torch = null, torchFailed = false;
    if (!args['no-torch']) {
      const script = fileURLToPath(new URL('./qwen2_torch.py', import.meta.url));
      const widths = args.tiny ? ['--width', String(cfg.hidden_size), '--mlp', String(cfg.intermediate_size), '--heads', String(cfg.num_attention_heads), '--kv-heads', String(cfg.num_key_value_heads)] : [];
      const res = spawnSync(process.env.PYTHON || 'python3', [script, '--device', args.tiny ? 'cpu' : device, '--batch', String(batchSize), '--steps', String(steps), '--reps', '3',
        '--layers', String(layers), '--vocab', String(cfg.vocab_size), ...widths, ...(bf16 ? ['--autocast', 'bf16', ...(args.tiny ? [] : ['--attention', 'sdpa'])] : [])], { encoding: 'utf8' });
      if (res.status !== 0) {
        torchFailed = true;
        console.error(`PyTorch peer not run: ${res.stderr || res.error}`);
      } else torch = JSON.parse(res.stdout.trim().split('\n').pop());
    }

    const dir = writeRandomQwen2Dir(join(work, 'qwen2'), cfg);
    let policy, via;
    const bytesBefore = deviceBytesInUse(bench, index);
    try {
      ({ policy, via } = await policyWithPrecision((extra) => Qwen2Policy.fromHfDirectory(dir, policyOptions({ device, ...extra })), precision));
    } catch (e) {
      console.error(`bench/qwen2.js --device ${args.device}${bf16 ? ' --precision bf16' : ''}: this build's Qwen2Policy cannot run on ${device} (${e.message}); nothing measured.`);
      process.exit(1);
    }
    const c = policy.config;
    const gemmRows = bf16 || args.tiny ? [] : stepProducts(c, batchSize).map(([label, m, n, k, ta, tb]) => {
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
    const craftBytes = deviceBytesInUse(bench, index) - bytesBefore;
    policy.dispose();

    const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a');
    const lines = [];
    if (args.tiny) lines.push('- REHEARSAL (--tiny): test widths on this device, the PyTorch peer on the CPU; the figures mean nothing');
    lines.push(`- device: ${device} ${picked.info.name} (compute capability ${props.computeCapability}, ${props.multiprocessors} SMs); fp32 CUDA-core peak from its properties: ${Number.isFinite(peak) ? `${peak.toFixed(0)} GFLOP/s` : 'unknown'}`);
    lines.push(`- CUDA tuning: ${cudaTuningText()}; host: ${describeMachine()}`);
    lines.push(`- command: \`node bench/qwen2.js --device ${args.device} --batch ${batchSize}${bf16 ? ' --precision bf16' : ''}${args.tiny ? ' --tiny' : ''}${args.record ? ' --record' : ''}\` (${steps} steps per timing, best of 3); date ${new Date().toISOString().slice(0, 10)}`);
    if (bf16) lines.push(`- precision bf16, asked for through ${via}`);
    lines.push(`- model: Qwen2.5-0.5B shape, ${c.numLayers} layers, vocab ${c.vocabSize}, random BF16 weights; LoRA r=${c.rank} alpha=${c.alpha} on all seven linears; P=${c.prefixTokens} S=${c.promptTokens} Q=${c.queries} A=${c.actionDims} head ${c.headWidth}; ${trainable} trainable values`);
    lines.push('');
    if (bf16) {
      lines.push(`Whole craftStep call in bf16: ${(stepFlops / 1e9).toFixed(0)} GFLOP of products / call time = ${(stepFlops / modelOnlyS / 1e9).toFixed(0)} GFLOP/s (the products against the bf16 peak: the 'bf16-cuda' section).`);
    } else {
      lines.push('| matrix product (M×N×K) | GFLOP/s | of fp32 peak |');
      lines.push('|---|---:|---:|');
      for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${pct(g.gflops / peak)} |`);
      lines.push(`| whole craftStep call (${(stepFlops / 1e9).toFixed(0)} GFLOP of products / call time) | ${(stepFlops / modelOnlyS / 1e9).toFixed(0)} | ${pct(stepFlops / modelOnlyS / 1e9 / peak)} |`);
    }
    lines.push('');
    lines.push('| CRaFT training step | craftgrad samples/s | PyTorch samples/s | ratio |');
    lines.push('|---|---:|---:|---:|');
    lines.push(`| Trainer.step, batch ${batchSize} | ${(batchSize / craftS).toFixed(1)} | ${torch ? (batchSize / torch.craft_s).toFixed(1) : 'n/a'} | ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x` : 'n/a'} |`);
    lines.push(`| model call alone (craftStep) | ${(batchSize / modelOnlyS).toFixed(1)} | | |`);
    const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    if (torch && !bf16) lines.push(`\nPyTorch ${torch.version} on ${torch.device ?? 'the CPU'}, fp32 (TF32 off), eager attention, the seed's per-tensor CRaFT loop; its peak allocated memory ${gib(torch.peak_bytes)}.`);
    if (bf16) {
      if (torch) lines.push(`\nPyTorch ${torch.version} on ${torch.device ?? 'the CPU'}, torch.autocast('${torch.device ? 'cuda' : 'cpu'}', dtype=torch.bfloat16) over the forward passes, ${torch.attention === 'sdpa' ? 'F.scaled_dot_product_attention (causal)' : 'eager attention'}, the seed's per-tensor CRaFT loop, torch.optim.AdamW on fp32 parameters.`);
      lines.push('');
      lines.push('| GPU memory (weights included) | craftgrad bf16 | PyTorch bf16 autocast | ratio |');
      lines.push('|---|---:|---:|---:|');
      lines.push(`| peak | ${gib(craftBytes)} (device memory in use after the timed steps − before the policy, cudaMemGetInfo) | ${torch?.peak_bytes ? `${gib(torch.peak_bytes)} (max_memory_allocated; reserved ${gib(torch.peak_reserved_bytes)})` : 'n/a'} | ${torch?.peak_bytes ? `${(craftBytes / torch.peak_bytes).toFixed(2)}` : 'n/a'} |`);
      lines.push('');
      const ratio = torch ? torch.craft_s / craftS : NaN;
      lines.push(`Targets (#29): CRaFT step >= 1.5x PyTorch bf16: ${torch ? `${ratio.toFixed(2)}x (${ratio >= 1.5 ? 'met' : 'not met'})` : 'not measured (no PyTorch)'}; peak memory <= PyTorch's: ${torch?.peak_bytes ? `${(craftBytes / torch.peak_bytes).toFixed(2)}× (${craftBytes <= torch.peak_bytes ? 'met' : 'not met'})` : 'not measured'}.`);
    }
    const text = lines.join('\n');
    console.log(text);
    if (args.record) recordSection(bf16 ? 'qwen2-cuda-bf16' : 'qwen2-cuda', `## Qwen2 policy on the GPU${bf16 ? ' in bf16 (#29)' : ''}\n\n${text}`);
    // bf16 (#29): a missing peer leaves the targets unmeasured; the session's table shows the exit.
    if (bf16 && torchFailed) process.exitCode = 3;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
