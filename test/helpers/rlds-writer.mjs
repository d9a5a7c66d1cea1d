// Writes small TFDS directories of RLDS episodes as TFDS itself lays them out, for tests (the
// reader's, and the later stages' that build on it): dataset_info.json, features.json and the
// `<builder name>-<split>.tfrecord-NNNNN-of-NNNNN` shards, one tf.train.Example per episode.
//
// Followed from tensorflow/datasets (tensorflow_datasets/core):
// - features.json: FeatureConnector.to_json as proto3 JSON (proto/feature.proto; int64 as
//   strings, camelCase names), e.g. the DROID / Open X-Embodiment schemas: FeaturesDict →
//   {pythonClassName, featuresDict: {features}}, Dataset → {sequence: {feature, length: "-1"}},
//   Tensor/Scalar → {tensor: {shape: {dimensions: ["7"]}, dtype, encoding: "none"}},
//   Image → {image: {shape, dtype, encodingFormat}}, Text → {text: {}}.
// - dataset_info.json: proto/dataset_info.proto DatasetInfo as proto3 JSON: name, version,
//   fileFormat "tfrecord", moduleName, splits [{name, numBytes, shardLengths: ["n", …],
//   filepathTemplate "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}].
// - each Example: example_serializer.py _dict_to_tf_example — the nested dict flattened with
//   '/', each step's leaves stacked (sequence_feature.py stack_nested) and written flat: floats
//   in a FloatList, bools and ints in an Int64List, texts and encoded images one bytes entry
//   per step. Images are real JPEGs, encoded by sharp at quality 95 with 4:2:0 chroma (what
//   tf.image.encode_jpeg, used by image_feature.py _encode_image, does by default).
// LIBERO's features: moojink/rlds_dataset_builder LIBERO_Spatial/LIBERO_Spatial_dataset_builder.py:101-161.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { encodeExample, TfRecordWriter, shardRelativePath } from '../../dist/data/rlds/index.js';

const CLS = 'tensorflow_datasets.core.features.';

/** Spec leaves (the arguments of the TFDS feature classes). */
export const tensor = (shape, dtype, doc) => ({ $tensor: { shape, dtype, encoding: 'none' }, doc });
export const scalar = (dtype, doc) => ({ $scalar: { dtype }, doc });
export const image = (shape, encoding = 'jpeg', doc) => ({ $image: { shape, dtype: 'uint8', encoding }, doc });
export const text = (doc) => ({ $text: {}, doc });
export const dataset = (inner) => ({ $dataset: inner });

/** LIBERO's features as the LIBERO_* builders declare them; `imageSize` 256 as published. */
export function liberoSpec({ imageSize = 256 } = {}) {
  return {
    steps: dataset({
      observation: {
        image: image([imageSize, imageSize, 3], 'jpeg', 'Main camera RGB observation.'),
        wrist_image: image([imageSize, imageSize, 3], 'jpeg', 'Wrist camera RGB observation.'),
        state: tensor([8], 'float32', 'Robot EEF state (6D pose, 2D gripper).'),
        joint_state: tensor([7], 'float32', 'Robot joint angles.'),
      },
      action: tensor([7], 'float32', 'Robot EEF action.'),
      discount: scalar('float32', 'Discount if provided, default to 1.'),
      reward: scalar('float32', 'Reward if provided, 1 on final step for demos.'),
      is_first: scalar('bool', 'True on first step of the episode.'),
      is_last: scalar('bool', 'True on last step of the episode.'),
      is_terminal: scalar('bool', 'True on last step of the episode if it is a terminal step, True for demos.'),
      language_instruction: text('Language Instruction.'),
    }),
    episode_metadata: { file_path: text('Path to the original data file.') },
  };
}

const isLeaf = (node) => ['$tensor', '$scalar', '$image', '$text'].some((k) => k in node);
const shapeJson = (shape) => (shape.length === 0 ? {} : { dimensions: shape.map((d) => String(d ?? -1)) });

