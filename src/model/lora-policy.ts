// LoraPolicy: what every model of ARCHITECTURE.md §4 is to the rest of craftgrad, written
// once. A model holds its trainable parameters and its anchor (the leading LoRA tensors of
// the trainable layout, read in place by the anchor forward) as GradSets on one device, and
// runs one native call per micro-batch that gives the losses and, by mode, both gradient
// sets (CRaFT), g_act alone (baseline) or no gradient (evaluation), on the worker pool or
// the event loop. This class checks the gradient sets and the write options, and makes the
// calls; a model (AdapterPolicy, Qwen2Policy) states what differs: its configuration and
// layout, how it checks a batch and names it for the binding, which native call it makes,
// and its frozen weights.
import type { RawModelLosses, TensorSet } from '../../binding.js';
import { GradSet, gradSetInternals } from '../gradset.js';
import type { DeviceName, ResolvedDevice } from '../device.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import type { Precision } from '../precision.js';
import type { Tensor } from '../formats/tensor.js';
import * as native from '../native-calls.js';
import { checkBoolean, checkFiniteNumber, checkObject, checkOptions } from '../validate.js';
import { checkTensorRecord, checkTensors, copyIn, loadNamedTensors, namedTensors } from './named-tensors.js';
import type { ActionLoss, EvaluateOptions, GradWriteOptions, ModelLosses, PolicyMode, TensorSpec } from './policy-types.js';

/** A step's sets as the binding takes them (null where the mode has none), and its write options. */
export interface StepSets {
  params: TensorSet;
  anchor: TensorSet | null;
  gAct: TensorSet | null;
  gRet: TensorSet | null;
  accumulate: boolean;
  scale: number;
  /** The products' precision (the model's). */
  precision: Precision;
}

/** What a model tells its base: how messages name it, and its native step. */
export interface PolicyKind<Args> {
  /** 'model' or 'policy': "gAct is on cpu; the model is on cuda:0 (use model.newGradSet())". */
  noun: string;
  /** The native step (one micro-batch), and the same on a worker thread. */
  step(args: Args): RawModelLosses;
  stepAsync(args: Args): Promise<RawModelLosses>;
}

export abstract class LoraPolicy<Batch, Args> {
  /** Trainable tensors, in the order of {@link LoraPolicy.trainableNames}. */
  readonly params: GradSet;
  /** The anchor: the initial LoRA weights (the leading tensors of the trainable layout), read in place by the anchor forward. */
  readonly anchor: GradSet;
  readonly trainableSpecs: readonly TensorSpec[];
  /** The anchor's tensors: the leading tensors of the trainable layout. */
  readonly anchorSpecs: readonly TensorSpec[];
  readonly #device: ResolvedDevice;
  readonly #kind: PolicyKind<Args>;
  readonly #precision: Precision;

  /** Makes the model's parameters and anchor, zeros, on `device`; its steps compute their products in `precision`. */
  protected constructor(device: ResolvedDevice, trainableSpecs: readonly TensorSpec[], anchorSpecs: readonly TensorSpec[], kind: PolicyKind<Args>,
    precision: Precision = 'fp32') {
    this.#device = device;
    this.#kind = kind;
    this.#precision = precision;
    this.trainableSpecs = Object.freeze([...trainableSpecs]);
    this.anchorSpecs = Object.freeze([...anchorSpecs]);
    const opts = { device: device.name };
    this.params = GradSet.zeros(this.trainableSpecs.map((t) => t.size), opts);
    this.anchor = GradSet.zeros(this.anchorSpecs.map((t) => t.size), opts);
  }

  /** Where the weights live and the steps run: 'cpu' or 'cuda:N'. */
  get device(): DeviceName {
    return this.#device.name;
  }

  /**
   * 'fp32', or 'bf16' (a CUDA device only): every product of a step, the attention's included,
   * with bf16 inputs and fp32 accumulation, as the seed's bf16 autocast (ARCHITECTURE.md §8).
   */
  get precision(): Precision {
    return this.#precision;
  }

  /** Names of the trainable tensors (checkpoint names), in GradSet order. */
  get trainableNames(): string[] {
    return this.trainableSpecs.map((t) => t.name);
  }

  /** A zero GradSet with the trainable layout, on the model's device (for g_act, g_ret, optimizer state). */
  newGradSet(): GradSet {
    return this.params.zerosLike();
  }

  /**
   * Sets the anchor to the current LoRA weights (a copy, device to device on a GPU). They
   * lead the trainable layout, so the anchor is the first anchor.numElements values of params.
   */
  resetAnchor(): void {
    native.copy({ dst: gradSetInternals(this.anchor), src: gradSetInternals(this.params), count: this.anchor.numElements });
  }

  /**
   * One CRaFT micro-batch: action and retention losses, g_act (action loss alone) into
   * `gAct` and g_ret (retention loss alone) into `gRet`, from one shared forward, one
   * no-grad anchor forward and one stacked backward.
   */
  craftStep(batch: Batch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): ModelLosses {
    this.#checkPair(gAct, gRet);
    return this.#kind.step(this.#args('craft', batch, gAct, gRet, options));
  }

  /** Plain fine-tuning: the action loss and g_act only (no anchor forward, no retention stream). */
  baselineStep(batch: Batch, gAct: GradSet, options: GradWriteOptions = {}): ActionLoss {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: this.#kind.step(this.#args('baseline', batch, gAct, undefined, options)).actionLoss };
  }

