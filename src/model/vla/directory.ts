// VLA-Adapter checkpoint directories in (docs/VLA-ADAPTER.md "Files"):
//
// - loadVlaDirectory: a Hugging Face directory as AutoModelForVision2Seq loads it —
//   config.json and preprocessor_config.json (config.ts), model.safetensors or its shards
//   (read by the loader every model shares, ../hf-weights.ts: streamed once into the frozen
//   groups of weights.ts, sha256 computed), action_queries.weight when the file has it
//   (returned apart: it is trainable), the action head and proprio projector files
//   (head-files.ts) and dataset_statistics.json (kept verbatim).
// - loadPrismaticBase: the Prismatic base VLM VLA-Adapter starts from (finetune.py:777-815):
//   DIR/config.json, DIR/checkpoints/latest-checkpoint.pt (or the one checkpoints/*.pt),
//   {"model": {"projector", "llm_backbone", "vision_backbone"}} with upstream's renames, plus
//   the HF config.json/preprocessor_config.json that give the shapes (upstream's
//   pretrained_models/configs).
//
// Tensors the model holds but never computes (each tower's last block and final norm,
// SigLIP's attn_pool, lm_head) are shape-checked and dropped: from a safetensors file they
// are never copied out of the read buffer (only hashed); from a .pt the reader holds the
// whole file while it is converted, and the groups keep only what is computed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import type { StreamOptions } from '../../formats/safetensors-stream.js';
import type { Tensor } from '../../formats/tensor.js';
import {
  HF_CONFIG_FILE, type HfTensorTarget, type HfWeightFile, checkModelDir, isFile, loadHfWeights, readJsonFile,
} from '../hf-weights.js';
import { type TowerNormalize, type VlaModelConfig, parseVlaConfig, parseVlaPreprocessor } from './config.js';
import { tensorToF32 } from './float.js';
import { type ReadHeadOptions, type VlaHeadFiles, readVlaHeadFiles } from './head-files.js';
import { type PtKey, type PtValue, type TorchPtIo, defaultTorchPtIo, ptStateDict } from './torch-pt-io.js';
import { ACTION_QUERIES, type FrozenGroup, allocateVlaFrozen, vlaFrozenLayout, vlaLmHead, vlaUncomputedTensors } from './weights.js';

export const PREPROCESSOR_FILE = 'preprocessor_config.json';
export const DATASET_STATISTICS_FILE = 'dataset_statistics.json';
/** upstream's NUM_TOKENS (prismatic/vla/constants.py): action_queries.weight's rows at the released size. */
export const DEFAULT_ACTION_QUERIES = 64;

const FORMAT = 'vla directory';

/** dataset_statistics.json as read: its exact text (written back byte for byte) and value. */
export interface DatasetStatistics {
  text: string;
  value: Record<string, unknown>;
}

/** What both kinds of base give: the shapes, the frozen groups and where they came from. */
export interface VlaBase {
  /** The directory as given. */
  dir: string;
  config: VlaModelConfig;
  /** config.json as parsed (the HF one). */
  rawConfig: Record<string, unknown>;
  normalize: readonly [TowerNormalize, TowerNormalize];
  /** The frozen groups in vlaFrozenGroups order. */
  frozen: FrozenGroup[];
  /** action_queries.weight (Q × D) when the weights hold it, else null. */
  actionQueries: Float32Array | null;
  /** The weight files read, with sha256. */
  files: HfWeightFile[];
  /** Storage dtypes of the kept tensors, sorted. */
  dtypes: string[];
}

export interface VlaDirectory extends VlaBase {
  kind: 'hf';
  /** The action head / proprio projector files, or null when the directory has none. */
  heads: VlaHeadFiles | null;
  datasetStatistics: DatasetStatistics | null;
}

export interface PrismaticBase extends VlaBase {
  kind: 'prismatic';
  /** The checkpoint read (DIR/checkpoints/…pt). */
  checkpoint: string;
  /** DIR/config.json's "model" object. */
  prismaticConfig: Record<string, unknown>;
}

export interface LoadVlaOptions extends Pick<StreamOptions, 'pieceBytes'> {
  /** The `.pt` reader (default: the formats layer's). */
  torchPt?: TorchPtIo;
  /** Rows action_queries.weight must have when the weights hold it (default: whatever they hold; upstream's NUM_TOKENS is 64). */
  queries?: number;
  /** Head-file choices and expectations (step, headBlocks, actionDims, proprioDim). */
  head?: Omit<ReadHeadOptions, 'torchPt' | 'hiddenSize' | 'numLayers'>;
}

