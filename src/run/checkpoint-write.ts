// Writing a checkpoint so that a crash at any instant leaves either the previous set of
// checkpoints or the previous set plus a complete new one: files go to a temp directory
// in checkpoints/, each fsynced, manifest last, the temp directory fsynced, renamed to
// step-NNNNNN, and checkpoints/ fsynced so the rename itself is durable.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { version as craftgradVersion } from '../backend.js';
import { checkInteger } from '../validate.js';
import { encodeSafetensors, type SafetensorsInput } from '../formats/safetensors.js';
import { configHash, RESUME_MUTABLE_KEYS, RUN_SCHEMA_VERSION, type RunConfig } from './config.js';
import {
  CHECKPOINT_FORMAT, type CheckpointTensor, isGroupName, MANIFEST_FILE, type Manifest, OLD_PREFIX,
  parseStepDirName, REQUIRED_GROUP, TRASH_PREFIX, STATE_FILE, type StateFile, stepDirName, type TensorGroups, TMP_PREFIX,
} from './checkpoint-layout.js';
import { fsyncDirAsync, writeFileSyncedAsync } from './fsio.js';
import { RunError } from './run-error.js';

export interface WriteCheckpointOptions {
  /** The run's resolved configuration (stored in state.json, hashed). */
  config: RunConfig;
  /** Keys excluded from the config hash; default RESUME_MUTABLE_KEYS. */
  mutableKeys?: readonly string[];
  /** What the model is (JSON), stored as state.json's `model` for loaders; see StateFile.model. */
  model?: unknown;
  /**
   * Other files, by name: a plain name or one folder deep ('adapter/adapter_config.json').
   * Listed in the manifest and verified like the groups, but not decoded on resume.
   */
  files?: Record<string, Uint8Array>;
}

