// config.json and the resume compatibility check. The hash covers only the keys that
// decide the trajectory, so a resume that changes e.g. `steps` keeps the same hash and a
// resume that changes `lr` is refused with the differing keys named.
import { createHash } from 'node:crypto';
import { version as craftgradVersion } from '../backend.js';
import { readTextFileSync } from '../formats/fileio.js';
import { replaceFileAtomic } from './fsio.js';
import { RunError } from './run-error.js';

/** Version of the run-directory layout (config.json, state.json, manifest.json). */
export const RUN_SCHEMA_VERSION = 1;

/** A fully resolved configuration: JSON-serializable, nested objects allowed. */
export type RunConfig = Record<string, unknown>;

/**
 * Keys a resume may change: how long to run, how often to log, save or validate, where to
 * write; none of them changes the numbers of a step. A key matches at any depth and in
 * any spelling (`save_every`, `saveEvery`, `save-every`, `run.saveEvery`). `steps` is
 * the exception that proves the rule: under a cosine schedule (the LR depends on the
 * total), it matters and a change is refused.
 */
export const RESUME_MUTABLE_KEYS: readonly string[] = [
  'steps', 'log_every', 'save_every', 'keep_last', 'val_every', 'val_time_limit', 'val_time_limit_ms',
  'out', 'name', 'resume', 'config', 'progress_every', 'quiet',
];

/** The contents of config.json. */
export interface ConfigFile {
  schema_version: number;
  craftgrad_version: string;
  config: RunConfig;
}

/** JSON with object keys sorted at every level: equal configs give equal bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

const norm = (k: string): string => k.toLowerCase().replace(/[-_]/g, '');

// Leaves of a config as dotted paths -> canonical JSON, so nested differences are named
// precisely ("model.hidden", not "model").
function leaves(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as object).filter(([, v]) => v !== undefined);
    if (entries.length === 0 && prefix !== '') out.set(prefix, '{}');
    for (const [k, v] of entries) leaves(v, prefix === '' ? k : `${prefix}.${k}`, out);
    return out;
  }
  out.set(prefix, canonicalJson(value));
  return out;
}

/** The leaves that matter for a resume (mutable keys dropped), by dotted path. */
function mattering(config: RunConfig, mutable: readonly string[]): Map<string, string> {
  const all = leaves(config, '', new Map());
  const cosine = [...all].some(([path, v]) => norm(path.split('.').pop()!) === 'schedule' && v === '"cosine"');
  const drop = new Set(mutable.map(norm).filter((k) => !(cosine && k === 'steps')));
  for (const path of [...all.keys()]) {
    if (path.split('.').some((part) => drop.has(norm(part)))) all.delete(path);
  }
  return all;
}

/** sha256 (hex) of the configuration's leaves that matter for a resume (mutable keys left out). */
export function configHash(config: RunConfig, mutable: readonly string[] = RESUME_MUTABLE_KEYS): string {
  const leavesSorted = [...mattering(config, mutable)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(leavesSorted)).digest('hex');
}

/** A key whose value differs between the saved and the requested configuration. */
export interface ConfigDifference {
  key: string;
  saved: string | undefined;
  requested: string | undefined;
}

/** The differing keys (dotted paths) outside `mutable`, sorted. */
export function diffConfigs(saved: RunConfig, requested: RunConfig, mutable: readonly string[] = RESUME_MUTABLE_KEYS): ConfigDifference[] {
  const a = mattering(saved, mutable);
  const b = mattering(requested, mutable);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  return keys.filter((k) => a.get(k) !== b.get(k)).map((key) => ({ key, saved: a.get(key), requested: b.get(key) }));
}

/** How a refusal names things: the CLI names config keys as its flags. */
export interface ResumeCheckNaming {
  /** The name a user knows a key by (default: the key itself). */
  keyName?: (key: string) => string;
  /** The keys listed as changeable (default: the mutable keys). */
  changeable?: readonly string[];
}

/**
 * Refuses a resume whose configuration differs in keys that matter, naming every
 * differing key with both values. `source` is the file the saved config came from.
 */
export function checkResumeConfig(
  saved: RunConfig, requested: RunConfig, source: string, mutable: readonly string[] = RESUME_MUTABLE_KEYS, naming: ResumeCheckNaming = {},
): void {
  const diffs = diffConfigs(saved, requested, mutable);
  if (diffs.length === 0) return;
  const name = naming.keyName ?? ((k: string) => k);
  const list = diffs.map((d) => `${name(d.key)} (saved ${d.saved ?? 'unset'}, requested ${d.requested ?? 'unset'})`).join(', ');
  const stepsUnderCosine = diffs.some((d) => norm(d.key.split('.').pop()!) === 'steps');
  const changeable = (naming.changeable ?? mutable).map(name).join(', ');
  throw new RunError(
    `cannot resume: the configuration differs in ${diffs.length === 1 ? 'key' : 'keys'} ${list}. ` +
      (stepsUnderCosine ? `Under a cosine schedule the learning rate follows ${name('steps')}, so it cannot change on resume. ` : '') +
      `Only ${changeable} may change on resume${stepsUnderCosine ? '' : ` (${name('steps')} not under a cosine schedule)`}; start a new run to change the others.`,
    { path: source, field: diffs.map((d) => name(d.key)).join(','), code: 'CONFIG_MISMATCH' },
  );
}

/** Writes config.json atomically. */
export function writeConfigFile(path: string, config: RunConfig): void {
  const body: ConfigFile = { schema_version: RUN_SCHEMA_VERSION, craftgrad_version: craftgradVersion, config };
  try {
    replaceFileAtomic(path, JSON.stringify(body, null, 2) + '\n');
  } catch (e) {
    throw RunError.fromFs(e, path, 'cannot write config.json');
  }
}

/** Reads config.json; errors name the path and the field. */
export function readConfigFile(path: string): ConfigFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readTextFileSync(path, 'config.json'));
  } catch (e) {
    throw new RunError(`cannot read config.json: ${(e as Error).message}`, { path, cause: e });
  }
  const c = parsed as Partial<ConfigFile> | null;
  if (c === null || typeof c !== 'object') throw new RunError('must be a JSON object', { path });
  if (c.schema_version !== RUN_SCHEMA_VERSION) {
    throw new RunError(`schema_version ${String(c.schema_version)} is not supported (this version reads ${RUN_SCHEMA_VERSION})`, { path, field: 'schema_version' });
  }
  if (c.config === null || typeof c.config !== 'object' || Array.isArray(c.config)) {
    throw new RunError('must be an object', { path, field: 'config' });
  }
  return c as ConfigFile;
}
