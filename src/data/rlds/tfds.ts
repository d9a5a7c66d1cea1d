// A TFDS dataset directory holding an RLDS dataset (one tf.train.Example per episode), read
// without TensorFlow: the metadata, the shard names, and the episodes streamed in record order.
//
// What the directory holds (tensorflow/datasets, tensorflow_datasets/core):
// - dataset_info.json: the DatasetInfo proto as proto3 JSON (proto/dataset_info.proto
//   `message DatasetInfo`; int64 fields are JSON strings). Used here: `name` (the builder's
//   name, which names the shards: it need not be the folder's name), `version`, `fileFormat`
//   (absent = tfrecord, file_adapters.py DEFAULT_FILE_FORMAT), and per split `name`,
//   `shardLengths` (records per shard), `numShards` (older files without shardLengths),
//   `numBytes`, `filepathTemplate`.
// - the shards: naming.py@0389eb53:62 DEFAULT_FILENAME_TEMPLATE =
//   '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}', expanded by ShardedFileTemplate
//   .relative_filepath with the shard numbers zero-padded to max(5, digits of the count)
//   (naming.py:45 _DEFAULT_NUM_DIGITS_FOR_SHARDS, _num_digits_needed) and
//   SHARD_X_OF_Y = '<index>-of-<count>'; e.g. libero_spatial-train.tfrecord-00003-of-00016.
// - features.json: the FeatureConnector tree as proto3 JSON of proto/feature.proto `Feature`
//   (camelCase keys: pythonClassName, featuresDict.features, sequence{feature,length},
//   tensor{shape{dimensions},dtype,encoding}, image{shape,dtype,encodingFormat}, text{},
//   classLabel{numClasses}; dimensions and length as strings, -1 for unknown).
//
// How an episode is serialized (features/dataset_feature.py: `Dataset` is a `Sequence`;
// features/sequence_feature.py get_serialized_info adds the length dimension to every inner
// feature; example_serializer.py _dict_to_tf_example flattens the nested dict with '/' and
// _item_to_tf_feature writes each value flat): one Example with a key per leaf, e.g.
// `steps/action` holding all the steps' values end to end (T·7 floats), `steps/is_first` T
// int64 (bools become int64, example_serializer.py "Convert boolean to integer"), each encoded
// image and each text one bytes entry per step (image_feature.py get_serialized_info: a
// scalar tf.string), and per-episode leaves like `episode_metadata/file_path` once. A float64
// tensor is stored in a FloatList (float32) too. An empty sequence is written as empty lists
// (sequence_feature.py build_empty_np). Tensors with encoding 'bytes'/'zlib'
// (features/tensor_feature.py Encoding) hold one bytes entry per step: the raw little-endian
// values, zlib-compressed for 'zlib'.
//
// LIBERO as OpenVLA publishes it (moojink/rlds_dataset_builder
// LIBERO_Spatial/LIBERO_Spatial_dataset_builder.py:101-161; the Object/Goal/10 builders are
// the same): steps/observation/image and steps/observation/wrist_image Image (256, 256, 3)
// uint8 jpeg; steps/observation/state float32 (8,) (EEF 6D pose + 2D gripper, :48);
// steps/observation/joint_state float32 (7,); steps/action float32 (7,); steps/discount and
// steps/reward float32 scalars; steps/is_first, is_last, is_terminal bool scalars;
// steps/language_instruction Text; episode_metadata/file_path Text.
import { readdir, stat } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { argRangeError } from '../../errors.js';
import { FormatError } from '../../formats/errors.js';
import { readTextFile } from '../../formats/fileio.js';
import { type ExampleFeature, ExampleDecodeError, decodeExample } from './example.js';
import { type TfRecordReadOptions, TfRecordFormatError, readTfRecordAt, readTfRecords } from './tfrecord.js';

export const DEFAULT_FILEPATH_TEMPLATE = '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}';

/** One split of dataset_info.json. */
export interface TfdsSplit {
  name: string;
  numShards: number;
  /** Records (episodes) per shard; null when the file gives only numShards (older TFDS). */
  shardLengths: number[] | null;
  /** Episodes in the split (the sum of shardLengths), or null when unknown. */
  numExamples: number | null;
  numBytes: number | null;
  filepathTemplate: string;
}

export type RldsFeatureType = 'tensor' | 'image' | 'text' | 'class_label';

