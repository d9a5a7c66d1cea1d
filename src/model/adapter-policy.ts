// AdapterPolicy: the built-in model of ARCHITECTURE.md §4, with its forward and backward in
// native code (one call per micro-batch). Parameters, frozen base weights, the anchor
// (initial LoRA weights, in their own buffer) and gradients are GradSets in the fixed
// tensor order of layout.ts.
//
// On a CUDA device ('cuda' or 'cuda:N') the four sets live in device memory and the binding's
// modelStep runs on their backend: the batch's tokens and actions are staged through the device's
// model scratch (cached by the native layer, grown only when a larger batch comes), so a
// warm step allocates nothing in proportion to the data. The initial weights are made on
// the host with the same seeded values as on the CPU, then uploaded.
import * as native from '../native-calls.js';
import type { RawModelMode, RawModelStepOptions } from '../../binding.js';
import { GradSet, gradSetInternals } from '../gradset.js';
import { resolveDataDevice, type DeviceName, type DeviceSpec, type ResolvedDevice } from '../device.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkBoolean, checkFiniteNumber, checkInteger, checkObject, checkOptions } from '../validate.js';
import { FormatError } from '../formats/errors.js';
import { decodeSafetensors } from '../formats/safetensors.js';
import { readWholeFile } from '../formats/fileio.js';
import { loadCheckpoint } from '../run/checkpoint-read.js';
import type { Tensor } from '../formats/tensor.js';
import { resolveModelConfig, type AdapterPolicyConfig } from './config.js';
import { anchorLayout, frozenLayout, trainableLayout, type TensorSpec } from './layout.js';
import { initFrozen, initTrainable } from './init.js';
import { namedTensors as named, loadNamedTensors as load, copyIn, checkTensors } from './named-tensors.js';
import { checkpointModelDescription, shapedForLayout, type BaseWeightsOrigin, type ModelDescription } from './checkpoint.js';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

/** One micro-batch: `size` samples of tokens (size·T·D) and expert action chunks (size·K·A). */
export interface ModelBatch {
  tokens: Float32Array;
  actions: Float32Array;
  size: number;
}

/** How a gradient call writes its GradSets. */
export interface GradWriteOptions {
  /** Add into the sets (g += scale·grad) instead of overwriting them (g = scale·grad). Default false. */
  accumulate?: boolean;
  /** Factor applied to the gradients, e.g. 1/microBatches for a mean. Default 1. */
  scale?: number;
}

export interface ModelLosses {
  /** Mean L1 over the batch's K·A action values. */
  actionLoss: number;
  /** Mean squared error between pooled features under current and anchor weights (CRaFT calls only). */
  retentionLoss: number;
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
}

type Mode = RawModelMode;
const MODE_CRAFT = 'craft', MODE_BASELINE = 'baseline', MODE_EVAL = 'eval', MODE_EVAL_RET = 'evalRetention';

export class AdapterPolicy {
  /** The resolved configuration. */
  readonly config: AdapterPolicyConfig;
  /** Trainable tensors (names: {@link AdapterPolicy.trainableNames}). */
  readonly params: GradSet;
  /** Frozen base weights W_l, b_l. */
  readonly frozen: GradSet;
  /** The anchor: initial LoRA A_l, B_l, read in place by the anchor forward. */
  readonly anchor: GradSet;
  readonly trainableSpecs: readonly TensorSpec[];
  readonly frozenSpecs: readonly TensorSpec[];
  readonly anchorSpecs: readonly TensorSpec[];
  readonly #device: ResolvedDevice;
  #base: BaseWeightsOrigin = { kind: 'tensors' };

  private constructor(config: AdapterPolicyConfig, device: ResolvedDevice) {
    this.config = config;
    this.#device = device;
    this.trainableSpecs = Object.freeze(trainableLayout(config));
    this.frozenSpecs = Object.freeze(frozenLayout(config));
    this.anchorSpecs = Object.freeze(anchorLayout(config));
    const opts = { device: device.name };
    this.params = GradSet.zeros(this.trainableSpecs.map((t) => t.size), opts);
    this.frozen = GradSet.zeros(this.frozenSpecs.map((t) => t.size), opts);
    this.anchor = GradSet.zeros(this.anchorSpecs.map((t) => t.size), opts);
  }

  /** Where the weights live and the steps run: 'cpu' or 'cuda:N'. */
  get device(): DeviceName {
    return this.#device.name;
  }