/** A TorchPtIo that resolves the default implementation only when first used. */
function lazyIo(io: TorchPtIo | undefined): TorchPtIo {
  return {
    readTorchPtFile: (p) => (io ?? defaultTorchPtIo()).readTorchPtFile(p),
    writeTorchPtFile: (p, t) => (io ?? defaultTorchPtIo()).writeTorchPtFile(p, t),
  };
}

/** config.json and preprocessor_config.json of an HF VLA directory (no weights). */
export async function readVlaConfigFiles(dir: string): Promise<{ config: VlaModelConfig; rawConfig: Record<string, unknown>; normalize: readonly [TowerNormalize, TowerNormalize] }> {
  await checkModelDir(dir, 'a VLA-Adapter directory holds config.json, preprocessor_config.json and model.safetensors');
  const path = join(dir, HF_CONFIG_FILE);
  const rawConfig = await readJsonFile(path, FORMAT);
  const config = parseVlaConfig(rawConfig, path);
  const pre = join(dir, PREPROCESSOR_FILE);
  const normalize = parseVlaPreprocessor(await readJsonFile(pre, FORMAT), pre);
  return { config, rawConfig: rawConfig as Record<string, unknown>, normalize };
}

/** The tensors a VLA checkpoint holds: required (kept or checked) and optional, with the groups they fill. */
function vlaSpec(config: VlaModelConfig, queries: number | undefined): {
  required: Map<string, HfTensorTarget>;
  optional: Map<string, HfTensorTarget>;
  frozen: FrozenGroup[];
  actionQueries: () => Float32Array | null;
} {
  const { groups, views } = allocateVlaFrozen(vlaFrozenLayout(config));
  const required = new Map<string, HfTensorTarget>();
  for (const [name, v] of views) required.set(name, { shape: v.shape, dest: v.dest });
  for (const [name, shape] of vlaUncomputedTensors(config)) required.set(name, { shape, dest: null });
  const optional = new Map<string, HfTensorTarget>();
  const [lm, lmShape] = vlaLmHead(config.text);
  (config.text.tieWordEmbeddings ? optional : required).set(lm, { shape: lmShape, dest: null });
  let actionQueries: Float32Array | null = null;
  const alloc = (shape: readonly number[]): Float32Array => (actionQueries = new Float32Array(shape[0]! * shape[1]!));
  optional.set(ACTION_QUERIES, { shape: [queries ?? -1, config.text.hiddenSize], dest: alloc });
  return { required, optional, frozen: groups, actionQueries: () => actionQueries };
}

function checkQueries(q: number | undefined): number | undefined {
  if (q !== undefined && (!Number.isSafeInteger(q) || q < 1)) throw new RangeError(`options.queries must be a positive integer, got ${q}`);
  return q;
}

/** Reads dataset_statistics.json of `dir` if present. */
export async function readDatasetStatistics(dir: string): Promise<DatasetStatistics | null> {
  const path = join(dir, DATASET_STATISTICS_FILE);
  if (!(await isFile(path))) return null;
  const text = await readTextFile(path, FORMAT);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(FORMAT, `is not valid JSON (${(e as Error).message})`, { file: path });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FormatError(FORMAT, 'must be a JSON object (dataset name -> statistics)', { file: path });
  return { text, value: value as Record<string, unknown> };
}

/** Loads an HF VLA-Adapter directory (see the file's header). */
export async function loadVlaDirectory(dir: string, options: LoadVlaOptions = {}): Promise<VlaDirectory> {
  const { config, rawConfig, normalize } = await readVlaConfigFiles(dir);
  const spec = vlaSpec(config, checkQueries(options.queries));
  const r = await loadHfWeights(dir, { required: spec.required, optional: spec.optional, model: 'a VLA-Adapter (OpenVLAForActionPrediction) model' }, options);
  const heads = await readVlaHeadFiles(dir, {
    ...options.head, torchPt: lazyIo(options.torchPt), hiddenSize: config.text.hiddenSize, numLayers: config.text.numLayers,
  });
  return {
    kind: 'hf', dir, config, rawConfig, normalize, frozen: spec.frozen,
    actionQueries: spec.actionQueries(),
    files: r.files, dtypes: r.dtypes, heads, datasetStatistics: await readDatasetStatistics(dir),
  };
}