/** One leaf of features.json, under its flattened key. */
export interface RldsFeatureSpec {
  /** The flattened key, as in the Example: 'steps/observation/image'. */
  key: string;
  /** Under the steps Dataset (one value per step) or once per episode. */
  perStep: boolean;
  type: RldsFeatureType;
  /** Declared dtype: 'float32', 'bool', 'uint8' (images), 'string' (text), 'int64' (class labels), … */
  dtype: string;
  /** Shape of one step's value (of the episode's value when !perStep); null for an unknown dimension (images only). */
  shape: Array<number | null>;
  /** Tensor: 'none' | 'bytes' | 'zlib'; image: 'jpeg' | 'png'; text: 'utf-8'. */
  encoding: string;
  /** Which list of the Example's Feature holds it. */
  storage: 'float' | 'int64' | 'bytes';
  /** List entries per step (per episode when !perStep): product(shape) for plain tensors, else 1. */
  entriesPerStep: number;
  /** Decoded elements per step: product(shape) for tensors, 1 for images and text. */
  elementsPerStep: number;
  pythonClassName: string | undefined;
}

/** A feature of features.json this reader does not decode (it is not read from the episodes). */
export interface UnsupportedFeature {
  key: string;
  reason: string;
}

/**
 * A decoded value. Tensors: one typed array of all steps' values end to end (T·product(shape)),
 * typed by the declared dtype (float32/float16/bfloat16 → Float32Array, float64 → Float64Array,
 * bool → Uint8Array of 0/1, int8…uint32 → the matching typed array, int64 → BigInt64Array,
 * uint64 → BigUint64Array); string tensors → Uint8Array[] of raw bytes; text → string[]; images →
 * Uint8Array[] of the encoded bytes, one per step (views of the episode's record).
 */
export type RldsArray =
  | Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;
export type RldsValue = RldsArray | string[] | Uint8Array[];

export interface RldsEpisode {
  split: string;
  /** Path of the shard file. */
  shard: string;
  /** Index of the shard in the split. */
  shardIndex: number;
  /** Index of the record in its shard. */
  record: number;
  /** Byte offset of the record in its shard (readEpisodeAt reads it again). */
  offset: number;
  /** Index of the episode in the split, counting records in shard order from 0. */
  episode: number;
  /** Number of steps (T ≥ 1). */
  steps: number;
  /** Every supported feature of features.json by flattened key. */
  features: Map<string, RldsValue>;
}

export interface ReadEpisodesOptions extends TfRecordReadOptions {
  /** Read only these shards of the split (indices, in the order given). Default: all, in order. */
  shards?: readonly number[] | undefined;
}

const NAME_RE = /^[A-Za-z]\w*$/; // naming.py _NAME_CLASS
const SPLIT_RE = /^[\w-]+$/; // naming.py _VAR_REGEX_MAPPING[SPLIT]
const FLOAT_DTYPES = new Set(['float16', 'bfloat16', 'float32', 'float64']);
const INT_RANGE: Record<string, [number, number]> = {
  bool: [0, 1], int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};
const ITEM_BYTES: Record<string, number> = {
  float32: 4, float64: 8, bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8,
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A proto3-JSON field, by its camelCase name or its original snake_case one (both are valid JSON mappings). */
function field(obj: Json, camel: string, snake?: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, camel)) return obj[camel];
  if (snake !== undefined && Object.prototype.hasOwnProperty.call(obj, snake)) return obj[snake];
  return undefined;
}

/** A proto3-JSON int64 (a decimal string, or a number) as a safe integer. */
function int64Json(v: unknown, what: string, fail: (d: string) => never): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isSafeInteger(n)) fail(`${what} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

async function readJson(path: string, format: string): Promise<Json> {
  let text: string;
  try {
    text = await readTextFile(path, format);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(format, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file: path, cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(format, `is not valid JSON (${(e as Error).message})`, { file: path, cause: e });
  }
  if (!isObject(value)) throw new FormatError(format, 'must hold a JSON object', { file: path });
  return value;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/**
 * The directory holding dataset_info.json: `dir` itself, or its newest `X.Y.Z` version folder
 * (tfds.builder reads `<data_dir>/<name>/<version>/`).
 */
async function locate(dir: string): Promise<string> {
  if (await isFile(join(dir, 'dataset_info.json'))) return dir;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    throw new FormatError('tfds', `is not a readable directory (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file: dir, cause: e });
  }
  const versions: string[] = [];
  for (const name of entries) if (/^\d+\.\d+\.\d+$/.test(name) && (await isFile(join(dir, name, 'dataset_info.json')))) versions.push(name);
  if (versions.length === 0) throw new FormatError('tfds', 'has no dataset_info.json (nor a version folder such as 1.0.0/ with one): not a TFDS dataset directory', { file: dir });
  versions.sort(compareVersions);
  return join(dir, versions[versions.length - 1]!);
}

