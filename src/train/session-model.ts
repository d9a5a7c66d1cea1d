// The model half of a training session: what the run trains (the built-in model, or a
// Qwen2 backbone with LoRA from a Hugging Face directory), its data and its split, and what
// its checkpoints hold beyond the trainer's state. runTrainingSession (session.ts) drives
// either through this one interface, so the loop, checkpoints and resume are the same code.
import { syntheticDataset, loadDatasetFile, splitByEpisode, nShot } from '../data/index.js';
import { loadSequenceDatasetFile, nShotSequence, splitSequenceByEpisode } from '../data/sequence-dataset.js';
import { AdapterPolicy, AdapterPolicySource, modelConfigFromRunConfig } from '../model/index.js';
import { checkSameBase } from '../model/checkpoint.js';
import { BatchSource } from '../model/batch-source.js';
import {
  Qwen2Policy, Qwen2PolicySource, baseModelMismatch, loadHfModel, policyTensorSpecs, readPeftAdapter, readPolicyFile, loraTensorName,
  type BaseModelRecord, type Qwen2Linear,
} from '../model/qwen2/index.js';
import type { Tensor } from '../formats/tensor.js';
import type { TensorGroups } from '../run/checkpoint-layout.js';
import type { ResumePoint } from '../run/run-directory.js';
import type { TrainRunConfig } from './run-config.js';
import { checkSplit, refuseShuffleBuffer, requireKind } from './session-checks.js';
import { vlaModel } from './session-vla.js';
import { isPrismaticBaseDirectory, isVlaModelDirectory } from '../model/vla/index.js';

/** The model and data of a run, as the session needs them. */
export interface SessionModel {
  /** The Trainer's source (sampler, shares, validation). */
  readonly source: BatchSource<unknown>;
  /** What multi-process training compares and broadcasts (src/parallel's RankModel). */
  readonly rankModel: {
    anchorTensors(): Record<string, Tensor>;
    loadAnchor(tensors: Record<string, Tensor>, name?: string): void;
    frozenTensors(): Record<string, Tensor>;
  };
  /** The configuration as run (batch_size capped to the training split when it was larger). */
  readonly config: TrainRunConfig;
  readonly trainSamples: number;
  readonly valSamples: number;
  /** Checks the checkpoint was made on this model's base, then loads its anchor. Throws what does not fit. */
  restore(resumed: ResumePoint): void;
  /** What the checkpoint of `step` holds besides the trainer's tensors: groups, other files, state.json's `model`. */
  checkpointParts(step: number): { groups: TensorGroups; files?: Record<string, Uint8Array>; model: unknown };
}

/** What the session hands the builders. */
export interface SessionModelContext {
  resume: boolean;
  log: (line: string) => void;
  /** How refusals name config keys (flags in the CLI). */
  keyName: (key: string) => string;
  /** This rank's place (multi-process training). */
  shard?: { rank: number; ranks: number } | undefined;
}

/** The session model a run configuration asks for. */
export async function openSessionModel(c: TrainRunConfig, ctx: SessionModelContext): Promise<SessionModel> {
  if (c.model === null || c.model === undefined) return builtInModel(c, ctx);
  // A VLA-Adapter checkpoint is recognised by its config.json (timm_model_ids); else Qwen2.
  if (await isVlaModelDirectory(c.model)) return vlaModel(c, ctx);
  if (await isPrismaticBaseDirectory(c.model)) return vlaModel(c, ctx, { prismatic: true });
  if (c.vla_config !== null) throw new RangeError(`${ctx.keyName('vla_config')} applies to a Prismatic base VLM as ${ctx.keyName('model')}; ${c.model} is not one`);
  return qwen2Model(c, ctx);
}

