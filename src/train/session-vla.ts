// The model half of a training session on VLA-Adapter (README "Fine-tuning VLA-Adapter";
// ARCHITECTURE.md §4d): the checkpoint directory read (src/model/vla), the policy and its
// source on a VLA dataset file, and what every checkpoint holds besides the trainer's state:
// the anchor, and upstream's own files (the PEFT adapter `lora_adapter/`, the head and
// proprio projector `.pt` files of the step, `action_queries.safetensors`,
// `dataset_statistics.json`) so VLA-Adapter's evaluation reads a checkpoint as it reads its own.
import { encodeTorchPt } from '../formats/index.js';
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
import { checkSplit, requireKind } from './session-checks.js';

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

/**
 * A VLA-Adapter session on an HF checkpoint directory, or (`prismatic`) on the Prismatic base
 * VLM the seed starts from, whose shapes come from --vla-config (finetune.py:777-815).
 */
export async function vlaModel(c0: TrainRunConfig, ctx: SessionModelContext, { prismatic = false } = {}): Promise<SessionModel> {
  const name = ctx.keyName;
  if (c0.data === 'synthetic') {
    throw new RangeError(`${name('model')} ${c0.model} is a VLA-Adapter directory: ${name('data')} must be a VLA dataset file (.npz or .safetensors with images (N, V, H, W, 3) uint8, input_ids (N, S), actions (N, chunk·A), proprio (N, 8))`);
  }
  if (c0.base_weights !== null) throw new RangeError(`${name('base_weights')} applies to the built-in model; ${name('model')} ${c0.model} brings its own weights`);
  if (c0.init_policy !== null) throw new RangeError(`${name('init_policy')} applies to a Qwen2 model; a VLA-Adapter directory brings its head, proprio projector and action queries (or starts them as upstream does)`);
  const all = await loadVlaDatasetFile(c0.data);
  let dir: VlaDirectory;
  if (prismatic) {
    if (c0.vla_config === null) {
      throw new RangeError(`${name('model')} ${c0.model} is a Prismatic base VLM: give ${name('vla_config')} DIR, the VLA-Adapter config directory with its shapes (config.json + preprocessor_config.json: upstream's pretrained_models/configs)`);
    }
    // The base has no head, proprio projector, queries or statistics: upstream starts them fresh.
    dir = { ...(await loadPrismaticBase(c0.model!, { configDir: c0.vla_config })), kind: 'hf', heads: null, datasetStatistics: null };
  } else {
    if (c0.vla_config !== null) throw new RangeError(`${name('vla_config')} applies to a Prismatic base VLM; ${c0.model} is a VLA-Adapter directory with its own config.json`);
    dir = await loadVlaDirectory(c0.model!, { head: { actionDims: c0.action_dims } });
  }
  const split = splitVlaByEpisode(all, { valFraction: c0.val_fraction, seed: c0.seed });
  const train = c0.shots_per_task === null ? split.train : nShotVla(split.train, c0.shots_per_task);
  const c = checkSplit(c0, ctx, train.size, split.val.size, c0.data);
  const span = c.bridge_span === 'prefix' || c.bridge_span === 'vision' ? 'vision' : 'vision+prompt';
  const parts = partsOf(dir);
  const model = VlaPolicy.create(parts, {
    rank: c.rank, alpha: c.alpha, views: c.views, inputIds: all.inputIds, useProprio: c.use_proprio, chunk: c.chunk, actionDims: c.action_dims,
    ...(parts.proprioDim !== undefined ? {} : all.proprioDim > 0 ? { proprioDim: all.proprioDim } : {}),
    headNoise: c.head_noise, ...(c.bridge_block === null ? {} : { bridgeLayer: c.bridge_block }),
    bridgeSpan: span, pooling: c.pooling, anchorType: c.anchor_type, seed: c.seed, device: c.device,
  });
  // Modules PEFT 0.11.1 adapts that never reach the loss, and the head's unused film_gen:
  // kept at their initial values (or the given adapter's / head file's) and written back.
  let untrained: ReadonlyMap<string, F32Tensor> = initUntrainedLora(dir.config, c.rank, c.seed);
  const filmGen = dir.heads?.filmGen ?? initFilmGen(dir.config.text.hiddenSize, model.config.headBlocks, c.seed);
  if (!ctx.resume && c.init_adapter !== null) {
    const read = await readVlaPeftAdapter(c.init_adapter, dir.config, { rank: c.rank, alpha: c.alpha });
    for (const w of read.warnings) ctx.log(`craftgrad: warning: ${name('init_adapter')} ${c.init_adapter}: ${w}`);
    model.loadSomeTrainable(read.trained, `${name('init_adapter')} ${c.init_adapter}`);
    untrained = new Map([...untrained, ...read.untrained]);
    model.resetAnchor();
  }
  const source = new VlaPolicySource(model, train, {
    batchSize: c.batch_size, seed: c.seed, normalization: dir.normalize, ...(split.val.size > 0 ? { val: split.val } : {}),
    ...(ctx.shard ? { shard: ctx.shard } : {}),
  });
  const describe = (): VlaDescription => ({ kind: 'vla_adapter', base: baseRecord(dir), options: { ...model.options } });
  // The model directory's statistics (the tensor file's data is already normalised with them);
  // a directory without them gets upstream's shape with a note (outputs.ts's placeholder).
  const stats = new TextEncoder().encode(dir.datasetStatistics ? dir.datasetStatistics.text : JSON.stringify(DATASET_STATISTICS_PLACEHOLDER, null, 2) + '\n');
  return {
    source: source as BatchSource<unknown>, rankModel: model, config: c, trainSamples: train.size, valSamples: split.val.size,
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
      };
      if (proprio !== null) files[proprioFileName(step)] = encodeTorchPt(proprio);
      files['dataset_statistics.json'] = stats;
      const q = model.trainableTensors()[ACTION_QUERIES]!;
      return { groups: { anchor: model.anchorTensors(), action_queries: { [ACTION_QUERIES]: q } }, files, model: describe() };
    },
  };
}
