// VlaPolicy: VLA-Adapter (docs/VLA-ADAPTER.md; ARCHITECTURE.md §4d) with PEFT LoRA on every
// linear of its towers, projector and decoder, its learnable action queries, proprio
// projector and Pro action head. A LoraPolicy (lora-policy.ts: parameters, anchor, steps and
// their checks) whose native call (vlaStep) gives the action and retention losses and both
// gradient sets. The frozen weights are the loaded groups (the layout of vlaTensors().frozen):
// used in place on the CPU, uploaded once into one device set on a GPU (in bf16 with precision
// 'bf16': half the device memory, ARCHITECTURE.md §8 "Precision").
import { checkModelPrecision, type Precision, type PrecisionSpec } from '../../precision.js';
import * as native from '../../native-calls.js';
import type { RawVitConfig, RawVlaConfig, RawVlaStepOptions, TensorSet } from '../../../binding.js';
import { GradSet, gradSetInternals } from '../../gradset.js';
import { resolveDataDevice, type DeviceSpec, type ResolvedDevice } from '../../device.js';
import { argRangeError } from '../../errors.js';
import { checkBoolean, checkChoice, checkFiniteNumber, checkInteger, checkOptions } from '../../validate.js';
import { Rng } from '../../data/rng.js';
import type { VlaBatch } from '../../data/vla-dataset.js';
import type { Tensor } from '../../formats/tensor.js';
import { LoraPolicy, type StepSets } from '../lora-policy.js';
import { ANCHOR_TYPES, POOLINGS, type AnchorType, type Pooling, type PolicyMode, type TensorSpec } from '../policy-types.js';

/** The positions C_R covers: the vision tokens, or the vision and prompt tokens. */
export type VlaBridgeSpan = 'vision' | 'vision+prompt';
export const VLA_BRIDGE_SPANS: readonly VlaBridgeSpan[] = Object.freeze(['vision', 'vision+prompt']);

/** What a VLA-Adapter directory gives the policy (src/model/vla/ reads it). */
export interface VlaModelParts {
  /** The directory as given. */
  dir: string;
  /** [featurizer, fused_featurizer]. */
  towers: readonly [RawVitConfig, RawVitConfig];
  projectorHidden: number;
  /** The Qwen2 backbone's sizes (config.json's text_config). */
  llm: {
    hiddenSize: number; numLayers: number; numHeads: number; numKvHeads: number; intermediateSize: number; vocabSize: number;
    rmsNormEps: number; ropeTheta: number;
  };
  /** The frozen groups, in vlaTensors(config).frozen order. */
  frozen: readonly Float32Array[];
  /**
   * Trainable tensors the directory holds, by the policy's names (action_queries.weight,
   * proprio_projector.*, action_head.model.*): they replace the initial values.
   */
  initial: Readonly<Record<string, Tensor>>;
  /** The head's shape when the directory has a head file (else VLA-Adapter's defaults; the chunk is in no shape). */
  head?: { blocks: number; actionDims: number } | undefined;
  /** Proprio values the directory's proprio projector takes (absent: no file). */
  proprioDim?: number | undefined;
  /** Action queries in the directory's action_queries.weight (absent: none). */
  queries?: number | undefined;
}

