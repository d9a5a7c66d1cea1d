// Reading and validating checkpoints. A checkpoint is valid when its manifest parses,
// names exactly the files present (none missing, none extra), every size and sha256
// matches, every safetensors file decodes, and state.json parses with the same step.
// Each file is read once: the bytes that are hashed are the bytes that are decoded.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { decodeSafetensors } from '../formats/safetensors.js';
import type { Tensor } from '../formats/tensor.js';
import { JSON_FILE_MAX_BYTES, readWholeFile } from '../formats/fileio.js';
import { RUN_SCHEMA_VERSION } from './config.js';
import { RunError } from './run-error.js';
import {
  CHECKPOINT_FORMAT, MANIFEST_FILE, type Manifest, parseStepDirName, REQUIRED_GROUP, STATE_FILE, type StateFile,
} from './checkpoint-layout.js';

/** What a checkpoint directory holds and whether it can be resumed from. */
export interface CheckpointCheck {
  dir: string;
  /** The step from the directory name (undefined if the name is not step-NNNNNN). */
  step: number | undefined;
  valid: boolean;
  /** Why it is not valid, one sentence each, naming the file and field. */
  problems: string[];
  manifest?: Manifest;
  state?: StateFile;
  /** Decoded tensor groups (only when valid and decoding was asked for). */
  tensors?: Record<string, Record<string, Tensor>>;
  /** Tensor shapes per group (when the file decoded), for inspect. */
  shapes?: Record<string, Record<string, { dtype: string; shape: number[] }>>;
}

/** A message quoted inside a one-line problem (JSON.parse's excerpt the input, line breaks included). */
function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A file a manifest may list: a plain name, or one folder deep ('adapter/adapter_model.safetensors':
 * a PEFT adapter directory inside the checkpoint); never the manifest, a hidden name or '..'.
 */
function isAllowedFileName(name: string): boolean {
  const parts = name.split('/');
  if (name.includes('\\') || parts.length > 2 || name === MANIFEST_FILE) return false;
  return parts.every((p) => p.length > 0 && !p.startsWith('.'));
}

/** The files of a checkpoint directory, one folder deep ('adapter/…'), as manifest names. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) {
      out.push(e.name);
      continue;
    }
    const inner = readdirSync(join(dir, e.name));
    if (inner.length === 0) out.push(e.name); // an empty folder is an extra entry too
    for (const n of inner) out.push(`${e.name}/${n}`);
  }
  return out;
}

function checkManifest(m: unknown, file: string, problems: string[]): m is Manifest {
  const before = problems.length;
  if (!isObject(m)) {
    problems.push(`${file}: must be a JSON object`);
    return false;
  }
  if (m.format !== CHECKPOINT_FORMAT) problems.push(`${file} (format): expected "${CHECKPOINT_FORMAT}", got ${JSON.stringify(m.format)}`);
  if (m.schema_version !== RUN_SCHEMA_VERSION) problems.push(`${file} (schema_version): ${JSON.stringify(m.schema_version)} is not ${RUN_SCHEMA_VERSION}`);
  if (!Number.isSafeInteger(m.step)) problems.push(`${file} (step): must be an integer, got ${JSON.stringify(m.step)}`);
  if (!isObject(m.files)) {
    problems.push(`${file} (files): must be an object of file -> {size, sha256}`);
  } else {
    for (const [name, e] of Object.entries(m.files)) {
      if (!isObject(e) || !Number.isSafeInteger(e.size) || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) {
        problems.push(`${file} (files["${name}"]): must be {size: integer, sha256: 64 hex digits}`);
      } else if (!isAllowedFileName(name)) {
        problems.push(`${file} (files["${name}"]): not an allowed file name`);
      }
    }
  }
  return problems.length === before;
}

function checkState(s: unknown, file: string, step: number, problems: string[]): s is StateFile {
  const before = problems.length;
  if (!isObject(s)) {
    problems.push(`${file}: must be a JSON object`);
    return false;
  }
  if (s.schema_version !== RUN_SCHEMA_VERSION) problems.push(`${file} (schema_version): ${JSON.stringify(s.schema_version)} is not ${RUN_SCHEMA_VERSION}`);
  if (s.step !== step) problems.push(`${file} (step): ${JSON.stringify(s.step)} does not match the manifest's step ${step}`);
  if (typeof s.config_hash !== 'string') problems.push(`${file} (config_hash): missing`);
  if (!isObject(s.config)) problems.push(`${file} (config): must be an object`);
  if (!('trainer' in s)) problems.push(`${file} (trainer): missing`);
  return problems.length === before;
}

/**
 * Validates a checkpoint directory. Never throws for a bad checkpoint: the problems are
 * returned, so a caller can report them and fall back to an older one. With `decode`,
 * a valid checkpoint comes back with its tensors (views into the file bytes); with
 * `anyName`, a directory not named step-NNNNNN (a copied checkpoint) may be valid too.
 */