function parseSplits(info: Json, file: string): Map<string, TfdsSplit> {
  const splits = new Map<string, TfdsSplit>();
  const raw = field(info, 'splits');
  if (!Array.isArray(raw) || raw.length === 0) throw new FormatError('tfds', 'has no splits', { file, field: 'splits' });
  raw.forEach((s, i) => {
    const fail = (d: string): never => {
      throw new FormatError('tfds', d, { file, field: `splits[${i}]` });
    };
    if (!isObject(s)) fail('must be an object');
    const sp = s as Json;
    const name = field(sp, 'name');
    if (typeof name !== 'string' || !SPLIT_RE.test(name)) fail(`name must be a split name (letters, digits, _ and -), got ${JSON.stringify(name)}`);
    const lengthsRaw = field(sp, 'shardLengths', 'shard_lengths');
    const numShardsRaw = field(sp, 'numShards', 'num_shards');
    let shardLengths: number[] | null = null;
    let numShards: number;
    if (lengthsRaw !== undefined) {
      if (!Array.isArray(lengthsRaw)) fail('shardLengths must be an array');
      shardLengths = (lengthsRaw as unknown[]).map((v, j) => {
        const n = int64Json(v, `shardLengths[${j}]`, fail);
        if (n < 0) fail(`shardLengths[${j}] is negative`);
        return n;
      });
      numShards = shardLengths.length;
      if (numShardsRaw !== undefined && int64Json(numShardsRaw, 'numShards', fail) !== numShards) fail(`numShards ${String(numShardsRaw)} disagrees with the ${numShards} shardLengths`);
    } else if (numShardsRaw !== undefined) {
      numShards = int64Json(numShardsRaw, 'numShards', fail);
      if (numShards < 0) fail('numShards is negative');
    } else {
      return fail('has neither shardLengths nor numShards');
    }
    if (numShards === 0) fail('has no shards');
    const numBytesRaw = field(sp, 'numBytes', 'num_bytes');
    const template = field(sp, 'filepathTemplate', 'filepath_template');
    if (template !== undefined && (typeof template !== 'string')) fail('filepathTemplate must be a string');
    if (splits.has(name as string)) fail(`split '${String(name)}' is listed twice`);
    splits.set(name as string, {
      name: name as string,
      numShards,
      shardLengths,
      numExamples: shardLengths === null ? null : shardLengths.reduce((a, b) => a + b, 0),
      numBytes: numBytesRaw === undefined ? null : int64Json(numBytesRaw, 'numBytes', fail),
      filepathTemplate: (template as string | undefined) || DEFAULT_FILEPATH_TEMPLATE,
    });
  });
  return splits;
}

function dims(shape: unknown, fail: (d: string) => never): Array<number | null> {
  if (shape === undefined) return [];
  if (!isObject(shape)) return fail('shape must be an object');
  const d = field(shape, 'dimensions');
  if (d === undefined) return [];
  if (!Array.isArray(d)) return fail('shape.dimensions must be an array');
  return d.map((v, i) => {
    const n = int64Json(v, `shape.dimensions[${i}]`, fail);
    if (n < -1) fail(`shape.dimensions[${i}] is ${n}`);
    return n === -1 ? null : n;
  });
}

function product(shape: Array<number | null>): number {
  return shape.reduce<number>((a, b) => a * (b ?? 1), 1);
}

interface FeatureTree {
  specs: RldsFeatureSpec[];
  unsupported: UnsupportedFeature[];
  stepsKey: string | null;
  /** The steps Sequence's static length, or null when variable (-1). */
  stepsLength: number | null;
}

