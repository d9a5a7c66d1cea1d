// LoRA adapters in PEFT's directory format, both ways: adapter_model.safetensors with
// tensors named as PeftModel.save_pretrained names them for a Qwen2ForCausalLM
// (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, A (r, in), B (out, r))
// and adapter_config.json with the keys PEFT writes (sorted, as it sorts them). What we
// write loads with PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), dir).
//
// Reading (--init-adapter) accepts what PEFT writes for a plain LoRA on these seven linear
// layers of every decoder layer, filling PEFT's defaults (r 8, lora_alpha 8, bias "none",
// target_modules null = Qwen2's default q_proj/v_proj); options that change the math or
// the set of adapted layers (rslora, DoRA, lora biases, rank/alpha patterns, a subset of
// layers, fan_in_fan_out, modules_to_save, regex targets, …) are refused by name. A
// non-zero lora_dropout is read with a warning: craftgrad trains without dropout.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import { encodeSafetensors, readSafetensorsFile, type SafetensorsInput } from '../../formats/safetensors.js';
import type { Tensor } from '../../formats/tensor.js';
import { argRangeError, argTypeError, describeValue } from '../../errors.js';
import { checkFiniteNumber, checkInteger } from '../../validate.js';
import { writeFileSyncedAsync } from '../../run/fsio.js';
import { publishFile } from './atomic-file.js';
import type { Qwen2Config } from './config.js';
import { floatTensor, refuseExtraTensors } from './float-tensors.js';
import { QWEN2_LINEARS, type Qwen2Linear, isQwen2Linear, linearModulePath, linearShape } from './weights.js';

export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_CONFIG_FILE = 'adapter_config.json';

/** PEFT's default targets for model_type qwen2 when target_modules is null. */
export const PEFT_QWEN2_DEFAULT_TARGETS: readonly Qwen2Linear[] = ['q_proj', 'v_proj'];

const FORMAT = 'peft adapter';

/** One adapted linear layer: W' = W + (alpha / rank)·B·A. */
export interface LoraPair {
  /** (r, in) row-major */
  a: Float32Array;
  /** (out, r) row-major */
  b: Float32Array;
}

export interface LoraAdapter {
  rank: number;
  alpha: number;
  /** Adapted linear layers, in QWEN2_LINEARS order. */
  targets: readonly Qwen2Linear[];
  /** Per decoder layer, the pair of each target. */
  layers: ReadonlyArray<Readonly<Partial<Record<Qwen2Linear, LoraPair>>>>;
}

/** The safetensors name of a LoRA factor, as PEFT saves it (adapter name stripped). */
export function loraTensorName(layer: number, linear: Qwen2Linear, factor: 'A' | 'B'): string {
  return `base_model.model.${linearModulePath(layer, linear)}.lora_${factor}.weight`;
}

/** Shapes of a target's factors: A (r, in), B (out, r). */
export function loraShapes(c: Qwen2Config, linear: Qwen2Linear, rank: number): { a: [number, number]; b: [number, number] } {
  const s = linearShape(c, linear);
  return { a: [rank, s.in], b: [s.out, rank] };
}

/** Targets in canonical order, deduplicated; throws naming `what` on an unknown name. */
export function normalizeLoraTargets(targets: readonly unknown[], what: string): Qwen2Linear[] {
  if (!Array.isArray(targets) || targets.length === 0) throw argTypeError(`${what} must be a non-empty list of ${QWEN2_LINEARS.join(', ')}`);
  for (const t of targets) {
    if (!isQwen2Linear(t)) throw argRangeError(`${what} has ${describeValue(t)}; the Qwen2 linear layers are ${QWEN2_LINEARS.join(', ')}`);
  }
  return QWEN2_LINEARS.filter((l) => targets.includes(l));
}

/** An adapter of zeros (the caller initialises A; B = 0 is LoRA's start). */
export function allocateLoraAdapter(c: Qwen2Config, options: { rank: number; alpha: number; targets: readonly Qwen2Linear[] }): LoraAdapter {
  const { rank, alpha } = options;
  checkInteger(rank, 'rank', 1);
  checkFiniteNumber(alpha, 'alpha', { min: 0, exclusive: true });
  const targets = normalizeLoraTargets(options.targets, 'targets');
  const layers = Array.from({ length: c.numLayers }, () => {
    const pairs: Partial<Record<Qwen2Linear, LoraPair>> = {};
    for (const t of targets) {
      const s = loraShapes(c, t, rank);
      pairs[t] = { a: new Float32Array(s.a[0] * s.a[1]), b: new Float32Array(s.b[0] * s.b[1]) };
    }
    return pairs;
  });
  return { rank, alpha, targets, layers };
}

