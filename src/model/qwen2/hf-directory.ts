// A Hugging Face Qwen2 model directory: config.json plus model.safetensors, or the shards
// that model.safetensors.index.json lists (transformers looks for the single file first,
// and so do we). Every weight file is read once, in order, straight into preallocated
// float32 arrays (bf16/fp16 widened exactly) while its sha256 is computed, so loading the
// 0.5B model costs its ~2 GB of float32 weights plus a few MiB. Every problem is a
// FormatError naming the file and the field or tensor.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { isFloatDType } from '../../formats/float16.js';
import type { SafetensorsEntry } from '../../formats/safetensors.js';
import { type StreamOptions, streamSafetensorsFile } from '../../formats/safetensors-stream.js';
import { type Qwen2Config, parseQwen2Config } from './config.js';
import { type Qwen2Weights, allocateQwen2Weights, qwen2IgnoredTensors, qwen2TensorTargets } from './weights.js';

export const HF_CONFIG_FILE = 'config.json';
export const HF_WEIGHTS_FILE = 'model.safetensors';
export const HF_INDEX_FILE = 'model.safetensors.index.json';

const FORMAT = 'hf model';

/** One weight file as loaded: its name in the directory, size and sha256 (hex). */
export interface HfWeightFile {
  file: string;
  bytes: number;
  sha256: string;
}

export interface HfModel {
  /** The directory as given. */
  dir: string;
  config: Qwen2Config;
  /** config.json as parsed (for records and for the adapter's base_model_name_or_path). */
  rawConfig: Record<string, unknown>;
  weights: Qwen2Weights;
  /** The weight files, in name order. */
  files: HfWeightFile[];
  /** The storage dtypes of the loaded tensors, sorted (e.g. ['BF16']). */
  dtypes: string[];
}

