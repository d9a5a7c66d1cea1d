// The weight files of a Hugging Face model directory, read once into float32: the one code
// path behind every model craftgrad loads (Qwen2 in qwen2/hf-directory.ts, VLA-Adapter in
// vla/directory.ts). model.safetensors, or the shards model.safetensors.index.json lists
// (transformers looks for the single file first, and so do we). Each file is streamed once,
// in name order, straight into the caller's preallocated float32 arrays (bf16/fp16 widened
// exactly) while its sha256 is computed; tensors the model has but never computes are
// shape-checked and skipped (their bytes only hashed). Every problem is a FormatError
// naming the file and the field or tensor.
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError } from '../formats/errors.js';
import { readTextFile } from '../formats/fileio.js';
import { isFloatDType } from '../formats/float16.js';
import type { SafetensorsEntry } from '../formats/safetensors.js';
import { type StreamOptions, streamSafetensorsFile } from '../formats/safetensors-stream.js';

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

/**
 * A tensor the model knows: its shape (a −1 matches any size, for a size only the file
 * says) and where it loads: an array, a function given the file's shape that returns one,
 * or null (checked, not kept).
 */
export interface HfTensorTarget {
  shape: readonly number[];
  dest: Float32Array | ((shape: readonly number[]) => Float32Array) | null;
}

export interface HfWeightsSpec {
  /** Tensors every checkpoint of the model holds. */
  required: ReadonlyMap<string, HfTensorTarget>;
  /** Tensors a checkpoint may hold or lack (e.g. a tied lm_head). */
  optional?: ReadonlyMap<string, HfTensorTarget>;
  /** What the model is, for "is not a tensor of <model>" (e.g. 'a Qwen2ForCausalLM model'). */
  model: string;
}

export interface HfWeightsLoaded {
  /** The weight files, in name order. */
  files: HfWeightFile[];
  /** The storage dtypes of the tensors loaded into destinations, sorted (e.g. ['BF16']). */
  dtypes: string[];
  /** Every tensor found (required and optional). */
  present: Set<string>;
}

export function hfFail(file: string, field: string | undefined, detail: string): never {
  throw new FormatError(FORMAT, detail, { file, field });
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * A JSON file, parsed; a missing, malformed or oversized (past JSON_FILE_MAX_BYTES, 16 MiB:
 * parsing holds ≤ ~25× that) file is a FormatError of `format` naming it.
 */
export async function readJsonFile(path: string, format: string = FORMAT): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path, format);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(format, code === 'ENOENT' ? 'is missing' : `cannot be read (${(e as Error).message})`, { file: path });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(format, `is not valid JSON (${(e as Error).message})`, { file: path });
  }
}

export async function checkModelDir(dir: string, what = 'a Hugging Face model directory holds config.json and model.safetensors'): Promise<void> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`dir must be a non-empty path string, got ${JSON.stringify(dir)}`);
  let ok = false;
  try {
    ok = (await stat(dir)).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) hfFail(dir, undefined, `is not a directory (${what})`);
}

/** Which tensors each weight file must hold: file name -> tensor names, or null for "all of them" (one file). */
export async function hfWeightFiles(dir: string): Promise<Map<string, Set<string> | null>> {
  if (await isFile(join(dir, HF_WEIGHTS_FILE))) return new Map([[HF_WEIGHTS_FILE, null]]);
  const indexPath = join(dir, HF_INDEX_FILE);
  if (!(await isFile(indexPath))) {
    const bin = (await isFile(join(dir, 'pytorch_model.bin'))) ? ' (pytorch_model.bin is not read: save the model with safe_serialization=True)' : '';
    return hfFail(dir, undefined, `has neither ${HF_WEIGHTS_FILE} nor ${HF_INDEX_FILE}${bin}`);
  }
  const index = await readJsonFile(indexPath);
  if (index === null || typeof index !== 'object' || Array.isArray(index)) return hfFail(indexPath, undefined, 'must be a JSON object');
  const map = (index as Record<string, unknown>).weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) return hfFail(indexPath, 'weight_map', 'must be an object of tensor name -> shard file');
  const shards = new Map<string, Set<string>>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    const field = `weight_map["${name}"]`;
    // Shards live beside the index: a path elsewhere would read files the user did not point at.
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || basename(file) !== file || file.includes('\\')) {
      hfFail(indexPath, field, `must be a file name in the model directory, got ${JSON.stringify(file)}`);
    }
    if (!shards.has(file)) shards.set(file, new Set());
    shards.get(file)!.add(name);
  }
  for (const [file, names] of [...shards].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!(await isFile(join(dir, file)))) {
      hfFail(indexPath, `weight_map["${[...names][0]}"]`, `points to shard ${file}, which is not in ${dir}`);
    }
  }
  return shards;
}

/**
 * Loads the weight files of `dir` into the destinations of `spec`: every required tensor
 * present exactly once with its shape, optional ones checked when present, nothing
 * unexpected, float dtypes only. With an index, the index is checked against the spec
 * before any shard is read.
 */
export async function loadHfWeights(dir: string, spec: HfWeightsSpec, options: Pick<StreamOptions, 'pieceBytes'> = {}): Promise<HfWeightsLoaded> {
  const files = await hfWeightFiles(dir);
  const optional = spec.optional ?? new Map<string, HfTensorTarget>();
  const targetOf = (n: string): HfTensorTarget | undefined => spec.required.get(n) ?? optional.get(n);
  const extra = `is not a tensor of ${spec.model} (extra tensor)`;
  const indexPath = join(dir, HF_INDEX_FILE);

  const sharded = files.size > 1 || [...files.values()][0] !== null;
  if (sharded) {
    const listed = new Set<string>();
    for (const names of files.values()) for (const n of names!) listed.add(n);
    for (const n of listed) if (targetOf(n) === undefined) hfFail(indexPath, `weight_map["${n}"]`, extra);
    for (const n of spec.required.keys()) {
      if (!listed.has(n)) hfFail(indexPath, `weight_map["${n}"]`, 'is missing: the model needs this tensor');
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
        const target = targetOf(e.name);
        if (target === undefined) hfFail(path, field, extra);
        if (expected !== null && !expected.has(e.name)) hfFail(path, field, `is in this shard but ${HF_INDEX_FILE} does not list it here`);
        if (seen.has(e.name)) hfFail(path, field, 'appears in more than one weight file');
        seen.add(e.name);
        const shape = target!.shape;
        if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i] && !(shape[i] === -1 && d >= 1))) {
          hfFail(path, field, `has shape [${e.shape.join(', ')}] but config.json implies [${shape.map((d) => (d === -1 ? 'any' : d)).join(', ')}]`);
        }
        if (!isFloatDType(e.dtype)) hfFail(path, `${field}.dtype`, `is ${e.dtype}; model weights must be F32, F16 or BF16`);
        const to = target!.dest;
        if (to !== null) {
          dest.set(e.name, typeof to === 'function' ? to(e.shape) : to);
          dtypes.add(e.dtype);
        }
      }
      const missing = expected === null ? [...spec.required.keys()].filter((n) => !here.has(n)) : [...expected].filter((n) => !here.has(n));
      if (missing.length > 0) {
        const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
        hfFail(path, `tensors["${missing[0]}"]`, `is missing${expected !== null ? ` (${HF_INDEX_FILE} lists it in this shard)` : ''}${more}`);
      }
      return dest;
    };
    const r = await streamSafetensorsFile(path, plan, options);
    loaded.push({ file, bytes: r.bytes, sha256: r.sha256 });
  }
  return { files: loaded, dtypes: [...dtypes].sort(), present: seen };
}