/** adapter_config.json as PEFT writes it for this adapter (keys sorted, as PEFT's json.dumps sorts them). */
export function peftAdapterConfig(
  adapter: { rank: number; alpha: number; targets: readonly string[] }, baseModelNameOrPath: string | null, overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    alpha_pattern: {},
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: adapter.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: 'LORA',
    r: adapter.rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...adapter.targets],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
  // Another model's settings (e.g. VLA-Adapter's init_lora_weights "gaussian", no task_type), keys kept sorted.
  for (const [k, v] of Object.entries(overrides)) cfg[k] = v;
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function checkAdapter(c: Qwen2Config, adapter: LoraAdapter): void {
  if (adapter === null || typeof adapter !== 'object') throw argTypeError(`adapter must be a LoraAdapter, got ${describeValue(adapter)}`);
  const targets = normalizeLoraTargets(adapter.targets as unknown[], 'adapter.targets');
  checkInteger(adapter.rank, 'adapter.rank', 1);
  checkFiniteNumber(adapter.alpha, 'adapter.alpha', { min: 0, exclusive: true });
  if (!Array.isArray(adapter.layers) || adapter.layers.length !== c.numLayers) {
    throw argRangeError(`adapter.layers must have one entry per decoder layer (${c.numLayers}), got ${Array.isArray(adapter.layers) ? adapter.layers.length : describeValue(adapter.layers)}`);
  }
  adapter.layers.forEach((pairs, l) => {
    for (const t of targets) {
      const p = pairs[t];
      const s = loraShapes(c, t, adapter.rank);
      for (const [f, shape] of [['a', s.a], ['b', s.b]] as const) {
        const arr = p?.[f];
        if (!(arr instanceof Float32Array) || arr.length !== shape[0] * shape[1]) {
          throw argRangeError(`adapter.layers[${l}].${t}.${f} must be a Float32Array of ${shape[0]}×${shape[1]} = ${shape[0] * shape[1]} values, got ${arr instanceof Float32Array ? arr.length : describeValue(arr)}`);
        }
      }
    }
  });
}

/**
 * The two files of a PEFT adapter directory as bytes: adapter_model.safetensors (F32,
 * metadata {"format": "pt"} as PEFT writes) from LoRA tensors already named and shaped as
 * PEFT names them, and adapter_config.json (`overrides` replace or add config keys). Checkpoints
 * put these bytes in `adapter/`; the VLA model's writer (src/model/vla/outputs.ts) uses it too.
 */
export function encodePeftAdapter(
  lora: Record<string, { shape: readonly number[]; data: Float32Array | Tensor['data'] }>, adapter: { rank: number; alpha: number; targets: readonly string[] },
  baseModelNameOrPath: string | null, overrides: Record<string, unknown> = {},
): { weights: Uint8Array; config: Uint8Array } {
  const tensors: Record<string, SafetensorsInput> = {};
  for (const [name, t] of Object.entries(lora)) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: t.data as Float32Array };
  const json = JSON.stringify(peftAdapterConfig(adapter, baseModelNameOrPath, overrides), null, 2) + '\n';
  return { weights: encodeSafetensors(tensors, { format: 'pt' }), config: new TextEncoder().encode(json) };
}

/**
 * Writes `dir`/adapter_model.safetensors and `dir`/adapter_config.json (encodePeftAdapter),
 * each atomically (the directory is created if needed).
 */
