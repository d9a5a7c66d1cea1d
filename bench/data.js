#!/usr/bin/env node
// node bench/data.js [--record] [--quick]
// The robot-data pipeline (issue #28, "Throughput"; src/model/vla/rlds-source.ts,
// src/data/images/frame-pool.ts), on LIBERO-like frames: 256×256 JPEGs at quality 95 (4:2:0,
// tf.image.encode_jpeg's defaults), two views, resized to 224.
// (a) samples/s of decode + resize + augment + normalisation (what a sample costs before the
//     model sees it): one sample at a time on the main thread (the cost of a sample on one
//     core, by stage; the native stages, and the TypeScript they replaced), a batch at a time
//     on the main thread (as the source ran before the pool), and on the frame pool; with the
//     CPU time the process spent (all threads), so samples per core-second.
// (b) peak memory (maxRSS) of a process that reads a dataset of a few hundred episodes
//     (numbers kept, images read back by offset) and draws batches through the pool.
// (c) the time `accumulate` waits for its batch in a training run (Trainer.step over the RLDS
//     source of a real session: a tiny VLA-Adapter at 224 px, batch 16, CRaFT), after
//     warm-up: on the CPU model step, and with the step held to 0.2 s (a GPU step: the model
//     step plus a sleep, leaving the CPU to the pipeline), the issue's target of 80 samples/s.
// The frames are synthetic (a scene of gradients, boxes and noise), sized to what a rendered
// LIBERO frame compresses to; the figures depend on the JPEG's entropy.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { backendInfo, Trainer } from '../dist/index.js';
import { describeMachine } from '../dist/bench/timing.js';
import { FramePool, prepareNormalizedFrame, defaultFrameThreads } from '../dist/data/images/frame-pool.js';
import { decodeImage, resizeImageUint8, augmentImage, augmentParams, drawUniform, augmentRng } from '../dist/data/images/index.js';
import { resizeImageUint8Native, augmentImageNative, normalizeImageNative } from '../dist/data/images/native-ops.js';
import { normalizeImage } from '../dist/data/vla-dataset.js';
import { loadRldsForVla, RldsVlaSource } from '../dist/model/vla/rlds-source.js';
import { loadPromptTokenizer } from '../dist/data/rlds/index.js';
import { TRAIN_DEFAULTS } from '../dist/train/run-config.js';
import { openSessionModel } from '../dist/train/session-model.js';
import { trainerOptions } from '../dist/train/session.js';
import { liberoSpec, writeTfdsDataset } from '../test/helpers/rlds-writer.mjs';
import { TINY_VLA, writeTinyVla } from '../test/helpers/vla-tiny.mjs';
import { writeTinyQwen2 } from '../test/helpers/tiny-qwen2-tokenizer.mjs';
import { median, recordSection, seededUniform } from './common.js';

const { values: args } = parseArgs({
  options: {
    record: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
    'child-memory': { type: 'string' }, threads: { type: 'string' },
  },
});
const NORM = [
  { mean: [0.484375, 0.455078125, 0.40625], std: [0.228515625, 0.2236328125, 0.224609375] },
  { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
];
const SRC = 256, SIZE = 224, BATCH = 16;

/** A rendered-scene-like frame: a lit floor and wall, a few boxes, a gentle noise (render grain). */
function sceneFrame(seed) {
  const next = seededUniform(seed * 7919 + 1);
  const px = new Uint8Array(SRC * SRC * 3);
  const boxes = Array.from({ length: 6 }, () => ({
    x: (next() + 0.5) * 200, y: 80 + (next() + 0.5) * 150, w: 20 + (next() + 0.5) * 50, h: 15 + (next() + 0.5) * 40,
    c: [0, 1, 2].map(() => 40 + (next() + 0.5) * 200),
  }));
  for (let y = 0; y < SRC; y++) {
    for (let x = 0; x < SRC; x++) {
      const i = (y * SRC + x) * 3;
      let c = y < 90 ? [170 - y * 0.3, 160 - y * 0.2, 150] : [120 + ((x >> 5) + (y >> 5)) % 2 * 25 - (y - 90) * 0.2, 95 + x * 0.05, 70];
      for (const b of boxes) if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + b.h) c = b.c.map((v) => v - (y - b.y) * 0.6 + (x - b.x) * 0.3);
      for (let k = 0; k < 3; k++) px[i + k] = Math.max(0, Math.min(255, Math.round(c[k] + next() * 10)));
    }
  }
  return px;
}

