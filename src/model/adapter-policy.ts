// AdapterPolicy: the built-in model of ARCHITECTURE.md §4, with its forward and backward in
// native code (one call per micro-batch, modelStep). A LoraPolicy (lora-policy.ts: the
// parameters, the anchor, the steps and their checks) whose frozen base weights are a
// GradSet of their own; every set is in the fixed tensor order of layout.ts.
//
// On a CUDA device ('cuda' or 'cuda:N') the four sets live in device memory and the binding's
// modelStep runs on their backend: the batch's tokens and actions are staged through the device's
// model scratch (cached by the native layer, grown only when a larger batch comes), so a
// warm step allocates nothing in proportion to the data. The initial weights are made on
// the host with the same seeded values as on the CPU, then uploaded.
import { checkModelPrecision, type Precision, type PrecisionSpec } from '../precision.js';
import * as native from '../native-calls.js';
import type { RawModelStepOptions } from '../../binding.js';
import { GradSet, gradSetInternals } from '../gradset.js';
import { resolveDataDevice, type DeviceSpec, type ResolvedDevice } from '../device.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { FormatError } from '../formats/errors.js';
import { decodeSafetensors } from '../formats/safetensors.js';
import { readWholeFile } from '../formats/fileio.js';
import { loadCheckpoint } from '../run/checkpoint-read.js';
import type { Tensor } from '../formats/tensor.js';
import { resolveModelConfig, type AdapterPolicyConfig } from './config.js';
import { anchorLayout, frozenLayout, trainableLayout } from './layout.js';
import { initFrozen, initTrainable } from './init.js';
import { namedTensors, loadNamedTensors, copyIn, checkTensors } from './named-tensors.js';
import { LoraPolicy, type StepSets } from './lora-policy.js';
import type { PolicyMode, TensorSpec } from './policy-types.js';
import { checkpointModelDescription, shapedForLayout, type BaseWeightsOrigin, type ModelDescription } from './checkpoint.js';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

/** One micro-batch: `size` samples of tokens (size·T·D) and expert action chunks (size·K·A). */
export interface ModelBatch {
  tokens: Float32Array;
  actions: Float32Array;
  size: number;
}

export interface AdapterPolicyOptions {
  /** Seed of the initial weights (frozen base, LoRA A, head). Default 0. */
  seed?: number;
  /** Frozen base weights to use instead of the seeded ones (names and shapes of {@link frozenLayout}). */
  frozen?: Record<string, Tensor>;
  /**
   * Where the weights live and the steps run: 'cpu' (default), 'cuda' (= 'cuda:0'),
   * 'cuda:N', or 'auto' (the first GPU when one is usable, else the CPU).
   */
  device?: DeviceSpec;
  /** 'fp32' (default), 'bf16' (a CUDA device only) or 'auto' (bf16 where the GPU supports it): the products' precision ({@link LoraPolicy.precision}). */
  precision?: PrecisionSpec;
}

export class AdapterPolicy extends LoraPolicy<ModelBatch, RawModelStepOptions> {
  /** The resolved configuration. */
  readonly config: AdapterPolicyConfig;
  /** Frozen base weights W_l, b_l. */
  readonly frozen: GradSet;
  readonly frozenSpecs: readonly TensorSpec[];
  #base: BaseWeightsOrigin = { kind: 'tensors' };

  private constructor(config: AdapterPolicyConfig, device: ResolvedDevice, precision: Precision) {
    super(device, trainableLayout(config), anchorLayout(config), { noun: 'model', step: native.modelStep, stepAsync: native.modelStepAsync }, precision);
    this.config = config;
    this.frozenSpecs = Object.freeze(frozenLayout(config));
    this.frozen = GradSet.zeros(this.frozenSpecs.map((t) => t.size), { device: device.name });
  }