function parseFeatures(root: Json, file: string): FeatureTree {
  const tree: FeatureTree = { specs: [], unsupported: [], stepsKey: null, stepsLength: null };
  const walk = (node: unknown, path: string[], perStep: boolean): void => {
    const key = path.join('/');
    const fail = (d: string): never => {
      throw new FormatError('tfds', d, { file, field: key === '' ? 'the root feature' : `feature '${key}'` });
    };
    if (!isObject(node)) return fail('must be an object');
    const cls = field(node, 'pythonClassName', 'python_class_name');
    const pythonClassName = typeof cls === 'string' ? cls : undefined;
    const skip = (reason: string): void => {
      tree.unsupported.push({ key, reason });
    };
    const dict = field(node, 'featuresDict', 'features_dict');
    if (dict !== undefined) {
      const features = isObject(dict) ? field(dict, 'features') : undefined;
      if (features === undefined) return; // an empty FeaturesDict
      if (!isObject(features)) return fail('featuresDict.features must be an object');
      for (const name of Object.keys(features)) {
        if (name === '' || name.includes('/')) fail(`has a feature named ${JSON.stringify(name)}`);
        walk(features[name], [...path, name], perStep);
      }
      return;
    }
    const seq = field(node, 'sequence');
    if (seq !== undefined) {
      if (!isObject(seq)) return fail('sequence must be an object');
      if (perStep) return skip('a sequence inside the steps (ragged per step) is not read');
      if (tree.stepsKey !== null || path.length !== 1) return skip(`only one top-level Dataset/Sequence (the RLDS steps) is read; it is '${tree.stepsKey ?? '?'}'`);
      const length = field(seq, 'length');
      const n = length === undefined ? -1 : int64Json(length, 'sequence.length', fail);
      tree.stepsKey = key;
      tree.stepsLength = n < 0 ? null : n;
      walk(field(seq, 'feature'), path, true);
      return;
    }
    const push = (spec: Omit<RldsFeatureSpec, 'key' | 'perStep' | 'pythonClassName'>): void => {
      tree.specs.push({ key, perStep, pythonClassName, ...spec });
    };
    const tensor = field(node, 'tensor');
    if (tensor !== undefined) {
      if (!isObject(tensor)) return fail('tensor must be an object');
      const dtype = field(tensor, 'dtype');
      if (typeof dtype !== 'string') return fail('tensor.dtype must be a string');
      const shape = dims(field(tensor, 'shape'), fail);
      const encRaw = field(tensor, 'encoding');
      const encoding = encRaw === undefined || encRaw === '' ? 'none' : String(encRaw).toLowerCase();
      if (shape.includes(null)) return skip(`tensor of shape [${shape.map((d) => d ?? -1).join(', ')}] has an unknown dimension (ragged values are not read)`);
      const n = product(shape);
      if (n === 0) return skip(`tensor of shape [${shape.join(', ')}] holds no values`);
      if (encoding !== 'none' && encoding !== 'bytes' && encoding !== 'zlib') return skip(`tensor encoding '${encoding}' is not read`);
      if (dtype === 'string') {
        if (encoding !== 'none') return skip('a string tensor with an encoding is not read');
        return push({ type: 'tensor', dtype, shape, encoding, storage: 'bytes', entriesPerStep: n, elementsPerStep: n });
      }
      const isFloat = FLOAT_DTYPES.has(dtype);
      if (!isFloat && !(dtype in INT_RANGE) && dtype !== 'int64' && dtype !== 'uint64') return skip(`dtype '${dtype}' is not read`);
      if (encoding !== 'none') {
        if (!(dtype in ITEM_BYTES)) return skip(`dtype '${dtype}' with encoding '${encoding}' is not read`);
        return push({ type: 'tensor', dtype, shape, encoding, storage: 'bytes', entriesPerStep: 1, elementsPerStep: n });
      }
      return push({ type: 'tensor', dtype, shape, encoding, storage: isFloat ? 'float' : 'int64', entriesPerStep: n, elementsPerStep: n });
    }
    const image = field(node, 'image');
    if (image !== undefined) {
      if (!isObject(image)) return fail('image must be an object');
      const dtypeRaw = field(image, 'dtype');
      const dtype = typeof dtypeRaw === 'string' ? dtypeRaw : 'uint8';
      const shape = dims(field(image, 'shape'), fail);
      const fmt = field(image, 'encodingFormat', 'encoding_format');
      // image_feature.py: with no encoding_format, arrays are encoded as PNG.
      const encoding = typeof fmt === 'string' && fmt !== '' ? fmt : 'png';
      return push({ type: 'image', dtype, shape, encoding, storage: 'bytes', entriesPerStep: 1, elementsPerStep: 1 });
    }
    if (field(node, 'text') !== undefined) {
      return push({ type: 'text', dtype: 'string', shape: [], encoding: 'utf-8', storage: 'bytes', entriesPerStep: 1, elementsPerStep: 1 });
    }
    if (field(node, 'classLabel', 'class_label') !== undefined) {
      return push({ type: 'class_label', dtype: 'int64', shape: [], encoding: 'none', storage: 'int64', entriesPerStep: 1, elementsPerStep: 1 });
    }
    const kinds = Object.keys(node).filter((k) => k !== 'pythonClassName' && k !== 'python_class_name' && k !== 'description' && k !== 'valueRange');
    return skip(`feature kind ${kinds.length > 0 ? kinds.map((k) => `'${k}'`).join(', ') : '(none given)'}${pythonClassName ? ` (${pythonClassName})` : ''} is not read`);
  };
  walk(root, [], false);
  if (tree.stepsKey === null) throw new FormatError('tfds', 'has no top-level Dataset/Sequence feature (the RLDS steps): not an RLDS dataset', { file });
  if (!tree.specs.some((s) => s.perStep)) throw new FormatError('tfds', `the steps feature '${tree.stepsKey}' has no feature this reader decodes`, { file });
  return tree;
}