const EXTRA_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(\/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/;

function toInput(t: CheckpointTensor): SafetensorsInput {
  return t instanceof Float32Array ? { dtype: 'F32', shape: [t.length], data: t } : t;
}

/**
 * Refuses what JSON would silently change (NaN/Infinity become null, undefined vanishes,
 * typed arrays become index maps, BigInt throws): the state must come back exactly as
 * given or the resume is not exact. Errors name the path inside the state.
 */
export function checkJsonValue(v: unknown, path: string): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${path} is ${v}, which JSON cannot hold (store it as a string)`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJsonValue(x, `${path}[${i}]`));
    return;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype || (typeof v === 'object' && Object.getPrototypeOf(v) === null)) {
    for (const [k, x] of Object.entries(v as object)) checkJsonValue(x, `${path}.${k}`);
    return;
  }
  const what = typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;
  throw new TypeError(`${path} is a ${what}, which is not JSON-serializable as is (use plain objects, arrays, finite numbers, strings)`);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes `checkpointsDir/step-NNNNNN/` atomically and returns its path. An existing
 * directory of the same step is replaced (after the new one is complete). Errors are
 * RunError naming the path; a failed write removes its temp directory and leaves every
 * earlier checkpoint untouched.
 */
export async function writeCheckpoint(
  checkpointsDir: string,
  step: number,
  groups: TensorGroups,
  trainerState: unknown,
  options: WriteCheckpointOptions,
): Promise<string> {
  checkInteger(step, 'step', 0);
  if (groups === null || typeof groups !== 'object') throw new TypeError('groups must be an object of group -> {name: tensor}');
  if (!Object.prototype.hasOwnProperty.call(groups, REQUIRED_GROUP)) throw new RangeError(`groups must include '${REQUIRED_GROUP}'`);
  for (const g of Object.keys(groups)) {
    if (!isGroupName(g)) throw new RangeError(`group name '${g}' must match [a-z][a-z0-9_]* (it becomes ${g}.safetensors)`);
  }
  // Serialize the state first: a non-JSON state is the caller's bug, found before any I/O.
  const state: StateFile = {
    schema_version: RUN_SCHEMA_VERSION,
    craftgrad_version: craftgradVersion,
    step,
    config_hash: configHash(options.config, options.mutableKeys ?? RESUME_MUTABLE_KEYS),
    config: options.config,
    trainer: trainerState,
    ...(options.model === undefined ? {} : { model: options.model }),
  };
  const extra = options.files ?? {};
  for (const f of Object.keys(extra)) {
    if (!EXTRA_FILE.test(f) || f === MANIFEST_FILE || f === STATE_FILE || (!f.includes('/') && f.endsWith('.safetensors'))) {
      throw new RangeError(`extra checkpoint file name '${f}' must be a plain name or one folder deep, and not a group's .safetensors, ${STATE_FILE} or ${MANIFEST_FILE}`);
    }
    if (!(extra[f] instanceof Uint8Array)) throw new TypeError(`extra checkpoint file '${f}' must be a Uint8Array`);
  }
  checkJsonValue(trainerState, 'trainer state');
  if (options.model !== undefined) checkJsonValue(options.model, 'model description');
  const stateJson = JSON.stringify(state, null, 2) + '\n';

  const name = stepDirName(step);
  const finalDir = join(checkpointsDir, name);
  const tmpDir = join(checkpointsDir, `${TMP_PREFIX}${name}-${process.pid}-${Date.now()}`);
  let current = checkpointsDir;
  try {
    mkdirSync(checkpointsDir, { recursive: true });
    current = tmpDir;
    mkdirSync(tmpDir);
    const files: Manifest['files'] = {};
    const put = async (file: string, bytes: Uint8Array): Promise<void> => {
      current = join(tmpDir, file);
      await writeFileSyncedAsync(current, bytes);
      files[file] = { size: bytes.length, sha256: sha256(bytes) };
    };
    for (const group of Object.keys(groups).sort()) {
      const inputs: Record<string, SafetensorsInput> = {};
      for (const [k, t] of Object.entries(groups[group]!)) inputs[k] = toInput(t);
      // Encoded one group at a time: the extra memory is one group, not the checkpoint.
      await put(`${group}.safetensors`, encodeSafetensors(inputs, { format: 'pt', craftgrad_step: String(step) }));
    }
    const folders = new Set<string>();
    for (const f of Object.keys(extra).sort()) {
      const slash = f.indexOf('/');
      if (slash > 0 && !folders.has(f.slice(0, slash))) {
        folders.add(f.slice(0, slash));
        mkdirSync(join(tmpDir, f.slice(0, slash)));
      }
      await put(f, extra[f]!);
    }
    for (const folder of folders) await fsyncDirAsync(join(tmpDir, folder));
    await put(STATE_FILE, Buffer.from(stateJson, 'utf8'));
    const manifest: Manifest = { format: CHECKPOINT_FORMAT, schema_version: RUN_SCHEMA_VERSION, step, files };
    current = join(tmpDir, MANIFEST_FILE);
    await writeFileSyncedAsync(current, JSON.stringify(manifest, null, 2) + '\n');
    current = tmpDir;
    await fsyncDirAsync(tmpDir);
    current = finalDir;
    if (existsSync(finalDir)) {
      // rename() cannot replace a non-empty directory: move the old one aside first.
      // A crash between the two renames is repaired when the run is next opened.
      const old = join(checkpointsDir, `${OLD_PREFIX}${name}-${process.pid}-${Date.now()}`);
      renameSync(finalDir, old);
      renameSync(tmpDir, finalDir);
      await fsyncDirAsync(checkpointsDir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmpDir, finalDir);
    }
    current = checkpointsDir;
    await fsyncDirAsync(checkpointsDir);
    return finalDir;
  } catch (e) {
    rmSync(tmpDir, { recursive: true, force: true });
    if (e instanceof RunError || e instanceof TypeError || e instanceof RangeError) throw e;
    throw RunError.fromFs(e, current, `cannot write checkpoint ${name}`);
  }
}

/**
 * Keeps the `keepLast` newest checkpoints at or below `upToStep` and removes the older
 * ones (oldest first, each removal made durable). Checkpoints above `upToStep` are
 * not touched. Returns the removed directory names.
 */
export async function pruneCheckpoints(checkpointsDir: string, keepLast: number, upToStep: number): Promise<string[]> {
  // At least 2: one checkpoint could be lost to a crash mid-write.
  checkInteger(keepLast, 'keep_last', 2);
  const steps = readdirSync(checkpointsDir)
    .map((n) => ({ n, s: parseStepDirName(n) }))
    .filter((x): x is { n: string; s: number } => x.s !== undefined && x.s <= upToStep)
    .sort((a, b) => b.s - a.s);
  const removed: string[] = [];
  for (const { n } of steps.slice(keepLast).reverse()) {
    // Renamed away first so a half-deleted directory never looks like a checkpoint.
    const doomed = join(checkpointsDir, `${TRASH_PREFIX}${n}-${process.pid}`);
    renameSync(join(checkpointsDir, n), doomed);
    rmSync(doomed, { recursive: true, force: true });
    removed.push(n);
  }
  if (removed.length > 0) await fsyncDirAsync(checkpointsDir);
  return removed;
}
