// The model half of a training session on VLA-Adapter (README "Fine-tuning VLA-Adapter";
// ARCHITECTURE.md §4d): the checkpoint directory read (src/model/vla), the policy and its
// source on a VLA dataset file, and what every checkpoint holds besides the trainer's state:
// the anchor, and upstream's own files (the PEFT adapter `lora_adapter/`, the head and
// proprio projector `.pt` files of the step, `action_queries.safetensors`,
// `dataset_statistics.json`) so VLA-Adapter's evaluation reads a checkpoint as it reads its own.
import { stat } from 'node:fs/promises';
import { encodeTorchPt } from '../formats/index.js';
import { nShotIndices, splitIndicesByEpisode } from '../data/dataset.js';
import { datasetStatisticsJson, promptInputIds, loadPromptTokenizer, readDatasetStatistics as readRldsStatistics, type RldsSamples } from '../data/rlds/index.js';
import { loadRldsForVla, RldsVlaSource } from '../model/vla/rlds-source.js';
import { loadVlaDatasetFile, nShotVla, splitVlaByEpisode } from '../data/vla-dataset.js';
import { BatchSource } from '../model/batch-source.js';
import { baseModelMismatch, encodePeftAdapter, type BaseModelRecord } from '../model/qwen2/index.js';
import {
  ACTION_QUERIES, DATASET_STATISTICS_PLACEHOLDER, LORA_ADAPTER_DIR, loadPrismaticBase, readVlaPeftAdapter, actionHeadFileName, initFilmGen, initUntrainedLora, loadVlaDirectory, proprioFileName,
  vlaHeadStateDicts, vlaPeftTargetModules, vlaPeftTensors, type F32Tensor, type VlaDirectory,
} from '../model/vla/index.js';
import { VlaPolicy, VlaPolicySource, type VlaModelParts } from '../model/vla/index.js';
import type { Tensor } from '../formats/tensor.js';
import type { TrainRunConfig } from './run-config.js';
import type { SessionModel, SessionModelContext } from './session-model.js';
import { checkSplit, refuseShuffleBuffer, requireKind } from './session-checks.js';

/** state.json's `model` for a VLA-Adapter run. */
interface VlaDescription {
  kind: 'vla_adapter';
  base: BaseModelRecord;
  options: Record<string, unknown>;
}

/** What a checkpoint records about the directory: the config as read and the weight files' sha256. */
function baseRecord(d: VlaDirectory): BaseModelRecord {
  const { towers, projectorHidden, text } = d.config;
  const config = { towers: towers.map((t) => ({ ...t })), projectorHidden, text: { ...text } } as unknown as Record<string, unknown>;
  return { architecture: 'vla_adapter' as unknown as 'qwen2', config, files: d.files.map((f) => ({ ...f })) };
}

/** The policy's view of a loaded directory. */
function partsOf(d: VlaDirectory): VlaModelParts {
  const t = d.config.text;
  const initial: Record<string, Tensor> = {};
  const D = t.hiddenSize;
  if (d.actionQueries) initial[ACTION_QUERIES] = { dtype: 'F32', shape: [d.actionQueries.length / D, D], data: d.actionQueries };
  for (const [n, v] of d.heads?.trainable ?? []) initial[n] = { dtype: 'F32', shape: [...v.shape], data: v.data };
  const tower = (k: 0 | 1) => {
    const x = d.config.towers[k];
    return {
      embedDim: x.embedDim, depth: x.depth, numHeads: x.numHeads, mlpHidden: x.mlpHidden, patchSize: x.patchSize, imageSize: x.imageSize,
      classToken: x.classToken, regTokens: x.regTokens, layerScale: x.layerScale, layerNormEps: x.layerNormEps,
    };
  };
  return {
    dir: d.dir, towers: [tower(0), tower(1)], projectorHidden: d.config.projectorHidden,
    llm: {
      hiddenSize: D, numLayers: t.numLayers, numHeads: t.numHeads, numKvHeads: t.numKvHeads, intermediateSize: t.intermediateSize,
      vocabSize: t.vocabSize, rmsNormEps: t.rmsNormEps, ropeTheta: t.ropeTheta,
    },
    frozen: d.frozen.map((g) => g.data), initial,
    ...(d.heads ? { head: { blocks: d.heads.headBlocks, actionDims: d.heads.actionDims } } : {}),
    ...(d.heads && d.heads.proprioDim > 0 ? { proprioDim: d.heads.proprioDim } : {}),
    ...(d.actionQueries ? { queries: d.actionQueries.length / D } : {}),
  };
}