async function jpeg(px) {
  const b = await sharp(Buffer.from(px.buffer), { raw: { width: SRC, height: SRC, channels: 3 } }).jpeg({ quality: 95, chromaSubsampling: '4:2:0' }).toBuffer();
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** `n` distinct two-view frames. */
async function frames(n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push([await jpeg(sceneFrame(2 * i)), await jpeg(sceneFrame(2 * i + 1))]);
  return out;
}

const cpuSeconds = (u) => (u.user + u.system) / 1e6;

/** Runs `fn` (which prepares `samples` samples) and returns samples/s and samples per CPU-second. */
async function rate(samples, fn) {
  const c0 = process.cpuUsage(), t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000, cpu = cpuSeconds(process.cpuUsage(c0));
  return { perSecond: samples / wall, perCpuSecond: samples / cpu, cpuPerWall: cpu / wall };
}

async function throughput(set, reps) {
  const job = (i) => ({ size: SIZE, augment: 'random', draw: [0, 1, i] });
  // Stages, one sample at a time on the main thread: the pipeline's (native resize, augment and
  // normalisation, native-ops.ts), and the TypeScript reference they replaced (resize.ts,
  // augment.ts, normalizeImage: the same bits).
  const stage = { decode: [], resize: [], augment: [], normalise: [] };
  const tsStage = { resize: [], augment: [], normalise: [] };
  // The normalisation's output, allocated once: a fresh 1.2 MiB array per call would time the
  // allocator's first-touch page faults (which the serial and pool rates below include).
  const planes = new Float32Array(6 * SIZE * SIZE);
  const time = (into, fn) => {
    const t = performance.now();
    const r = fn();
    into.push(performance.now() - t);
    return r;
  };
  for (let r = 0; r < reps; r++) {
    for (const [i, views] of set.entries()) {
      const rng = augmentRng(0, 1, i);
      for (const bytes of views) {
        let t = performance.now();
        const img = await decodeImage(bytes);
        stage.decode.push(performance.now() - t);
        const params = augmentParams(drawUniform(rng));
        const small = time(stage.resize, () => resizeImageUint8Native(img.data, img.height, img.width, SIZE, SIZE));
        const aug = time(stage.augment, () => augmentImageNative(small, SIZE, SIZE, params));
        time(stage.normalise, () => normalizeImageNative(aug, SIZE, NORM, planes));
        if (r === 0) {
          const tsSmall = time(tsStage.resize, () => resizeImageUint8(img.data, img.height, img.width, SIZE, SIZE));
          const tsAug = time(tsStage.augment, () => augmentImage(tsSmall, SIZE, SIZE, params));
          time(tsStage.normalise, () => normalizeImage(tsAug, SIZE, NORM, planes));
        }
      }
    }
  }
  const perSample = Object.fromEntries(Object.entries(stage).map(([k, v]) => [k, 2 * median(v)]));
  const tsPerSample = Object.fromEntries(Object.entries(tsStage).map(([k, v]) => [k, 2 * median(v)]));
  const serial = await rate(set.length * reps, async () => {
    for (let r = 0; r < reps; r++) for (const [i, views] of set.entries()) await prepareNormalizedFrame(views, job(i), NORM);
  });
  const batched = await rate(set.length * reps, async () => {
    for (let r = 0; r < reps; r++) {
      for (let b = 0; b < set.length; b += BATCH) await Promise.all(set.slice(b, b + BATCH).map((v, k) => prepareNormalizedFrame(v, job(b + k), NORM)));
    }
  });
  const pools = [];
  for (const threads of [...new Set([1, defaultFrameThreads(), availableParallelism()])].sort()) {
    const pool = new FramePool({ threads, normalization: NORM });
    await Promise.all(set.slice(0, BATCH).map((v, k) => pool.prepare(v, job(k))));  // started, warm
    // Two draws in flight, as the source keeps them.
    const r = await rate(set.length * reps, async () => {
      for (let rr = 0; rr < reps; rr++) await Promise.all(set.map((v, k) => pool.prepare(v, job(k))));
    });
    await pool.close();
    pools.push({ threads, ...r });
  }
  return { perSample, tsPerSample, serial, batched, pools };
}

/** Episodes of `steps` steps whose frames are taken from `set` (encoded once). */
function episodes(set, count, steps, instructions = 3) {
  const eps = [];
  for (let e = 0; e < count; e++) {
    const out = [];
    for (let i = 0; i < steps; i++) {
      const v = (k) => Math.fround(Math.sin(e * 13.1 + i * 0.7 + k * 1.9));
      const [image, wrist] = set[(e * 7 + i) % set.length];
      out.push({
        observation: { image, wrist_image: wrist, state: Float32Array.from({ length: 8 }, (_, k) => v(k)), joint_state: Float32Array.from({ length: 7 }, (_, k) => v(k + 10)) },
        action: Float32Array.from({ length: 7 }, (_, k) => (k === 6 ? (i % 3 === 0 ? -1 : 1) : v(k + 20))),
        discount: 1, reward: i === steps - 1 ? 1 : 0, is_first: i === 0, is_last: i === steps - 1, is_terminal: i === steps - 1,
        language_instruction: ['pick up the black bowl and place it on the plate', 'open the top drawer of the cabinet', 'put the bowl on the stove'][e % instructions],
      });
    }
    eps.push({ steps: out, episode_metadata: { file_path: `/data/libero/demo_${e}.hdf5` } });
  }
  return eps;
}

const duBytes = (dir) => readdirSync(dir, { recursive: true }).reduce((s, f) => {
  const st = statSync(join(dir, f));
  return s + (st.isFile() ? st.size : 0);
}, 0);

/** (b), in a process of its own: load the dataset, draw `draws` batches through the pool; maxRSS. */
async function memoryChild(dir, tokDir, draws, frameThreads) {
  // VmHWM: this process's peak resident set (getrusage's maxRSS carries the parent's over exec).
  const rss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  const base = rss();
  const data = await loadRldsForVla(dir);
  const loaded = rss();
  const model = {
    config: { chunk: 8, actionDims: 7, proprioDim: 8, views: 2, queries: 4, vocabSize: 320, towers: [{ imageSize: SIZE }, { imageSize: SIZE }] },
    headNoise: () => null, baselineStepAsync: async () => ({ actionLoss: 0 }),
  };
  const train = Array.from({ length: data.samples.size }, (_, i) => i);
  const source = new RldsVlaSource(model, data, { batchSize: BATCH, seed: 0, train, normalization: NORM, tokenizer: await loadPromptTokenizer(tokDir), frameThreads });
  for (let i = 0; i < draws; i++) await source.accumulate(null, undefined, 1);
  await source.close();
  console.log(JSON.stringify({ base, loaded, drawn: rss(), episodes: data.samples.episodes, samples: data.samples.size }));
}

if (args['child-memory']) {
  const [dir, tokDir, draws, threads] = args['child-memory'].split('|');
  await memoryChild(dir, tokDir, Number(draws), Number(threads));
  process.exit(0);
}

/** (c): Trainer.step over the session's RLDS source; the source's wait per step after warm-up. */
async function trainingWait(root, dataDir, { stepSeconds, steps, warmup }) {
  const cfg = {
    ...TRAIN_DEFAULTS, model: join(root, 'model'), data: dataDir, batch_size: BATCH, rank: 2, alpha: 4, steps: 1e6, val_every: 0, val_fraction: 0, threads: 2,
  };
  const opened = await openSessionModel(cfg, { resume: false, log: () => {}, keyName: (k) => k });
  const source = opened.source;
  const model = source.model;
  // The model's step, timed (one instruction in the data: one model call per step). A GPU
  // step: the CPU model step once (it writes the gradients the optimizer then reuses), after
  // that `stepSeconds` of idle in its place, which is what a GPU step leaves the CPU to.
  const step = model.craftStepAsync.bind(model), compute = [];
  let first;
  model.craftStepAsync = async (...a) => {
    const t0 = performance.now();
    if (stepSeconds && first) await new Promise((res) => setTimeout(res, stepSeconds * 1000));
    else first = await step(...a);
    compute.push(performance.now() - t0);
    return first;
  };
  const trainer = new Trainer(source, trainerOptions(opened.config, [], () => {}));
  const waits = [], times = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now(), w0 = source.dataWait.ms;
    await trainer.step();
    if (i >= warmup) {
      waits.push(source.dataWait.ms - w0);
      times.push(performance.now() - t0);
    }
  }
  await source.close();
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  return { computeMs: median(compute.slice(warmup)), waitMedian: median(waits), waitMean: sum(waits) / waits.length, waitMax: Math.max(...waits), stepMs: median(times), samplesPerSecond: BATCH * steps / (sum(times) / 1000) };
}