export interface VlaPolicyOptions {
  /** LoRA rank r (default 32). */
  rank?: number;
  /** LoRA alpha (default 2·rank, as VLA-Adapter's finetune.py). */
  alpha?: number;
  /** Camera views per sample (default 2: the third-person and the wrist camera). */
  views?: number;
  /** S, input ids per sample (BOS first, the action placeholders last). */
  inputIds: number;
  /** Action queries Q (default: the directory's, else 64). */
  queries?: number;
  /** Feed the proprio token to the head (default true). */
  useProprio?: boolean;
  /** Head blocks (default: the head file's, else numLayers). */
  headBlocks?: number;
  /** Action chunk and dims (default: the head file's, else 8 and 7). */
  chunk?: number;
  actionDims?: number;
  /** Proprio values per sample (default: the proprio file's, else 8). */
  proprioDim?: number;
  /** The head's input perturbation std in training (default 0.02; 0: none). */
  headNoise?: number;
  /** m: C_R = hidden_states[m] (default ⌊(L+1)/2⌋, the seed's num_layers // 2). */
  bridgeLayer?: number;
  bridgeSpan?: VlaBridgeSpan;
  pooling?: Pooling;
  anchorType?: AnchorType;
  /** Seed of the initial LoRA A, head and projector where the directory has none (default 0). */
  seed?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: DeviceSpec;
  /** 'fp32' (default), 'bf16' (a CUDA device only) or 'auto' (bf16 where the GPU supports it): the products' precision ({@link LoraPolicy.precision}); config.json records it, not the checkpoint. */
  precision?: PrecisionSpec;
}

const OPTION_KEYS = ['rank', 'alpha', 'views', 'inputIds', 'queries', 'useProprio', 'headBlocks', 'chunk', 'actionDims', 'proprioDim',
  'headNoise', 'bridgeLayer', 'bridgeSpan', 'pooling', 'anchorType', 'seed', 'device', 'precision'];

export class VlaPolicy extends LoraPolicy<VlaBatch, RawVlaStepOptions> {
  readonly parts: VlaModelParts;
  /** The native configuration (binding.d.ts RawVlaConfig). */
  readonly config: RawVlaConfig;
  /** The options as resolved (what a checkpoint records). */
  readonly options: Readonly<Required<Omit<VlaPolicyOptions, 'device' | 'precision'>>>;
  readonly frozenSpecs: readonly TensorSpec[];
  readonly #frozen: RawVlaStepOptions['frozen'];
  readonly #frozenSet: GradSet | TensorSet | undefined;

  private constructor(parts: VlaModelParts, config: RawVlaConfig, options: Required<Omit<VlaPolicyOptions, 'device' | 'precision'>>, device: ResolvedDevice,
    precision: Precision) {
    const t = native.vlaTensors(config);
    const spec = (d: { name: string; shape: number[] }): TensorSpec => ({ ...d, size: d.shape.reduce((a, b) => a * b, 1) });
    const specs = t.trainable.map(spec);
    super(device, specs, specs.slice(0, t.anchorTensors), { noun: 'policy', step: native.vlaStep, stepAsync: native.vlaStepAsync }, precision);
    this.parts = parts;
    this.config = Object.freeze(config);
    this.options = Object.freeze(options);
    this.frozenSpecs = Object.freeze(t.frozen.map(spec));
    if (parts.frozen.length !== this.frozenSpecs.length) {
      throw argRangeError(`${parts.dir}: ${parts.frozen.length} frozen weight groups loaded but the model needs ${this.frozenSpecs.length}`);
    }
    this.frozenSpecs.forEach((s, i) => {
      if (parts.frozen[i]!.length !== s.size) throw argRangeError(`${parts.dir}: frozen group ${s.name} has ${parts.frozen[i]!.length} values, the model needs ${s.size}`);
    });
    if (device.kind === 'cpu') {
      this.#frozenSet = undefined;
      this.#frozen = parts.frozen;
    } else {
      // With bf16: rounded on the way up, group by group; the device never holds an fp32 copy.
      this.#frozenSet = precision === 'bf16' ? native.uploadBf16Set(device.name, parts.frozen) : GradSet.fromArrays([...parts.frozen], { device: device.name });
      this.#frozen = this.#frozenSet instanceof GradSet ? gradSetInternals(this.#frozenSet) : this.#frozenSet;
    }
  }