export async function checkCheckpoint(dir: string, options: { decode?: boolean; anyName?: boolean } = {}): Promise<CheckpointCheck> {
  const step = parseStepDirName(basename(dir));
  const problems: string[] = [];
  const result: CheckpointCheck = { dir, step, valid: false, problems };
  if (step === undefined && options.anyName !== true) problems.push(`${dir}: not a checkpoint directory name (step-NNNNNN)`);
  let names: string[];
  try {
    names = listFiles(dir);
  } catch (e) {
    problems.push(`${dir}: cannot list (${(e as Error).message})`);
    return result;
  }
  const manifestPath = join(dir, MANIFEST_FILE);
  if (!names.includes(MANIFEST_FILE)) {
    problems.push(`${manifestPath}: missing (the checkpoint was never completed)`);
    return result;
  }
  // JSON files are capped before they are read (parsing holds up to ~25× the text).
  const manifestSize = statSync(manifestPath).size;
  if (manifestSize > JSON_FILE_MAX_BYTES) {
    problems.push(`${manifestPath} (file size): ${manifestSize} bytes, over the ${JSON_FILE_MAX_BYTES}-byte cap on JSON files`);
    return result;
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readWholeFile(manifestPath)));
  } catch (e) {
    problems.push(`${manifestPath}: not valid JSON (${oneLine((e as Error).message)})`);
    return result;
  }
  if (!checkManifest(manifest, manifestPath, problems)) return result;
  result.manifest = manifest;
  if (step !== undefined && manifest.step !== step) problems.push(`${manifestPath} (step): ${manifest.step} does not match the directory name's ${step}`);

  const listed = Object.keys(manifest.files);
  for (const n of names) if (n !== MANIFEST_FILE && !listed.includes(n)) problems.push(`${join(dir, n)}: extra file not in the manifest`);
  if (!listed.includes(STATE_FILE)) problems.push(`${manifestPath} (files): does not list ${STATE_FILE}`);
  if (!listed.includes(`${REQUIRED_GROUP}.safetensors`)) problems.push(`${manifestPath} (files): does not list ${REQUIRED_GROUP}.safetensors`);

  const tensors: Record<string, Record<string, Tensor>> = {};
  const shapes: NonNullable<CheckpointCheck['shapes']> = {};
  for (const name of listed.sort()) {
    const path = join(dir, name);
    const want = manifest.files[name]!;
    if (!names.includes(name)) {
      problems.push(`${path}: missing (listed in the manifest)`);
      continue;
    }
    // Cheap size check before reading: a huge wrong file is not hashed.
    const size = statSync(path).size;
    if (size !== want.size) {
      problems.push(`${path} (size): ${size} bytes, the manifest says ${want.size}`);
      continue;
    }
    if (name === STATE_FILE && size > JSON_FILE_MAX_BYTES) {
      problems.push(`${path} (file size): ${size} bytes, over the ${JSON_FILE_MAX_BYTES}-byte cap on JSON files`);
      continue;
    }
    const bytes = await readWholeFile(path);
    const got = createHash('sha256').update(bytes).digest('hex');
    if (got !== want.sha256) {
      problems.push(`${path} (sha256): ${got} does not match the manifest's ${want.sha256}`);
      continue;
    }
    // Top-level .safetensors files are tensor groups; files in a folder are only verified.
    if (name.endsWith('.safetensors') && !name.includes('/')) {
      try {
        const content = decodeSafetensors(bytes, { source: path });
        const group = name.slice(0, -'.safetensors'.length);
        tensors[group] = content.tensors;
        shapes[group] = Object.fromEntries(Object.entries(content.tensors).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]));
      } catch (e) {
        problems.push((e as Error).message);
      }
    } else if (name === STATE_FILE) {
      try {
        const state: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
        if (checkState(state, path, manifest.step, problems)) result.state = state;
      } catch (e) {
        problems.push(`${path}: not valid JSON (${oneLine((e as Error).message)})`);
      }
    }
  }
  result.shapes = shapes;
  result.valid = problems.length === 0;
  if (result.valid && options.decode) result.tensors = tensors;
  return result;
}