/** upstream's renames of a Prismatic VLM's state-dict names (finetune.py:794-802), applied in order, every occurrence. */
export const PRISMATIC_RENAMES: readonly (readonly [string, string])[] = Object.freeze([
  ['vision_backbone.dino_featurizer', 'vision_backbone.featurizer'],
  ['vision_backbone.siglip_featurizer', 'vision_backbone.fused_featurizer'],
  ['llm_backbone.llm', 'language_model'],
  ['projector.projector.0', 'projector.fc1'],
  ['projector.projector.2', 'projector.fc2'],
  ['projector.projector.4', 'projector.fc3'],
  ['gamma', 'scale_factor'],
] as const);

export function renamePrismaticKey(name: string): string {
  let k = name;
  for (const [from, to] of PRISMATIC_RENAMES) if (k.includes(from)) k = k.split(from).join(to);
  return k;
}

async function sha256File(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** DIR/checkpoints/latest-checkpoint.pt, else the one .pt there. */
async function prismaticCheckpoint(dir: string): Promise<string> {
  const ck = join(dir, 'checkpoints');
  const latest = join(ck, 'latest-checkpoint.pt');
  if (await isFile(latest)) return latest;
  let names: string[];
  try {
    names = (await readdir(ck)).filter((n) => n.endsWith('.pt')).sort();
  } catch {
    throw new FormatError(FORMAT, 'is missing (a Prismatic run directory holds config.json and checkpoints/latest-checkpoint.pt)', { file: ck });
  }
  if (names.length === 0) throw new FormatError(FORMAT, 'has no .pt checkpoint (latest-checkpoint.pt or step-….pt)', { file: ck });
  if (names.length > 1) throw new FormatError(FORMAT, `has several checkpoints (${names.join(', ')}) and no latest-checkpoint.pt; say which by linking it as latest-checkpoint.pt`, { file: ck });
  return join(ck, names[0]!);
}

export interface LoadPrismaticOptions {
  /** The HF config directory giving the shapes: config.json + preprocessor_config.json (upstream's pretrained_models/configs). */
  configDir: string;
  torchPt?: TorchPtIo;
  queries?: number;
}

/** Loads a Prismatic base VLM (see the file's header). */
export async function loadPrismaticBase(dir: string, options: LoadPrismaticOptions): Promise<PrismaticBase> {
  await checkModelDir(dir, 'a Prismatic run directory holds config.json and checkpoints/latest-checkpoint.pt');
  const pcPath = join(dir, HF_CONFIG_FILE);
  const pc = await readJsonFile(pcPath, FORMAT);
  const model = pc !== null && typeof pc === 'object' && !Array.isArray(pc) ? (pc as Record<string, unknown>).model : undefined;
  if (model === null || typeof model !== 'object' || Array.isArray(model)) {
    throw new FormatError(FORMAT, 'must be a Prismatic run config: an object with a "model" object (vision_backbone_id, llm_backbone_id, arch_specifier)', { file: pcPath, field: 'model' });
  }
  const m = model as Record<string, unknown>;
  if (m.arch_specifier !== undefined && (typeof m.arch_specifier !== 'string' || !m.arch_specifier.endsWith('fused-gelu-mlp'))) {
    throw new FormatError(FORMAT, `is ${JSON.stringify(m.arch_specifier)}; VLA-Adapter's projector is the fused GELU MLP ("no-align+fused-gelu-mlp")`, { file: pcPath, field: 'model.arch_specifier' });
  }
  if (m.vision_backbone_id !== undefined && (typeof m.vision_backbone_id !== 'string' || !m.vision_backbone_id.startsWith('dinosiglip'))) {
    throw new FormatError(FORMAT, `is ${JSON.stringify(m.vision_backbone_id)}; VLA-Adapter's backbone is the fused DINOv2 + SigLIP ("dinosiglip-…")`, { file: pcPath, field: 'model.vision_backbone_id' });
  }
  if (typeof options?.configDir !== 'string') throw new TypeError('options.configDir must name the HF config directory (config.json + preprocessor_config.json) that gives the shapes');
  const { config, rawConfig, normalize } = await readVlaConfigFiles(options.configDir);
  const spec = vlaSpec(config, checkQueries(options.queries));
  const file = await prismaticCheckpoint(dir);
  const io = options.torchPt ?? defaultTorchPtIo();
  const top = await io.readTorchPtFile(file);
  const modelDict = top instanceof Map ? top.get('model') : undefined;
  if (!(modelDict instanceof Map)) throw new FormatError(FORMAT, 'must be a dict holding the model\'s state dicts (Prismatic saves {"model": {...}})', { file, field: '["model"]' });
  const subs = modelDict as Map<PtKey, PtValue>;
  for (const k of subs.keys()) {
    if (k !== 'projector' && k !== 'llm_backbone' && k !== 'vision_backbone') {
      throw new FormatError(FORMAT, 'is not a part of a Prismatic VLM (projector, llm_backbone, vision_backbone)', { file, field: `["model"][${JSON.stringify(k)}]` });
    }
  }
  if (!subs.has('vision_backbone')) {
    throw new FormatError(FORMAT, 'is missing: the towers\' weights are needed (the DINOv2 and SigLIP featurizers). This checkpoint holds only the projector and the LLM; '
      + 'Prismatic\'s loader takes the towers from timm\'s pretrained vit_large_patch14_reg4_dinov2.lvd142m and vit_so400m_patch14_siglip_224 (timm.create_model(..., pretrained=True)). '
      + 'Use a checkpoint saved with its vision_backbone, or an HF VLA directory (model.safetensors) that holds vision_backbone.*', { file, field: '["model"]["vision_backbone"]' });
  }
  const seen = new Set<string>();
  const dtypes = new Set<string>();
  for (const part of ['projector', 'llm_backbone', 'vision_backbone']) {
    const sd = ptStateDict(top, file, FORMAT, ['model', part]);
    for (const [key, t] of sd) {
      const field = `["model"][${JSON.stringify(part)}][${JSON.stringify(key)}]`;
      const name = renamePrismaticKey(`${part}.${key}`);
      const target = spec.required.get(name) ?? spec.optional.get(name);
      if (target === undefined) throw new FormatError(FORMAT, `is "${name}" after upstream's renames, which is not a tensor of a VLA-Adapter model (extra tensor)`, { file, field });
      if (seen.has(name)) throw new FormatError(FORMAT, `is "${name}" after upstream's renames, which another key also is`, { file, field });
      seen.add(name);
      checkShape(t, target.shape, file, field, name);
      if (target.dest !== null) {
        (typeof target.dest === 'function' ? target.dest(t.shape) : target.dest).set(tensorToF32(t, null, file, field, FORMAT));
        dtypes.add(t.dtype);
      }
    }
  }
  for (const name of spec.required.keys()) {
    if (!seen.has(name)) throw new FormatError(FORMAT, `is missing: the model needs ${name}`, { file, field: prismaticField(name) });
  }
  const { bytes, sha256 } = await sha256File(file);
  return {
    kind: 'prismatic', dir, config, rawConfig, normalize, frozen: spec.frozen,
    actionQueries: spec.actionQueries(),
    files: [{ file: `checkpoints/${file.slice(join(dir, 'checkpoints').length + 1)}`, bytes, sha256 }],
    dtypes: [...dtypes].sort(), checkpoint: file, prismaticConfig: m,
  };
}

function checkShape(t: Tensor, shape: readonly number[], file: string, field: string, name: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i] && !(shape[i] === -1 && d >= 1))) {
    throw new FormatError(FORMAT, `(${name}) has shape [${t.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`, { file, field });
  }
}