/** Expands a filepathTemplate for one shard (naming.py ShardedFileTemplate.relative_filepath). */
export function shardRelativePath(template: string, vars: { dataset: string; split: string; fileFormat: string; shardIndex: number; numShards: number }): string {
  const digits = Math.max(5, String(vars.numShards).length);
  const pad = (n: number): string => String(n).padStart(digits, '0');
  const map: Record<string, string> = {
    DATASET: vars.dataset,
    SPLIT: vars.split,
    FILEFORMAT: vars.fileFormat,
    SHARD_INDEX: pad(vars.shardIndex),
    NUM_SHARDS: pad(vars.numShards),
    SHARD_X_OF_Y: `${pad(vars.shardIndex)}-of-${pad(vars.numShards)}`,
  };
  return template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, name: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const v = name !== undefined && Object.prototype.hasOwnProperty.call(map, name) ? map[name] : undefined;
    if (v === undefined) throw new Error(`unknown variable {${name ?? ''}}`);
    return v;
  });
}

/** An opened TFDS dataset directory. */
export class TfdsDataset {
  private constructor(
    /** The directory holding dataset_info.json (a version folder when the caller named its parent). */
    readonly dir: string,
    /** The builder name from dataset_info.json: it names the shard files. */
    readonly name: string,
    readonly version: string,
    readonly fileFormat: string,
    readonly splits: ReadonlyMap<string, TfdsSplit>,
    readonly features: readonly RldsFeatureSpec[],
    readonly unsupported: readonly UnsupportedFeature[],
    /** The flattened key of the steps Dataset ('steps'). */
    readonly stepsKey: string,
    private readonly stepsLength: number | null,
  ) {}

