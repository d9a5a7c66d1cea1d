// The GPU variant of bench/vla.js (node bench/vla.js --device cuda[:N] [--precision fp32|bf16]
// [--batch 8] [--steps 2] [--size full|reduced] [--no-torch] [--record]): VLA-Adapter
// (VlaPolicy on random in-memory weights, bench/vla-shapes.js) with everything on the device,
// at full size by default (DINOv2 24 blocks → 23 computed, SigLIP 27 → 26, 24 decoder layers,
// 24 head blocks, vocab 151936, 2 views at 224 px), batch 8:
//  - the CRaFT Trainer.step's samples/s (model call, fused surgery + AdamW on the device, dual
//    update) against bench/vla_torch.py on the same GPU: fp32 with TF32 off and eager attention,
//    or with --precision bf16 (#29) PyTorch under torch.autocast('cuda', dtype=torch.bfloat16)
//    with SDPA in the towers and the decoder (the Pro head's gated attention stays eager), the
//    seed's per-tensor CRaFT loop;
//  - the device memory of each side: PyTorch's max_memory_allocated (and reserved), craftgrad's
//    device memory in use after the timed steps minus before the policy was made
//    (cudaMemGetInfo; craftgrad keeps its workspace at its high-water size for the process, so
//    this covers its weights, sets, workspace and bf16 operand buffers; an allocation freed
//    inside a step is not seen).
// bf16 is asked for as bench/precision.js says (the policy's option where the build has it,
// else precision 'bf16' on each step call); the record names which. Refuses (exit 1, nothing
// measured) without a usable CUDA device, without cuBLASLt for bf16, or when this build's
// VlaPolicy cannot run on the device. --record writes 'vla-cuda' or 'vla-cuda-bf16'.
// --tiny (never recorded): a rehearsal of every code path on tiny widths (TINY below), on any
// CUDA device, the emulator included, with the PyTorch peer on the CPU at its smallest shape
// (vla_torch.py's widths are VLA-Adapter's own, so the two sides differ: nothing is compared).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../dist/index.js';
import { VlaPolicy } from '../dist/model/vla/vla-policy.js';
import { bestTime, bestTimeAsync, describeMachine } from '../dist/bench/timing.js';
import { benchCudaDevice, benchNatives, cudaTuningText, recordSection } from './common.js';
import { FixedBatchSource, midTrainingB } from './qwen2-shapes.js';
import { VLA_BENCH, vlaBenchParts, vlaCraftStepFlops, vlaFixedBatch, vlaOptions } from './vla-shapes.js';
import { bf16Refusal, deviceBytesInUse, policyWithPrecision } from './precision.js';

/** --tiny: the towers, decoder and projector at test widths (2 views at 28 px: P = 8). */
const TINY = {
  dinoDepth: 2, siglipDepth: 2, image: 28, layers: 1, vocab: 64, headBlocks: 1, projectorHidden: 64,
  towers: [
    { embedDim: 32, depth: 2, numHeads: 4, mlpHidden: 64, patchSize: 14, imageSize: 28, classToken: 1, regTokens: 4, layerScale: true, layerNormEps: 1e-6 },
    { embedDim: 48, depth: 2, numHeads: 4, mlpHidden: 80, patchSize: 14, imageSize: 28, classToken: 0, regTokens: 0, layerScale: false, layerNormEps: 1e-6 },
  ],
  llm: { hiddenSize: 32, numLayers: 1, numHeads: 4, numKvHeads: 2, intermediateSize: 96, vocabSize: 64, rmsNormEps: 1e-6, ropeTheta: 1e6 },
};