export async function writePeftAdapter(dir: string, c: Qwen2Config, adapter: LoraAdapter, options: { baseModelNameOrPath?: string | null } = {}): Promise<void> {
  checkAdapter(c, adapter);
  const targets = normalizeLoraTargets(adapter.targets as unknown[], 'adapter.targets');
  const lora: Record<string, { shape: number[]; data: Float32Array }> = {};
  adapter.layers.forEach((pairs, l) => {
    for (const t of targets) {
      const s = loraShapes(c, t, adapter.rank);
      lora[loraTensorName(l, t, 'A')] = { shape: s.a, data: pairs[t]!.a };
      lora[loraTensorName(l, t, 'B')] = { shape: s.b, data: pairs[t]!.b };
    }
  });
  const files = encodePeftAdapter(lora, { ...adapter, targets }, options.baseModelNameOrPath ?? null);
  await mkdir(dir, { recursive: true });
  await publishFile(join(dir, PEFT_WEIGHTS_FILE), (tmp) => writeFileSyncedAsync(tmp, files.weights));
  await publishFile(join(dir, PEFT_CONFIG_FILE), (tmp) => writeFileSyncedAsync(tmp, files.config));
}

export interface ReadPeftOptions {
  /** When given, the adapter must have exactly these (else an error names the field). */
  rank?: number;
  alpha?: number;
  targets?: readonly Qwen2Linear[];
}

export interface PeftAdapterRead {
  adapter: LoraAdapter;
  /** adapter_config.json as parsed. */
  config: Record<string, unknown>;
  /** Things read but not applied (e.g. a non-zero lora_dropout), one sentence each. */
  warnings: string[];
}

/** Settings of adapter_config.json that must have their neutral value: key -> is it neutral? */
const NEUTRAL: [string, (v: unknown) => boolean, string][] = [
  ['use_rslora', (v) => v === false, 'rank-stabilised scaling (alpha/sqrt(r)) is not implemented'],
  ['use_dora', (v) => v === false, 'DoRA is not implemented'],
  ['bias', (v) => v === 'none', 'LoRA bias training is not implemented (only "none")'],
  ['lora_bias', (v) => v === false, 'LoRA B biases are not implemented'],
  ['fan_in_fan_out', (v) => v === false, 'fan_in_fan_out (Conv1D weights) does not apply to Qwen2'],
  ['modules_to_save', (v) => v === null || (Array.isArray(v) && v.length === 0), 'fully trained extra modules are not supported'],
  ['layers_to_transform', (v) => v === null || (Array.isArray(v) && v.length === 0), 'craftgrad adapts every decoder layer'],
  ['rank_pattern', (v) => v !== null && typeof v === 'object' && Object.keys(v).length === 0, 'per-module ranks are not supported'],
  ['alpha_pattern', (v) => v !== null && typeof v === 'object' && Object.keys(v).length === 0, 'per-module alphas are not supported'],
  ['exclude_modules', (v) => v === null || (Array.isArray(v) && v.length === 0), 'excluded modules are not supported'],
  ['layer_replication', (v) => v === null, 'layer replication is not supported'],
  ['target_parameters', (v) => v === null || (Array.isArray(v) && v.length === 0), 'LoRA on parameters is not supported'],
  ['trainable_token_indices', (v) => v === null, 'trainable tokens are not supported'],
  ['use_qalora', (v) => v === false, 'QALoRA is not supported'],
];

function parseAdapterConfig(raw: unknown, file: string): { rank: number; alpha: number; targets: Qwen2Linear[]; dropout: number } {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(FORMAT, detail, { file, field });
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('config', 'must be a JSON object');
  const c = raw as Record<string, unknown>;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(c, k) && c[k] !== undefined;
  if (c.peft_type !== 'LORA') fail('peft_type', `is ${JSON.stringify(c.peft_type)}; only "LORA" adapters are read`);
  for (const [key, neutral, why] of NEUTRAL) {
    if (has(key) && !neutral(c[key])) fail(key, `is ${JSON.stringify(c[key])}: ${why}`);
  }
  const rank = has('r') ? c.r : 8;
  if (typeof rank !== 'number' || !Number.isSafeInteger(rank) || rank < 1) fail('r', `must be a positive integer, got ${JSON.stringify(rank)}`);
  const alpha = has('lora_alpha') ? c.lora_alpha : 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) fail('lora_alpha', `must be a finite number > 0, got ${JSON.stringify(alpha)}`);
  const dropout = has('lora_dropout') ? c.lora_dropout : 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail('lora_dropout', `must be a number in [0, 1), got ${JSON.stringify(dropout)}`);

  let targets: Qwen2Linear[];
  const tm = has('target_modules') ? c.target_modules : null;
  if (tm === null) targets = [...PEFT_QWEN2_DEFAULT_TARGETS];
  else if (tm === 'all-linear') targets = [...QWEN2_LINEARS]; // PEFT: every linear but the output layer
  else if (typeof tm === 'string') return fail('target_modules', `is the pattern ${JSON.stringify(tm)}; craftgrad reads a list of module names (${QWEN2_LINEARS.join(', ')}) or "all-linear"`);
  else if (!Array.isArray(tm) || tm.length === 0) return fail('target_modules', `must be a non-empty list of module names, got ${JSON.stringify(tm)}`);
  else {
    for (const t of tm) {
      if (!isQwen2Linear(t)) fail('target_modules', `has ${JSON.stringify(t)}; the Qwen2 linear layers are ${QWEN2_LINEARS.join(', ')}`);
    }
    targets = QWEN2_LINEARS.filter((l) => (tm as unknown[]).includes(l));
  }
  return { rank: rank as number, alpha: alpha as number, targets, dropout: dropout as number };
}