/** features.json's object for a spec node. */
export function featuresJson(node) {
  if ('$dataset' in node) {
    return { pythonClassName: `${CLS}dataset_feature.Dataset`, sequence: { feature: featuresJson(node.$dataset), length: '-1' } };
  }
  if (!isLeaf(node)) {
    const features = {};
    for (const [k, v] of Object.entries(node)) features[k] = featuresJson(v);
    return { pythonClassName: `${CLS}features_dict.FeaturesDict`, featuresDict: { features } };
  }
  const out = node.$tensor
    ? { pythonClassName: `${CLS}tensor_feature.Tensor`, tensor: { shape: shapeJson(node.$tensor.shape), dtype: node.$tensor.dtype, encoding: 'none' } }
    : node.$scalar
      ? { pythonClassName: `${CLS}scalar.Scalar`, tensor: { shape: {}, dtype: node.$scalar.dtype, encoding: 'none' } }
      : node.$image
        ? { pythonClassName: `${CLS}image_feature.Image`, image: { shape: shapeJson(node.$image.shape), dtype: node.$image.dtype, encodingFormat: node.$image.encoding } }
        : { pythonClassName: `${CLS}text_feature.Text`, text: {} };
  if (node.doc) out.description = node.doc;
  return out;
}

/** The spec's leaves as [flattened key, leaf, perStep]. */
export function leaves(node, path = [], perStep = false) {
  if ('$dataset' in node) return leaves(node.$dataset, path, true);
  if (isLeaf(node)) return [[path.join('/'), node, perStep]];
  return Object.entries(node).flatMap(([k, v]) => leaves(v, [...path, k], perStep));
}

const get = (obj, key) => key.split('/').reduce((o, k) => (o == null ? undefined : o[k]), obj);
const enc = new TextEncoder();

function leafValues(leaf, values) {
  const spec = leaf.$tensor ?? leaf.$scalar;
  if (spec) {
    const flat = values.flatMap((v) => (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? [v] : Array.from(v)));
    if (spec.dtype === 'float32' || spec.dtype === 'float64') return { kind: 'float', values: Float32Array.from(flat, Number) };
    if (spec.dtype === 'string') return { kind: 'bytes', values: flat.map((s) => (typeof s === 'string' ? enc.encode(s) : s)) };
    return { kind: 'int64', values: BigInt64Array.from(flat, (v) => BigInt(typeof v === 'boolean' ? Number(v) : v)) };
  }
  return { kind: 'bytes', values: values.map((v) => (typeof v === 'string' ? enc.encode(v) : v)) };
}

/**
 * The Example entries of one episode `{ steps: [stepDict, …], ...perEpisode }` as
 * example_serializer.py flattens it: [key, ExampleFeature] in the spec's leaf order.
 */
export function episodeEntries(spec, episode) {
  return leaves(spec).map(([key, leaf, perStep]) => {
    if (!perStep) return [key, leafValues(leaf, [get(episode, key)])];
    const [stepsKey, ...rest] = key.split('/');
    const inner = rest.join('/');
    return [key, leafValues(leaf, episode[stepsKey].map((step) => get(step, inner)))];
  });
}

/** A deterministic RGB frame (h, w, 3) uint8: gradients with a seed-dependent pattern. */
export function syntheticFrame(size, seed) {
  const px = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      px[i] = (x * 7 + seed * 31) & 255;
      px[i + 1] = (y * 5 + seed * 17) & 255;
      px[i + 2] = ((x ^ y) * 3 + seed * 11) & 255;
    }
  }
  return px;
}

/** A real JPEG of `pixels` (size × size × 3), quality 95, 4:2:0 (tf.image.encode_jpeg's defaults). */
export async function encodeJpeg(pixels, size) {
  const buf = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 95, chromaSubsampling: '4:2:0' })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * A LIBERO-like episode with `steps` steps, values derived from `seed`, real JPEG frames of
 * `imageSize`: `{ steps: [...], episode_metadata: { file_path } }`, as the builder yields it
 * (LIBERO_Spatial_dataset_builder.py:43-66: reward and is_last/is_terminal on the last step).
 */