/** The model directory (an HF VLA-Adapter checkpoint, or the Prismatic base with --vla-config). */
async function openBase(c0: TrainRunConfig, ctx: SessionModelContext, prismatic: boolean): Promise<VlaDirectory> {
  const name = ctx.keyName;
  if (prismatic) {
    if (c0.vla_config === null) {
      throw new RangeError(`${name('model')} ${c0.model} is a Prismatic base VLM: give ${name('vla_config')} DIR, the VLA-Adapter config directory with its shapes (config.json + preprocessor_config.json: upstream's pretrained_models/configs)`);
    }
    // The base has no head, proprio projector, queries or statistics: upstream starts them fresh.
    return { ...(await loadPrismaticBase(c0.model!, { configDir: c0.vla_config })), kind: 'hf', heads: null, datasetStatistics: null };
  }
  if (c0.vla_config !== null) throw new RangeError(`${name('vla_config')} applies to a Prismatic base VLM; ${c0.model} is a VLA-Adapter directory with its own config.json`);
  return loadVlaDirectory(c0.model!, { head: { actionDims: c0.action_dims } });
}

/** The policy on the directory with the run's options; S input ids per sample, P8 proprio values in the data. */
function makePolicy(c: TrainRunConfig, dir: VlaDirectory, inputIds: number, dataProprio: number): VlaPolicy {
  const span = c.bridge_span === 'prefix' || c.bridge_span === 'vision' ? 'vision' : 'vision+prompt';
  const parts = partsOf(dir);
  return VlaPolicy.create(parts, {
    rank: c.rank, alpha: c.alpha, views: c.views, inputIds, useProprio: c.use_proprio, chunk: c.chunk, actionDims: c.action_dims,
    ...(parts.proprioDim !== undefined ? {} : dataProprio > 0 ? { proprioDim: dataProprio } : {}),
    headNoise: c.head_noise, ...(c.bridge_block === null ? {} : { bridgeLayer: c.bridge_block }),
    bridgeSpan: span, pooling: c.pooling, anchorType: c.anchor_type, seed: c.seed, device: c.device, precision: c.precision,
  });
}

function refuseOthers(c0: TrainRunConfig, ctx: SessionModelContext): void {
  const name = ctx.keyName;
  if (c0.data === 'synthetic') {
    throw new RangeError(`${name('model')} ${c0.model} is a VLA-Adapter directory: ${name('data')} must be an RLDS dataset directory or a VLA tensor file (.npz or .safetensors with images (N, V, H, W, 3) uint8, input_ids (N, S), actions (N, chunk·A), proprio (N, 8))`);
  }
  if (c0.base_weights !== null) throw new RangeError(`${name('base_weights')} applies to the built-in model; ${name('model')} ${c0.model} brings its own weights`);
  if (c0.init_policy !== null) throw new RangeError(`${name('init_policy')} applies to a Qwen2 model; a VLA-Adapter directory brings its head, proprio projector and action queries (or starts them as upstream does)`);
}

/**
 * A VLA-Adapter session on an HF checkpoint directory, or (`prismatic`) on the Prismatic base
 * VLM the seed starts from, whose shapes come from --vla-config (finetune.py:777-815); the
 * data an RLDS dataset directory or a VLA tensor file.
 */