export async function runVlaCudaBench(args) {
  if (args.tiny && args.record) {
    console.error('bench/vla.js: --tiny is a rehearsal of the code paths: its figures are never recorded (drop --record)');
    process.exit(1);
  }
  const picked = benchCudaDevice(args.device, 'bench/vla.js', { allowEmulator: !!args.tiny });
  if (!picked) process.exit(1);
  const { device, index } = picked;
  const bench = benchNatives('bench/vla.js');
  const { batch: batchSize, steps, precision } = args;
  const bf16 = precision === 'bf16';
  if (bf16 && bf16Refusal()) {
    console.error(`bench/vla.js --precision bf16: ${bf16Refusal()}; nothing measured.`);
    process.exit(1);
  }
  const sizeName = args.tiny ? 'tiny' : args.size ?? 'full';
  const size = args.tiny ? TINY : VLA_BENCH[sizeName];
  if (!size) {
    console.error(`bench/vla.js: --size must be full or reduced, got '${sizeName}'`);
    process.exit(1);
  }

  // The PyTorch peer first, in its own process: its GPU memory is all freed when it exits,
  // while craftgrad keeps its workspace for the life of this process (the peer would
  // otherwise run beside it).
  let torch = null, torchError = null;
  if (!args['no-torch']) {
    const script = fileURLToPath(new URL('./vla_torch.py', import.meta.url));
    const shape = args.tiny ? ['--queries', '4', '--prompt', '2'] : [];
    const attention = bf16 ? ['--autocast', 'bf16', ...(args.tiny ? [] : ['--attention', 'sdpa'])] : [];
    const res = spawnSync(process.env.PYTHON || 'python3', [script, '--device', args.tiny ? 'cpu' : device, '--batch', String(batchSize), '--steps', String(steps), '--reps', '2',
      '--dino-depth', String(size.dinoDepth), '--siglip-depth', String(size.siglipDepth), '--image', String(size.image), '--layers', String(size.layers),
      '--vocab', String(size.vocab), '--head-blocks', String(size.headBlocks), ...shape, ...attention],
    { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (res.status !== 0) torchError = (res.stderr || String(res.error)).trim().split('\n').pop();
    else torch = JSON.parse(res.stdout.trim().split('\n').pop());
    if (torchError) console.error(`PyTorch peer not run: ${torchError}`);
  }

  const t0 = performance.now();
  const parts = vlaBenchParts(size);
  const bytesBefore = deviceBytesInUse(bench, index);
  let policy, via;
  try {
    ({ policy, via } = await policyWithPrecision((extra) => VlaPolicy.create(parts, { ...vlaOptions(size), device, ...extra }), precision));
  } catch (e) {
    console.error(`bench/vla.js --device ${args.device}${bf16 ? ' --precision bf16' : ''}: this build's VlaPolicy cannot run on ${device} (${e.message}); nothing measured.`);
    process.exit(1);
  }
  const setupS = (performance.now() - t0) / 1e3;
  const c = policy.config;
  midTrainingB(policy);
  const batch = vlaFixedBatch(policy, batchSize);
  const trainer = new Trainer(new FixedBatchSource(policy, batch), {
    steps: 1e6, mode: 'craft', lambda: 0.05, lambdaLr: 0.01, retentionBudget: 1e-3, lr: 1e-4, warmup: 0, log: () => {},
  });
  const craftS = (await bestTimeAsync(async () => { for (let i = 0; i < steps; i++) await trainer.step(); }, { reps: 2, warmup: 1 })) / steps;
  const gAct = policy.newGradSet(), gRet = policy.newGradSet();
  const modelOnlyS = bestTime(() => policy.craftStep(batch, gAct, gRet), { reps: 2, warmup: 1 });
  const craftBytes = deviceBytesInUse(bench, index) - bytesBefore;
  const flops = vlaCraftStepFlops(c, batchSize);
  const trainable = policy.params.numElements;
  policy.dispose();

  const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  const [dino, siglip] = c.towers;
  const P = c.views * (dino.imageSize / dino.patchSize) ** 2;
  const lines = [];
  if (args.tiny) lines.push('- REHEARSAL (--tiny): tiny widths on this device, the PyTorch peer on the CPU at other widths; the figures mean nothing');
  lines.push(`- device: ${device} ${picked.info.name}; CUDA tuning: ${cudaTuningText()}; host: ${describeMachine()}`);
  lines.push(`- command: \`node bench/vla.js --device ${args.device} --batch ${batchSize}${bf16 ? ' --precision bf16' : ''}${args.tiny ? ' --tiny' : sizeName !== 'full' ? ` --size ${sizeName}` : ''}${args.record ? ' --record' : ''}\` (${steps} steps per timing, best of 2 after a warm-up); date ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`- precision: ${via}`);
  lines.push(`- model: VLA-Adapter ${sizeName} size, random fp32 weights: DINOv2 depth ${dino.depth}, SigLIP depth ${siglip.depth}, ${c.views} views at ${dino.imageSize} px (P=${P}), ${c.numLayers} decoder layers, vocab ${c.vocabSize}, Pro head ${c.headBlocks} blocks; LoRA r=${c.rank} alpha=${c.alpha} on every linear; ${trainable} trainable values; setup ${setupS.toFixed(1)} s`);
  lines.push('');
  lines.push('| CRaFT training step | craftgrad samples/s | PyTorch samples/s | ratio |');
  lines.push('|---|---:|---:|---:|');
  lines.push(`| Trainer.step, batch ${batchSize} | ${(batchSize / craftS).toFixed(2)} | ${torch ? (batchSize / torch.craft_s).toFixed(2) : 'n/a'} | ${torch ? `${(torch.craft_s / craftS).toFixed(2)}x` : 'n/a'} |`);
  lines.push(`| model call alone (craftStep; ${(flops.total / 1e12).toFixed(2)} TFLOP of products: ${(flops.total / modelOnlyS / 1e12).toFixed(1)} TFLOP/s) | ${(batchSize / modelOnlyS).toFixed(2)} | | |`);
  lines.push('');
  lines.push('| GPU memory (weights included) | craftgrad | PyTorch | ratio |');
  lines.push('|---|---:|---:|---:|');
  lines.push(`| peak | ${gib(craftBytes)} (in use after the timed steps − before the policy, cudaMemGetInfo) | ${torch?.peak_bytes ? `${gib(torch.peak_bytes)} (max_memory_allocated; reserved ${gib(torch.peak_reserved_bytes)})` : 'n/a'} | ${torch?.peak_bytes ? (craftBytes / torch.peak_bytes).toFixed(2) : 'n/a'} |`);
  lines.push('');
  lines.push(torch
    ? `PyTorch ${torch.version} on ${torch.device ?? "the CPU"}, ${bf16 ? `torch.autocast('${torch.device ? 'cuda' : 'cpu'}', dtype=torch.bfloat16) over the forward passes` : 'fp32 (TF32 off)'}, ${torch.attention === 'sdpa' ? "SDPA in the towers and the decoder (the Pro head's gated attention eager)" : 'eager attention'}, PEFT-style LoRA, the seed's per-tensor CRaFT loop, torch.optim.AdamW.`
    : `PyTorch peer: not run (${args['no-torch'] ? '--no-torch' : torchError}).`);
  if (bf16) {
    const ratio = torch ? torch.craft_s / craftS : NaN;
    lines.push('');
    lines.push(`Targets (#29): CRaFT step >= 1.5x PyTorch bf16: ${torch ? `${ratio.toFixed(2)}x (${ratio >= 1.5 ? 'met' : 'not met'})` : 'not measured (no PyTorch)'}; peak memory <= PyTorch's: ${torch ? `${(craftBytes / torch.peak_bytes).toFixed(2)}× (${craftBytes <= torch.peak_bytes ? 'met' : 'not met'})` : 'not measured'}.`);
  }
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection(bf16 ? 'vla-cuda-bf16' : 'vla-cuda', `## VLA-Adapter policy on the GPU${bf16 ? ' in bf16 (#29)' : ''}\n\n${text}`);
  if (torchError && !args['no-torch']) process.exit(3);
}