  /**
   * A model with seeded initial weights (or the given frozen base weights), the anchor set
   * to the initial LoRA weights.
   */
  static create(config: Partial<AdapterPolicyConfig> = {}, options: AdapterPolicyOptions = {}): AdapterPolicy {
    checkOptions(options, ['seed', 'frozen', 'device', 'precision']);
    const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
    const device = resolveModelDevice(options.device);
    const precision = checkModelPrecision(options.precision, device.name);
    const resolved = resolveModelConfig(config);
    // The seeded values are made on the host (checked before any memory is taken), then
    // copied in: the same values on every device.
    const frozenSpecs = frozenLayout(resolved), trainableSpecs = trainableLayout(resolved);
    const frozenHost = new Float32Array(frozenSpecs.reduce((a, t) => a + t.size, 0));
    if (options.frozen !== undefined) copyIn(frozenSpecs, frozenHost, checkTensors(frozenSpecs, options.frozen, 'options.frozen'));
    else initFrozen(resolved, frozenSpecs, frozenHost, seed);
    const paramsHost = new Float32Array(trainableSpecs.reduce((a, t) => a + t.size, 0));
    initTrainable(resolved, trainableSpecs, paramsHost, seed);
    const m = new AdapterPolicy(resolved, device, precision);
    m.frozen.set(frozenHost);
    m.params.set(paramsHost);
    m.resetAnchor();
    if (options.frozen === undefined) m.#base = { kind: 'seeded', seed };
    return m;
  }