export async function vlaModel(c0: TrainRunConfig, ctx: SessionModelContext, { prismatic = false } = {}): Promise<SessionModel> {
  refuseOthers(c0, ctx);
  if (await isDirectory(c0.data)) return rldsVlaModel(c0, ctx, prismatic);
  const name = ctx.keyName;
  if (c0.stats !== null) throw new RangeError(`${name('stats')} applies to an RLDS dataset directory as ${name('data')}; ${c0.data} is a tensor file, already normalised`);
  refuseShuffleBuffer(c0, ctx, `${c0.data} is a tensor file`);
  const all = await loadVlaDatasetFile(c0.data);
  const dir = await openBase(c0, ctx, prismatic);
  const split = splitVlaByEpisode(all, { valFraction: c0.val_fraction, seed: c0.seed });
  const train = c0.shots_per_task === null ? split.train : nShotVla(split.train, c0.shots_per_task);
  const c = checkSplit(c0, ctx, train.size, split.val.size, c0.data);
  const model = makePolicy(c, dir, all.inputIds, all.proprioDim);
  const untrained = await initialAdapter(c, ctx, dir, model);
  const source = new VlaPolicySource(model, train, {
    batchSize: c.batch_size, seed: c.seed, normalization: dir.normalize, ...(split.val.size > 0 ? { val: split.val } : {}),
    ...(ctx.shard ? { shard: ctx.shard } : {}),
  });
  // The model directory's statistics (the tensor file's data is already normalised with them);
  // a directory without them gets upstream's shape with a note (outputs.ts's placeholder).
  const stats = dir.datasetStatistics ? dir.datasetStatistics.text : JSON.stringify(DATASET_STATISTICS_PLACEHOLDER, null, 2) + '\n';
  return vlaSession(c, ctx, dir, model, source as BatchSource<unknown>, untrained, stats, { train: train.size, val: split.val.size });
}

/** The run's data from an RLDS/TFDS directory (src/model/vla/rlds-source.ts). */
async function rldsVlaModel(c0: TrainRunConfig, ctx: SessionModelContext, prismatic: boolean): Promise<SessionModel> {
  const name = ctx.keyName;
  const dir = await openBase(c0, ctx, prismatic);
  const tokenizer = await loadPromptTokenizer(prismatic ? c0.vla_config! : c0.model!);
  const statistics = c0.stats === null ? undefined : await readRldsStatistics(c0.stats, { actionDim: c0.action_dims, proprioDim: 8 });
  const data = await loadRldsForVla(c0.data, { ...(statistics ? { statistics, statisticsFile: c0.stats! } : {}) });
  const s = data.samples;
  const { train: tr, val } = splitIndicesByEpisode(s, { valFraction: c0.val_fraction, seed: c0.seed });
  const train = c0.shots_per_task === null ? tr : shotIndicesWithin(s, tr, c0.shots_per_task);
  const c = checkSplit(c0, ctx, train.length, val.length, c0.data);
  const longest = Math.max(...s.instructions.map((t) => promptInputIds(tokenizer, t, dir.actionQueries ? dir.actionQueries.length / dir.config.text.hiddenSize : 64).length));
  const model = makePolicy(c, dir, longest, s.proprioDim);
  const untrained = await initialAdapter(c, ctx, dir, model);
  const source = new RldsVlaSource(model, data, {
    batchSize: c.batch_size, seed: c.seed, train, val, normalization: dir.normalize, tokenizer, ...(ctx.shard ? { shard: ctx.shard } : {}),
    shuffleBuffer: c.shuffle_buffer ?? 0,
  });
  ctx.log(`craftgrad: ${data.source}: ${s.episodes} episodes, ${s.size} samples (${train.length} training, ${val.length} validation), ` +
    `${s.instructions.length} instructions; statistics ${s.statisticsComputed ? 'computed' : `from ${name('stats')} ${c0.stats}`}` +
    `; ${c.shuffle_buffer > 0 ? `shuffle buffer of ${c.shuffle_buffer} samples` : 'a permutation per epoch'}`);
  const stats = datasetStatisticsJson({ [data.dataset.name]: s.statistics });
  return vlaSession(c, ctx, dir, model, source as unknown as BatchSource<unknown>, untrained, stats, { train: train.length, val: val.length });
}

