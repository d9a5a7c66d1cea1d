// The GPU section of bench/model.js (node bench/model.js --device cuda [--record]): the
// built-in AdapterPolicy on a CUDA device in its larger GPU configuration (T=64,
// D=896, L=24, r=64), everything resident on the device:
//  1. the model's matrix-product kernels (each variant) on the model's own shapes, CUDA events
//     (cudaModelGemmTime), and a layer's four LoRA-gradient products batched in one launch
//     against one launch each (cudaModelGemmSetTime), in GFLOP/s and as a fraction of the fp32 CUDA-core peak computed
//     from the device's properties (SMs × FP32 lanes per SM × 2 × peak SM clock);
//  2. training-step throughput (samples/s): Trainer.step over the built-in source (model
//     call, the fused surgery + AdamW kernel on the device, the dual update), CRaFT and
//     baseline, against bench/model_torch.py on the same GPU (same model, fp32 with TF32
//     off, the seed's per-tensor CRaFT loop, torch.optim.AdamW).
// --record writes the 'model-cuda' section of bench/RESULTS.md (figures of this run only).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AdapterPolicy, syntheticDataset, Sampler, gatherBatch } from '../dist/index.js';
import { bestTime as bestOf, describeMachine } from '../dist/bench/timing.js';
import { secondsPerTrainerStep } from './trainer-steps.js';
import { benchCudaDevice, benchNatives, cudaTuningText, recordSection } from './common.js';

const LARGE = { tokens: 64, width: 896, blocks: 24, rank: 64 };

