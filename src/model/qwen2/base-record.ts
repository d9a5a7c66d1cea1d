// What a checkpoint records about the base model it was trained on: the config craftgrad
// read and the sha256 of every weight file. A resume compares the record with the model
// it is given and refuses a different one, naming what differs.
import { type Qwen2Config, qwen2ConfigToJson } from './config.js';
import type { HfModel, HfWeightFile } from './hf-directory.js';

export interface BaseModelRecord {
  /** 'qwen2' (the only architecture so far). */
  architecture: 'qwen2';
  /** config.json fields as craftgrad understood them (transformers' spelling). */
  config: Record<string, unknown>;
  /** Weight files in name order. */
  files: HfWeightFile[];
}

export function baseModelRecord(model: Pick<HfModel, 'config' | 'files'>): BaseModelRecord {
  return { architecture: 'qwen2', config: qwen2ConfigToJson(model.config as Qwen2Config), files: model.files.map((f) => ({ ...f })) };
}

/**
 * Why `current` is not the model `recorded` describes, as one sentence, or null when they
 * are the same (same config fields, same files with the same sha256).
 */
export function baseModelMismatch(recorded: BaseModelRecord, current: BaseModelRecord): string | null {
  if (recorded.architecture !== current.architecture) return `architecture ${current.architecture} differs from the recorded ${recorded.architecture}`;
  const keys = [...new Set([...Object.keys(recorded.config), ...Object.keys(current.config)])].sort();
  for (const k of keys) {
    const a = JSON.stringify(recorded.config[k]), b = JSON.stringify(current.config[k]);
    if (a !== b) return `config.json ${k} is ${b ?? 'absent'} but the checkpoint was trained with ${a ?? 'none'}`;
  }
  const names = (r: BaseModelRecord): string => r.files.map((f) => f.file).join(', ');
  if (names(recorded) !== names(current)) return `the weight files are [${names(current)}] but the checkpoint was trained on [${names(recorded)}]`;
  for (let i = 0; i < recorded.files.length; i++) {
    const a = recorded.files[i]!, b = current.files[i]!;
    if (a.sha256 !== b.sha256) return `${b.file} has sha256 ${b.sha256} but the checkpoint was trained on ${a.sha256} (different base weights)`;
  }
  return null;
}
