// The fuzz targets: every reader of untrusted bytes and every native entry point that takes
// bytes or shapes. A target writes its own small valid seeds (setup), gives a fast-check
// arbitrary of cases, turns a case into its input (input), and runs the code under test on
// it (run). `accept(error)` says whether a thrown error is one the project means to throw:
// readers throw their own error classes naming the file, never a TypeError/RangeError of
// their own making; the native binding throws TypeError/RangeError with a `code` naming the
// field (native/napi/arg_error.cc), or a backend Error with a code.
//
// Reader targets' inputs are bytes (the mutated file), so a case that found a bug is kept as
// a file: test/fuzz/regressions/<target>/<name>.bin is replayed through run() every time.
// Native targets' inputs are call descriptions; their regressions are fast-check seed/path
// pairs in test/fuzz/regressions/replay.json.
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import {
  FormatError, encodeSafetensors, decodeSafetensors, encodeNpy, decodeNpy, encodeNpz, decodeNpz,
  decodeTorchPt, encodeTorchPt, torchStateDict, torchTensorToF32, readTfEvents, TfEventsWriter,
} from '../../dist/formats/index.js';
import { streamSafetensorsFile } from '../../dist/formats/safetensors-stream.js';
import { frameRecord } from '../../dist/formats/tfevents.js';
import { readZip } from '../../dist/formats/zip.js';
import {
  ExampleDecodeError, decodeExample, encodeExample, encodeTfRecord, readTfRecords, openTfdsDataset, standardizeEpisode, LIBERO,
} from '../../dist/data/rlds/index.js';
import { loadDatasetFile, saveDatasetFile } from '../../dist/data/files.js';
import { decodeImage, ImageDecodeError } from '../../dist/data/images/index.js';
import { readOptionsFile } from '../../dist/cli/config-file.js';
import { UsageError } from '../../dist/cli/usage-error.js';
import { readHfConfig, loadHfModel } from '../../dist/model/qwen2/index.js';
import { readVlaConfigFiles } from '../../dist/model/vla/index.js';
import { AdapterPolicy } from '../../dist/index.js';
import { writeCheckpoint } from '../../dist/run/checkpoint-write.js';
import { RunError } from '../../dist/run/run-error.js';
import {
  applyBytes, applyFramed, applyJsonOrBytes, bytesCase, framedCase, jsonOrBytesCase,
} from './mutate.mjs';
import { nativeTargets } from './native-targets.mjs';