/** --init-adapter's factors, and the untrained ones (initial, or the adapter's) to write back. */
async function initialAdapter(c: TrainRunConfig, ctx: SessionModelContext, dir: VlaDirectory, model: VlaPolicy): Promise<ReadonlyMap<string, F32Tensor>> {
  // Modules PEFT 0.11.1 adapts that never reach the loss: kept at their initial values (or
  // the given adapter's) and written back.
  let untrained: ReadonlyMap<string, F32Tensor> = initUntrainedLora(dir.config, c.rank, c.seed);
  if (!ctx.resume && c.init_adapter !== null) {
    const name = ctx.keyName;
    const read = await readVlaPeftAdapter(c.init_adapter, dir.config, { rank: c.rank, alpha: c.alpha });
    for (const w of read.warnings) ctx.log(`craftgrad: warning: ${name('init_adapter')} ${c.init_adapter}: ${w}`);
    model.loadSomeTrainable(read.trained, `${name('init_adapter')} ${c.init_adapter}`);
    untrained = new Map([...untrained, ...read.untrained]);
    model.resetAnchor();
  }
  return untrained;
}

/** What both data paths share: resume checks and each checkpoint's upstream files. */
function vlaSession(c: TrainRunConfig, ctx: SessionModelContext, dir: VlaDirectory, model: VlaPolicy, source: BatchSource<unknown>,
  untrained: ReadonlyMap<string, F32Tensor>, statsText: string, sizes: { train: number; val: number }): SessionModel {
  const name = ctx.keyName;
  const filmGen = dir.heads?.filmGen ?? initFilmGen(dir.config.text.hiddenSize, model.config.headBlocks, c.seed);
  const describe = (): VlaDescription => ({ kind: 'vla_adapter', base: baseRecord(dir), options: { ...model.options } });
  const stats = new TextEncoder().encode(statsText);
  return {
    source, rankModel: model, config: c, trainSamples: sizes.train, valSamples: sizes.val,
    restore(resumed) {
      requireKind(resumed, 'vla_adapter', ctx);
      const recorded = (resumed.model as VlaDescription).base;
      const why = baseModelMismatch(recorded, baseRecord(dir));
      if (why) throw new RangeError(`${name('model')} ${c.model} is not the base model this run was trained on: ${why}`);
      model.loadAnchor(resumed.tensors.anchor ?? {}, 'anchor.safetensors');
    },
    checkpointParts(step) {
      const trained = new Map<string, Float32Array>();
      for (const [n, t] of Object.entries(model.trainableTensors())) trained.set(n, t.data as Float32Array);
      const lora = vlaPeftTensors({ config: dir.config, rank: c.rank, alpha: c.alpha, trained, untrained, baseModelNameOrPath: c.model });
      const adapter = encodePeftAdapter(lora, { rank: c.rank, alpha: c.alpha, targets: vlaPeftTargetModules(dir.config) }, c.model,
        { init_lora_weights: 'gaussian' });
      const mc = model.config;
      const { head, proprio } = vlaHeadStateDicts({
        hiddenSize: mc.hiddenSize, headBlocks: mc.headBlocks, actionDims: mc.actionDims, proprioDim: mc.proprioDim, trained, filmGen,
      });
      const files: Record<string, Uint8Array> = {
        [`${LORA_ADAPTER_DIR}/adapter_model.safetensors`]: adapter.weights,
        [`${LORA_ADAPTER_DIR}/adapter_config.json`]: adapter.config,
        [actionHeadFileName(step)]: encodeTorchPt(head),
        'dataset_statistics.json': stats,
      };
      if (proprio !== null) files[proprioFileName(step)] = encodeTorchPt(proprio);
      const q = model.trainableTensors()[ACTION_QUERIES]!;
      return { groups: { anchor: model.anchorTensors(), action_queries: { [ACTION_QUERIES]: q } }, files, model: describe() };
    },
  };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** --shots-per-task within the training indices: the first n episodes of each task. */
function shotIndicesWithin(s: RldsSamples, idx: readonly number[], n: number): number[] {
  const sub = { size: idx.length, task: Int32Array.from(idx, (i) => s.task[i]!), episode: Int32Array.from(idx, (i) => s.episode[i]!) };
  return nShotIndices(sub, n).map((k) => idx[k]!);
}
