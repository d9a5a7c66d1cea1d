// Names and file formats of a checkpoint directory (ARCHITECTURE.md §6):
//   checkpoints/step-000200/{model,anchor,optimizer,base}.safetensors, state.json, manifest.json
// manifest.json is written last and lists every other file with its size and sha256: a
// directory without a valid manifest is not a checkpoint.
import type { SafetensorsInput } from '../formats/safetensors.js';
import type { RunConfig } from './config.js';

export const MANIFEST_FILE = 'manifest.json';
export const STATE_FILE = 'state.json';
/** The tensor group every checkpoint has; `anchor` and `optimizer` are the usual others. */
export const REQUIRED_GROUP = 'model';
export const CHECKPOINT_FORMAT = 'craftgrad.checkpoint';

/** Prefixes of work directories inside checkpoints/ that are never checkpoints. */
export const TMP_PREFIX = '.tmp-';
export const OLD_PREFIX = '.old-';
export const INVALID_PREFIX = '.invalid-';
export const TRASH_PREFIX = '.trash-';

const STEP_DIR = /^step-(\d{6,})$/;
const GROUP_NAME = /^[a-z][a-z0-9_]*$/;

/** 'step-000200' for 200 (at least six digits, so names sort like steps up to 999999). */
export function stepDirName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** The step of a checkpoint directory name, or undefined when it is not one. */
export function parseStepDirName(name: string): number | undefined {
  const m = STEP_DIR.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Whether a tensor group name is allowed (it becomes `<group>.safetensors`). */
export function isGroupName(name: string): boolean {
  return GROUP_NAME.test(name);
}

/** A tensor to save: a safetensors input (with its real shape), or a bare Float32Array saved 1-D. */
export type CheckpointTensor = SafetensorsInput | Float32Array;

/**
 * Named tensor groups, one safetensors file each: `model` (trainable parameters, required),
 * `anchor` (the anchor weights), `optimizer` (AdamW m and v), `base` (the frozen base
 * weights), or any other lowercase name.
 */
export type TensorGroups = Record<string, Record<string, CheckpointTensor>>;

/** One file's entry in manifest.json. */
export interface ManifestEntry {
  size: number;
  sha256: string;
}

/** manifest.json. */
export interface Manifest {
  format: typeof CHECKPOINT_FORMAT;
  schema_version: number;
  step: number;
  /** Every file of the checkpoint except manifest.json itself. */
  files: Record<string, ManifestEntry>;
}

/** state.json: the run layer's fields plus the trainer's opaque state. */
export interface StateFile {
  schema_version: number;
  craftgrad_version: string;
  step: number;
  config_hash: string;
  /** The resolved configuration (so a refused resume can name the differing keys). */
  config: RunConfig;
  /**
   * The trainer's state, JSON-serializable and opaque to this layer (epoch, sampler
   * position, RNG state, λ, meters...). `inspect` shows `epoch` and `lambda` when present.
   */
  trainer: unknown;
  /**
   * What the model is, for loaders (absent in checkpoints of craftgrad 0.1.0 and for
   * programs that give none): for the built-in model, its resolved config and where its
   * frozen base came from (AdapterPolicy.describe()).
   */
  model?: unknown;
}