  /**
   * A model with seeded initial weights (or the given frozen base weights), the anchor set
   * to the initial LoRA weights.
   */
  static create(config: Partial<AdapterPolicyConfig> = {}, options: AdapterPolicyOptions = {}): AdapterPolicy {
    checkOptions(options, ['seed', 'frozen', 'device']);
    const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
    const device = resolveModelDevice(options.device);
    const resolved = resolveModelConfig(config);
    // The seeded values are made on the host (checked before any memory is taken), then
    // copied in: the same values on every device.
    const frozenSpecs = frozenLayout(resolved), trainableSpecs = trainableLayout(resolved);
    const frozenHost = new Float32Array(frozenSpecs.reduce((a, t) => a + t.size, 0));
    if (options.frozen !== undefined) copyIn(frozenSpecs, frozenHost, checkTensors(frozenSpecs, options.frozen, 'options.frozen'));
    else initFrozen(resolved, frozenSpecs, frozenHost, seed);
    const paramsHost = new Float32Array(trainableSpecs.reduce((a, t) => a + t.size, 0));
    initTrainable(resolved, trainableSpecs, paramsHost, seed);
    const m = new AdapterPolicy(resolved, device);
    m.frozen.set(frozenHost);
    m.params.set(paramsHost);
    m.resetAnchor();
    if (options.frozen === undefined) m.#base = { kind: 'seeded', seed };
    return m;
  }

