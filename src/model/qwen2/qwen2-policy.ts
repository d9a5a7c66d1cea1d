// Qwen2Policy: a Hugging Face Qwen2 backbone (frozen, as loadHfModel reads it) with LoRA on
// the chosen linear layers, learnable action queries and a per-query action head
// (ARCHITECTURE.md §4b). A LoraPolicy (lora-policy.ts: the parameters, the anchor, the steps
// and their checks) whose native call (qwen2Step) gives the action and retention losses and
// both gradient sets; the frozen weights stay in the loader's host arrays, never copied, on
// the CPU; on a CUDA device ({ device: 'cuda' }) the policy uploads them once into one device
// set of its own (freed by dispose() or when the policy is collected) and params, anchor and
// the gradient sets live on the device. With precision 'bf16' that set is bf16 (half the device
// memory; ARCHITECTURE.md §8 "Precision"); the trainable tensors stay fp32.
import { checkModelPrecision, type Precision, type PrecisionSpec } from '../../precision.js';
import * as native from '../../native-calls.js';
import type { RawQwen2Config, RawQwen2StepOptions, TensorSet } from '../../../binding.js';
import { GradSet, gradSetInternals } from '../../gradset.js';
import { resolveDataDevice, type DeviceSpec, type ResolvedDevice } from '../../device.js';
import { checkChoice, checkFiniteNumber, checkInteger, checkOptions, checkPresent } from '../../validate.js';
import { Rng } from '../../data/rng.js';
import { LoraPolicy, type StepSets } from '../lora-policy.js';
import { ANCHOR_TYPES, POOLINGS, type AnchorType, type Pooling, type PolicyMode, type TensorSpec } from '../policy-types.js';
import { loadHfModel, type HfModel } from './hf-directory.js';
import { QWEN2_LINEARS, type Qwen2Linear } from './weights.js';
import { encodePeftAdapter, normalizeLoraTargets, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from './peft-adapter.js';
import { baseModelRecord, type BaseModelRecord } from './base-record.js';
import type { Tensor } from '../../formats/tensor.js';

/** The positions the raw latent C_R covers: the prefix, or the prefix and the prompt. */
export type BridgeSpan = 'prefix' | 'prefix+prompt';
const BRIDGE_SPANS: readonly BridgeSpan[] = ['prefix', 'prefix+prompt'];

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
  bridgeSpan?: BridgeSpan;
  pooling?: Pooling;
  anchorType?: AnchorType;
  /** Seed of the initial LoRA A, queries and head (default 0). */
  seed?: number;
  /**
   * Where the step runs: 'cpu' (default), 'cuda' or 'cuda:N'. Not part of what a checkpoint
   * records ({@link Qwen2Policy.options}).
   */
  device?: DeviceSpec;
  /**
   * 'fp32' (default), 'bf16' (a CUDA device only) or 'auto' (bf16 where the GPU supports it): the products' precision
   * ({@link LoraPolicy.precision}). Not part of what a checkpoint records: config.json has it.
   */
  precision?: PrecisionSpec;
}

/** One micro-batch: `size` samples of prefix (size·P·D), prompt ids (size·S) and actions (size·K·A). */
export interface Qwen2Batch {
  prefix?: Float32Array | null;
  inputIds?: Int32Array | null;
  actions: Float32Array;
  size: number;
}

const OPTION_KEYS = ['rank', 'alpha', 'targets', 'prefixTokens', 'promptTokens', 'chunk', 'actionDims', 'headWidth',
  'bridgeLayer', 'bridgeSpan', 'pooling', 'anchorType', 'seed', 'device', 'precision'];

export class Qwen2Policy extends LoraPolicy<Qwen2Batch, RawQwen2StepOptions> {
  readonly hf: HfModel;
  /** The native configuration (binding.d.ts RawQwen2Config). */
  readonly config: RawQwen2Config;
  /** The options the policy was made with, resolved (seed included): what a checkpoint records. */
  readonly options: Readonly<Required<Omit<Qwen2PolicyOptions, 'device' | 'precision'>>>;
  readonly #frozen: RawQwen2StepOptions['frozen'];
  /** On a device: the frozen weights, uploaded once ([embedTokens, each layer, finalNorm]). */
  readonly #frozenSet: GradSet | TensorSet | undefined;

