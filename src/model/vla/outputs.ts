// What every VLA-Adapter checkpoint holds besides craftgrad's own state, in upstream's
// layout (finetune.py:520-575), and the merged model export (finetune.py:576-600):
//
//   lora_adapter/adapter_model.safetensors + adapter_config.json   PEFT 0.11.1's format
//   action_head--<step>_checkpoint.pt, proprio_projector--<step>_checkpoint.pt
//                                                                   DDP keys (module.…), fp32
//   action_queries.safetensors                                      action_queries.weight (Q × D)
//   dataset_statistics.json                                         verbatim, or a placeholder
//
// The adapter holds every LoRA module PEFT 0.11.1's target_modules="all-linear" creates on
// OpenVLAForActionPrediction (docs/VLA-ADAPTER.md "What trains"): the trained ones (the
// trainable tensors whose names contain `.lora_`; the patch embeds' as PEFT's Conv2d
// shapes (r,3,p,p) and (D,r,1,1)) and the never-trained ones (each tower's last block,
// SigLIP's attn_pool q/kv/proj/mlp.fc1/mlp.fc2, lm_head) at their initial values: A drawn
// from the run's seed as PEFT's "gaussian" init (std 1/r), B = 0, the same every checkpoint.
import { mkdir, rename, rm, stat, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Rng } from '../../data/rng.js';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import { encodeSafetensors, readSafetensorsFile, writeSafetensorsFile, type SafetensorsInput } from '../../formats/safetensors.js';
import { widenToF32 } from '../../formats/float16.js';
import type { Tensor } from '../../formats/tensor.js';
import { fsyncDirAsync, writeFileSyncedAsync } from '../../run/fsio.js';
import { HF_CONFIG_FILE, HF_INDEX_FILE, HF_WEIGHTS_FILE, hfWeightFiles, isFile } from '../hf-weights.js';
import { publishFile } from '../qwen2/atomic-file.js';
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, encodePeftAdapter } from '../qwen2/peft-adapter.js';
import { QWEN2_LINEARS, linearModulePath, linearShape } from '../qwen2/weights.js';
import type { VlaModelConfig } from './config.js';
import { DATASET_STATISTICS_FILE, type DatasetStatistics } from './directory.js';
import { type F32Tensor, f32ToDType } from './float.js';
import { DDP_PREFIX, type HeadShape, actionHeadStateDict, proprioStateDict, ACTION_HEAD_PREFIX, PROPRIO_PREFIX } from './head-files.js';
import type { TorchPtIo } from './torch-pt-io.js';
import { ACTION_QUERIES, towerPrefix } from './weights.js';

export const LORA_ADAPTER_DIR = 'lora_adapter';
export const ACTION_QUERIES_FILE = 'action_queries.safetensors';

const FORMAT = 'vla outputs';

/** One LoRA module PEFT creates: its module path, (out, in) of its weight, and whether craftgrad trains it. */
export interface VlaLoraModule {
  /** e.g. vision_backbone.featurizer.blocks.0.attn.qkv (no base_model.model. prefix). */
  module: string;
  out: number;
  in: number;
  /** The patch embed's Conv2d (kernel p): A is (r,3,p,p) and B (out,r,1,1) in PEFT's file. */
  conv: { patch: number } | null;
  trained: boolean;
}

const VIT_LINEARS = ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2'] as const;