/** The checkpoint directories of `checkpointsDir` (step-NNNNNN names), newest first. */
export function listCheckpointDirs(checkpointsDir: string): { dir: string; step: number }[] {
  if (!existsSync(checkpointsDir)) return [];
  return readdirSync(checkpointsDir)
    .map((n) => ({ dir: join(checkpointsDir, n), step: parseStepDirName(n) }))
    .filter((x): x is { dir: string; step: number } => x.step !== undefined)
    .sort((a, b) => b.step - a.step);
}

/** The newest valid checkpoint (decoded) and the invalid newer ones that were passed over. */
export interface LatestCheckpoint {
  latest: CheckpointCheck | undefined;
  skipped: CheckpointCheck[];
}

/** Finds the newest valid checkpoint, checking newest first; invalid newer ones are returned as skipped. */
export async function findLatestCheckpoint(checkpointsDir: string): Promise<LatestCheckpoint> {
  const skipped: CheckpointCheck[] = [];
  for (const { dir } of listCheckpointDirs(checkpointsDir)) {
    const c = await checkCheckpoint(dir, { decode: true });
    if (c.valid) return { latest: c, skipped };
    skipped.push(c);
  }
  return { latest: undefined, skipped };
}

/** A checkpoint as {@link loadCheckpoint} returns it. */
export interface LoadedCheckpoint {
  /** The checkpoint directory read (step-NNNNNN). */
  dir: string;
  step: number;
  /** The run's resolved configuration (config.json's keys). */
  config: StateFile['config'];
  /** The trainer's state (epoch, λ, optimizer step, sampler...). */
  trainer: unknown;
  /** What the model is (state.json's `model`; undefined in checkpoints that predate it). */
  model: unknown;
  /**
   * Tensors by group (file name without .safetensors: model, anchor, optimizer, base) and
   * name, with the shapes the file stores. Checkpoints of craftgrad 0.1.0 store model and
   * optimizer tensors 1-D; AdapterPolicy.fromCheckpoint reshapes those.
   */
  tensors: Record<string, Record<string, Tensor>>;
}

/**
 * Reads a checkpoint: `dir` is a checkpoint directory (checkpoints/step-NNNNNN) or a run
 * directory (its newest valid checkpoint is read). Everything is verified first (manifest,
 * sizes, sha256, state.json). Throws a RunError naming the directory and what is wrong.
 */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`dir must be a path, got ${JSON.stringify(dir)}`);
  if (!existsSync(dir)) throw new RunError('no such checkpoint or run directory', { path: dir, code: 'NO_CHECKPOINT' });
  let check: CheckpointCheck | undefined;
  if (existsSync(join(dir, MANIFEST_FILE)) || parseStepDirName(basename(dir)) !== undefined) {
    check = await checkCheckpoint(dir, { decode: true, anyName: true });
    if (!check.valid) throw new RunError(`not a valid checkpoint:\n  ${check.problems.join('\n  ')}`, { path: dir, code: 'BAD_CHECKPOINT' });
  } else {
    const ck = join(dir, 'checkpoints');
    check = existsSync(ck) ? (await findLatestCheckpoint(ck)).latest : undefined;
    if (check === undefined) {
      throw new RunError(`neither a checkpoint (no ${MANIFEST_FILE}) nor a run directory with a valid checkpoint in checkpoints/`, { path: dir, code: 'NO_CHECKPOINT' });
    }
  }
  const state = check.state!;
  return { dir: check.dir, step: state.step, config: state.config, trainer: state.trainer, model: state.model, tensors: check.tensors! };
}