/**
 * Reads a PEFT LoRA adapter directory for a model of config `c`: adapter_config.json
 * checked as described above, every A and B present with its shape, nothing else in
 * adapter_model.safetensors. Factors come back as float32 whatever they were stored in.
 */
export async function readPeftAdapter(dir: string, c: Qwen2Config, expect: ReadPeftOptions = {}): Promise<PeftAdapterRead> {
  const cfgPath = join(dir, PEFT_CONFIG_FILE);
  const wPath = join(dir, PEFT_WEIGHTS_FILE);
  let text: string;
  try {
    text = await readTextFile(cfgPath, FORMAT);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(FORMAT, code === 'ENOENT' ? 'is missing (a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors)' : `cannot be read (${(e as Error).message})`, { file: cfgPath });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FormatError(FORMAT, `is not valid JSON (${(e as Error).message})`, { file: cfgPath });
  }
  const { rank, alpha, targets, dropout } = parseAdapterConfig(raw, cfgPath);
  const mismatch = (field: string, got: unknown, want: unknown): never => {
    throw new FormatError(FORMAT, `is ${JSON.stringify(got)} but this run asks for ${JSON.stringify(want)}`, { file: cfgPath, field });
  };
  if (expect.rank !== undefined && expect.rank !== rank) mismatch('r', rank, expect.rank);
  if (expect.alpha !== undefined && expect.alpha !== alpha) mismatch('lora_alpha', alpha, expect.alpha);
  if (expect.targets !== undefined) {
    const want = normalizeLoraTargets(expect.targets, 'expect.targets');
    if (want.join(',') !== targets.join(',')) mismatch('target_modules', targets, want);
  }

  try {
    await stat(wPath);
  } catch {
    const bin = join(dir, 'adapter_model.bin');
    const hasBin = await stat(bin).then(() => true, () => false);
    throw new FormatError(FORMAT, `is missing${hasBin ? ' (adapter_model.bin is not read: save the adapter with safe_serialization=True)' : ''}`, { file: wPath });
  }
  const { tensors } = await readSafetensorsFile(wPath);
  const known = new Set<string>();
  const layers = Array.from({ length: c.numLayers }, (_, l) => {
    const pairs: Partial<Record<Qwen2Linear, LoraPair>> = {};
    for (const t of targets) {
      const s = loraShapes(c, t, rank);
      const an = loraTensorName(l, t, 'A'), bn = loraTensorName(l, t, 'B');
      known.add(an).add(bn);
      pairs[t] = { a: floatTensor(tensors, an, s.a, wPath, FORMAT), b: floatTensor(tensors, bn, s.b, wPath, FORMAT) };
    }
    return pairs;
  });
  refuseExtraTensors(tensors, known, wPath, FORMAT, `adapter_config.json targets ${targets.join(', ')} of ${c.numLayers} layers`);
  const warnings: string[] = [];
  if (dropout > 0) warnings.push(`${cfgPath}: lora_dropout ${dropout} is ignored (craftgrad trains LoRA without dropout)`);
  return { adapter: { rank, alpha, targets, layers }, config: raw as Record<string, unknown>, warnings };
}