/** Every LoRA module of the model, trained ones in vla_desc.cc's vlaTrainable order, then the untrained ones. */
export function vlaLoraModules(c: VlaModelConfig): VlaLoraModule[] {
  const trained: VlaLoraModule[] = [], untrained: VlaLoraModule[] = [];
  for (const k of [0, 1] as const) {
    const t = c.towers[k], p = towerPrefix(k), D = t.embedDim, M = t.mlpHidden;
    const shapes: Record<(typeof VIT_LINEARS)[number], [number, number]> = {
      'attn.qkv': [3 * D, D], 'attn.proj': [D, D], 'mlp.fc1': [M, D], 'mlp.fc2': [D, M],
    };
    trained.push({ module: `${p}.patch_embed.proj`, out: D, in: 3 * t.patchSize * t.patchSize, conv: { patch: t.patchSize }, trained: true });
    for (let b = 0; b < t.depth; b++) {
      for (const l of VIT_LINEARS) {
        const m = { module: `${p}.blocks.${b}.${l}`, out: shapes[l][0], in: shapes[l][1], conv: null, trained: b < t.depth - 1 };
        (m.trained ? trained : untrained).push(m);
      }
    }
    if (t.attnPool) {
      const pool: [string, number, number][] = [['q', D, D], ['kv', 2 * D, D], ['proj', D, D], ['mlp.fc1', M, D], ['mlp.fc2', D, M]];
      for (const [n, out, inp] of pool) untrained.push({ module: `${p}.attn_pool.${n}`, out, in: inp, conv: null, trained: false });
    }
  }
  const Dv = c.towers[0].embedDim + c.towers[1].embedDim, H = c.projectorHidden, D = c.text.hiddenSize;
  trained.push({ module: 'projector.fc1', out: H, in: Dv, conv: null, trained: true });
  trained.push({ module: 'projector.fc2', out: D, in: H, conv: null, trained: true });
  trained.push({ module: 'projector.fc3', out: D, in: D, conv: null, trained: true });
  for (let l = 0; l < c.text.numLayers; l++) {
    for (const lin of QWEN2_LINEARS) {
      const s = linearShape(c.text, lin);
      trained.push({ module: `language_model.${linearModulePath(l, lin)}`, out: s.out, in: s.in, conv: null, trained: true });
    }
  }
  untrained.push({ module: 'language_model.lm_head', out: c.text.vocabSize, in: D, conv: null, trained: false });
  return [...trained, ...untrained];
}