const enc = new TextEncoder();
const f32 = (shape, f = (i) => Math.sin(i) * 0.5) => ({ dtype: 'F32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)) });
const i32 = (shape) => ({ dtype: 'I32', shape, data: Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i - 2) });
const u8 = (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** A reader's error: its class is one of `classes`, and its message names `name` (a file or directory). */
export function readerAccepts(classes, name) {
  return (e) => {
    if (!classes.some((C) => e instanceof C)) return `threw ${e?.constructor?.name ?? typeof e}, not ${classes.map((C) => C.name).join('/')}`;
    if (name !== undefined && !String(e.message).includes(name)) return `the message does not name ${name}`;
    return null;
  };
}

/**
 * A target whose input is one file among valid siblings in a working directory: each case
 * writes the mutated file, runs, and puts the valid file back.
 */
function fileTarget({ name, covers, file, seeds, arbitrary, input, run, classes, names }) {
  return {
    name, covers,
    async setup(dir) {
      const ctx = { dir, path: join(dir, file) };
      Object.assign(ctx, await seeds(dir, ctx));
      ctx.original = ctx.seedBytes?.[0] ?? null;
      return ctx;
    },
    arbitrary: (ctx) => arbitrary(ctx),
    input: (ctx, c) => input(ctx, c),
    async run(ctx, bytes) {
      writeFileSync(ctx.path, bytes);
      try {
        return await run(ctx, bytes);
      } finally {
        if (ctx.restore) ctx.restore();
        else if (ctx.original) writeFileSync(ctx.path, ctx.original);
      }
    },
    accept: (ctx) => readerAccepts(classes, names === 'dir' ? ctx.dir : basename(ctx.path)),
  };
}

/** A target decoding bytes in memory (the reader's `source` option names them in errors). */
function bytesTarget({ name, covers, seeds, arbitrary, input, run, classes, source = name }) {
  return {
    name, covers,
    async setup() { return { seedBytes: await seeds() }; },
    arbitrary: (ctx) => (arbitrary ? arbitrary(ctx) : bytesCase(ctx.seedBytes.length)),
    input: (ctx, c) => (input ? input(ctx, c) : applyBytes(ctx.seedBytes, c)),
    run: (ctx, bytes) => run(bytes, source),
    accept: () => readerAccepts(classes, source),
  };
}

const tfrecordFrame = (p) => encodeTfRecord(p);

async function jpegAndPng() {
  const sharp = (await import('sharp')).default;
  const px = Buffer.alloc(8 * 6 * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) & 255;
  const raw = { raw: { width: 8, height: 6, channels: 3 } };
  return [
    u8(await sharp(px, raw).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer()),
    u8(await sharp(px, raw).jpeg({ quality: 75, progressive: true }).toBuffer()),
    u8(await sharp(px, raw).png().toBuffer()),
    u8(await sharp(Buffer.alloc(8 * 6, 90), { raw: { width: 8, height: 6, channels: 1 } }).jpeg().toBuffer()),
  ];
}

const SAFETENSORS_SEEDS = () => [
  encodeSafetensors({ w: f32([2, 3]), b: i32([4]) }, { format: 'pt' }),
  encodeSafetensors({ h: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) }, s: f32([]), e: f32([0, 4]) }),
  encodeSafetensors({ bf: { dtype: 'BF16', shape: [2, 2], data: new Uint16Array([0x3f80, 0x4000, 0xbf80, 0]) }, d: { dtype: 'F64', shape: [2], data: new Float64Array([1, -2]) } }),
];

function exampleSeeds() {
  return [
    encodeExample([
      ['steps/action', { kind: 'float', values: Float32Array.from([0.5, -1, 2, 3]) }],
      ['steps/is_first', { kind: 'int64', values: BigInt64Array.from([1n, 0n]) }],
      ['steps/language_instruction', { kind: 'bytes', values: [enc.encode('pick up the bowl'), enc.encode('pick up the bowl')] }],
    ]),
    encodeExample([['x', { kind: 'none' }], ['y', { kind: 'int64', values: BigInt64Array.from([-1n, 2n ** 62n]) }]]),
  ];
}

async function tfdsSeed(dir) {
  const { writeTfdsDataset, liberoSpec, liberoEpisode } = await import('../helpers/rlds-writer.mjs');
  const spec = liberoSpec({ imageSize: 8 });
  const episodes = [await liberoEpisode({ steps: 2, seed: 1, imageSize: 8 }), await liberoEpisode({ steps: 3, seed: 2, imageSize: 8 })];
  const { dir: root, shardPaths } = await writeTfdsDataset(dir, { name: 'fuzz_ds', spec, splits: { train: episodes } });
  return { root, shard: shardPaths.train[0] };
}

async function readAllEpisodes(root) {
  const ds = await openTfdsDataset(root);
  let n = 0;
  for (const split of ds.splits.keys()) {
    for await (const ep of ds.readEpisodes(split)) {
      try {
        standardizeEpisode(LIBERO, ep, n);
      } catch (e) {
        // standardizeEpisode checks an episode against LIBERO's schema: its errors are FormatErrors too.
        if (!(e instanceof FormatError)) throw e;
      }
      n++;
    }
  }
  return n;
}