export async function liberoEpisode({ steps, seed, instruction = 'pick up the black bowl and place it on the plate', imageSize = 256 }) {
  const out = [];
  for (let i = 0; i < steps; i++) {
    const v = (k) => Math.fround(Math.sin(seed * 13.1 + i * 0.7 + k * 1.9));
    out.push({
      observation: {
        image: await encodeJpeg(syntheticFrame(imageSize, seed * 1000 + i), imageSize),
        wrist_image: await encodeJpeg(syntheticFrame(imageSize, seed * 1000 + i + 500), imageSize),
        state: Float32Array.from({ length: 8 }, (_, k) => v(k)),
        joint_state: Float32Array.from({ length: 7 }, (_, k) => v(k + 10)),
      },
      action: Float32Array.from({ length: 7 }, (_, k) => (k === 6 ? (i % 3 === 0 ? -1 : 1) : v(k + 20))),
      discount: 1,
      reward: i === steps - 1 ? 1 : 0,
      is_first: i === 0,
      is_last: i === steps - 1,
      is_terminal: i === steps - 1,
      language_instruction: instruction,
    });
  }
  return { steps: out, episode_metadata: { file_path: `/data/libero/${instruction.replaceAll(' ', '_')}_demo.hdf5_${seed}` } };
}

/**
 * Writes a TFDS directory `<root>/<folder>/<version>/` and returns its path and shard paths.
 * - name: the builder name (dataset_info.json `name`, the shards' prefix); folder defaults to it.
 * - splits: { train: [episode, …], … }; shardLengths: { train: [n0, n1, …] } (default: one shard).
 * - transform(entries, splitName, index): may change an episode's Example entries before encoding.
 * - rawRecord(bytes, splitName, index): may replace an episode's serialized Example.
 */
export async function writeTfdsDataset(root, {
  name, folder = name, version = '1.0.0', spec, splits, shardLengths = {}, transform, rawRecord, template,
}) {
  const dir = join(root, folder, version);
  mkdirSync(dir, { recursive: true });
  const splitInfos = [];
  const shardPaths = {};
  for (const [split, episodes] of Object.entries(splits)) {
    const lengths = shardLengths[split] ?? [episodes.length];
    if (lengths.reduce((a, b) => a + b, 0) !== episodes.length) throw new Error(`shardLengths of ${split} do not add up to ${episodes.length}`);
    const filepathTemplate = template ?? '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}';
    let next = 0;
    let numBytes = 0;
    shardPaths[split] = [];
    for (let s = 0; s < lengths.length; s++) {
      const path = join(dir, shardRelativePath(filepathTemplate, { dataset: name, split, fileFormat: 'tfrecord', shardIndex: s, numShards: lengths.length }));
      mkdirSync(dirname(path), { recursive: true });
      const w = await TfRecordWriter.open(path);
      for (let r = 0; r < lengths[s]; r++, next++) {
        let entries = episodeEntries(spec, episodes[next]);
        if (transform) entries = transform(entries, split, next) ?? entries;
        let bytes = encodeExample(entries);
        if (rawRecord) bytes = rawRecord(bytes, split, next) ?? bytes;
        numBytes += bytes.length;
        await w.write(bytes);
      }
      await w.close();
      shardPaths[split].push(path);
    }
    splitInfos.push({ filepathTemplate, name: split, numBytes: String(numBytes), shardLengths: lengths.map(String) });
  }
  const info = {
    citation: '', description: 'craftgrad test dataset', fileFormat: 'tfrecord', moduleName: `${name}.${name}_dataset_builder`,
    name, releaseNotes: { [version]: 'Initial release.' }, splits: splitInfos, version,
  };
  writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify(info, null, 2));
  writeFileSync(join(dir, 'features.json'), JSON.stringify(featuresJson(spec), null, 4));
  return { dir, shardPaths };
}