/** A LoRA factor's tensor name as PEFT saves it. */
export function vlaLoraName(module: string, factor: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${factor}.weight`;
}

/** target_modules as PEFT 0.11.1 resolves "all-linear" here: the linears' base names (sorted). */
export function vlaPeftTargetModules(c: VlaModelConfig): string[] {
  const names = new Set<string>();
  for (const m of vlaLoraModules(c)) if (m.conv === null) names.add(m.module.slice(m.module.lastIndexOf('.') + 1));
  return [...names].sort();
}

/**
 * The never-trained modules' factors at their initial values: A ~ N(0, (1/r)²) (PEFT's
 * "gaussian"), drawn in vlaLoraModules order from `seed`, B = 0. Same seed, same values.
 */
export function initUntrainedLora(c: VlaModelConfig, rank: number, seed: number): Map<string, F32Tensor> {
  checkRank(rank);
  const rng = new Rng([0x564c4100 >>> 0, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, 0x4c6f5241]);
  const out = new Map<string, F32Tensor>();
  for (const m of vlaLoraModules(c)) {
    if (m.trained) continue;
    const a = new Float32Array(rank * m.in);
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() / rank;
    out.set(vlaLoraName(m.module, 'A'), { shape: [rank, m.in], data: a });
    out.set(vlaLoraName(m.module, 'B'), { shape: [m.out, rank], data: new Float32Array(m.out * rank) });
  }
  return out;
}

function checkRank(rank: number): void {
  if (!Number.isSafeInteger(rank) || rank < 1) throw new RangeError(`rank must be a positive integer, got ${rank}`);
}

/** A trained tensor by its vla_desc name, checked to have `size` values. */
type Trained = ReadonlyMap<string, Float32Array | F32Tensor>;

function trainedData(trained: Trained, name: string, size: number, what: string): Float32Array {
  const v = trained.get(name);
  const data = v instanceof Float32Array ? v : v?.data;
  if (!(data instanceof Float32Array)) throw new RangeError(`${what}: the trained tensors lack ${name}`);
  if (data.length !== size) throw new RangeError(`${what}: ${name} has ${data.length} values, ${size} expected`);
  return data;
}

export interface VlaAdapterOptions {
  config: VlaModelConfig;
  rank: number;
  alpha: number;
  /** The trainable tensors by vla_desc name (those with `.lora_` are read). */
  trained: Trained;
  /** initUntrainedLora(config, rank, seed). */
  untrained: ReadonlyMap<string, F32Tensor>;
  /** adapter_config.json's base_model_name_or_path: the model directory. */
  baseModelNameOrPath: string | null;
}

/** The adapter's tensors as PEFT names and shapes them, and its config overrides. */
export function vlaPeftTensors(o: VlaAdapterOptions): Record<string, { shape: number[]; data: Float32Array }> {
  checkRank(o.rank);
  const r = o.rank;
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const m of vlaLoraModules(o.config)) {
    const an = vlaLoraName(m.module, 'A'), bn = vlaLoraName(m.module, 'B');
    if (m.trained) {
      const a = trainedData(o.trained, an, r * m.in, 'writeVlaLoraAdapter');
      const b = trainedData(o.trained, bn, m.out * r, 'writeVlaLoraAdapter');
      const p = m.conv?.patch;
      out[an] = { shape: p !== undefined ? [r, 3, p, p] : [r, m.in], data: a };
      out[bn] = { shape: p !== undefined ? [m.out, r, 1, 1] : [m.out, r], data: b };
    } else {
      const a = o.untrained.get(an), b = o.untrained.get(bn);
      if (a === undefined || b === undefined || a.data.length !== r * m.in || b.data.length !== m.out * r) {
        throw new RangeError(`writeVlaLoraAdapter: untrained lacks ${an} / ${bn} of rank ${r} (use initUntrainedLora)`);
      }
      out[an] = { shape: [r, m.in], data: a.data };
      out[bn] = { shape: [m.out, r], data: b.data };
    }
  }
  return out;
}

/** Writes `dir`/adapter_model.safetensors and adapter_config.json (each atomically). */
export async function writeVlaLoraAdapter(dir: string, o: VlaAdapterOptions): Promise<void> {
  const files = encodePeftAdapter(vlaPeftTensors(o), { rank: o.rank, alpha: o.alpha, targets: vlaPeftTargetModules(o.config) }, o.baseModelNameOrPath, {
    init_lora_weights: 'gaussian', task_type: null,
  });
  await mkdir(dir, { recursive: true });
  await publishFile(join(dir, PEFT_WEIGHTS_FILE), (tmp) => writeFileSyncedAsync(tmp, files.weights));
  await publishFile(join(dir, PEFT_CONFIG_FILE), (tmp) => writeFileSyncedAsync(tmp, files.config));
}

export interface VlaHeadState extends HeadShape {
  proprioDim: number;
  /** proprio_projector.* and action_head.model.* by vla_desc name. */
  trained: Trained;
  /** action_head.model.mlp_resnet_blocks.i.film_gen.0.{weight,bias} (from the files read, or initFilmGen). */
  filmGen: ReadonlyMap<string, F32Tensor>;
}

/**
 * film_gen for a head that starts fresh, as nn.Linear(D, 2D) initialises it (weight and
 * bias ~ U(±1/√D)), from `seed`. Never read by the model; kept so the file has upstream's keys.
 */
export function initFilmGen(hiddenSize: number, headBlocks: number, seed: number): Map<string, F32Tensor> {
  const rng = new Rng([0x46694c4d, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, 0x67656e00]);
  const bound = 1 / Math.sqrt(hiddenSize);
  const out = new Map<string, F32Tensor>();
  for (let b = 0; b < headBlocks; b++) {
    const p = `${ACTION_HEAD_PREFIX}model.mlp_resnet_blocks.${b}.film_gen.0.`;
    for (const [n, shape] of [['weight', [2 * hiddenSize, hiddenSize]], ['bias', [2 * hiddenSize]]] as const) {
      const data = new Float32Array(shape.reduce((x: number, y: number) => x * y, 1));
      for (let i = 0; i < data.length; i++) data[i] = rng.range(-bound, bound);
      out.set(p + n, { shape: [...shape], data });
    }
  }
  return out;
}

/** The two state dicts as upstream's DDP-wrapped save writes them (keys `module.…`, fp32), in state_dict() order. */
export function vlaHeadStateDicts(s: VlaHeadState): { head: [string, Tensor][]; proprio: [string, Tensor][] | null } {
  const head: [string, Tensor][] = [];
  for (const [k, shape] of actionHeadStateDict(s)) {
    const name = ACTION_HEAD_PREFIX + k, size = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/\.film_gen\./.test(k)) {
      const f = s.filmGen.get(name);
      if (f === undefined || f.data.length !== size) throw new RangeError(`vlaHeadStateDicts: filmGen lacks ${name} (${size} values; use the files read or initFilmGen)`);
      data = f.data;
    } else {
      data = trainedData(s.trained, name, size, 'vlaHeadStateDicts');
    }
    head.push([DDP_PREFIX + k, { dtype: 'F32', shape: [...shape], data }]);
  }
  if (s.proprioDim === 0) return { head, proprio: null };
  const proprio: [string, Tensor][] = proprioStateDict(s.hiddenSize, s.proprioDim).map(([k, shape]) => [
    DDP_PREFIX + k, { dtype: 'F32', shape: [...shape], data: trainedData(s.trained, PROPRIO_PREFIX + k, shape.reduce((a, b) => a * b, 1), 'vlaHeadStateDicts') },
  ]);
  return { head, proprio };
}

export function actionHeadFileName(step: string | number): string {
  return `action_head--${step}_checkpoint.pt`;
}
export function proprioFileName(step: string | number): string {
  return `proprio_projector--${step}_checkpoint.pt`;
}

/** Writes the head (and proprio) .pt files of `step` into `dir` with `io` (atomic writes). */
export async function writeVlaHeadFiles(dir: string, step: string | number, s: VlaHeadState, io: TorchPtIo): Promise<string[]> {
  if (!/^(\d+|latest)$/.test(String(step))) throw new RangeError(`step must be a non-negative integer or 'latest', got ${JSON.stringify(step)}`);
  const { head, proprio } = vlaHeadStateDicts(s);
  await mkdir(dir, { recursive: true });
  const written = [join(dir, actionHeadFileName(step))];
  await io.writeTorchPtFile(written[0]!, head);
  if (proprio !== null) {
    written.push(join(dir, proprioFileName(step)));
    await io.writeTorchPtFile(written[1]!, proprio);
  }
  return written;
}

/** Writes `dir`/action_queries.safetensors: action_queries.weight (Q × D), F32. */
export async function writeActionQueries(dir: string, queries: Float32Array, hiddenSize: number): Promise<void> {
  if (!(queries instanceof Float32Array) || queries.length === 0 || queries.length % hiddenSize !== 0) {
    throw new RangeError(`action queries must be a Float32Array of Q × ${hiddenSize} values, got ${queries?.length}`);
  }
  const bytes = encodeSafetensors({ [ACTION_QUERIES]: { dtype: 'F32', shape: [queries.length / hiddenSize, hiddenSize], data: queries } }, { format: 'pt' });
  await mkdir(dir, { recursive: true });
  await publishFile(join(dir, ACTION_QUERIES_FILE), (tmp) => writeFileSyncedAsync(tmp, bytes));
}

/**
 * What dataset_statistics.json holds when the training data came without statistics: no
 * dataset entry, so upstream's eval (which unnormalises actions with
 * norm_stats[unnorm_key]) fails loudly instead of using made-up numbers.
 */
export const DATASET_STATISTICS_PLACEHOLDER = Object.freeze({
  __craftgrad_placeholder__: 'The training data had no dataset statistics (action/proprio q01/q99, mean, std, …); '
    + 'add the dataset\'s entry here before evaluating with upstream\'s scripts, which unnormalise actions with it.',
});

/** Writes `dir`/dataset_statistics.json: the statistics read (byte for byte), or the placeholder. */
export async function writeDatasetStatistics(dir: string, stats: DatasetStatistics | null): Promise<void> {
  const text = stats !== null ? stats.text : JSON.stringify(DATASET_STATISTICS_PLACEHOLDER, null, 2) + '\n';
  await mkdir(dir, { recursive: true });
  await publishFile(join(dir, DATASET_STATISTICS_FILE), (tmp) => writeFileSyncedAsync(tmp, text));
}

export interface VlaCheckpointOutputs {
  config: VlaModelConfig;
  step: string | number;
  rank: number;
  alpha: number;
  /** Every trainable tensor by vla_desc name (LoRA factors, action_queries.weight, proprio, head). */
  trained: Trained;
  untrained: ReadonlyMap<string, F32Tensor>;
  head: Omit<VlaHeadState, 'trained'>;
  datasetStatistics: DatasetStatistics | null;
  baseModelNameOrPath: string | null;
  torchPt: TorchPtIo;
}

/** Writes every upstream file of a checkpoint into `dir` (each file atomically). */
export async function writeVlaCheckpointOutputs(dir: string, o: VlaCheckpointOutputs): Promise<void> {
  await writeVlaLoraAdapter(join(dir, LORA_ADAPTER_DIR), o);
  await writeVlaHeadFiles(dir, o.step, { ...o.head, trained: o.trained }, o.torchPt);
  const q = o.trained.get(ACTION_QUERIES);
  if (q === undefined) throw new RangeError(`writeVlaCheckpointOutputs: the trained tensors lack ${ACTION_QUERIES}`);
  await writeActionQueries(dir, q instanceof Float32Array ? q : q.data, o.config.text.hiddenSize);
  await writeDatasetStatistics(dir, o.datasetStatistics);
}

// ---------------------------------------------------------------------------------------
// The merged model.

/** Small files of an HF VLA directory copied into a merged export when present (config.json always). */
export const MERGED_AUX_FILES = [
  'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json',
  'added_tokens.json', 'vocab.json', 'merges.txt', 'generation_config.json', 'configuration_prismatic.py',
  'modeling_prismatic.py', 'processing_prismatic.py',
] as const;

export interface MergedExportOptions {
  /** The HF VLA directory trained on (its weights are folded and copied). */
  baseDir: string;
  config: VlaModelConfig;
  rank: number;
  alpha: number;
  /** Every trainable tensor by vla_desc name. */
  trained: Trained;
  step: string | number;
  head: Omit<VlaHeadState, 'trained'>;
  datasetStatistics: DatasetStatistics | null;
  torchPt: TorchPtIo;
}

/** out += s·B·A for B (out × r), A (r × in), in float32 (then rounded once to the stored dtype). */
function addLowRank(w: Float32Array, b: Float32Array, a: Float32Array, outN: number, inN: number, r: number, s: number): void {
  const row = new Float64Array(inN);
  for (let o = 0; o < outN; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]!;
      if (bk === 0) continue;
      const ak = k * inN;
      for (let i = 0; i < inN; i++) row[i]! += bk * a[ak + i]!;
    }
    const wo = o * inN;
    for (let i = 0; i < inN; i++) w[wo + i] = w[wo + i]! + s * row[i]!;
  }
}

function toF32(t: Tensor): Float32Array {
  const out = new Float32Array(t.data.length);
  widenToF32(t.dtype as 'F32' | 'F16' | 'BF16', t.data as Float32Array | Uint16Array, out);
  return out;
}

/**
 * Writes a merged model directory `outDir` (what AutoModelForVision2Seq.from_pretrained and
 * upstream's eval load): config.json and MERGED_AUX_FILES copied from the base,
 * the base's weight files (same names, same shards and index) with every trained LoRA
 * folded in (W + (alpha/r)·B·A in float32, rounded once to the tensor's stored dtype; the
 * patch embed's Conv2d LoRA folded into the (D,3,p,p) conv weight), action_queries.weight
 * replaced (added when the base lacks it), the head/proprio .pt files and
 * dataset_statistics.json. The never-trained LoRA modules have B = 0 and fold to nothing.
 * Everything is written into a sibling temporary directory first, then renamed to
 * `outDir` (an existing `outDir` is moved aside only then and removed after).
 */
export async function exportMergedVla(outDir: string, o: MergedExportOptions): Promise<void> {
  checkRank(o.rank);
  const scale = o.alpha / o.rank;
  const folds = new Map<string, { b: Float32Array; a: Float32Array; out: number; in: number }>();
  for (const m of vlaLoraModules(o.config)) {
    if (!m.trained) continue;
    const a = trainedData(o.trained, vlaLoraName(m.module, 'A'), o.rank * m.in, 'exportMergedVla');
    const b = trainedData(o.trained, vlaLoraName(m.module, 'B'), m.out * o.rank, 'exportMergedVla');
    folds.set(`${m.module}.weight`, { a, b, out: m.out, in: m.in });
  }
  const qv = o.trained.get(ACTION_QUERIES);
  const queries = qv instanceof Float32Array ? qv : qv?.data;
  const D = o.config.text.hiddenSize;
  if (!(queries instanceof Float32Array) || queries.length === 0 || queries.length % D !== 0) {
    throw new RangeError(`exportMergedVla: the trained tensors lack ${ACTION_QUERIES} (Q × ${D} values)`);
  }

  const tmp = `${outDir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await copyFile(join(o.baseDir, HF_CONFIG_FILE), join(tmp, HF_CONFIG_FILE));
    for (const f of MERGED_AUX_FILES) if (await isFile(join(o.baseDir, f))) await copyFile(join(o.baseDir, f), join(tmp, f));

    const files = await hfWeightFiles(o.baseDir);
    const names = [...files.keys()].sort();
    const folded = new Set<string>();
    let hasQueries = false;
    for (const [i, file] of names.entries()) {
      const path = join(o.baseDir, file);
      const { tensors, metadata } = await readSafetensorsFile(path);
      const out: Record<string, SafetensorsInput> = {};
      for (const [name, t] of Object.entries(tensors)) {
        const f = folds.get(name);
        if (f !== undefined) {
          const w = toF32(t);
          if (w.length !== f.out * f.in) throw new FormatError(FORMAT, `has ${w.length} values but the LoRA module needs ${f.out}×${f.in}`, { file: path, field: `tensors["${name}"]` });
          addLowRank(w, f.b, f.a, f.out, f.in, o.rank, scale);
          out[name] = { dtype: t.dtype, shape: [...t.shape], data: f32ToDType(w, t.dtype) };
          folded.add(name);
        } else if (name === ACTION_QUERIES) {
          if (t.data.length !== queries.length) throw new FormatError(FORMAT, `has shape [${t.shape.join(', ')}] but the trained queries have ${queries.length} values`, { file: path, field: `tensors["${name}"]` });
          out[name] = { dtype: t.dtype, shape: [...t.shape], data: f32ToDType(queries, t.dtype) };
          hasQueries = true;
        } else {
          out[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data };
        }
      }
      if (!hasQueries && i === names.length - 1) out[ACTION_QUERIES] = { dtype: 'F32', shape: [queries.length / D, D], data: queries };
      await writeSafetensorsFile(join(tmp, file), out, metadata ?? { format: 'pt' });
    }
    for (const name of folds.keys()) {
      if (!folded.has(name)) throw new FormatError(FORMAT, `lacks ${name}, which the adapter's LoRA folds into`, { file: o.baseDir });
    }
    if (names.length > 1 || names[0] !== HF_WEIGHTS_FILE) {
      const index = JSON.parse(await readTextFile(join(o.baseDir, HF_INDEX_FILE), FORMAT)) as { weight_map: Record<string, string> };
      if (!hasQueries) index.weight_map[ACTION_QUERIES] = names[names.length - 1]!;
      await writeFileSyncedAsync(join(tmp, HF_INDEX_FILE), JSON.stringify(index, null, 2) + '\n');
    }
    await writeVlaHeadFiles(tmp, o.step, { ...o.head, trained: o.trained }, o.torchPt);
    await writeDatasetStatistics(tmp, o.datasetStatistics);
    await fsyncDirAsync(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const exists = await stat(outDir).then(() => true, () => false);
  const old = `${outDir}.old-${process.pid}`;
  if (exists) await rename(outDir, old);
  await rename(tmp, outDir);
  await fsyncDirAsync(dirname(outDir));
  if (exists) await rm(old, { recursive: true, force: true });
}
