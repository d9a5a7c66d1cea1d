// Every training sample of an RLDS directory as the VLA tensor file (src/data/vla-dataset.ts),
// what `craftgrad data DIR --export OUT.safetensors` writes: how a user checks or reuses what
// craftgrad feeds the model. Samples come in the dataset's record order, steps ascending
// (loadRldsForVla's order); images are streamed into the file episode by episode (each record
// read back by its offset, its frames decoded, resized and augmented as training does), so
// the memory is the numbers plus a few frames, not the images.
//
// The file: `images` uint8 (N, V, H, W, 3), `proprio` float32 (N, 8), `actions` float32
// (N, chunk·A) normalised, `episode`, `t`, `task` and `instruction` int32 (N) (task: the
// episode's first instruction, instruction: step t's own, both indices into the metadata's
// `instructions` JSON array, the strings as stored), `input_ids` int32 (N, S) when a tokenizer
// is given, and, only when the prompts tokenise to different lengths, `input_lengths` int32
// (N): rows are then right-padded with the tokenizer's pad id (upstream's collator pads so,
// prismatic/util/data_utils.py:96-120) and the metadata says `input_ids_padding: right`.
import { dirname, join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { publishChunksAtomic } from '../../formats/fileio.js';
import { type StreamedTensor, publishSafetensorsStreamed } from '../../formats/safetensors-writer.js';
import { augmentRng, prepareFrame } from '../../data/images/index.js';
import { type PromptTokenizer, type RldsEpisode, datasetStatisticsJson, layoutInputIds } from '../../data/rlds/index.js';
import type { RldsVlaData } from './rlds-source.js';

export const STATISTICS_FILE = 'dataset_statistics.json';

export interface RldsExportOptions {
  /** Square side of the images (default 224). */
  imageSize?: number;
  /** Camera views per sample, in the dataset's order [primary, wrist] (default 2). */
  views?: number;
  /** upstream's training augmentation, drawn with augmentRng(seed, 0, sample) (default false: decode and resize only). */
  augment?: boolean;
  seed?: number;
  /** input_ids from the model's tokenizer, with its placeholder count and pad id (null: none; padding then refused). */
  prompts?: { tokenizer: PromptTokenizer; queries: number; padId: number | null };
  /** Frames prepared at once (default 4). */
  concurrency?: number;
}

export interface RldsExportResult {
  path: string;
  statisticsPath: string;
  samples: number;
  views: number;
  imageSize: number;
  /** null without a tokenizer. */
  inputIds: { length: number; shortest: number; padded: boolean; padId: number | null } | null;
}

export interface FrameOptions {
  imageSize: number;
  views: number;
  augment: boolean;
  seed: number;
}

/**
 * The frame of sample `n` (V × H × W × 3 uint8) from its episode's encoded views (per image
 * feature, per step), as the export writes it: decode and resize, and with `augment`
 * upstream's training augmentation drawn with augmentRng(seed, 0, n). A frame that does not
 * decode is one FormatError naming the shard, the record (episode), the step and the feature.
 */
export async function sampleFrame(data: RldsVlaData, views: readonly Uint8Array[][], n: number, o: FrameOptions): Promise<Uint8Array> {
  const s = data.samples, e = s.episode[n]!, t = s.t[n]!, place = data.places[e]!;
  try {
    return await prepareFrame(views.map((v) => v[t]!), { size: o.imageSize, augment: o.augment ? 'random' : 'none', ...(o.augment ? { rng: augmentRng(o.seed, 0, n) } : {}) });
  } catch (err) {
    const msg = (err as Error).message, v = /^view (\d+):/.exec(msg);
    throw new FormatError('rlds', `record ${place.record} (episode ${e}), step ${t}: ${msg}`, { file: place.shard, field: `feature '${data.imageKeys[v ? Number(v[1]) : 0]}'` });
  }
}

/** The encoded views (per image feature used, per step) of episode `e`, read back by its record's offset. */
export async function episodeViews(data: RldsVlaData, e: number, views: number): Promise<{ views: Uint8Array[][]; episode: RldsEpisode }> {
  const episode = await data.dataset.readEpisodeAt(data.places[e]!);
  return { views: data.imageKeys.slice(0, views).map((k) => episode.features.get(k) as Uint8Array[]), episode };
}

/** The frames of `data.samples`, one Uint8Array (V × H × W × 3) per sample, in sample order. */
export async function* exportFrames(data: RldsVlaData, options: FrameOptions & { concurrency?: number }): AsyncGenerator<Uint8Array> {
  const s = data.samples, K = Math.max(1, options.concurrency ?? 4);
  let i = 0;
  while (i < s.size) {
    const e = s.episode[i]!;
    let end = i;
    while (end < s.size && s.episode[end] === e) end++;
    const { views } = await episodeViews(data, e, options.views);
    const pending: Promise<Uint8Array>[] = [];
    let next = i;
    while (next < end && pending.length < K) pending.push(sampleFrame(data, views, next++, options));
    try {
      while (pending.length > 0) {
        const out = await pending.shift()!;
        if (next < end) pending.push(sampleFrame(data, views, next++, options));
        yield out;
      }
    } finally {
      for (const p of pending) p.catch(() => {});  // left behind by an error: theirs would be the same kind
    }
    i = end;
  }
}

/** Writes `out` (.safetensors) and dataset_statistics.json beside it; see the file's header. */
export async function exportRldsSamples(data: RldsVlaData, out: string, options: RldsExportOptions = {}): Promise<RldsExportResult> {
  const s = data.samples, H = options.imageSize ?? 224, V = options.views ?? 2, augment = options.augment ?? false, seed = options.seed ?? 0;
  if (!Number.isInteger(H) || H < 1 || H > 4096) throw new RangeError(`--image-size must be an integer from 1 to 4096, got ${H}`);
  if (!Number.isInteger(V) || V < 1) throw new RangeError(`--views must be a positive integer, got ${V}`);
  if (V > data.imageKeys.length) throw new RangeError(`${data.source}: the dataset has ${data.imageKeys.length} camera view(s) (${data.imageKeys.join(', ')}); --views is ${V}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`--seed must be an integer in [0, 2^32), got ${seed}`);
  const N = s.size;
  const tensors: Record<string, StreamedTensor> = {
    images: { dtype: 'U8', shape: [N, V, H, H, 3], chunks: () => exportFrames(data, { imageSize: H, views: V, augment, seed, ...(options.concurrency ? { concurrency: options.concurrency } : {}) }) },
    proprio: { dtype: 'F32', shape: [N, s.proprioDim], data: s.proprio },
    actions: { dtype: 'F32', shape: [N, s.chunk * s.actionDim], data: s.actions },
    episode: { dtype: 'I32', shape: [N], data: s.episode },
    t: { dtype: 'I32', shape: [N], data: s.t },
    task: { dtype: 'I32', shape: [N], data: s.task },
    instruction: { dtype: 'I32', shape: [N], data: s.prompt },
  };
  let inputIds: RldsExportResult['inputIds'] = null;
  const metadata: Record<string, string> = {
    format: 'craftgrad VLA dataset (src/data/vla-dataset.ts) exported from RLDS',
    dataset: data.dataset.name, version: data.dataset.version, source: data.source,
    instructions: JSON.stringify(s.instructions),
    image_features: JSON.stringify(data.imageKeys.slice(0, V)),
    image_size: String(H), augment: augment ? 'random' : 'none', ...(augment ? { seed: String(seed) } : {}),
    statistics: s.statisticsComputed ? 'computed' : 'given', normalization: 'bounds_q99',
  };
  if (options.prompts) {
    const { tokenizer, queries, padId } = options.prompts;
    const probe = layoutInputIds(s, tokenizer, { placeholders: queries, padId: 0 });
    const used = [...new Set(Array.from(s.prompt))].map((k) => probe.byInstruction[k]!.length);
    const shortest = Math.min(...used), padded = shortest !== probe.length;
    if (padded && padId === null) {
      throw new RangeError(`prompts tokenize to ${shortest} to ${probe.length} ids and ${tokenizer.source}'s tokenizer_config.json names no pad_token to pad them with`);
    }
    const lay = padded ? layoutInputIds(s, tokenizer, { placeholders: queries, padId: padId! }) : probe;
    tensors.input_ids = { dtype: 'I32', shape: [N, lay.length], data: lay.ids };
    if (padded) tensors.input_lengths = { dtype: 'I32', shape: [N], data: Int32Array.from(s.prompt, (k) => lay.byInstruction[k]!.length) };
    Object.assign(metadata, {
      tokenizer: tokenizer.source, action_placeholders: String(queries), input_ids_padding: padded ? 'right' : 'none',
      ...(padded ? { pad_id: String(padId) } : {}),
    });
    inputIds = { length: lay.length, shortest, padded, padId: padded ? padId : null };
  }
  await publishSafetensorsStreamed(out, tensors, metadata);
  const statisticsPath = join(dirname(out), STATISTICS_FILE);
  await publishChunksAtomic(statisticsPath, [new TextEncoder().encode(datasetStatisticsJson({ [data.dataset.name]: s.statistics }))]);
  return { path: out, statisticsPath, samples: N, views: V, imageSize: H, inputIds };
}