async function builtInModel(c0: TrainRunConfig, ctx: SessionModelContext): Promise<SessionModel> {
  for (const key of ['init_adapter', 'init_policy'] as const) {
    if (c0[key] !== null && c0[key] !== undefined) throw new RangeError(`${ctx.keyName(key)} applies to a Qwen2 model (${ctx.keyName('model')} DIR), not to the built-in model`);
  }
  refuseShuffleBuffer(c0, ctx, 'the built-in model trains on a tensor dataset');
  const all = c0.data === 'synthetic'
    ? syntheticDataset({ seed: c0.seed, tokens: c0.tokens, width: c0.width, chunk: c0.chunk, actionDims: c0.action_dims })
    : await loadDatasetFile(c0.data);
  const split = splitByEpisode(all, { valFraction: c0.val_fraction, seed: c0.seed });
  const train = c0.shots_per_task === null ? split.train : nShot(split.train, c0.shots_per_task);
  const c = checkSplit(c0, ctx, train.size, split.val.size, c0.data === 'synthetic' ? 'the synthetic data set' : c0.data);
  const modelConfig = modelConfigFromRunConfig(c);
  const model = c.base_weights === null
    ? AdapterPolicy.create(modelConfig, { seed: c.seed, device: c.device, precision: c.precision })
    : await AdapterPolicy.fromBaseWeightsFile(c.base_weights, modelConfig, { seed: c.seed, device: c.device, precision: c.precision });
  const source = new AdapterPolicySource(model, train, {
    batchSize: c.batch_size, seed: c.seed, ...(split.val.size > 0 ? { val: split.val } : {}),
    ...(ctx.shard ? { shard: ctx.shard } : {}),
  });
  return {
    source: source as BatchSource<unknown>, rankModel: model, config: c, trainSamples: train.size, valSamples: split.val.size,
    restore(resumed) {
      requireKind(resumed, 'adapter_policy', ctx);
      // Same frozen base as the checkpoint's (a base weights file may have changed since).
      if (resumed.tensors.base) checkSameBase(model.frozenTensors(), resumed.tensors.base, `${resumed.dir}/base.safetensors`);
      if (resumed.tensors.anchor) model.loadAnchor(resumed.tensors.anchor, 'anchor.safetensors');
    },
    // Shaped tensors and the frozen base: the checkpoint alone rebuilds the model.
    checkpointParts: () => ({ groups: { anchor: model.anchorTensors(), base: model.frozenTensors() }, model: model.describe() }),
  };
}

/** state.json's `model` for a Qwen2 run: the base it was trained on and the policy's options. */
interface Qwen2Description {
  kind: 'qwen2_policy';
  base: BaseModelRecord;
  options: Record<string, unknown>;
}