  /**
   * Opens `dir` (the folder with dataset_info.json and features.json, or its parent holding
   * version folders: the newest is taken). Checks the metadata; reads no shard.
   */
  static async open(dir: string): Promise<TfdsDataset> {
    const where = await locate(resolve(dir));
    const infoPath = join(where, 'dataset_info.json');
    const info = await readJson(infoPath, 'tfds');
    const name = field(info, 'name');
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new FormatError('tfds', `name must be a dataset name (a letter, then letters, digits or _), got ${JSON.stringify(name)}`, { file: infoPath, field: 'name' });
    }
    const versionRaw = field(info, 'version');
    const version = typeof versionRaw === 'string' ? versionRaw : '';
    const fmtRaw = field(info, 'fileFormat', 'file_format');
    const fileFormat = fmtRaw === undefined || fmtRaw === '' ? 'tfrecord' : String(fmtRaw);
    if (fileFormat !== 'tfrecord') throw new FormatError('tfds', `fileFormat '${fileFormat}' is not read (only tfrecord)`, { file: infoPath, field: 'fileFormat' });
    const splits = parseSplits(info, infoPath);
    const featuresPath = join(where, 'features.json');
    const tree = parseFeatures(await readJson(featuresPath, 'tfds'), featuresPath);
    return new TfdsDataset(where, name, version, fileFormat, splits, tree.specs, tree.unsupported, tree.stepsKey!, tree.stepsLength);
  }

  private split(name: string): TfdsSplit {
    const s = this.splits.get(name);
    if (s === undefined) throw argRangeError(`split '${name}' is not in ${join(this.dir, 'dataset_info.json')} (splits: ${[...this.splits.keys()].join(', ')})`);
    return s;
  }

  /** The paths of the split's shards, in shard order, by the names the metadata gives. */
  shardPaths(split: string): string[] {
    const s = this.split(split);
    const out: string[] = [];
    for (let i = 0; i < s.numShards; i++) {
      let rel: string;
      try {
        rel = shardRelativePath(s.filepathTemplate, { dataset: this.name, split: s.name, fileFormat: this.fileFormat, shardIndex: i, numShards: s.numShards });
      } catch (e) {
        throw new FormatError('tfds', `filepathTemplate ${JSON.stringify(s.filepathTemplate)}: ${(e as Error).message}`, { file: join(this.dir, 'dataset_info.json'), field: `splits '${s.name}'` });
      }
      const path = resolve(this.dir, rel);
      const inside = relative(this.dir, path);
      if (isAbsolute(rel) || inside === '' || inside.startsWith('..' + sep) || inside === '..' || isAbsolute(inside)) {
        throw new FormatError('tfds', `filepathTemplate ${JSON.stringify(s.filepathTemplate)} names a file outside the dataset directory`, { file: join(this.dir, 'dataset_info.json'), field: `splits '${s.name}'` });
      }
      out.push(path);
    }
    return out;
  }

  /**
   * The split's episodes in record order (shard 0's records, then shard 1's, …), each checked
   * against features.json. One record is in memory at a time (plus what the caller keeps).
   * Throws FormatError('tfds') naming the shard file, the record (and episode) and the feature
   * on a framing error, a malformed Example, a missing or wrongly typed feature, a per-step
   * length that does not divide, steps that disagree, an empty episode, or a shard whose record
   * count differs from dataset_info.json's shardLengths.
   */
  async *readEpisodes(split: string, options: ReadEpisodesOptions = {}): AsyncGenerator<RldsEpisode, void, undefined> {
    const s = this.split(split);
    const paths = this.shardPaths(split);
    const order = options.shards ?? paths.map((_, i) => i);
    for (const i of order) if (!Number.isInteger(i) || i < 0 || i >= paths.length) throw argRangeError(`shard ${i} is not a shard of split '${split}' (0…${paths.length - 1})`);
    // Episode numbers count every record before the shard, as in a full pass.
    const firstEpisode = (shard: number): number | null => {
      if (s.shardLengths === null) return null;
      let n = 0;
      for (let j = 0; j < shard; j++) n += s.shardLengths[j]!;
      return n;
    };
    let running = 0;
    for (const shardIndex of order) {
      const shard = paths[shardIndex]!;
      const expected = s.shardLengths?.[shardIndex];
      const base = firstEpisode(shardIndex) ?? running;
      const where = (record: number, offset?: number): string => `record ${record} (episode ${base + record})${offset !== undefined ? ` at byte ${offset}` : ''}`;
      if (!(await isFile(shard))) {
        throw new FormatError('tfds', `shard file is missing (dataset_info.json gives split '${s.name}' ${s.numShards} shard(s) named by ${JSON.stringify(s.filepathTemplate)} with dataset name '${this.name}')`, { file: shard });
      }
      let count = 0;
      const records = readTfRecords(shard, options);
      try {
      while (true) {
        let next: IteratorResult<{ index: number; offset: number; data: Uint8Array }>;
        try {
          next = await records.next();
        } catch (e) {
          if (e instanceof TfRecordFormatError) throw new FormatError('tfds', e.detail, { file: shard, field: where(e.record, e.offset), cause: e });
          throw e;
        }
        if (next.done) break;
        const { index, offset, data } = next.value;
        if (expected !== undefined && index >= expected) {
          throw new FormatError('tfds', `the shard holds more records than the ${expected} dataset_info.json gives it (shardLengths)`, { file: shard, field: where(index, offset) });
        }
        const episode = base + index;
        const features = this.decodeEpisode(data, (feature, detail): never => {
          throw new FormatError('tfds', detail, { file: shard, field: `${where(index)}${feature !== undefined ? `, feature '${feature}'` : ''}` });
        });
        count = index + 1;
        yield { split: s.name, shard, shardIndex, record: index, offset, episode, steps: features.steps, features: features.values };
      }
      } finally {
        // Closes the shard when the caller stops early or an episode is refused.
        await records.return(undefined);
      }
      if (expected !== undefined && count !== expected) {
        throw new FormatError('tfds', `the shard holds ${count} record(s), dataset_info.json's shardLengths gives it ${expected}`, { file: shard, field: `split '${s.name}' shard ${shardIndex}` });
      }
      running = base + count;
    }
  }

  /**
   * The episode a pass reported at (`shard`, `offset`), read again on its own (random access
   * for training: only the numbers of every episode stay in memory, the images are read back
   * when a sample needs them).
   */
  async readEpisodeAt(at: Pick<RldsEpisode, 'split' | 'shard' | 'shardIndex' | 'record' | 'offset' | 'episode'>): Promise<RldsEpisode> {
    const where = `record ${at.record} (episode ${at.episode}) at byte ${at.offset}`;
    let data: Uint8Array;
    try {
      data = await readTfRecordAt(at.shard, at.offset, at.record);
    } catch (e) {
      if (e instanceof TfRecordFormatError) throw new FormatError('tfds', e.detail, { file: at.shard, field: where, cause: e });
      throw e;
    }
    const features = this.decodeEpisode(data, (feature, detail): never => {
      throw new FormatError('tfds', detail, { file: at.shard, field: `${where}${feature !== undefined ? `, feature '${feature}'` : ''}` });
    });
    return { ...at, steps: features.steps, features: features.values };
  }

  /** Decodes and checks one serialized episode. */
  private decodeEpisode(data: Uint8Array, fail: (feature: string | undefined, detail: string) => never): { steps: number; values: Map<string, RldsValue> } {
    let example: Map<string, ExampleFeature>;
    try {
      example = decodeExample(data);
    } catch (e) {
      if (e instanceof ExampleDecodeError) return fail(e.key, `not a valid tf.train.Example: ${e.detail}`);
      throw e;
    }
    // The number of steps: every per-step feature must agree on it.
    let steps: number | null = null;
    let stepsFrom = '';
    const lists = new Map<string, ExampleFeature>();
    for (const spec of this.features) {
      const f = example.get(spec.key);
      if (f === undefined) return fail(spec.key, `missing feature (features.json declares ${describeSpec(spec)})`);
      if (f.kind !== 'none' && f.kind !== spec.storage) return fail(spec.key, `wrongly typed: ${f.kind === 'int64' ? 'an' : 'a'} ${f.kind}_list where features.json's ${describeSpec(spec)} is stored as a ${spec.storage}_list`);
      lists.set(spec.key, f);
      const n = f.kind === 'none' ? 0 : f.values.length;
      if (spec.perStep) {
        if (n % spec.entriesPerStep !== 0) return fail(spec.key, `per-step length mismatch: ${n} value(s) is not a multiple of ${spec.entriesPerStep} (shape [${spec.shape.join(', ')}] per step)`);
        const t = n / spec.entriesPerStep;
        if (steps === null) {
          steps = t;
          stepsFrom = spec.key;
        } else if (t !== steps) return fail(spec.key, `has ${t} step(s) where '${stepsFrom}' has ${steps}`);
      } else if (n !== spec.entriesPerStep) {
        return fail(spec.key, `has ${n} value(s), features.json's ${describeSpec(spec)} needs ${spec.entriesPerStep}`);
      }
    }
    if (steps === null || steps === 0) return fail(undefined, `empty episode: the steps ('${this.stepsKey}') hold 0 steps`);
    if (this.stepsLength !== null && steps !== this.stepsLength) return fail(stepsFrom, `has ${steps} step(s); features.json fixes the sequence length at ${this.stepsLength}`);
    const values = new Map<string, RldsValue>();
    for (const spec of this.features) values.set(spec.key, decodeValue(spec, lists.get(spec.key)!, spec.perStep ? steps : 1, (d) => fail(spec.key, d)));
    return { steps, values };
  }
}