  /** A seeded policy on a loaded directory: PEFT's initial LoRA (A ~ N(0, 1/r), B = 0), the directory's queries, head and proprio projector where present; anchor = the initial weights. */
  static create(parts: VlaModelParts, options: VlaPolicyOptions): VlaPolicy {
    checkOptions(options, OPTION_KEYS);
    const L = parts.llm.numLayers;
    const rank = checkInteger(options.rank ?? 32, 'options.rank', 1);
    const useProprio = checkBoolean(options.useProprio ?? true, 'options.useProprio');
    const resolved: Required<Omit<VlaPolicyOptions, 'device' | 'precision'>> = {
      rank,
      alpha: checkFiniteNumber(options.alpha ?? 2 * rank, 'options.alpha', { min: 0, exclusive: true }),
      views: checkInteger(options.views ?? 2, 'options.views', 1),
      inputIds: checkInteger(options.inputIds, 'options.inputIds', 1),
      queries: checkInteger(options.queries ?? parts.queries ?? 64, 'options.queries', 1),
      useProprio,
      headBlocks: checkInteger(options.headBlocks ?? parts.head?.blocks ?? L, 'options.headBlocks', 1),
      chunk: checkInteger(options.chunk ?? 8, 'options.chunk', 1),
      actionDims: checkInteger(options.actionDims ?? parts.head?.actionDims ?? 7, 'options.actionDims', 1),
      proprioDim: useProprio ? checkInteger(options.proprioDim ?? parts.proprioDim ?? 8, 'options.proprioDim', 1) : 0,
      headNoise: checkFiniteNumber(options.headNoise ?? 0.02, 'options.headNoise', { min: 0 }),
      bridgeLayer: checkInteger(options.bridgeLayer ?? Math.floor((L + 1) / 2), 'options.bridgeLayer', 0),
      bridgeSpan: checkChoice(options.bridgeSpan ?? 'vision', 'options.bridgeSpan', VLA_BRIDGE_SPANS),
      pooling: checkChoice(options.pooling ?? 'mean', 'options.pooling', POOLINGS),
      anchorType: checkChoice(options.anchorType ?? 'concat', 'options.anchorType', ANCHOR_TYPES),
      seed: checkInteger(options.seed ?? 0, 'options.seed', 0),
    };
    if (parts.queries !== undefined && parts.queries !== resolved.queries) {
      throw argRangeError(`options.queries ${resolved.queries} does not match ${parts.dir}'s action_queries.weight (${parts.queries} queries)`);
    }
    const device = resolveDataDevice(options.device ?? 'cpu', 'options.device');
    const precision = checkModelPrecision(options.precision, device.name);
    const l = parts.llm;
    const config: RawVlaConfig = {
      towers: parts.towers, views: resolved.views, projectorHidden: parts.projectorHidden,
      hiddenSize: l.hiddenSize, numLayers: l.numLayers, numHeads: l.numHeads, numKvHeads: l.numKvHeads, intermediateSize: l.intermediateSize,
      vocabSize: l.vocabSize, rmsNormEps: l.rmsNormEps, ropeTheta: l.ropeTheta, inputIds: resolved.inputIds, queries: resolved.queries,
      rank, alpha: resolved.alpha, headBlocks: resolved.headBlocks, chunk: resolved.chunk, actionDims: resolved.actionDims,
      proprioDim: resolved.proprioDim, bridgeLayer: resolved.bridgeLayer, bridgeSpan: resolved.bridgeSpan, pooling: resolved.pooling,
      anchorType: resolved.anchorType,
    };
    const p = new VlaPolicy(parts, config, resolved, device, precision);
    p.params.set(initialVlaParams(p.trainableSpecs, resolved.seed, rank));
    const given: Record<string, Tensor> = {};
    for (const [n, t] of Object.entries(parts.initial)) if (n !== 'action_queries.weight' || resolved.queries === parts.queries) given[n] = t;
    if (!useProprio) for (const n of Object.keys(given)) if (n.startsWith('proprio_projector.')) delete given[n];
    p.loadSomeTrainable(given, parts.dir);
    p.resetAnchor();
    return p;
  }