/** A TFDS directory target: `which` of dataset_info.json, features.json or the shard is fuzzed. */
function tfdsTarget(which) {
  return {
    name: `tfds-${which}`,
    covers: `src/data/rlds/tfds.ts TfdsDataset.open/readEpisodes (${which === 'shard' ? 'the shard: TFRecord framing, Example decoding, features' : `${which === 'info' ? 'dataset_info.json' : 'features.json'}`}), transforms.ts standardizeEpisode`,
    async setup(dir) {
      const { root, shard } = await tfdsSeed(dir);
      const path = which === 'shard' ? shard : join(root, which === 'info' ? 'dataset_info.json' : 'features.json');
      const original = new Uint8Array(readFileSync(path));
      return { root, path, original, seedBytes: [original], seedTexts: [new TextDecoder().decode(original)] };
    },
    arbitrary: () => (which === 'shard' ? framedCase(1) : jsonOrBytesCase(1)),
    input: (ctx, c) => (which === 'shard' ? applyFramed(ctx.seedBytes, c, tfrecordFrame) : applyJsonOrBytes(ctx.seedTexts, ctx.seedBytes, c)),
    async run(ctx, bytes) {
      writeFileSync(ctx.path, bytes);
      try {
        return await readAllEpisodes(ctx.root);
      } finally {
        writeFileSync(ctx.path, ctx.original);
      }
    },
    // Errors name the file at fault, which may be the metadata or the shard.
    accept: (ctx) => readerAccepts([FormatError], ctx.root),
  };
}

/** A tiny checkpoint of the built-in model, written by writeCheckpoint. */
async function checkpointSeed(dir) {
  const m = AdapterPolicy.create({ tokens: 2, width: 8, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 2 }, { seed: 3 });
  const groups = { model: m.trainableTensors(), anchor: m.anchorTensors(), base: m.frozenTensors() };
  const ck = await writeCheckpoint(join(dir, 'checkpoints'), 5, groups, { epoch: 0, lambda: 0.1 }, { config: { seed: 3, steps: 10 }, model: m.describe() });
  m.dispose();
  return ck;
}

function checkpointTarget(file) {
  const json = file.endsWith('.json');
  return {
    name: `checkpoint-${file.replace(/\.(json|safetensors)$/, '')}`,
    covers: `src/run/checkpoint-read.ts loadCheckpoint, src/model/checkpoint.ts and AdapterPolicy.fromCheckpoint (${file}${json ? '' : ', manifest re-hashed so the decoder is reached'})`,
    async setup(dir) {
      const ck = await checkpointSeed(dir);
      const path = join(ck, file);
      const original = new Uint8Array(readFileSync(path));
      const manifestPath = join(ck, 'manifest.json');
      return { ck, path, original, manifestPath, manifest: readFileSync(manifestPath, 'utf8'), seedBytes: [original], seedTexts: [new TextDecoder().decode(original)] };
    },
    arbitrary: () => (json ? jsonOrBytesCase(1) : bytesCase(1)),
    input: (ctx, c) => (json ? applyJsonOrBytes(ctx.seedTexts, ctx.seedBytes, c) : applyBytes(ctx.seedBytes, c)),
    async run(ctx, bytes) {
      writeFileSync(ctx.path, bytes);
      if (file !== 'manifest.json') {
        // Keep the manifest true to the mutated file, so that the reader decodes it.
        const m = JSON.parse(ctx.manifest);
        m.files[file] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
        writeFileSync(ctx.manifestPath, JSON.stringify(m));
      }
      try {
        const p = await AdapterPolicy.fromCheckpoint(ctx.ck);
        p.dispose();
        return true;
      } finally {
        writeFileSync(ctx.path, ctx.original);
        writeFileSync(ctx.manifestPath, ctx.manifest);
      }
    },
    accept: (ctx) => readerAccepts([RunError, FormatError], ctx.ck),
  };
}