  /** Like {@link AdapterPolicy.create}, with the frozen base weights read from a safetensors file. */
  static async fromBaseWeightsFile(path: string, config: Partial<AdapterPolicyConfig> = {},
    options: { seed?: number; device?: DeviceSpec; precision?: PrecisionSpec } = {}): Promise<AdapterPolicy> {
    checkOptions(options, ['seed', 'device', 'precision']);
    // Before reading the file: a bad device or precision is not a file error.
    checkModelPrecision(options.precision, resolveModelDevice(options.device).name);
    const bytes = await readWholeFile(path);
    const { tensors } = decodeSafetensors(bytes, { source: path });
    try {
      const m = AdapterPolicy.create(config, { ...options, frozen: tensors });
      m.#base = { kind: 'file', path: resolve(path), sha256: createHash('sha256').update(bytes).digest('hex') };
      return m;
    } catch (e) {
      if (e instanceof RangeError || e instanceof TypeError) {
        const field = /^tensor '([^']+)'/.exec(e.message)?.[1];
        throw new FormatError('safetensors', e.message, { file: path, field, cause: e });
      }
      throw e;
    }
  }

  /**
   * The model of a checkpoint that craftgrad wrote (`dir`: checkpoints/step-NNNNNN, a copy
   * of one, or a run directory, whose newest valid checkpoint is read): its configuration,
   * frozen base (base.safetensors, or for older checkpoints rebuilt from the recorded seed
   * or file), trained weights and anchor. evaluate() then gives what the run's model gave
   * at that step. Errors name the file and field.
   */
  static async fromCheckpoint(dir: string, options: { device?: DeviceSpec } = {}): Promise<AdapterPolicy> {
    checkOptions(options, ['device']);
    resolveModelDevice(options.device);
    const ck = await loadCheckpoint(dir);
    const desc = checkpointModelDescription(ck as { model?: unknown; config: Record<string, unknown> }, join(ck.dir, 'state.json'));
    const file = (group: string) => join(ck.dir, `${group}.safetensors`);
    const device = options.device === undefined ? {} : { device: options.device };
    let m: AdapterPolicy;
    if (ck.tensors.base !== undefined) {
      m = fromFile(file('base'), () => AdapterPolicy.create(desc.config, { ...device, frozen: shapedForLayout(frozenLayout(desc.config), ck.tensors.base, file('base')) }));
    } else if (desc.base.kind === 'seeded') {
      m = AdapterPolicy.create(desc.config, { ...device, seed: desc.base.seed });
    } else if (desc.base.kind === 'file') {
      m = await AdapterPolicy.fromBaseWeightsFile(desc.base.path, desc.config, device);
      const got = (m.#base as { sha256: string }).sha256;
      if (desc.base.sha256 !== '' && got !== desc.base.sha256) {
        m.dispose();
        throw new FormatError('checkpoint', `the base weights file ${desc.base.path} has sha256 ${got}, the checkpoint was trained on ${desc.base.sha256}`, { file: join(ck.dir, 'state.json'), field: 'model.base.sha256' });
      }
    } else {
      throw new FormatError('checkpoint', 'the base weights were given as tensors and base.safetensors is missing', { file: join(ck.dir, 'state.json'), field: 'model.base' });
    }
    try {
      fromFile(file('model'), () => m.loadTrainable(shapedForLayout(m.trainableSpecs, ck.tensors.model, file('model')), file('model')));
      fromFile(file('anchor'), () => m.loadAnchor(shapedForLayout(m.anchorSpecs, ck.tensors.anchor, file('anchor')), file('anchor')));
    } catch (e) {
      m.dispose();
      throw e;
    }
    m.#base = desc.base;
    return m;
  }

  /** Where the frozen base weights came from (a seed, a file with its sha256, or tensors given in code). */
  get baseOrigin(): BaseWeightsOrigin {
    return { ...this.#base };
  }

  /** What checkpoints record about the model (state.json's `model`): resolved config and base origin. */
  describe(): ModelDescription {
    return { kind: 'adapter_policy', config: { ...this.config }, base: this.baseOrigin };
  }

  /** Frees the model's device memory now (otherwise freed when the sets are collected). The model is unusable after. */
  override dispose(): void {
    super.dispose();
    this.frozen.dispose();
  }

  /** Frozen base tensors by name (views on the CPU; host copies on a GPU). */
  frozenTensors(): Record<string, Tensor> {
    return namedTensors(this.frozenSpecs, this.frozen);
  }

  /** Copies named trainable tensors in (every name of the layout required, shapes checked; uploaded on a GPU). */
  loadTrainable(tensors: Record<string, Tensor>, name = 'tensors'): void {
    loadNamedTensors(this.trainableSpecs, this.params, tensors, name);
  }

  /** Copies named frozen base tensors in. */
  loadFrozen(tensors: Record<string, Tensor>, name = 'tensors'): void {
    loadNamedTensors(this.frozenSpecs, this.frozen, tensors, name);
  }

  protected override layoutHint(): string {
    return `(${this.params.numTensors} tensors: ${this.trainableSpecs.map((t) => t.size).join(', ')})`;
  }

  /** Checks a call's batch (both backends) and names the call for modelStep. */
  protected stepArgs(mode: PolicyMode, batch: ModelBatch, sets: StepSets): RawModelStepOptions {
    const { tokens, actions, size } = batch;
    if (!(tokens instanceof Float32Array)) throw argTypeError(`batch.tokens must be a Float32Array, got ${describeValue(tokens)}`);
    if (!(actions instanceof Float32Array)) throw argTypeError(`batch.actions must be a Float32Array, got ${describeValue(actions)}`);
    checkInteger(size, 'batch.size', 1);
    const c = this.config;
    if (tokens.length !== size * c.tokens * c.width) {
      throw argRangeError(`batch.tokens has ${tokens.length} values but batch.size×T×D = ${size}×${c.tokens}×${c.width} = ${size * c.tokens * c.width}`);
    }
    const ka = c.chunk * c.actionDims;
    if (actions.length !== size * ka) throw argRangeError(`batch.actions has ${actions.length} values but batch.size×K×A = ${size}×${ka} = ${size * ka}`);
    return { config: this.config, mode, params: sets.params, frozen: gradSetInternals(this.frozen), anchor: sets.anchor, gAct: sets.gAct, gRet: sets.gRet,
      tokens, actions, batch: size, accumulate: sets.accumulate, scale: sets.scale, precision: sets.precision };
  }
}

/** The device of a model: 'cpu' by default; a CUDA device must be usable (clear Error otherwise). */
function resolveModelDevice(spec: unknown): ResolvedDevice {
  return resolveDataDevice(spec ?? 'cpu', 'options.device');
}

/**
 * Runs `f` on tensors read from `file`: the argument checks behind it (a non-finite value, a
 * wrong shape) throw RangeError/TypeError for tensors given in code; for a file they are the
 * file's fault, a FormatError (found by test/fuzz, checkpoint-model).
 */
function fromFile<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new FormatError('checkpoint', e.message, { file, cause: e });
    throw e;
  }
}