  /**
   * The head's input perturbation for one draw (VLA-Adapter's learnable_random_perturbations,
   * action_heads.py:13-16, 63-72: N(0, headNoise²), chunk × A·D, the same for every sample of
   * the batch), from the seed and the draw's name so a resumed run draws the same; null when
   * headNoise is 0.
   */
  headNoise(draw: string): Float32Array | null {
    const std = this.options.headNoise;
    if (std === 0) return null;
    const rng = new Rng(hashSeed(`${this.options.seed}|head-noise|${draw}`));
    const out = new Float32Array(this.config.chunk * this.config.actionDims * this.config.hiddenSize);
    for (let i = 0; i < out.length; i++) out[i] = std * rng.normal();
    return out;
  }

  /** Device bytes of the policy's copy of the frozen groups: 4 per element, 2 with precision 'bf16'; 0 on the CPU. */
  get frozenDeviceBytes(): number {
    const set = this.#frozenSet;
    if (set === undefined) return 0;
    return set instanceof GradSet ? set.numElements * 4 : set.byteLength;
  }

  /** The frozen groups by name (views of the loaded arrays): for comparing ranks' bases. */
  frozenTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.frozenSpecs.forEach((s, i) => (out[s.name] = { dtype: 'F32', shape: [s.size], data: this.parts.frozen[i]! }));
    return out;
  }

  override dispose(): void {
    super.dispose();
    this.#frozenSet?.dispose();
  }

  protected stepArgs(mode: PolicyMode, batch: VlaBatch, sets: StepSets): RawVlaStepOptions {
    // Prompts may differ in length between batches (RLDS: one call per prompt length).
    const S = batch.size > 0 ? batch.inputIds.length / batch.size : this.config.inputIds;
    return {
      config: S === this.config.inputIds ? this.config : { ...this.config, inputIds: S }, mode, params: sets.params, anchor: sets.anchor, gAct: sets.gAct, gRet: sets.gRet, frozen: this.#frozen,
      pixels: batch.pixels, inputIds: batch.inputIds, proprio: this.config.proprioDim > 0 ? batch.proprio : null, actions: batch.actions,
      noise: batch.noise ?? null, batch: batch.size, accumulate: sets.accumulate, scale: sets.scale, precision: sets.precision,
    };
  }
}

/** FNV-1a over a string: a 32-bit seed for a named draw. */
function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Seeded initial values as upstream makes them: LoRA A ~ N(0, 1/r) (PEFT init_lora_weights
 * "gaussian", finetune.py:833-838), B = 0; action_queries zeros (modeling_prismatic.py:376);
 * the head and proprio projector as PyTorch's defaults (nn.Linear: U(±1/√in) for weight and
 * bias; nn.LayerNorm: 1 and 0; gating_factor 0, action_heads.py:323). The directory's own
 * queries, head and projector then replace these where it has them.
 */
export function initialVlaParams(specs: readonly TensorSpec[], seed: number, rank: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(specs.reduce((a, s) => a + s.size, 0));
  let o = 0;
  for (const s of specs) {
    const v = out.subarray(o, o + s.size);
    o += s.size;
    const n = s.name;
    if (n.endsWith('lora_A.weight')) {
      for (let i = 0; i < v.length; i++) v[i] = (1 / rank) * rng.normal();
    } else if (n.endsWith('lora_B.weight') || n === 'action_queries.weight' || n.endsWith('gating_factor')) {
      // zeros
    } else if (/(layer_norm\d|ffn\.0)\.weight$/.test(n)) {
      v.fill(1);
    } else if (/(layer_norm\d|ffn\.0)\.bias$/.test(n)) {
      // zeros
    } else {
      const w = n.endsWith('.bias') ? specs.find((t) => t.name === n.slice(0, -'bias'.length) + 'weight')! : s;
      const b = 1 / Math.sqrt(w.shape[1]!);
      for (let i = 0; i < v.length; i++) v[i] = rng.range(-b, b);
    }
  }
  return out;
}