function describeSpec(spec: RldsFeatureSpec): string {
  const shape = `[${spec.shape.map((d) => d ?? 'None').join(', ')}]`;
  if (spec.type === 'image') return `image ${shape} ${spec.dtype} ${spec.encoding}`;
  if (spec.type === 'text') return 'text';
  if (spec.type === 'class_label') return 'class label';
  return `tensor ${shape} ${spec.dtype}${spec.encoding !== 'none' ? ` (${spec.encoding})` : ''}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function intArray(dtype: string, n: number): Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array {
  switch (dtype) {
    case 'int8': return new Int8Array(n);
    case 'bool': case 'uint8': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    default: return new Uint32Array(n);
  }
}

function fromRawBytes(dtype: string, bytes: Uint8Array): RldsArray {
  // A copy into a fresh, aligned buffer; values are little-endian (numpy tobytes on the writer's
  // machine: TFDS only runs on little-endian hosts).
  const copy = new Uint8Array(bytes.length); // not bytes.slice(): on a Buffer that is a view
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case 'float32': return new Float32Array(buf);
    case 'float64': return new Float64Array(buf);
    case 'bool': case 'uint8': return copy;
    case 'int8': return new Int8Array(buf);
    case 'int16': return new Int16Array(buf);
    case 'uint16': return new Uint16Array(buf);
    case 'int32': return new Int32Array(buf);
    case 'uint32': return new Uint32Array(buf);
    case 'int64': return new BigInt64Array(buf);
    default: return new BigUint64Array(buf);
  }
}

function concatArrays(parts: RldsArray[], dtype: string, total: number): RldsArray {
  const out = fromRawBytes(dtype, new Uint8Array(total * ITEM_BYTES[dtype]!));
  let at = 0;
  for (const p of parts) {
    (out as unknown as { set(a: ArrayLike<number | bigint>, o: number): void }).set(p as unknown as ArrayLike<number | bigint>, at);
    at += p.length;
  }
  return out;
}

function decodeValue(spec: RldsFeatureSpec, f: ExampleFeature, steps: number, fail: (d: string) => never): RldsValue {
  const total = steps * spec.elementsPerStep;
  if (spec.storage === 'bytes') {
    const values = f.kind === 'bytes' ? f.values : [];
    if (spec.type === 'text') {
      return values.map((v, i) => {
        try {
          return utf8.decode(v);
        } catch {
          return fail(`value ${i} is not valid UTF-8 text`);
        }
      });
    }
    if (spec.type === 'image' || spec.dtype === 'string') return values;
    // A tensor with encoding 'bytes' or 'zlib': one entry per step, the raw values.
    const itemBytes = ITEM_BYTES[spec.dtype]!;
    const parts: RldsArray[] = values.map((v, i) => {
      let raw = v;
      if (spec.encoding === 'zlib') {
        const want = spec.elementsPerStep * itemBytes;
        // zlib expands at most 1032:1: a shape it cannot reach is refused before inflating,
        // and inflating goes into one buffer of the shape's size, stopping just past it.
        if (want > 1032 * v.length + 64) return fail(`step ${i}: shape [${spec.shape.join(', ')}] ${spec.dtype} needs ${want} bytes, more than ${v.length} bytes of zlib data can inflate to`);
        try {
          raw = inflateSync(v, { maxOutputLength: want + 1, chunkSize: Math.max(64, want + 2) });
        } catch (e) {
          return fail(`step ${i}: not valid zlib data (${(e as Error).message})`);
        }
      }
      if (raw.length !== spec.elementsPerStep * itemBytes) return fail(`step ${i}: ${raw.length} bytes, shape [${spec.shape.join(', ')}] ${spec.dtype} needs ${spec.elementsPerStep * itemBytes}`);
      return fromRawBytes(spec.dtype, raw);
    });
    const out = concatArrays(parts, spec.dtype, total);
    if (spec.dtype === 'bool') for (let i = 0; i < out.length; i++) if ((out as Uint8Array)[i]! > 1) return fail(`value ${i} (${(out as Uint8Array)[i]}) is not a bool`);
    return out;
  }
  if (spec.storage === 'float') {
    const values = f.kind === 'float' ? f.values : new Float32Array(0);
    return spec.dtype === 'float64' ? Float64Array.from(values) : values;
  }
  const values = f.kind === 'int64' ? f.values : new BigInt64Array(0);
  if (spec.dtype === 'int64') return values;
  if (spec.dtype === 'uint64') return new BigUint64Array(values.buffer, values.byteOffset, values.length);
  const range = INT_RANGE[spec.dtype]!;
  const out = intArray(spec.dtype, values.length);
  const lo = BigInt(range[0]);
  const hi = BigInt(range[1]);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo || v > hi) return fail(`value ${i} (${v}) is out of the range of ${spec.dtype}${spec.dtype === 'bool' ? ' (0 or 1)' : ''}`);
    out[i] = Number(v);
  }
  return out;
}

/** Opens a TFDS (RLDS) dataset directory: TfdsDataset.open. */
export function openTfdsDataset(dir: string): Promise<TfdsDataset> {
  return TfdsDataset.open(dir);
}