  private constructor(hf: HfModel, config: RawQwen2Config, seed: number, device: ResolvedDevice, precision: Precision) {
    const t = native.qwen2Tensors(config);
    const specs: TensorSpec[] = t.trainable.map((d) => ({ ...d, size: d.shape.reduce((a, b) => a * b, 1) }));
    super(device, specs, specs.slice(0, t.anchorTensors), { noun: 'policy', step: native.qwen2Step, stepAsync: native.qwen2StepAsync }, precision);
    this.hf = hf;
    this.config = Object.freeze(config);
    this.options = Object.freeze({
      rank: config.rank, alpha: config.alpha, targets: Object.freeze([...config.targets] as Qwen2Linear[]), prefixTokens: config.prefixTokens,
      promptTokens: config.promptTokens, chunk: config.queries, actionDims: config.actionDims, headWidth: config.headWidth,
      bridgeLayer: config.bridgeLayer, bridgeSpan: config.bridgeSpan, pooling: config.pooling, anchorType: config.anchorType, seed,
    });
    const w = hf.weights;
    if (device.kind === 'cpu') {
      this.#frozenSet = undefined;
      this.#frozen = { embedTokens: w.embedTokens, layers: w.layers.map((l) => l.data), finalNorm: w.finalNorm };
    } else if (precision === 'bf16') {
      // Rounded to bf16 on the way up, array by array: the device never holds an fp32 copy.
      const set = native.uploadBf16Set(device.name, [w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm]);
      this.#frozenSet = set;
      this.#frozen = set;
    } else {
      // Each array uploaded in place (no host copy of the whole model); the binding reads the set's layout.
      this.#frozenSet = GradSet.fromArrays([w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm], { device: device.name });
      this.#frozen = gradSetInternals(this.#frozenSet);
    }
  }

  /** Loads the backbone of a Hugging Face directory and makes a seeded policy on it (LoRA B = 0, anchor = initial weights). */
  static async fromHfDirectory(dir: string, options: Qwen2PolicyOptions): Promise<Qwen2Policy> {
    return Qwen2Policy.fromHfModel(await loadHfModel(dir), options);
  }

  /** The same on an already loaded model (its weights are used in place, not copied). */
  static fromHfModel(hf: HfModel, options: Qwen2PolicyOptions): Qwen2Policy {
    checkOptions(options, OPTION_KEYS);
    const c = hf.config;
    const rank = checkInteger(options.rank ?? 64, 'options.rank', 1);
    const alpha = checkFiniteNumber(options.alpha ?? 2 * rank, 'options.alpha', { min: 0, exclusive: true });
    const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
    const device = resolveDataDevice(options.device ?? 'cpu', 'options.device');
    const precision = checkModelPrecision(options.precision, device.name);
    const config: RawQwen2Config = {
      hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads, numKvHeads: c.numKvHeads,
      intermediateSize: c.intermediateSize, vocabSize: c.vocabSize, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta,
      prefixTokens: checkInteger(options.prefixTokens ?? 0, 'options.prefixTokens', 0),
      promptTokens: checkInteger(options.promptTokens ?? 0, 'options.promptTokens', 0),
      queries: checkInteger(checkPresent(options.chunk, 'options.chunk'), 'options.chunk', 1), rank, alpha,
      targets: normalizeLoraTargets((options.targets ?? QWEN2_LINEARS) as readonly unknown[], 'options.targets'),
      actionDims: checkInteger(checkPresent(options.actionDims, 'options.actionDims'), 'options.actionDims', 1),
      headWidth: checkInteger(options.headWidth ?? 256, 'options.headWidth', 1),
      bridgeLayer: checkInteger(options.bridgeLayer ?? Math.floor((c.numLayers + 1) / 2), 'options.bridgeLayer', 0),
      bridgeSpan: checkChoice(options.bridgeSpan ?? 'prefix', 'options.bridgeSpan', BRIDGE_SPANS),
      pooling: checkChoice(options.pooling ?? 'mean', 'options.pooling', POOLINGS),
      anchorType: checkChoice(options.anchorType ?? 'concat', 'options.anchorType', ANCHOR_TYPES),
    };
    const p = new Qwen2Policy(hf, config, seed, device, precision);
    p.params.set(initialParams(p.trainableSpecs, seed));
    p.resetAnchor();
    return p;
  }


  /** Device bytes of the policy's copy of the frozen weights: 4 per element, 2 with precision 'bf16'; 0 on the CPU (the loader's arrays are used in place). */
  get frozenDeviceBytes(): number {
    const set = this.#frozenSet;
    if (set === undefined) return 0;
    return set instanceof GradSet ? set.numElements * 4 : set.byteLength;
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
  override dispose(): void {
    super.dispose();
    this.#frozenSet?.dispose();
  }

  /** Names the call for qwen2Step (the binding checks the batch's arrays against the configuration). */
  protected stepArgs(mode: PolicyMode, batch: Qwen2Batch, sets: StepSets): RawQwen2StepOptions {
    return {
      config: this.config, mode, params: sets.params, anchor: sets.anchor, gAct: sets.gAct, gRet: sets.gRet, frozen: this.#frozen,
      prefix: batch.prefix ?? null, inputIds: batch.inputIds ?? null, actions: batch.actions, batch: batch.size,
      accumulate: sets.accumulate, scale: sets.scale, precision: sets.precision,
    };
  }
}

/**
 * Seeded initial values: LoRA A as PEFT's default (kaiming-uniform, a = √5: U(±1/√in)),
 * B = 0; action queries N(0, 0.02²); the head's layers as nn.Linear's default (U(±1/√in)).
 */
function initialParams(specs: readonly TensorSpec[], seed: number): Float32Array {
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