export const readerTargets = [
  bytesTarget({
    name: 'safetensors', covers: 'src/formats/safetensors.ts decodeSafetensors',
    seeds: SAFETENSORS_SEEDS, classes: [FormatError],
    run: (bytes, source) => Object.keys(decodeSafetensors(bytes, { source }).tensors).length,
  }),
  fileTarget({
    name: 'safetensors-stream', covers: 'src/formats/safetensors-stream.ts streamSafetensorsFile (every float tensor planned)', file: 'w.safetensors',
    seeds: () => ({ seedBytes: SAFETENSORS_SEEDS() }),
    arbitrary: (ctx) => bytesCase(ctx.seedBytes.length), input: (ctx, c) => applyBytes(ctx.seedBytes, c), classes: [FormatError],
    run: async (ctx) => (await streamSafetensorsFile(ctx.path, (entries) => new Map(entries
      .filter((e) => ['F32', 'F16', 'BF16'].includes(e.dtype) && e.shape.every((d) => d < 4096))
      .map((e) => [e.name, new Float32Array(e.shape.reduce((a, b) => a * b, 1))])), { pieceBytes: 16 })).entries.length,
  }),
  bytesTarget({
    name: 'npy', covers: 'src/formats/npy.ts decodeNpy',
    seeds: () => [encodeNpy(f32([2, 3])), encodeNpy(i32([5]), { version: 2 }), encodeNpy({ dtype: 'F64', shape: [], data: new Float64Array([3]) }, { version: 3 }),
      encodeNpy({ dtype: 'U8', shape: [2, 0, 2], data: new Uint8Array(0) })],
    run: (bytes, source) => decodeNpy(bytes, { source }).shape.length, classes: [FormatError],
  }),
  bytesTarget({
    name: 'npz', covers: 'src/formats/npz.ts decodeNpz, zip.ts readZip (stored, deflated, zip64)',
    seeds: () => [encodeNpz({ a: f32([2, 2]), b: i32([3]) }), encodeNpz({ a: f32([3]) }, { compress: true }), encodeNpz({ x: i32([2, 2]) }, { forceZip64: true })],
    run: (bytes, source) => Object.keys(decodeNpz(bytes, { source })).length, classes: [FormatError],
  }),
  bytesTarget({
    name: 'zip', covers: 'src/formats/zip.ts readZip on its own',
    seeds: () => [encodeNpz({ a: f32([2, 2]), b: i32([3]) }, { compress: true }), encodeNpz({ x: f32([4]) }, { forceZip64: true })],
    run: (bytes, source) => readZip(bytes, { source }).length, classes: [FormatError],
  }),
  bytesTarget({
    name: 'torch-pt', covers: 'src/formats/torch-pt.ts decodeTorchPt, torchStateDict, torchTensorToF32 (pickle, zip)',
    seeds: () => [encodeTorchPt([['w', f32([2, 3])], ['b', f32([3])]]),
      encodeTorchPt([['h', { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4000]) }], ['i', i32([2])]], { archiveName: 'model' })],
    run: (bytes, source) => {
      const sd = torchStateDict(decodeTorchPt(bytes, { source }), { source });
      for (const [k, t] of sd) if (['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) torchTensorToF32(t, { source, field: k });
      return sd.size;
    },
    classes: [FormatError],
  }),
  fileTarget({
    name: 'tfevents', covers: 'src/formats/tfevents-reader.ts readTfEvents, protobuf decoding (records re-framed with valid CRCs)', file: 'events.out.tfevents.fuzz',
    seeds: (dir) => {
      const w = new TfEventsWriter(join(dir, 'seed'), { wallTime: 1700000000, hostname: 'fuzz' });
      w.addScalars(1, { loss: 0.5, 'craft/lambda': -1 });
      w.addScalars(2, { loss: NaN });
      w.addSessionLog(3, 'STOP', {});
      w.close();
      return { seedBytes: [new Uint8Array(readFileSync(w.path))] };
    },
    arbitrary: () => framedCase(1), input: (ctx, c) => applyFramed(ctx.seedBytes, c, frameRecord), classes: [FormatError],
    run: (ctx) => readTfEvents(ctx.path).length,
  }),
  fileTarget({
    name: 'tfrecord-example', covers: 'src/data/rlds/tfrecord.ts readTfRecords (framing, CRC32C), example.ts decodeExample (records re-framed)', file: 'x.tfrecord',
    seeds: () => ({ seedBytes: [Buffer.concat(exampleSeeds().map((e) => encodeTfRecord(e)))].map(u8) }),
    arbitrary: () => framedCase(1), input: (ctx, c) => applyFramed(ctx.seedBytes, c, tfrecordFrame),
    // decodeExample's own error carries no file (the TFDS reader adds it): accepted as such here.
    classes: [FormatError, ExampleDecodeError],
    run: async (ctx) => {
      let n = 0;
      for await (const r of readTfRecords(ctx.path)) {
        try { decodeExample(r.data); } catch (e) {
          if (e instanceof ExampleDecodeError) throw new FormatError('tfrecord', e.message, { file: ctx.path, field: `record ${r.index}` });
          throw e;
        }
        n++;
      }
      return n;
    },
  }),
  tfdsTarget('info'),
  tfdsTarget('features'),
  tfdsTarget('shard'),
  fileTarget({
    name: 'config-yaml', covers: 'src/cli/config-file.ts readOptionsFile (YAML)', file: 'run.yaml',
    seeds: () => {
      const texts = ['batch_size: 4\nlr: 3.0e-4\nbetas: [0.9, 0.999]\nname: fuzz\nsteps: 10\n', 'anchors: &a {x: 1}\nref: *a\nlist:\n  - 1\n  - "two"\n'];
      return { seedBytes: texts.map((t) => enc.encode(t)) };
    },
    arbitrary: (ctx) => bytesCase(ctx.seedBytes.length), input: (ctx, c) => applyBytes(ctx.seedBytes, c), classes: [UsageError],
    run: (ctx) => Object.keys(readOptionsFile(ctx.path)).length,
  }),
  fileTarget({
    name: 'config-json', covers: 'src/cli/config-file.ts readOptionsFile (JSON, a run\'s config.json)', file: 'config.json',
    seeds: () => {
      const texts = [JSON.stringify({ schema_version: 1, config: { batch_size: 4, lr: 0.001, name: 'a', base_weights: null } }), JSON.stringify({ 'batch-size': 2, steps: 3 })];
      return { seedTexts: texts, seedBytes: texts.map((t) => enc.encode(t)) };
    },
    arbitrary: (ctx) => jsonOrBytesCase(ctx.seedBytes.length), input: (ctx, c) => applyJsonOrBytes(ctx.seedTexts, ctx.seedBytes, c), classes: [UsageError],
    run: (ctx) => Object.keys(readOptionsFile(ctx.path)).length,
  }),
  fileTarget({
    name: 'qwen2-config', covers: 'src/model/qwen2 readHfConfig/parseQwen2Config (config.json)', file: 'config.json',
    seeds: async (dir) => {
      const { TINY_QWEN2_CONFIG } = await import('../helpers/hf-tiny.mjs');
      const texts = [JSON.stringify(TINY_QWEN2_CONFIG), JSON.stringify({ ...TINY_QWEN2_CONFIG, num_key_value_heads: 4, tie_word_embeddings: false })];
      writeFileSync(join(dir, 'model.safetensors'), new Uint8Array(0));
      return { seedTexts: texts, seedBytes: texts.map((t) => enc.encode(t)) };
    },
    arbitrary: (ctx) => jsonOrBytesCase(ctx.seedBytes.length), input: (ctx, c) => applyJsonOrBytes(ctx.seedTexts, ctx.seedBytes, c), classes: [FormatError],
    run: async (ctx) => (await readHfConfig(ctx.dir)).config.numLayers,
  }),
  fileTarget({
    name: 'qwen2-weights', covers: 'src/model/hf-weights.ts loadHfModel (a tiny model.safetensors streamed into the Qwen2 layout)', file: 'model.safetensors',
    seeds: async (dir) => {
      const { writeTinyHfModel } = await import('../helpers/hf-tiny.mjs');
      writeTinyHfModel(dir, { config: { hidden_size: 8, intermediate_size: 16, vocab_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 } });
      return { seedBytes: [new Uint8Array(readFileSync(join(dir, 'model.safetensors')))] };
    },
    arbitrary: () => bytesCase(1), input: (ctx, c) => applyBytes(ctx.seedBytes, c), classes: [FormatError], names: 'dir',
    run: async (ctx) => (await loadHfModel(ctx.dir, { pieceBytes: 64 })).files.length,
  }),
  ...['config.json', 'preprocessor_config.json'].map((file) => fileTarget({
    name: `vla-${file.replace('.json', '').replace('_', '-')}`, covers: `src/model/vla readVlaConfigFiles/parseVlaConfig/parseVlaPreprocessor (${file})`, file,
    seeds: async (dir) => {
      const { tinyVlaConfig, tinyPreprocessorConfig } = await import('../helpers/vla-tiny.mjs');
      writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyVlaConfig()));
      writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(tinyPreprocessorConfig()));
      writeFileSync(join(dir, 'model.safetensors'), new Uint8Array(0));
      const text = readFileSync(join(dir, file), 'utf8');
      return { seedTexts: [text], seedBytes: [enc.encode(text)] };
    },
    arbitrary: () => jsonOrBytesCase(1), input: (ctx, c) => applyJsonOrBytes(ctx.seedTexts, ctx.seedBytes, c), classes: [FormatError],
    run: async (ctx) => (await readVlaConfigFiles(ctx.dir)).config.text.numLayers,
  })),
  ...['manifest.json', 'state.json', 'model.safetensors', 'base.safetensors'].map(checkpointTarget),
  ...['npz', 'safetensors'].map((ext) => fileTarget({
    name: `dataset-${ext}`, covers: `src/data/files.ts loadDatasetFile (.${ext})`, file: `data.${ext}`,
    seeds: async (dir) => {
      const ds = { size: 2, tokensPerSample: 2, width: 3, actionSize: 2, tokens: f32([12]).data, actions: f32([4]).data, task: Int32Array.from([0, 1]), episode: Int32Array.from([0, 1]) };
      await saveDatasetFile(join(dir, `data.${ext}`), ds);
      return { seedBytes: [new Uint8Array(readFileSync(join(dir, `data.${ext}`)))] };
    },
    arbitrary: () => bytesCase(1), input: (ctx, c) => applyBytes(ctx.seedBytes, c), classes: [FormatError],
    run: async (ctx) => (await loadDatasetFile(ctx.path)).size,
  })),
  bytesTarget({
    name: 'image', covers: 'src/data/images decodeImage (JPEG baseline/progressive/grey, PNG)',
    seeds: jpegAndPng, classes: [ImageDecodeError], source: undefined,
    run: async (bytes) => (await decodeImage(bytes)).width,
  }),
];