async function qwen2Model(c0: TrainRunConfig, ctx: SessionModelContext): Promise<SessionModel> {
  const name = ctx.keyName;
  if (c0.data === 'synthetic') {
    throw new RangeError(`${name('model')} needs ${name('data')} FILE: a .npz or .safetensors file with prefix (N, P, D) and/or input_ids (N, S), and actions (N, K·A)`);
  }
  if (c0.base_weights !== null) throw new RangeError(`${name('base_weights')} applies to the built-in model; ${name('model')} ${c0.model} brings its own weights`);
  refuseShuffleBuffer(c0, ctx, `a Qwen2 model trains on a sequence dataset file`);
  const hf = await loadHfModel(c0.model!);
  const all = await loadSequenceDatasetFile(c0.data, { hiddenSize: hf.config.hiddenSize, vocabSize: hf.config.vocabSize });
  const split = splitSequenceByEpisode(all, { valFraction: c0.val_fraction, seed: c0.seed });
  const train = c0.shots_per_task === null ? split.train : nShotSequence(split.train, c0.shots_per_task);
  const c = checkSplit(c0, ctx, train.size, split.val.size, c0.data);
  const model = Qwen2Policy.fromHfModel(hf, {
    rank: c.rank, alpha: c.alpha, targets: c.lora_targets, prefixTokens: all.prefixTokens, promptTokens: all.promptTokens,
    chunk: c.chunk, actionDims: c.action_dims, headWidth: c.head_width,
    ...(c.bridge_block === null ? {} : { bridgeLayer: c.bridge_block }),
    bridgeSpan: c.bridge_span === 'vision' ? 'prefix' : c.bridge_span === 'vision+prompt' ? 'prefix+prompt' : c.bridge_span,
    pooling: c.pooling, anchorType: c.anchor_type, seed: c.seed, device: c.device, precision: c.precision,
  });
  // A new run may start from a saved adapter and policy; the anchor is then those weights.
  // (On resume the checkpoint's parameters and anchor replace all of this.)
  if (!ctx.resume) await loadInitialWeights(model, c, name, ctx.log);
  const source = new Qwen2PolicySource(model, train, {
    batchSize: c.batch_size, seed: c.seed, ...(split.val.size > 0 ? { val: split.val } : {}),
    ...(ctx.shard ? { shard: ctx.shard } : {}),
  });
  const describe = (): Qwen2Description => ({ kind: 'qwen2_policy', base: model.baseRecord(), options: { ...model.options } });
  return {
    source: source as BatchSource<unknown>, rankModel: model, config: c, trainSamples: train.size, valSamples: split.val.size,
    restore(resumed) {
      requireKind(resumed, 'qwen2_policy', ctx);
      const recorded = (resumed.model as Qwen2Description).base;
      const why = baseModelMismatch(recorded, model.baseRecord());
      if (why) throw new RangeError(`${name('model')} ${c.model} is not the base model this run was trained on: ${why}`);
      model.loadAnchor(resumed.tensors.anchor ?? {}, 'anchor.safetensors');
    },
    checkpointParts() {
      const files: Record<string, Uint8Array> = {};
      for (const [f, bytes] of Object.entries(model.peftAdapterFiles())) files[`adapter/${f}`] = bytes;
      return { groups: { anchor: model.anchorTensors(), policy: model.policyTensors() }, files, model: describe() };
    },
  };
}

/** --init-adapter and --init-policy: their tensors replace the seeded ones, then the anchor is reset to them. */
async function loadInitialWeights(model: Qwen2Policy, c: TrainRunConfig, name: (k: string) => string, log: (line: string) => void): Promise<void> {
  if (c.init_adapter === null && c.init_policy === null) return;
  const o = model.options;
  if (c.init_adapter !== null) {
    const read = await readPeftAdapter(c.init_adapter, model.hf.config, { rank: o.rank, alpha: o.alpha, targets: o.targets });
    for (const w of read.warnings) log(`craftgrad: warning: ${name('init_adapter')} ${c.init_adapter}: ${w}`);
    const tensors: Record<string, Tensor> = {};
    read.adapter.layers.forEach((pairs, l) => {
      for (const t of o.targets as readonly Qwen2Linear[]) {
        const spec = model.trainableSpecs.find((s) => s.name === loraTensorName(l, t, 'A'))!;
        const specB = model.trainableSpecs.find((s) => s.name === loraTensorName(l, t, 'B'))!;
        tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: pairs[t]!.a };
        tensors[specB.name] = { dtype: 'F32', shape: specB.shape, data: pairs[t]!.b };
      }
    });
    model.loadSomeTrainable(tensors, `${name('init_adapter')} ${c.init_adapter}`);
  }
  if (c.init_policy !== null) {
    const shape = { queries: o.chunk, width: model.hf.config.hiddenSize, headWidth: o.headWidth, actionDims: o.actionDims };
    const p = await readPolicyFile(c.init_policy, shape);
    const tensors: Record<string, Tensor> = {};
    for (const t of policyTensorSpecs(shape)) tensors[t.name] = { dtype: 'F32', shape: t.shape, data: p[t.field] };
    model.loadSomeTrainable(tensors, `${name('init_policy')} ${c.init_policy}`);
  }
  model.resetAnchor();
}