  /** Like {@link AdapterPolicy.create}, with the frozen base weights read from a safetensors file. */
  static async fromBaseWeightsFile(path: string, config: Partial<AdapterPolicyConfig> = {}, options: { seed?: number; device?: DeviceSpec } = {}): Promise<AdapterPolicy> {
    checkOptions(options, ['seed', 'device']);
    resolveModelDevice(options.device);  // before reading the file: a bad device is not a file error
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
      m = AdapterPolicy.create(desc.config, { ...device, frozen: shapedForLayout(frozenLayout(desc.config), ck.tensors.base, file('base')) });
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
      m.loadTrainable(shapedForLayout(m.trainableSpecs, ck.tensors.model, file('model')), file('model'));
      m.loadAnchor(shapedForLayout(m.anchorSpecs, ck.tensors.anchor, file('anchor')), file('anchor'));
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

  /** Names of the trainable tensors, in GradSet order. */
  get trainableNames(): string[] {
    return this.trainableSpecs.map((t) => t.name);
  }

  /** A zero GradSet with the trainable layout, on the model's device (for g_act, g_ret, optimizer state). */
  newGradSet(): GradSet {
    return this.params.zerosLike();
  }

  /**
   * Sets the anchor to the current LoRA weights (a copy, device to device on a GPU; the only
   * time weights are copied). The LoRA tensors lead the trainable layout, so the anchor is
   * the first anchor.numElements values of params.
   */
  resetAnchor(): void {
    native.copy({ dst: gradSetInternals(this.anchor), src: gradSetInternals(this.params), count: this.anchor.numElements });
  }

  /** Frees the model's device memory now (otherwise freed when the sets are collected). The model is unusable after. */
  dispose(): void {
    this.params.dispose();
    this.frozen.dispose();
    this.anchor.dispose();
  }

  /**
   * One CRaFT micro-batch: action and retention losses, g_act (action loss alone) into
   * `gAct` and g_ret (retention loss alone) into `gRet`, from one shared forward, one
   * no-grad anchor forward and one stacked backward.
   */
  craftStep(batch: ModelBatch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): ModelLosses {
    this.#checkGrad(gAct, 'gAct');
    this.#checkGrad(gRet, 'gRet');
    if (gAct === gRet) throw argRangeError('gAct and gRet must be different GradSets');
    return this.#call(MODE_CRAFT, batch, gAct, gRet, options);
  }

  /** Plain fine-tuning: the action loss and g_act only (no anchor forward, no retention stream). */
  baselineStep(batch: ModelBatch, gAct: GradSet, options: GradWriteOptions = {}): { actionLoss: number } {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: this.#call(MODE_BASELINE, batch, gAct, undefined, options).actionLoss };
  }

  /**
   * {@link AdapterPolicy.craftStep} on a worker thread (the event loop stays free). The
   * model's sets, the batch and the gradient sets must not change until it settles.
   */
  async craftStepAsync(batch: ModelBatch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): Promise<ModelLosses> {
    this.#checkGrad(gAct, 'gAct');
    this.#checkGrad(gRet, 'gRet');
    if (gAct === gRet) throw argRangeError('gAct and gRet must be different GradSets');
    return this.#callAsync(MODE_CRAFT, batch, gAct, gRet, options);
  }

  /** {@link AdapterPolicy.baselineStep} on a worker thread (same rules as craftStepAsync). */
  async baselineStepAsync(batch: ModelBatch, gAct: GradSet, options: GradWriteOptions = {}): Promise<{ actionLoss: number }> {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: (await this.#callAsync(MODE_BASELINE, batch, gAct, undefined, options)).actionLoss };
  }

  /** No-grad evaluation: the action loss (and, with `retention`, the retention loss). */
  evaluate(batch: ModelBatch, options: { retention?: boolean } = {}): ModelLosses {
    checkOptions(options, ['retention']);
    const ret = options.retention !== undefined && checkBoolean(options.retention, 'options.retention');
    const r = this.#call(ret ? MODE_EVAL_RET : MODE_EVAL, batch, undefined, undefined, {});
    return ret ? r : { actionLoss: r.actionLoss, retentionLoss: Number.NaN };
  }

  /** Trainable tensors by name (views on the CPU; host copies, downloaded, on a GPU). */
  trainableTensors(): Record<string, Tensor> {
    return named(this.trainableSpecs, this.params);
  }

  /** Anchor tensors by name (views on the CPU; host copies on a GPU). */
  anchorTensors(): Record<string, Tensor> {
    return named(this.anchorSpecs, this.anchor);
  }

  /** Frozen base tensors by name (views on the CPU; host copies on a GPU). */
  frozenTensors(): Record<string, Tensor> {
    return named(this.frozenSpecs, this.frozen);
  }

  /** Copies named trainable tensors in (every name of the layout required, shapes checked; uploaded on a GPU). */
  loadTrainable(tensors: Record<string, Tensor>, name = 'tensors'): void {
    load(this.trainableSpecs, this.params, tensors, name);
  }

  /** Copies named anchor tensors in. */
  loadAnchor(tensors: Record<string, Tensor>, name = 'tensors'): void {
    load(this.anchorSpecs, this.anchor, tensors, name);
  }

  /** Copies named frozen base tensors in. */
  loadFrozen(tensors: Record<string, Tensor>, name = 'tensors'): void {
    load(this.frozenSpecs, this.frozen, tensors, name);
  }

  #checkGrad(g: unknown, name: string): void {
    if (!(g instanceof GradSet)) throw argTypeError(`${name} must be a GradSet, got ${describeValue(g)}`);
    if (g.disposed) throw argRangeError(`${name} has been disposed`);
    if (g.device !== this.#device.name) {
      throw argRangeError(`${name} is on ${g.device}; the model is on ${this.#device.name} (use model.newGradSet())`);
    }
    if (!g.sameLayout(this.params)) {
      throw argRangeError(`${name} does not have the model's trainable layout (${this.params.numTensors} tensors: ${this.trainableSpecs.map((t) => t.size).join(', ')})`);
    }
  }

  #call(mode: Mode, batch: ModelBatch, gAct: GradSet | undefined, gRet: GradSet | undefined, options: GradWriteOptions): ModelLosses {
    return native.modelStep(this.#args(mode, batch, gAct, gRet, options));
  }

  async #callAsync(mode: Mode, batch: ModelBatch, gAct: GradSet | undefined, gRet: GradSet | undefined, options: GradWriteOptions): Promise<ModelLosses> {
    return native.modelStepAsync(this.#args(mode, batch, gAct, gRet, options));
  }

  /** Checks a call's arguments and names them for the binding (the sets as their native handles). */
  #args(mode: Mode, batch: ModelBatch, gAct: GradSet | undefined, gRet: GradSet | undefined, options: GradWriteOptions): RawModelStepOptions {
    const { tokens, actions, size, accumulate, scale } = this.#checkCall(batch, options);
    const withRet = mode === MODE_CRAFT || mode === MODE_EVAL_RET;
    const handle = (set: GradSet | undefined) => (set ? gradSetInternals(set) : null);
    return { config: this.config, mode, params: handle(this.params)!, frozen: handle(this.frozen)!,
      anchor: withRet ? handle(this.anchor) : null, gAct: handle(gAct), gRet: handle(gRet),
      tokens, actions, batch: size, accumulate, scale };
  }

  /** Checks a call's batch and write options (both backends). */
  #checkCall(batch: ModelBatch, options: GradWriteOptions) {
    checkObject(batch, 'batch');
    checkOptions(options, ['accumulate', 'scale']);
    const accumulate = checkBoolean(options.accumulate ?? false, 'options.accumulate');
    const scale = checkFiniteNumber(options.scale ?? 1, 'options.scale');
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
    return { tokens, actions, size, accumulate, scale };
  }
}

/** The device of a model: 'cpu' by default; a CUDA device must be usable (clear Error otherwise). */
function resolveModelDevice(spec: unknown): ResolvedDevice {
  return resolveDataDevice(spec ?? 'cpu', 'options.device');
}