export async function runCudaModelBench(args) {
  const picked = benchCudaDevice(args.device, 'bench/model.js');
  if (!picked) process.exit(1);
  const { device, index } = picked;
  const bench = benchNatives('bench/model.js');
  const batchSize = Number(args.batch), steps = Number(args.steps);

  // ---- peak ----
  const props = bench.cudaDeviceProps(index);
  const dev = picked.info;
  const peak = props.fp32LanesPerSM > 0 ? (props.multiprocessors * props.fp32LanesPerSM * 2 * props.clockKHz * 1e3) / 1e9 : Number.NaN;

  // ---- model and matrix products ----
  const model = AdapterPolicy.create(LARGE, { seed: 0, device });
  const c = model.config;
  const M = batchSize * c.tokens, D = c.width, r = c.rank;
  const shapes = [
    ['block forward  h·W_effᵀ', M, D, D, false, true],
    ['input grad     dZ·W_eff (2 streams)', 2 * M, D, D, false, false],
    ['W_eff          B·A', D, D, r, false, false],
    ['LoRA           h·Aᵀ', M, r, D, false, true],
    ['LoRA grad      dZᵀ·u', D, r, M, true, false],
    ['LoRA grad      Vᵀ·h', r, D, M, true, false],
  ];
  // Every product kernel (0: the one the model picks by shape; 1 simple 4×4; 2, 3: 8×8
  // register tiles of 64×64 and 128×128), so that the choice can be tuned from one run.
  const KERNELS = ['by shape', 'simple', 'tiled64', 'tiled128', 'small32'];
  const gflopsOf = (m, n, k, ta, tb, variant) => {
    const ms = bench.cudaModelGemmTime(index, m, n, k, ta, tb, 20, variant);
    return (2 * m * n * k) / (Math.min(...ms) / 1e3) / 1e9;
  };
  const gemmRows = shapes.map(([label, m, n, k, ta, tb]) => {
    const perKernel = KERNELS.map((_, v) => gflopsOf(m, n, k, ta, tb, v));
    return { label, m, n, k, gflops: perKernel[0], perKernel };
  });
  // A layer's LoRA gradients (dZᵀ·u and Vᵀ·h for the craft and ret streams): the model runs
  // them as one batched launch; timed both ways, with every kernel.
  const loraShapes = [[D, r, M], [r, D, M], [D, r, M], [r, D, M]];
  const loraFlops = loraShapes.reduce((s, [m, n, k]) => s + 2 * m * n * k, 0);
  const loraRows = [false, true].map((batched) => {
    const perKernel = KERNELS.map((_, v) => {
      const ms = bench.cudaModelGemmSetTime(index, loraShapes, true, false, 20, v, batched);
      return loraFlops / (Math.min(...ms) / 1e3) / 1e9;
    });
    return { label: `LoRA grads, 4 products, ${batched ? 'one batched launch (the model\'s)' : 'one launch each'}`, gflops: perKernel[0], perKernel };
  });

  // ---- steps ----
  const ds = syntheticDataset({ tasks: 8, episodesPerTask: 4, stepsPerEpisode: 16, tokens: c.tokens, width: c.width, chunk: c.chunk, actionDims: c.actionDims });
  const sampler = new Sampler(ds.size, { batchSize, seed: 0, dropLast: true });
  // Mid-training weights: B ≠ 0 so the retention stream is not trivially zero.
  const t = model.trainableTensors();
  for (const [name, x] of Object.entries(t)) if (name.endsWith('lora_B')) for (let i = 0; i < x.data.length; i++) x.data[i] = 0.01 * Math.sin(i);
  model.loadTrainable(t);
  const craftS = await secondsPerTrainerStep(model, ds, { batchSize, steps, mode: 'craft' });
  const baseS = await secondsPerTrainerStep(model, ds, { batchSize, steps, mode: 'baseline' });
  const gAct = model.newGradSet(), gRet = model.newGradSet();
  const batch = gatherBatch(ds, sampler.next());
  const modelOnlyS = bestOf(() => model.craftStep(batch, gAct, gRet), { reps: 10, warmup: 2 });

  // Matrix-product flops of one CRaFT model call (as bench/model.js counts them on the CPU).
  const F = c.anchorType === 'concat' ? 2 * D : D, H = c.headWidth, KA = c.chunk * c.actionDims, B = batchSize, L = c.blocks;
  const blockFwd = 2 * M * D * D + 2 * D * D * r;
  const bwdFlops = 2 * B * H * KA * 2 + 2 * B * F * H * 2 + L * (2 * M * D * r * 7 + 2 * 2 * M * D * D);
  const stepFlops = 2 * L * blockFwd + 2 * B * F * H + 2 * B * H * KA + bwdFlops;

  // ---- PyTorch peer on the same GPU ----
  let torch = null;
  if (!args['no-torch']) {
    const script = fileURLToPath(new URL('./model_torch.py', import.meta.url));
    const res = spawnSync('python3', [script, '--device', device, '--batch', String(batchSize), '--steps', String(steps),
      '--tokens', String(c.tokens), '--width', String(D), '--blocks', String(L), '--rank', String(r)], { encoding: 'utf8' });
    if (res.status !== 0) console.error(`PyTorch baseline not run: ${res.stderr || res.error}`);
    else torch = JSON.parse(res.stdout.trim().split('\n').pop());
  }

  const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a');
  const lines = [];
  lines.push(`- device: ${device} ${dev.name} (compute capability ${props.computeCapability}, ${props.multiprocessors} SMs, ${props.fp32LanesPerSM || '?'} FP32 lanes/SM, peak clock ${(props.clockKHz / 1e6).toFixed(2)} GHz)`);
  lines.push(`- fp32 CUDA-core peak from the device's properties: ${Number.isFinite(peak) ? peak.toFixed(0) : 'unknown for this architecture'} GFLOP/s (SMs × lanes × 2 × clock)`);
  lines.push(`- CUDA tuning: ${cudaTuningText()}`);
  lines.push(`- host: ${describeMachine()}`);
  lines.push(`- command: \`node bench/model.js --device ${args.device}${args.record ? ' --record' : ''}\` (batch ${batchSize}, ${steps} steps per timing, best of 5); date ${new Date().toISOString().slice(0, 10)}`);
  lines.push(`- config: T=${c.tokens} D=${D} L=${L} r=${r} alpha=${c.alpha} m=${c.bridgeBlock} ${c.pooling}/${c.anchorType} H=${H} K=${c.chunk} A=${c.actionDims} (${model.params.numElements} trainable values)`);
  lines.push('');
  lines.push(`| matrix product (M×N×K) | GFLOP/s (kernel by shape) | of fp32 peak | ${KERNELS.slice(1).map((k) => `${k} GFLOP/s`).join(' | ')} |`);
  lines.push(`|---|---:|---:|${KERNELS.slice(1).map(() => '---:').join('|')}|`);
  for (const g of gemmRows) lines.push(`| ${g.label} (${g.m}×${g.n}×${g.k}) | ${g.gflops.toFixed(0)} | ${pct(g.gflops / peak)} | ${g.perKernel.slice(1).map((x) => x.toFixed(0)).join(' | ')} |`);
  for (const g of loraRows) lines.push(`| ${g.label} (2× ${D}×${r}×${M}, 2× ${r}×${D}×${M}) | ${g.gflops.toFixed(0)} | ${pct(g.gflops / peak)} | ${g.perKernel.slice(1).map((x) => x.toFixed(0)).join(' | ')} |`);
  lines.push(`| whole craftStep call (matmul flops / call time, incl. element-wise work and the batch upload) | ${(stepFlops / modelOnlyS / 1e9).toFixed(0)} | ${pct(stepFlops / modelOnlyS / 1e9 / peak)} |${KERNELS.slice(1).map(() => ' |').join('')}`);
  lines.push('');
  lines.push('| training step | craftgrad samples/s | PyTorch samples/s | ratio |');
  lines.push('|---|---:|---:|---:|');
  const row = (label, s, ts) => lines.push(`| ${label} | ${(B / s).toFixed(1)} | ${ts ? (B / ts).toFixed(1) : 'n/a'} | ${ts ? `${(ts / s).toFixed(2)}x` : 'n/a'} |`);
  row('CRaFT (Trainer.step: model, fused surgery + AdamW, dual update)', craftS, torch?.craft_s);
  row('baseline (Trainer.step: model, AdamW)', baseS, torch?.baseline_s);
  lines.push(`| model call alone (craftStep) | ${(B / modelOnlyS).toFixed(1)} | | |`);
  if (torch) lines.push(`\nPyTorch ${torch.version} on ${torch.device}, fp32 (TF32 off), CRaFT as the seed's per-tensor loop (one host sync per tensor).`);
  lines.push('\nTargets (#18): GPU matrix products >= 50% of the fp32 CUDA-core peak; step throughput >= 1x PyTorch (the seed\'s per-tensor loop, fp32, eager) on the same GPU.');
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection('model-cuda', `## Built-in model on the GPU\n\n${text}`);
}
