// What a checkpoint says about the built-in model, and its tensors as the model takes them.
// state.json's `model` field describes the model (resolved config, where the frozen base
// came from); base.safetensors holds the frozen base itself, so a checkpoint is enough to
// rebuild the model. Checkpoints written before either existed are still read: the model
// config then comes from the run config, the base from its seed or file, and 1-D tensors
// (how model and optimizer tensors used to be stored) take their layout's shape.
import { FormatError } from '../formats/errors.js';
import type { Tensor } from '../formats/tensor.js';
import { resolveModelConfig, type AdapterPolicyConfig } from './config.js';
import type { TensorSpec } from './policy-types.js';

/**
 * Where a model's frozen base weights came from: made from a seed (rebuilt exactly by
 * `AdapterPolicy.create(config, { seed })`), read from a safetensors file (its absolute
 * path and sha256 when it was read), or given as tensors in code.
 */
export type BaseWeightsOrigin =
  | { kind: 'seeded'; seed: number }
  | { kind: 'file'; path: string; sha256: string }
  | { kind: 'tensors' };

/** state.json's `model` field for the built-in model. */
export interface ModelDescription {
  kind: 'adapter_policy';
  /** The resolved configuration (every field, camelCase as in AdapterPolicyConfig). */
  config: AdapterPolicyConfig;
  base: BaseWeightsOrigin;
}

/** The run-config keys (snake_case, as config.json spells them) that shape the model. */
export interface RunModelKeys {
  tokens: number; width: number; blocks: number; rank: number; alpha: number;
  pooling: AdapterPolicyConfig['pooling']; anchor_type: AdapterPolicyConfig['anchorType'];
  head_width: number; chunk: number; action_dims: number; bridge_block: number | null;
}

/** The model configuration a run config describes (the mapping `craftgrad train` uses). */
export function modelConfigFromRunConfig(c: RunModelKeys): Partial<AdapterPolicyConfig> {
  return {
    tokens: c.tokens, width: c.width, blocks: c.blocks, rank: c.rank, alpha: c.alpha, pooling: c.pooling,
    anchorType: c.anchor_type, headWidth: c.head_width, chunk: c.chunk, actionDims: c.action_dims,
    ...(c.bridge_block === null || c.bridge_block === undefined ? {} : { bridgeBlock: c.bridge_block }),
  };
}

/**
 * The model description of a checkpoint's state.json: its `model` field, or for a
 * checkpoint written before that field existed, one derived from the run config
 * (seed and base_weights). Errors name the file and field.
 */
export function checkpointModelDescription(state: { model?: unknown; config: Record<string, unknown> }, file: string): ModelDescription {
  const m = state.model as Partial<ModelDescription> | undefined;
  try {
    if (m !== undefined) {
      if (m === null || typeof m !== 'object' || m.kind !== 'adapter_policy') throw new RangeError(`model.kind must be 'adapter_policy', got ${JSON.stringify((m as { kind?: unknown } | null)?.kind)}`);
      const base = m.base as BaseWeightsOrigin | undefined;
      if (!base || !['seeded', 'file', 'tensors'].includes(base.kind)) throw new RangeError('model.base.kind must be seeded, file or tensors');
      return { kind: 'adapter_policy', config: resolveModelConfig(m.config), base };
    }
    const c = state.config;
    const config = resolveModelConfig(modelConfigFromRunConfig(c as unknown as RunModelKeys));
    const base: BaseWeightsOrigin = typeof c.base_weights === 'string'
      ? { kind: 'file', path: c.base_weights, sha256: '' }
      : { kind: 'seeded', seed: c.seed as number };
    return { kind: 'adapter_policy', config, base };
  } catch (e) {
    throw new FormatError('checkpoint', (e as Error).message, { file, cause: e });
  }
}

/**
 * The tensors of one checkpoint group with their layout's shapes: a tensor stored with
 * its real shape is taken as is, a 1-D one with the right element count (older
 * checkpoints) is given the layout's shape. Every tensor of `specs` is required.
 */
export function shapedForLayout(specs: readonly TensorSpec[], tensors: Record<string, Tensor> | undefined, file: string): Record<string, Tensor> {
  if (tensors === undefined) throw new FormatError('checkpoint', `${file} is missing`, { file });
  const out: Record<string, Tensor> = {};
  for (const t of specs) {
    const x = tensors[t.name];
    if (x === undefined) throw new FormatError('checkpoint', `tensor '${t.name}' is missing`, { file, field: t.name });
    const same = x.shape.length === t.shape.length && x.shape.every((d, i) => d === t.shape[i]);
    const flat = x.shape.length === 1 && x.shape[0] === t.size;
    if (!same && !flat) {
      throw new FormatError('checkpoint', `tensor '${t.name}' has shape [${x.shape.join(', ')}], expected [${t.shape.join(', ')}]`, { file, field: t.name });
    }
    out[t.name] = { dtype: x.dtype, shape: t.shape.slice(), data: x.data };
  }
  return out;
}

/**
 * Refuses to resume on other frozen base weights than the checkpoint's: the model's base
 * (`current`) must equal base.safetensors bit for bit. The error names the file and tensor.
 */
export function checkSameBase(current: Record<string, Tensor>, stored: Record<string, Tensor>, file: string): void {
  for (const [name, t] of Object.entries(current)) {
    const s = stored[name];
    const a = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const b = s === undefined ? undefined : Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    if (b === undefined || !a.equals(b)) {
      throw new FormatError('checkpoint', `the run's frozen base weights differ from the checkpoint's (tensor '${name}'): ` +
        'was the base weights file replaced since the run started? Resume needs the same base', { file, field: name });
    }
  }
}