  /**
   * {@link LoraPolicy.craftStep} on a worker thread (the event loop stays free). The
   * model's sets, the batch and the gradient sets must not change until it settles.
   */
  async craftStepAsync(batch: Batch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): Promise<ModelLosses> {
    this.#checkPair(gAct, gRet);
    return this.#kind.stepAsync(this.#args('craft', batch, gAct, gRet, options));
  }

  /** {@link LoraPolicy.baselineStep} on a worker thread (same rules as craftStepAsync). */
  async baselineStepAsync(batch: Batch, gAct: GradSet, options: GradWriteOptions = {}): Promise<ActionLoss> {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: (await this.#kind.stepAsync(this.#args('baseline', batch, gAct, undefined, options))).actionLoss };
  }

  /** No-grad evaluation: the action loss (and, with `retention`, the retention loss; else NaN). */
  evaluate(batch: Batch, options: EvaluateOptions = {}): ModelLosses {
    checkOptions(options, ['retention']);
    const ret = options.retention !== undefined && checkBoolean(options.retention, 'options.retention');
    const r = this.#kind.step(this.#args(ret ? 'evalRetention' : 'eval', batch, undefined, undefined, {}));
    return ret ? r : { actionLoss: r.actionLoss, retentionLoss: Number.NaN };
  }

  /**
   * Replaces some trainable tensors (e.g. a PEFT adapter's LoRA factors, a policy file's or a
   * model directory's queries and head), keeping the others: every given name must be
   * trainable and every value checked before anything is copied. Returns how many tensors
   * were replaced.
   */
  loadSomeTrainable(tensors: Record<string, Tensor>, name = 'tensors'): number {
    checkTensorRecord(tensors, name);
    const given = new Set(Object.keys(tensors));
    const specs = this.trainableSpecs.filter((t) => given.has(t.name));
    const unknown = [...given].filter((n) => !specs.some((t) => t.name === n));
    if (unknown.length > 0) throw argRangeError(`${name} holds tensors this ${this.#kind.noun} does not train: ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', …' : ''}`);
    checkTensors(specs, tensors, name);
    if (specs.length === 0) return 0;
    const flat = this.params.toFlat();
    for (const t of specs) {
      const i = this.trainableSpecs.indexOf(t);
      copyIn([t], flat.subarray(this.params.offsets[i], this.params.offsets[i]! + t.size), tensors);
    }
    this.params.set(flat);
    return specs.length;
  }

  /** Trainable tensors by name (views on the CPU; host copies, downloaded, on a GPU). */
  trainableTensors(): Record<string, Tensor> {
    return namedTensors(this.trainableSpecs, this.params);
  }

  /** Anchor tensors by name (views on the CPU; host copies on a GPU). */
  anchorTensors(): Record<string, Tensor> {
    return namedTensors(this.anchorSpecs, this.anchor);
  }

  /** Copies named anchor tensors in (every name of the layout required, shapes checked; uploaded on a GPU). */
  loadAnchor(tensors: Record<string, Tensor>, name = 'tensors'): void {
    loadNamedTensors(this.anchorSpecs, this.anchor, tensors, name);
  }

  /** The frozen base weights by name (for checkpoints and for comparing ranks' bases). */
  abstract frozenTensors(): Record<string, Tensor>;

  /** Frees the model's sets now (otherwise freed when they are collected). The model is unusable after. */
  dispose(): void {
    this.params.dispose();
    this.anchor.dispose();
  }

  /**
   * Checks the batch (beyond its being an object) and names the call for the binding.
   * `sets` holds the sets the mode uses; the batch's own checks come after theirs.
   */
  protected abstract stepArgs(mode: PolicyMode, batch: Batch, sets: StepSets): Args;

  /** How a layout mismatch ends its message: how to get a set that fits. */
  protected layoutHint(): string {
    return `(use ${this.#kind.noun}.newGradSet())`;
  }

  #checkGrad(g: unknown, name: string): void {
    if (!(g instanceof GradSet)) throw argTypeError(`${name} must be a GradSet, got ${describeValue(g)}`);
    if (g.disposed) throw argRangeError(`${name} has been disposed`);
    const noun = this.#kind.noun;
    if (g.device !== this.#device.name) throw argRangeError(`${name} is on ${g.device}; the ${noun} is on ${this.#device.name} (use ${noun}.newGradSet())`);
    if (!g.sameLayout(this.params)) throw argRangeError(`${name} does not have the ${noun}'s trainable layout ${this.layoutHint()}`);
  }

  #checkPair(gAct: GradSet, gRet: GradSet): void {
    this.#checkGrad(gAct, 'gAct');
    this.#checkGrad(gRet, 'gRet');
    if (gAct === gRet) throw argRangeError('gAct and gRet must be different GradSets');
  }

  /** Checks a call's batch and write options, and names the call's sets for the binding (their native handles). */
  #args(mode: PolicyMode, batch: Batch, gAct: GradSet | undefined, gRet: GradSet | undefined, options: GradWriteOptions): Args {
    checkObject(batch, 'batch');
    checkOptions(options, ['accumulate', 'scale']);
    const accumulate = checkBoolean(options.accumulate ?? false, 'options.accumulate');
    const scale = checkFiniteNumber(options.scale ?? 1, 'options.scale');
    const withRet = mode === 'craft' || mode === 'evalRetention';
    const handle = (set: GradSet | undefined) => (set ? gradSetInternals(set) : null);
    return this.stepArgs(mode, batch, {
      params: gradSetInternals(this.params), anchor: withRet ? handle(this.anchor) : null, gAct: handle(gAct), gRet: handle(gRet), accumulate, scale,
      precision: this.#precision,
    });
  }
}