/** Where a (renamed) tensor would be in a Prismatic checkpoint, for "missing" errors. */
function prismaticField(name: string): string {
  const parts: [string, string][] = [['vision_backbone.', 'vision_backbone'], ['language_model.', 'llm_backbone'], ['projector.', 'projector']];
  for (const [p, part] of parts) if (name.startsWith(p)) return `["model"][${JSON.stringify(part)}] (${name})`;
  return name;
}

/**
 * Whether DIR holds a VLA-Adapter / OpenVLA-OFT checkpoint (its config.json names timm
 * towers or model_type 'openvla'), so `--model DIR` trains it rather than a Qwen2 model.
 * False when there is no readable config.json: the Qwen2 loader then says what is missing.
 */
export async function isVlaModelDirectory(dir: string): Promise<boolean> {
  try {
    const c = JSON.parse(await readTextFile(join(dir, 'config.json'), FORMAT)) as Record<string, unknown>;
    return c !== null && typeof c === 'object' && (Array.isArray(c.timm_model_ids) || c.model_type === 'openvla');
  } catch {
    return false;
  }
}

/** Whether DIR is a Prismatic base VLM (config.json with a "model" object naming its backbones). */
export async function isPrismaticBaseDirectory(dir: string): Promise<boolean> {
  try {
    const c = JSON.parse(await readTextFile(join(dir, 'config.json'), FORMAT)) as Record<string, unknown>;
    const m = c?.model as Record<string, unknown> | undefined;
    return m !== null && typeof m === 'object' && !Array.isArray(m) && (typeof m.vision_backbone_id === 'string' || typeof m.llm_backbone_id === 'string');
  } catch {
    return false;
  }
}