const quick = args.quick;
const load0 = loadavg()[0];
const started = new Date();
const root = mkdtempSync(join(tmpdir(), 'craftgrad-bench-data-'));
try {
  const set = await frames(quick ? 8 : 32);
  const jpegBytes = set.flat().reduce((s, b) => s + b.length, 0) / (2 * set.length);
  console.error(`frames: ${set.length} two-view samples, mean JPEG ${(jpegBytes / 1024).toFixed(1)} KiB`);
  const tp = await throughput(set, quick ? 1 : 3);
  console.error(JSON.stringify(tp));

  // The datasets: (b) a few hundred episodes; (c) the same frames, fewer episodes.
  const EPISODES = quick ? 40 : 300, STEPS = 40;
  const tok = join(root, 'tok');
  mkdirSync(tok);
  writeTinyQwen2(tok);
  const { dir: big } = await writeTfdsDataset(join(root, 'big'), { name: 'libero_bench', spec: liberoSpec({ imageSize: SRC }), splits: { train: episodes(set, EPISODES, STEPS) } });
  const bigBytes = duBytes(big);
  const memory = (threads) => {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-memory', `${big}|${tok}|${quick ? 4 : 20}|${threads}`], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`memory child failed: ${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').at(-1));
  };
  const mem = memory(defaultFrameThreads()), mem0 = memory(0);
  console.error(JSON.stringify({ mem, mem0 }));

  // A tiny VLA-Adapter at 224 px (patch 56: 16 patches) with the tokenizer.
  const spec = { ...TINY_VLA, vocab: 320, image: SIZE, towers: TINY_VLA.towers.map((t) => ({ ...t, patch_size: 56 })) };
  writeTinyVla(join(root, 'model'), { spec });
  writeTinyQwen2(join(root, 'model'));
  const { dir: small } = await writeTfdsDataset(join(root, 'small'), { name: 'libero_bench', spec: liberoSpec({ imageSize: SRC }), splits: { train: episodes(set, 24, STEPS, 1) } });
  const runs = {};
  const n = quick ? { steps: 4, warmup: 3 } : { steps: 12, warmup: 4 };
  runs.cpu = await trainingWait(root, small, { ...n });
  runs.gpu = await trainingWait(root, small, { ...n, stepSeconds: 0.2 });
  console.error(JSON.stringify(runs));
  const load1 = loadavg()[0];

  const info = backendInfo();
  const f1 = (x) => x.toFixed(1), f0 = (x) => x.toFixed(0);
  const ps = tp.perSample, total = ps.decode + ps.resize + ps.augment + ps.normalise;
  const def = tp.pools.find((p) => p.threads === defaultFrameThreads());
  const MiB = 2 ** 20;
  const lines = [
    '## Robot data pipeline (RLDS frames: decode, resize, augment, normalise)',
    '',
    `- machine: ${describeMachine()}; ISA ${info.cpu.isa}; 1-minute load average ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end (this benchmark's own threads included)`,
    `- command: \`node bench/data.js${args.record ? ' --record' : ''}${quick ? ' --quick' : ''}\`; date ${started.toISOString().slice(0, 10)}`,
    `- frames: ${set.length} synthetic two-view samples (a scene of gradients, boxes and render grain), 256×256 JPEG q95 4:2:0, mean ${(jpegBytes / 1024).toFixed(1)} KiB; to 224×224, upstream's training augmentation, both normalisations (6 × 224 × 224 float32 per view)`,
    '',
    `(a) One sample (2 views) on one core, the stages timed apart (medians): decode ${f1(ps.decode)} ms, resize ${f1(ps.resize)} ms, augment ${f1(ps.augment)} ms, normalise ${f1(ps.normalise)} ms (native, native/data); ${f1(total)} ms, ${f0(1000 / total)} samples/s per core. ` +
      `The TypeScript these replaced (resize.ts, augment.ts, normalizeImage; the same bits): resize ${f1(tp.tsPerSample.resize)} ms, augment ${f1(tp.tsPerSample.augment)} ms, normalise ${f1(tp.tsPerSample.normalise)} ms.`,
    '',
    '| path | samples/s | samples per CPU-second (per core) | CPU-seconds per second |',
    '|---|---:|---:|---:|',
    `| main thread, one sample at a time | ${f1(tp.serial.perSecond)} | ${f1(tp.serial.perCpuSecond)} | ${tp.serial.cpuPerWall.toFixed(2)} |`,
    `| main thread, a batch of ${BATCH} at a time (the path before the pool) | ${f1(tp.batched.perSecond)} | ${f1(tp.batched.perCpuSecond)} | ${tp.batched.cpuPerWall.toFixed(2)} |`,
    ...tp.pools.map((p) => `| frame pool, ${p.threads} worker${p.threads > 1 ? 's' : ''}${p.threads === defaultFrameThreads() ? ' (the default here)' : ''} | ${f1(p.perSecond)} | ${f1(p.perCpuSecond)} | ${p.cpuPerWall.toFixed(2)} |`),
    '',
    `(b) Peak memory, a process of its own: a dataset of ${mem.episodes} episodes × ${STEPS} steps (${mem.samples} samples, ${(bigBytes / MiB).toFixed(0)} MiB on disk), read once for the numbers, then ${quick ? 4 : 20} draws of ${BATCH} (2 draws prefetched, 16 episodes cached): peak RSS (VmHWM) ${(mem.base / MiB).toFixed(0)} MiB after start-up (the package and sharp loaded), ${(mem.loaded / MiB).toFixed(0)} MiB after reading, ${(mem.drawn / MiB).toFixed(0)} MiB after the draws on the frame pool (${(mem0.drawn / MiB).toFixed(0)} MiB with the frames on the main thread). A batch's pixels are ${(BATCH * 2 * 6 * SIZE * SIZE * 4 / MiB).toFixed(1)} MiB (float32), three batches in flight.`,
    '',
    `(c) Training (Trainer.step over the session's RLDS source: a tiny VLA-Adapter at 224 px, batch ${BATCH}, CRaFT; ${n.steps} steps after ${n.warmup} of warm-up; the frame pool at its default of ${defaultFrameThreads()} worker(s), 2 draws prefetched):`,
    '',
    '| step | model step (median) | Trainer.step (median) | wait for the batch per step: median / mean / max | samples/s of the run |',
    '|---|---:|---:|---:|---:|',
    `| the CPU model step | ${f0(runs.cpu.computeMs)} ms | ${f0(runs.cpu.stepMs)} ms | ${f1(runs.cpu.waitMedian)} / ${f1(runs.cpu.waitMean)} / ${f1(runs.cpu.waitMax)} ms | ${f1(runs.cpu.samplesPerSecond)} |`,
    `| a GPU step: the model step replaced by 0.2 s of idle | ${f0(runs.gpu.computeMs)} ms | ${f0(runs.gpu.stepMs)} ms | ${f1(runs.gpu.waitMedian)} / ${f1(runs.gpu.waitMean)} / ${f1(runs.gpu.waitMax)} ms | ${f1(runs.gpu.samplesPerSecond)} |`,
    '',
    `Needed vs had: a GPU step of 0.2 s at batch ${BATCH} needs ${f0(BATCH / 0.2)} samples/s; this ${availableParallelism()}-core machine's pipeline gives ${f1(def.perSecond)} samples/s on the default pool (${f1(Math.max(...tp.pools.map((p) => p.perSecond)))} at best), ${f1(1000 / total)} per core. ` +
      `Target (${f0(BATCH / 0.2)} samples/s): ${Math.max(...tp.pools.map((p) => p.perSecond)) >= BATCH / 0.2 ? 'met' : `not met here; at ${f1(1000 / total)} samples/s per core it takes about ${Math.ceil((BATCH / 0.2) / (1000 / total))} cores`}. ` +
      `Zero wait after warm-up on the CPU model step: ${runs.cpu.waitMedian < 1 ? 'met' : 'not met'}; with the 0.2 s step: ${runs.gpu.waitMedian < 1 ? 'met' : 'not met'}.`,
    `A batch of ${BATCH} takes the pipeline about ${f1(BATCH / def.perSecond)} s here, alone on the machine; a step shorter than that (or one that takes the same cores, as the CPU step does) waits for the difference. ` +
      'The pool moves the work off the main thread; it cannot add cores: on this 2-core machine the worker and the main thread share them with the model step.',
    '',
    'A machine shared with other sessions: the figures are what this run took, not bounds.',
  ];
  const text = lines.join('\n');
  console.log(text);
  if (args.record) recordSection('data-pipeline', text);
} finally {
  rmSync(root, { recursive: true, force: true });
}
