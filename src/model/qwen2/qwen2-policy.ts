// Qwen2Policy: a Hugging Face Qwen2 backbone (frozen, as loadHfModel reads it) with LoRA on
// the chosen linear layers, learnable action queries and a per-query action head
// (ARCHITECTURE.md §4b). One native call per micro-batch (qwen2Step) gives the
// action and retention losses and both gradient sets; the frozen weights stay in the
// loader's host arrays, never copied, on the CPU; on a CUDA device ({ device: 'cuda' }) the
// policy uploads them once into one device set of its own (freed by dispose() or when the
// policy is collected) and params, anchor and the gradient sets live on the device.
import * as native from '../../native-calls.js';
import type { RawModelMode, RawQwen2Config, RawQwen2StepOptions } from '../../../binding.js';
import { GradSet, gradSetInternals } from '../../gradset.js';
import { resolveDataDevice, type DeviceName, type DeviceSpec, type ResolvedDevice } from '../../device.js';
import { argRangeError, argTypeError, describeValue } from '../../errors.js';
import { checkBoolean, checkChoice, checkFiniteNumber, checkInteger, checkObject, checkOptions } from '../../validate.js';
import { Rng } from '../../data/rng.js';
import type { GradWriteOptions, ModelLosses } from '../adapter-policy.js';
import { loadHfModel, type HfModel } from './hf-directory.js';
import { QWEN2_LINEARS, type Qwen2Linear } from './weights.js';
import { encodePeftAdapter, normalizeLoraTargets, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from './peft-adapter.js';
import { baseModelRecord, type BaseModelRecord } from './base-record.js';
import type { Tensor } from '../../formats/tensor.js';
import { checkTensors, copyIn, loadNamedTensors, namedTensors } from '../named-tensors.js';

export interface Qwen2PolicyOptions {
  /** LoRA rank r (default 64). */
  rank?: number;
  /** LoRA alpha: the update is (alpha / rank)·B·A (default 2·rank). */
  alpha?: number;
  /** Linear layers with LoRA (default all seven). */
  targets?: readonly Qwen2Linear[];
  /** P, prefix vectors per sample (default 0). */
  prefixTokens?: number;
  /** S, prompt tokens per sample (default 0). */
  promptTokens?: number;
  /** Q = K, action queries (the chunk length). */
  chunk: number;
  /** A, action dimensions per step. */
  actionDims: number;
  /** The head's hidden width (default 256). */
  headWidth?: number;
  /** m: C_R = hidden_states[m], 0..L (default ⌊(L+1)/2⌋). */
  bridgeLayer?: number;
  bridgeSpan?: 'prefix' | 'prefix+prompt';
  pooling?: 'mean' | 'max';
  anchorType?: 'concat' | 'aq_only' | 'raw_only';
  /** Seed of the initial LoRA A, queries and head (default 0). */
  seed?: number;
  /**
   * Where the step runs: 'cpu' (default), 'cuda' or 'cuda:N'. Not part of what a checkpoint
   * records ({@link Qwen2Policy.options}).
   */
  device?: DeviceSpec;
}

/** One micro-batch: `size` samples of prefix (size·P·D), prompt ids (size·S) and actions (size·K·A). */
export interface Qwen2Batch {
  prefix?: Float32Array | null;
  inputIds?: Int32Array | null;
  actions: Float32Array;
  size: number;
}

const OPTION_KEYS = ['rank', 'alpha', 'targets', 'prefixTokens', 'promptTokens', 'chunk', 'actionDims', 'headWidth',
  'bridgeLayer', 'bridgeSpan', 'pooling', 'anchorType', 'seed', 'device'];

function intOption(o: Record<string, unknown>, key: string, fallback: number | undefined, lo: number): number {
  const v = o[key] ?? fallback;
  if (v === undefined) throw argTypeError(`options.${key} is required`);
  return checkInteger(v, `options.${key}`, lo);
}

function choice<T extends string>(o: Record<string, unknown>, key: string, choices: readonly T[], fallback: T): T {
  return checkChoice(o[key] ?? fallback, `options.${key}`, choices);
}

export class Qwen2Policy {
  readonly hf: HfModel;
  /** The native configuration (binding.d.ts RawQwen2Config). */
  readonly config: RawQwen2Config;
  /** Trainable tensors, in the order of {@link Qwen2Policy.trainableNames}. */
  readonly params: GradSet;
  /** The anchor: the initial LoRA factors and action queries, read in place by the anchor forward. */
  readonly anchor: GradSet;
  readonly trainableSpecs: readonly { name: string; shape: number[]; size: number }[];
  /** The anchor's tensors: the leading LoRA factors and action_queries of the trainable layout. */
  readonly anchorSpecs: readonly { name: string; shape: number[]; size: number }[];
  /** The options the policy was made with, resolved (seed included): what a checkpoint records. */
  readonly options: Readonly<Required<Omit<Qwen2PolicyOptions, 'device'>>>;
  readonly #frozen: RawQwen2StepOptions['frozen'];
  /** On a device: the frozen weights, uploaded once ([embedTokens, each layer, finalNorm]). */
  readonly #frozenSet: GradSet | undefined;
  readonly #device: ResolvedDevice;

  private constructor(hf: HfModel, config: RawQwen2Config, seed: number, device: ResolvedDevice) {
    this.#device = device;
    this.hf = hf;
    this.config = Object.freeze(config);
    const t = native.qwen2Tensors(config);
    this.trainableSpecs = Object.freeze(t.trainable.map((d) => ({ ...d, size: d.shape.reduce((a, b) => a * b, 1) })));
    this.anchorSpecs = this.trainableSpecs.slice(0, t.anchorTensors);
    this.options = Object.freeze({
      rank: config.rank, alpha: config.alpha, targets: Object.freeze([...config.targets] as Qwen2Linear[]), prefixTokens: config.prefixTokens,
      promptTokens: config.promptTokens, chunk: config.queries, actionDims: config.actionDims, headWidth: config.headWidth,
      bridgeLayer: config.bridgeLayer, bridgeSpan: config.bridgeSpan, pooling: config.pooling, anchorType: config.anchorType, seed,
    });
    const opts = { device: device.name };
    this.params = GradSet.zeros(this.trainableSpecs.map((d) => d.size), opts);
    this.anchor = GradSet.zeros(this.trainableSpecs.slice(0, t.anchorTensors).map((d) => d.size), opts);
    const w = hf.weights;
    if (device.kind === 'cpu') {
      this.#frozenSet = undefined;
      this.#frozen = { embedTokens: w.embedTokens, layers: w.layers.map((l) => l.data), finalNorm: w.finalNorm };
    } else {
      // Each array uploaded in place (no host copy of the whole model); the binding reads the set's layout.
      this.#frozenSet = GradSet.fromArrays([w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm], opts);
      this.#frozen = gradSetInternals(this.#frozenSet);
    }
  }

  /** The device the step runs on ('cpu' or 'cuda:N'). */
  get device(): DeviceName {
    return this.#device.name;
  }

  /** Loads the backbone of a Hugging Face directory and makes a seeded policy on it (LoRA B = 0, anchor = initial weights). */
  static async fromHfDirectory(dir: string, options: Qwen2PolicyOptions): Promise<Qwen2Policy> {
    return Qwen2Policy.fromHfModel(await loadHfModel(dir), options);
  }

  /** The same on an already loaded model (its weights are used in place, not copied). */
  static fromHfModel(hf: HfModel, options: Qwen2PolicyOptions): Qwen2Policy {
    checkOptions(options, OPTION_KEYS);
    const o = options as unknown as Record<string, unknown>;
    const c = hf.config;
    const rank = intOption(o, 'rank', 64, 1);
    const alpha = checkFiniteNumber(o.alpha ?? 2 * rank, 'options.alpha', { min: 0, exclusive: true });
    const seed = intOption(o, 'seed', 0, 0);
    const device = resolveDataDevice(o.device ?? 'cpu', 'options.device');
    const config: RawQwen2Config = {
      hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads,
      intermediateSize: c.intermediateSize, vocabSize: c.vocabSize, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta,
      prefixTokens: intOption(o, 'prefixTokens', 0, 0), promptTokens: intOption(o, 'promptTokens', 0, 0),
      queries: intOption(o, 'chunk', undefined, 1), rank, alpha,
      targets: normalizeLoraTargets((options.targets ?? QWEN2_LINEARS) as readonly unknown[], 'options.targets'),
      actionDims: intOption(o, 'actionDims', undefined, 1), headWidth: intOption(o, 'headWidth', 256, 1),
      bridgeLayer: intOption(o, 'bridgeLayer', Math.floor((c.numLayers + 1) / 2), 0),
      bridgeSpan: choice(o, 'bridgeSpan', ['prefix', 'prefix+prompt'] as const, 'prefix'),
      pooling: choice(o, 'pooling', ['mean', 'max'] as const, 'mean'),
      anchorType: choice(o, 'anchorType', ['concat', 'aq_only', 'raw_only'] as const, 'concat'),
    };
    const p = new Qwen2Policy(hf, config, seed, device);
    p.params.set(initialParams(p.trainableSpecs, seed));
    p.resetAnchor();
    return p;
  }

  /** Names of the trainable tensors (PEFT's and policy.safetensors'), in GradSet order. */
  get trainableNames(): string[] {
    return this.trainableSpecs.map((t) => t.name);
  }

  /** A zero GradSet with the trainable layout (for g_act, g_ret, optimizer state). */
  newGradSet(): GradSet {
    return this.params.zerosLike();
  }

  /** Sets the anchor to the current LoRA factors and action queries (they lead the layout). */
  resetAnchor(): void {
    native.copy({ dst: gradSetInternals(this.anchor), src: gradSetInternals(this.params), count: this.anchor.numElements });
  }

  /** One CRaFT micro-batch: both losses, g_act into `gAct` and g_ret into `gRet`, from one shared forward. */
  craftStep(batch: Qwen2Batch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): ModelLosses {
    this.#checkGrad(gAct, 'gAct');
    this.#checkGrad(gRet, 'gRet');
    if (gAct === gRet) throw argRangeError('gAct and gRet must be different GradSets');
    return native.qwen2Step(this.#args('craft', batch, gAct, gRet, options));
  }

  /** Plain fine-tuning: the action loss and g_act only (no anchor forward). */
  baselineStep(batch: Qwen2Batch, gAct: GradSet, options: GradWriteOptions = {}): { actionLoss: number } {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: native.qwen2Step(this.#args('baseline', batch, gAct, undefined, options)).actionLoss };
  }

  /** {@link Qwen2Policy.craftStep} on a worker thread; nothing it reads or writes may change until it settles. */
  async craftStepAsync(batch: Qwen2Batch, gAct: GradSet, gRet: GradSet, options: GradWriteOptions = {}): Promise<ModelLosses> {
    this.#checkGrad(gAct, 'gAct');
    this.#checkGrad(gRet, 'gRet');
    if (gAct === gRet) throw argRangeError('gAct and gRet must be different GradSets');
    return native.qwen2StepAsync(this.#args('craft', batch, gAct, gRet, options));
  }

  /** {@link Qwen2Policy.baselineStep} on a worker thread (same rules as craftStepAsync). */
  async baselineStepAsync(batch: Qwen2Batch, gAct: GradSet, options: GradWriteOptions = {}): Promise<{ actionLoss: number }> {
    this.#checkGrad(gAct, 'gAct');
    return { actionLoss: (await native.qwen2StepAsync(this.#args('baseline', batch, gAct, undefined, options))).actionLoss };
  }

  /** No-grad evaluation: the action loss (and, with `retention`, the retention loss; else NaN). */
  evaluate(batch: Qwen2Batch, options: { retention?: boolean } = {}): ModelLosses {
    checkOptions(options, ['retention']);
    const ret = options.retention !== undefined && checkBoolean(options.retention, 'options.retention');
    const r = native.qwen2Step(this.#args(ret ? 'evalRetention' : 'eval', batch, undefined, undefined, {}));
    return ret ? r : { actionLoss: r.actionLoss, retentionLoss: Number.NaN };
  }

  /** The anchor's tensors by name (views on the set's memory). */
  anchorTensors(): Record<string, Tensor> {
    return namedTensors(this.anchorSpecs, this.anchor);
  }

  /** Copies named anchor tensors in (every name required, shapes checked). */
  loadAnchor(tensors: Record<string, Tensor>, name = 'tensors'): void {
    loadNamedTensors(this.anchorSpecs, this.anchor, tensors, name);
  }

  /** The trainable tensors by name (views on the set's memory). */
  trainableTensors(): Record<string, Tensor> {
    return namedTensors(this.trainableSpecs, this.params);
  }

  /**
   * Replaces some trainable tensors (e.g. a PEFT adapter's LoRA factors, or a policy file's
   * queries and head), keeping the others: every given name must be trainable and every
   * value checked before anything is copied. Returns how many tensors were replaced.
   */
  loadSomeTrainable(tensors: Record<string, Tensor>, name = 'tensors'): number {
    if (tensors === null || typeof tensors !== 'object') throw argTypeError(`${name} must be an object of tensors, got ${describeValue(tensors)}`);
    const given = new Set(Object.keys(tensors));
    const specs = this.trainableSpecs.filter((t) => given.has(t.name));
    const unknown = [...given].filter((n) => !specs.some((t) => t.name === n));
    if (unknown.length > 0) throw argRangeError(`${name} holds tensors this policy does not train: ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', …' : ''}`);
    checkTensors(specs, tensors, name);
    const flat = this.params.toFlat();
    for (const t of specs) {
      const i = this.trainableSpecs.indexOf(t);
      copyIn([t], flat.subarray(this.params.offsets[i], this.params.offsets[i]! + t.size), tensors);
    }
    this.params.set(flat);
    return specs.length;
  }

  /** The frozen base weights as tensors (views of the loader's arrays, never copied): for comparing ranks' bases. */
  frozenTensors(): Record<string, Tensor> {
    const w = this.hf.weights, out: Record<string, Tensor> = {};
    out['model.embed_tokens.weight'] = { dtype: 'F32', shape: [w.embedTokens.length], data: w.embedTokens };
    w.layers.forEach((l, i) => (out[`model.layers.${i}`] = { dtype: 'F32', shape: [l.data.length], data: l.data }));
    out['model.norm.weight'] = { dtype: 'F32', shape: [w.finalNorm.length], data: w.finalNorm };
    return out;
  }

  /** What the base model is (its config and the sha256 of its weight files), for checkpoints. */
  baseRecord(): BaseModelRecord {
    return baseModelRecord(this.hf);
  }

  /**
   * The current LoRA factors as a PEFT adapter directory's two files (adapter_model.safetensors,
   * adapter_config.json), as bytes: `PeftModel.from_pretrained(base, dir)` loads them.
   */
  peftAdapterFiles(baseModelNameOrPath: string | null = this.hf.dir): Record<string, Uint8Array> {
    const lora: Record<string, Tensor> = {};
    for (const [n, t] of Object.entries(this.trainableTensors())) if (n.includes('.lora_')) lora[n] = t;
    const { weights, config } = encodePeftAdapter(lora, { rank: this.config.rank, alpha: this.config.alpha, targets: this.config.targets as readonly Qwen2Linear[] }, baseModelNameOrPath);
    return { [PEFT_WEIGHTS_FILE]: weights, [PEFT_CONFIG_FILE]: config };
  }

  /** The action queries and the head, named as policy.safetensors names them. */
  policyTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [n, t] of Object.entries(this.trainableTensors())) if (!n.includes('.lora_')) out[n] = t;
    return out;
  }

  /** Frees the policy's sets now (on a device, its copy of the frozen weights too). The host weights belong to `hf`. */
  dispose(): void {
    this.params.dispose();
    this.anchor.dispose();
    this.#frozenSet?.dispose();
  }

  #checkGrad(g: unknown, name: string): void {
    if (!(g instanceof GradSet)) throw argTypeError(`${name} must be a GradSet, got ${describeValue(g)}`);
    if (g.disposed) throw argRangeError(`${name} has been disposed`);
    if (g.device !== this.#device.name) throw argRangeError(`${name} is on ${g.device}; the policy is on ${this.#device.name} (use policy.newGradSet())`);
    if (!g.sameLayout(this.params)) throw argRangeError(`${name} does not have the policy's trainable layout (use policy.newGradSet())`);
  }

  #args(mode: RawModelMode, batch: Qwen2Batch, gAct: GradSet | undefined, gRet: GradSet | undefined, options: GradWriteOptions): RawQwen2StepOptions {
    checkObject(batch, 'batch');
    checkOptions(options, ['accumulate', 'scale']);
    const accumulate = checkBoolean(options.accumulate ?? false, 'options.accumulate');
    const scale = checkFiniteNumber(options.scale ?? 1, 'options.scale');
    const withRet = mode === 'craft' || mode === 'evalRetention';
    const handle = (set: GradSet | undefined) => (set ? gradSetInternals(set) : null);
    return {
      config: this.config, mode, params: gradSetInternals(this.params), anchor: withRet ? handle(this.anchor) : null,
      gAct: handle(gAct), gRet: handle(gRet), frozen: this.#frozen,
      prefix: batch.prefix ?? null, inputIds: batch.inputIds ?? null, actions: batch.actions, batch: batch.size,
      accumulate, scale,
    };
  }
}

/**
 * Seeded initial values: LoRA A as PEFT's default (kaiming-uniform, a = √5: U(±1/√in)),
 * B = 0; action queries N(0, 0.02²); the head's layers as nn.Linear's default (U(±1/√in)).
 */
function initialParams(specs: readonly { name: string; shape: number[]; size: number }[], seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(specs.reduce((a, s) => a + s.size, 0));
  let o = 0;
  for (const s of specs) {
    const v = out.subarray(o, o + s.size);
    o += s.size;
    if (s.name.endsWith('lora_B.weight')) continue;
    if (s.name === 'action_queries') {
      for (let i = 0; i < v.length; i++) v[i] = 0.02 * rng.normal();
      continue;
    }
    const fanIn = s.name.endsWith('.bias') ? (specs.find((t) => t.name === s.name.replace('.bias', '.weight'))!.shape[1]) : s.shape[1];
    const b = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < v.length; i++) v[i] = rng.range(-b, b);
  }
  return out;
}