/**
 * The harness's own checks (only with CRAFTGRAD_FUZZ_SELF_TEST=1, for test/fuzz.test.mjs):
 * a case that aborts the process, one that never ends, one that allocates past the bound and
 * one that throws a foreign TypeError must each be reported, with the case.
 */
const selfTests = process.env.CRAFTGRAD_FUZZ_SELF_TEST === '1' ? ['crash', 'hang', 'memory', 'foreign'].map((kind) => ({
  name: `self-test-${kind}`, covers: 'the fuzz harness itself',
  setup: async () => ({}),
  arbitrary: () => fc.integer({ min: 0, max: 9 }),
  input: (ctx, c) => c,
  async run(ctx, c) {
    if (c < 7) return c;
    if (kind === 'crash') process.abort();
    if (kind === 'hang') for (;;);
    if (kind === 'memory') return new Uint8Array(512 * 1024 * 1024).fill(1).length;
    return null.field;
  },
  accept: () => readerAccepts([FormatError], undefined),
})) : [];

export const targets = [...readerTargets, ...nativeTargets, ...selfTests];

export function targetByName(name) {
  const t = targets.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target '${name}' (targets: ${targets.map((x) => x.name).join(', ')})`);
  return t;
}

/** The committed regression inputs of a reader target (test/fuzz/regressions/<target>/*.bin). */
export function regressionFiles(name) {
  const dir = new URL(`./regressions/${name}/`, import.meta.url).pathname;
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.bin')).sort().map((f) => ({ name: f, path: join(dir, f) }));
  } catch {
    return [];
  }
}

export { copyFileSync, mkdirSync, fc };