function fail(file: string, field: string | undefined, detail: string): never {
  throw new FormatError(FORMAT, detail, { file, field });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(path, undefined, code === 'ENOENT' ? 'is missing' : `cannot be read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(path, undefined, `is not valid JSON (${(e as Error).message})`);
  }
}

async function checkDir(dir: string): Promise<void> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`dir must be a non-empty path string, got ${JSON.stringify(dir)}`);
  let ok = false;
  try {
    ok = (await stat(dir)).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) fail(dir, undefined, 'is not a directory (a Hugging Face model directory holds config.json and model.safetensors)');
}

/** Reads and checks DIR/config.json alone (no weights). */
export async function readHfConfig(dir: string): Promise<{ config: Qwen2Config; rawConfig: Record<string, unknown> }> {
  await checkDir(dir);
  const path = join(dir, HF_CONFIG_FILE);
  const raw = await readJson(path);
  const config = parseQwen2Config(raw, path);
  return { config, rawConfig: raw as Record<string, unknown> };
}

/** Which tensors each weight file must hold: file name -> tensor names, or null for "all of them" (one file). */
async function weightFiles(dir: string): Promise<Map<string, Set<string> | null>> {
  if (await isFile(join(dir, HF_WEIGHTS_FILE))) return new Map([[HF_WEIGHTS_FILE, null]]);
  const indexPath = join(dir, HF_INDEX_FILE);
  if (!(await isFile(indexPath))) {
    const bin = (await isFile(join(dir, 'pytorch_model.bin'))) ? ' (pytorch_model.bin is not read: save the model with safe_serialization=True)' : '';
    return fail(dir, undefined, `has neither ${HF_WEIGHTS_FILE} nor ${HF_INDEX_FILE}${bin}`);
  }
  const index = await readJson(indexPath);
  if (index === null || typeof index !== 'object' || Array.isArray(index)) return fail(indexPath, undefined, 'must be a JSON object');
  const map = (index as Record<string, unknown>).weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) return fail(indexPath, 'weight_map', 'must be an object of tensor name -> shard file');
  const shards = new Map<string, Set<string>>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    const field = `weight_map["${name}"]`;
    // Shards live beside the index: a path elsewhere would read files the user did not point at.
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || basename(file) !== file || file.includes('\\')) {
      fail(indexPath, field, `must be a file name in the model directory, got ${JSON.stringify(file)}`);
    }
    if (!shards.has(file)) shards.set(file, new Set());
    shards.get(file)!.add(name);
  }
  for (const [file, names] of [...shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!(await isFile(join(dir, file)))) {
      fail(indexPath, `weight_map["${[...names][0]}"]`, `points to shard ${file}, which is not in ${dir}`);
    }
  }
  return shards;
}

/**
 * Loads a Qwen2 model directory: config.json checked, every weight file read once into
 * float32 (with its sha256), every expected tensor present exactly once with the shape
 * the config implies, nothing unexpected (lm_head.weight is allowed and skipped).
 */
export async function loadHfModel(dir: string, options: Pick<StreamOptions, 'pieceBytes'> = {}): Promise<HfModel> {
  const { config, rawConfig } = await readHfConfig(dir);
  const files = await weightFiles(dir);
  const weights = allocateQwen2Weights(config);
  const targets = qwen2TensorTargets(config, weights);
  const ignored = qwen2IgnoredTensors(config);
  const indexPath = join(dir, HF_INDEX_FILE);

  // With an index, check it names every tensor we need and nothing we do not know before
  // reading gigabytes of shards.
  const sharded = files.size > 1 || [...files.values()][0] !== null;
  if (sharded) {
    const listed = new Set<string>();
    for (const names of files.values()) for (const n of names!) listed.add(n);
    for (const n of listed) {
      if (!targets.has(n) && !ignored.has(n)) fail(indexPath, `weight_map["${n}"]`, 'is not a tensor of a Qwen2ForCausalLM model (extra tensor)');
    }
    for (const n of targets.keys()) {
      if (!listed.has(n)) fail(indexPath, `weight_map["${n}"]`, 'is missing: the model needs this tensor');
    }
  }

  const dtypes = new Set<string>();
  const loaded: HfWeightFile[] = [];
  const seen = new Set<string>();
  for (const [file, expected] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const path = join(dir, file);
    const plan = (entries: SafetensorsEntry[]): Map<string, Float32Array> => {
      const dest = new Map<string, Float32Array>();
      const here = new Set<string>();
      for (const e of entries) {
        const field = `tensors["${e.name}"]`;
        here.add(e.name);
        const target = targets.get(e.name);
        const ignoredShape = ignored.get(e.name);
        if (target === undefined && ignoredShape === undefined) fail(path, field, 'is not a tensor of a Qwen2ForCausalLM model (extra tensor)');
        if (expected !== null && !expected.has(e.name)) fail(path, field, `is in this shard but ${HF_INDEX_FILE} does not list it here`);
        if (seen.has(e.name)) fail(path, field, 'appears in more than one weight file');
        seen.add(e.name);
        const shape = target?.shape ?? ignoredShape!;
        if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
          fail(path, field, `has shape [${e.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
        }
        if (!isFloatDType(e.dtype)) fail(path, `${field}.dtype`, `is ${e.dtype}; model weights must be F32, F16 or BF16`);
        if (target !== undefined) {
          dest.set(e.name, target.dest);
          dtypes.add(e.dtype);
        }
      }
      const missing = expected === null ? [...targets.keys()].filter((n) => !here.has(n)) : [...expected].filter((n) => !here.has(n));
      if (missing.length > 0) {
        const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
        fail(path, `tensors["${missing[0]}"]`, `is missing${expected !== null ? ` (${HF_INDEX_FILE} lists it in this shard)` : ''}${more}`);
      }
      return dest;
    };
    const r = await streamSafetensorsFile(path, plan, options);
    loaded.push({ file, bytes: r.bytes, sha256: r.sha256 });
  }
  return { dir, config, rawConfig, weights, files: loaded, dtypes: [...dtypes].sort() };
}
