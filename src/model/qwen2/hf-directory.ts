// A Hugging Face Qwen2 model directory: config.json plus model.safetensors, or the shards
// that model.safetensors.index.json lists (transformers looks for the single file first,
// and so do we), read by the loader every model shares (../hf-weights.ts): every weight file
// is read once, in order, straight into preallocated
// float32 arrays (bf16/fp16 widened exactly) while its sha256 is computed, so loading the
// 0.5B model costs its ~2 GB of float32 weights plus a few MiB. Every problem is a
// FormatError naming the file and the field or tensor.
import { join } from 'node:path';
import type { StreamOptions } from '../../formats/safetensors-stream.js';
import {
  HF_CONFIG_FILE, type HfWeightFile, type HfTensorTarget, checkModelDir, loadHfWeights, readJsonFile,
} from '../hf-weights.js';
import { type Qwen2Config, parseQwen2Config } from './config.js';
import { type Qwen2Weights, allocateQwen2Weights, qwen2IgnoredTensors, qwen2TensorTargets } from './weights.js';

export { HF_CONFIG_FILE, HF_WEIGHTS_FILE, HF_INDEX_FILE, type HfWeightFile } from '../hf-weights.js';

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

/** Reads and checks DIR/config.json alone (no weights). */
export async function readHfConfig(dir: string): Promise<{ config: Qwen2Config; rawConfig: Record<string, unknown> }> {
  await checkModelDir(dir);
  const path = join(dir, HF_CONFIG_FILE);
  const raw = await readJsonFile(path);
  const config = parseQwen2Config(raw, path);
  return { config, rawConfig: raw as Record<string, unknown> };
}

/**
 * Loads a Qwen2 model directory: config.json checked, every weight file read once into
 * float32 (with its sha256), every expected tensor present exactly once with the shape
 * the config implies, nothing unexpected (lm_head.weight is allowed and skipped).
 */
export async function loadHfModel(dir: string, options: Pick<StreamOptions, 'pieceBytes'> = {}): Promise<HfModel> {
  const { config, rawConfig } = await readHfConfig(dir);
  const weights = allocateQwen2Weights(config);
  const required = new Map<string, HfTensorTarget>();
  for (const [name, t] of qwen2TensorTargets(config, weights)) required.set(name, { shape: t.shape, dest: t.dest });
  const optional = new Map<string, HfTensorTarget>();
  for (const [name, shape] of qwen2IgnoredTensors(config)) optional.set(name, { shape, dest: null });
  const r = await loadHfWeights(dir, { required, optional, model: 'a Qwen2ForCausalLM model' }, options);
  return { dir, config, rawConfig, weights, files: r.files, dtypes: r.dtypes };
}
