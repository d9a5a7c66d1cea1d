// RLDS/TFDS reading (src/data/rlds): TFRecord framing, tf.train.Example, the TFDS directory and
// its episodes. A LIBERO-format directory written by test/helpers/rlds-writer.mjs (which follows
// the TFDS source) reads back feature by feature; the codecs are also checked against bytes
// assembled by hand here; every malformed input gets one FormatError line naming the shard, the
// record (episode) and the feature; reads are bounded by one record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync, statSync, rmSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import sharp from 'sharp';
import { FormatError } from '../dist/formats/index.js';
import { crc32c } from '../dist/formats/crc.js';
import {
  readTfRecords, writeTfRecordFile, encodeTfRecord, decodeExample, encodeExample, ExampleDecodeError,
  openTfdsDataset, shardRelativePath,
} from '../dist/data/rlds/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import {
  liberoSpec, liberoEpisode, writeTfdsDataset, episodeEntries, dataset, tensor, scalar, text, image,
} from './helpers/rlds-writer.mjs';

const enc = new TextEncoder();

// ---- hand-made reference encodings, independent of src/ ----

/** Masked CRC32C as the TFRecord spec writes it, computed with BigInt. */
function maskedCrc(bytes) {
  const c = BigInt(crc32c(bytes));
  return Number(((((c >> 15n) | (c << 17n)) & 0xffffffffn) + 0xa282ead8n) & 0xffffffffn);
}

function frameByHand(data) {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc(data), 0);
  return Buffer.concat([head, Buffer.from(data), tail]);
}

const varint = (n) => {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return out;
};
const ld = (field, bytes) => [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
const f32 = (...xs) => { const b = Buffer.alloc(4 * xs.length); xs.forEach((x, i) => b.writeFloatLE(x, 4 * i)); return [...b]; };

/** Example{features{feature{key, Feature}}} from [key, featureBytes] pairs. */
const exampleBytes = (entries) => Uint8Array.from(ld(1, entries.flatMap(([k, f]) => ld(1, [...ld(1, [...enc.encode(k)]), ...ld(2, f)]))));

function lines(err) {
  return String(err.message).split('\n').length;
}

/** Asserts `promise` rejects with a one-line FormatError matching each of `patterns`. */
async function rejectsWith(promise, patterns) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an error matching ${patterns.join(' and ')}`);
  assert.ok(err instanceof FormatError, `not a FormatError: ${err?.stack ?? err}`);
  assert.equal(lines(err), 1, `message is not one line: ${err.message}`);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

async function collect(ds, split = 'train', options) {
  const out = [];
  for await (const ep of ds.readEpisodes(split, options)) out.push(ep);
  return out;
}

// ---- tf.train.Example ----

test('Example: encodeExample writes the bytes assembled by hand (packed lists, map entries)', () => {
  const bytes = encodeExample([
    ['a', { kind: 'float', values: Float32Array.of(1.5, -2) }],
    ['b', { kind: 'int64', values: BigInt64Array.of(1n, -1n, 300n) }],
    ['c', { kind: 'bytes', values: [enc.encode('hi'), new Uint8Array(0)] }],
  ]);
  const expected = exampleBytes([
    ['a', ld(2, ld(1, f32(1.5, -2)))],
    ['b', ld(3, ld(1, [...varint(1), ...varint(-1), ...varint(300)]))],
    ['c', ld(1, [...ld(1, [...enc.encode('hi')]), ...ld(1, [])])],
  ]);
  assert.deepEqual([...bytes], [...expected]);
});

test('Example: decodes packed and unpacked lists, merges repeated lists, skips unknown fields, keeps bytes as views', () => {
  const unpackedFloats = [...[0x0d, ...f32(3.25)], ...[0x0d, ...f32(-1)]]; // field 1, wire 5, twice
  const unpackedInts = [0x08, ...varint(7), 0x08, ...varint(-5)];
  const bytes = exampleBytes([
    ['f', [...ld(2, [...ld(1, f32(1)), ...unpackedFloats]), ...ld(2, ld(1, f32(9)))]], // two FloatList fields merge
    ['i', ld(3, [...unpackedInts, ...ld(1, varint(2n ** 62n))])],
    ['s', [...ld(1, ld(1, [1, 2, 3])), 0x78, 0x01]], // unknown field 15 (varint) after the list
    ['e', []], // a Feature with no kind
  ]);
  const ex = decodeExample(bytes);
  assert.deepEqual([...ex.keys()], ['f', 'i', 's', 'e']);
  assert.deepEqual([...ex.get('f').values], [1, 3.25, -1, 9]);
  assert.deepEqual([...ex.get('i').values], [7n, -5n, 2n ** 62n]);
  const s = ex.get('s').values[0];
  assert.deepEqual([...s], [1, 2, 3]);
  assert.equal(s.buffer, bytes.buffer, 'bytes values are views of the record');
  assert.deepEqual(ex.get('e'), { kind: 'none' });
  // int64 extremes round-trip through the lo/hi varint path
  const ext = BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 31n, -(2n ** 35n));
  assert.deepEqual([...decodeExample(encodeExample([['x', { kind: 'int64', values: ext }]])).get('x').values], [...ext]);
});

test('Example: malformed protobuf is refused with a bounded, named error', () => {
  const good = exampleBytes([['k', ld(2, ld(1, f32(1, 2)))]]);
  const cases = [
    [good.subarray(0, good.length - 3), /runs past the end|truncated/],
    [Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), /length \d+ runs past the end/],
    [Uint8Array.from([0x0a, ...Array(11).fill(0x80)]), /varint longer than 10 bytes|truncated varint/],
    [Uint8Array.from([0x0b]), /unsupported wire type 3/],
    [exampleBytes([['k', ld(2, ld(1, [1, 2, 3]))]]), /not a multiple of 4/],
    [exampleBytes([['k', ld(3, ld(1, [0x80]))]]), /truncated varint/],
    [Uint8Array.from(ld(1, ld(1, ld(1, [0xff, 0xfe])))), /not valid UTF-8/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => decodeExample(bytes), (e) => e instanceof ExampleDecodeError && re.test(e.message), String(re));
  }
});

// ---- TFRecord ----

test('TFRecord: the writer frames records as the spec does; the reader reads hand-framed files', async (t) => {
  const dir = tempDir(t, 'craftgrad-rlds-');
  const records = [enc.encode('first'), new Uint8Array(0), Uint8Array.from({ length: 1000 }, (_, i) => i & 255)];
  const byHand = Buffer.concat(records.map(frameByHand));
  assert.deepEqual(Buffer.from(encodeTfRecord(records[0])), frameByHand(records[0]));
  const written = join(dir, 'w.tfrecord');
  await writeTfRecordFile(written, records);
  assert.deepEqual(readFileSync(written), byHand);
  const handPath = join(dir, 'h.tfrecord');
  writeFileSync(handPath, byHand);
  const got = [];
  for await (const r of readTfRecords(handPath)) got.push(r);
  assert.deepEqual(got.map((r) => [...r.data]), records.map((r) => [...r]));
  assert.deepEqual(got.map((r) => r.index), [0, 1, 2]);
  assert.deepEqual(got.map((r) => r.offset), [0, 21, 37]);
});

test('TFRecord: streaming — every read is one header or one record, and a record is handed out before the next is read', async (t) => {
  const dir = tempDir(t, 'craftgrad-rlds-');
  const sizes = [5000, 70_000, 12, 120_000, 40_000, 90_000];
  const path = join(dir, 's.tfrecord');
  await writeTfRecordFile(path, sizes.map((n, k) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + k) & 255)));
  const fileSize = statSync(path).size;
  const reads = [];
  let bytesRead = 0;
  const seenAtYield = [];
  for await (const r of readTfRecords(path, { onRead: (pos, len) => { reads.push(len); bytesRead += len; } })) {
    seenAtYield.push(bytesRead);
    assert.equal(r.data.length, sizes[r.index]);
    assert.equal(r.data.buffer.byteLength, r.data.length + 4, 'a record owns a buffer of its own size (+ its CRC)');
  }
  assert.deepEqual(reads, sizes.flatMap((n) => [12, n + 4]), 'reads are the 12-byte header, then the record and its CRC');
  assert.ok(Math.max(...reads) < fileSize / 2, 'no read comes near the whole file');
  let at = 0;
  assert.deepEqual(seenAtYield, sizes.map((n) => (at += 16 + n)), 'each record is yielded as soon as its own bytes are in');
  // maxRecordBytes refuses a long record before allocating it
  await rejectsWith(collect2(readTfRecords(path, { maxRecordBytes: 100_000 })), [/record 3 at byte \d+/, /over the limit of 100000 bytes/]);
});

async function collect2(iter) {
  const out = [];
  for await (const r of iter) out.push(r);
  return out;
}

test('TFRecord: a length beyond the file is refused before allocating; bad CRCs and truncation are named', async (t) => {
  const dir = tempDir(t, 'craftgrad-rlds-');
  const good = Buffer.concat([frameByHand(enc.encode('aaaa')), frameByHand(enc.encode('bbbbbbbb'))]);
  const write = (name, bytes) => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
  // a header claiming 2^40 bytes with a valid length CRC
  const huge = Buffer.alloc(12);
  huge.writeBigUInt64LE(2n ** 40n, 0);
  huge.writeUInt32LE(maskedCrc(huge.subarray(0, 8)), 8);
  let allocated = 0;
  await rejectsWith(collect2(readTfRecords(write('huge', Buffer.concat([good, huge, Buffer.alloc(8)])), { onRead: (_, n) => { allocated = Math.max(allocated, n); } })),
    [/record 2 at byte 44/, /length 1099511627776 runs past the end of the file \(4 data bytes left\)/]);
  assert.ok(allocated <= 12, 'nothing read past the header');
  const lenCrc = Buffer.from(good); lenCrc[8] ^= 1;
  await rejectsWith(collect2(readTfRecords(write('lencrc', lenCrc))), [/tfrecord file .*lencrc, record 0 at byte 0: length CRC32C mismatch/]);
  const dataCrc = Buffer.from(good); dataCrc[20 + 12 + 3] ^= 0x40;
  await rejectsWith(collect2(readTfRecords(write('datacrc', dataCrc))), [/record 1 at byte 20: data CRC32C mismatch/]);
  await rejectsWith(collect2(readTfRecords(write('trunc', good.subarray(0, good.length - 2)))), [/record 1 at byte 20: truncated record/]);
  await rejectsWith(collect2(readTfRecords(write('trunchead', good.subarray(0, 25)))), [/record 1 at byte 20: truncated record header \(5 of 12 bytes left\)/]);
  await rejectsWith(collect2(readTfRecords(write('garbage', Buffer.from('this is not a tfrecord file at all, just text')))), [/record 0 at byte 0: length CRC32C mismatch/]);
  assert.deepEqual(await collect2(readTfRecords(write('empty', Buffer.alloc(0)))), []);
});

// ---- TFDS directory ----

const LIBERO_KEYS = {
  'steps/observation/image': ['image', 'uint8', [256, 256, 3], 'jpeg', 'bytes'],
  'steps/observation/wrist_image': ['image', 'uint8', [256, 256, 3], 'jpeg', 'bytes'],
  'steps/observation/state': ['tensor', 'float32', [8], 'none', 'float'],
  'steps/observation/joint_state': ['tensor', 'float32', [7], 'none', 'float'],
  'steps/action': ['tensor', 'float32', [7], 'none', 'float'],
  'steps/discount': ['tensor', 'float32', [], 'none', 'float'],
  'steps/reward': ['tensor', 'float32', [], 'none', 'float'],
  'steps/is_first': ['tensor', 'bool', [], 'none', 'int64'],
  'steps/is_last': ['tensor', 'bool', [], 'none', 'int64'],
  'steps/is_terminal': ['tensor', 'bool', [], 'none', 'int64'],
  'steps/language_instruction': ['text', 'string', [], 'utf-8', 'bytes'],
  'episode_metadata/file_path': ['text', 'string', [], 'utf-8', 'bytes'],
};

/** The expected decoded value of `key` for an episode written by the helper. */
function expectedValue(episode, key) {
  const [top, ...rest] = key.split('/');
  const pick = (o) => rest.reduce((x, k) => x[k], o);
  if (top !== 'steps') return [key.split('/').reduce((x, k) => x[k], episode)];
  const vals = episode.steps.map(pick);
  if (typeof vals[0] === 'string' || vals[0] instanceof Uint8Array && key.includes('image')) return vals;
  return vals.flatMap((v) => (typeof v === 'object' ? [...v] : [typeof v === 'boolean' ? Number(v) : Math.fround(v)]));
}

test('TFDS: a LIBERO-format directory round-trips — metadata, shard names from the builder name, episodes in order, every feature', async (t) => {
  const root = tempDir(t, 'craftgrad-rlds-');
  const spec = liberoSpec();
  const episodes = [
    await liberoEpisode({ steps: 3, seed: 1 }),
    await liberoEpisode({ steps: 5, seed: 2, instruction: 'open the top drawer' }),
    await liberoEpisode({ steps: 1, seed: 3 }),
  ];
  // The folder is libero_spatial_no_noops (what OpenVLA's configs name), the builder libero_spatial.
  const { dir, shardPaths } = await writeTfdsDataset(root, {
    name: 'libero_spatial', folder: 'libero_spatial_no_noops', spec, splits: { train: episodes }, shardLengths: { train: [2, 1] },
  });
  assert.deepEqual(shardPaths.train.map((p) => basename(p)), ['libero_spatial-train.tfrecord-00000-of-00002', 'libero_spatial-train.tfrecord-00001-of-00002']);

  // Opened by its version folder or by the dataset folder (the newest version is taken).
  for (const where of [dir, dirname(dir)]) {
    const ds = await openTfdsDataset(where);
    assert.equal(ds.dir, dir);
    assert.equal(ds.name, 'libero_spatial');
    assert.equal(ds.version, '1.0.0');
    assert.equal(ds.stepsKey, 'steps');
    assert.deepEqual(ds.unsupported, []);
    assert.deepEqual(ds.shardPaths('train'), shardPaths.train);
    const split = ds.splits.get('train');
    assert.deepEqual([split.numShards, split.shardLengths, split.numExamples], [2, [2, 1], 3]);
    assert.deepEqual(Object.fromEntries(ds.features.map((f) => [f.key, [f.type, f.dtype, f.shape, f.encoding, f.storage]])), LIBERO_KEYS);
    for (const f of ds.features) assert.equal(f.perStep, f.key.startsWith('steps/'), f.key);
  }

  const ds = await openTfdsDataset(dirname(dir));
  // Streaming: each read is one record's header or one record, never a shard.
  const reads = [];
  const got = await collect(ds, 'train', { onRead: (_, n) => reads.push(n) });
  const records = [];
  for (const p of shardPaths.train) for await (const r of readTfRecords(p)) records.push(r.data.length);
  assert.deepEqual(reads, records.flatMap((n) => [12, n + 4]));
  assert.ok(Math.max(...reads) < statSync(shardPaths.train[0]).size * 0.75, 'the first shard is never read in one go');
  assert.deepEqual(got.map((e) => [e.shardIndex, e.record, e.episode, e.steps]), [[0, 0, 0, 3], [0, 1, 1, 5], [1, 0, 2, 1]]);
  assert.deepEqual(got.map((e) => basename(e.shard)), [0, 0, 1].map((i) => basename(shardPaths.train[i])));
  for (const [i, ep] of got.entries()) {
    assert.deepEqual([...ep.features.keys()].sort(), Object.keys(LIBERO_KEYS).sort());
    for (const key of Object.keys(LIBERO_KEYS)) {
      const value = ep.features.get(key);
      const want = expectedValue(episodes[i], key);
      if (key.includes('image')) {
        assert.equal(value.length, ep.steps);
        value.forEach((b, s) => assert.deepEqual(Buffer.from(b), Buffer.from(want[s]), `${key} step ${s}`));
      } else if (LIBERO_KEYS[key][0] === 'text') {
        assert.deepEqual(value, want, key);
      } else {
        assert.ok(value instanceof (LIBERO_KEYS[key][1] === 'bool' ? Uint8Array : Float32Array), `${key} is ${value.constructor.name}`);
        assert.deepEqual([...value], want, key);
      }
    }
    assert.deepEqual([...ep.features.get('steps/is_first')], Array.from({ length: ep.steps }, (_, s) => Number(s === 0)));
  }
  // The frames are real JPEGs of the declared shape.
  const meta = await sharp(got[1].features.get('steps/observation/wrist_image')[4]).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['jpeg', 256, 256, 3]);

  // One shard alone, and the episode numbers stay those of a full pass.
  const second = await collect(ds, 'train', { shards: [1] });
  assert.deepEqual(second.map((e) => [e.shardIndex, e.record, e.episode]), [[1, 0, 2]]);
  await assert.rejects(collect(ds, 'validation'), (e) => e instanceof RangeError && /split 'validation' is not in .*dataset_info.json \(splits: train\)/.test(e.message));
});

test('TFDS: shard names come from dataset_info.json (not the folder), by its filepathTemplate', async (t) => {
  const root = tempDir(t, 'craftgrad-rlds-');
  const spec = liberoSpec({ imageSize: 8 });
  const episodes = [await liberoEpisode({ steps: 2, seed: 4, imageSize: 8 }), await liberoEpisode({ steps: 2, seed: 5, imageSize: 8 })];
  const { dir, shardPaths } = await writeTfdsDataset(root, { name: 'libero_object', folder: 'my_copy', spec, splits: { train: episodes } });
  assert.equal(basename(shardPaths.train[0]), 'libero_object-train.tfrecord-00000-of-00001');
  const ds = await openTfdsDataset(dir);
  assert.equal((await collect(ds)).length, 2);
  // A shard named after the folder is not the dataset's: the reader names the file it wanted.
  renameSync(shardPaths.train[0], join(dir, 'my_copy-train.tfrecord-00000-of-00001'));
  await rejectsWith(collect(ds), [/libero_object-train\.tfrecord-00000-of-00001: shard file is missing/, /dataset name 'libero_object'/]);

  // A custom template (TFDS allows any, e.g. one folder per split).
  const custom = await writeTfdsDataset(root, { name: 'nested', spec, splits: { train: episodes }, shardLengths: { train: [1, 1] }, template: '{SPLIT}/data.{FILEFORMAT}-{SHARD_INDEX}', folder: 'nested_ds' });
  assert.deepEqual(custom.shardPaths.train.map((p) => p.slice(custom.dir.length + 1)), ['train/data.tfrecord-00000', 'train/data.tfrecord-00001']);
  assert.equal((await collect(await openTfdsDataset(custom.dir))).length, 2);
  assert.equal(shardRelativePath('{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}', { dataset: 'd', split: 'train', fileFormat: 'tfrecord', shardIndex: 7, numShards: 123456 }), 'd-train.tfrecord-000007-of-123456');
});

// Malformed inputs: one small LIBERO directory per case.
async function liberoDir(t, { steps = [2, 3], transform, rawRecord, shardLengths, folder = 'libero_goal_no_noops' } = {}) {
  const root = tempDir(t, 'craftgrad-rlds-');
  const spec = liberoSpec({ imageSize: 8 });
  const episodes = [];
  for (const [i, n] of steps.entries()) episodes.push(await liberoEpisode({ steps: n, seed: 10 + i, imageSize: 8 }));
  const written = await writeTfdsDataset(root, { name: 'libero_goal', folder, spec, splits: { train: episodes }, transform, rawRecord, shardLengths: shardLengths && { train: shardLengths } });
  return { ...written, spec, episodes, ds: await openTfdsDataset(written.dir) };
}

const replace = (key, feature) => (entries, _s, i) => (i === 1 ? entries.map(([k, f]) => [k, k === key ? feature(f) : f]) : entries);

test('TFDS: every malformed episode gets one line naming shard, record (episode) and feature', { timeout: 60_000 }, async (t) => {
  const shard0 = /libero_goal-train\.tfrecord-00000-of-00001, record 1 \(episode 1\)/;
  const cases = [
    ['missing feature', { transform: (e, _s, i) => (i === 1 ? e.filter(([k]) => k !== 'steps/observation/state') : e) },
      [/feature 'steps\/observation\/state': missing feature \(features.json declares tensor \[8\] float32\)/]],
    ['wrongly typed feature', { transform: replace('steps/action', () => ({ kind: 'bytes', values: [enc.encode('x')] })) },
      [/feature 'steps\/action': wrongly typed: a bytes_list where features.json's tensor \[7\] float32 is stored as a float_list/]],
    ['per-step length mismatch', { transform: replace('steps/action', (f) => ({ kind: 'float', values: f.values.subarray(1) })) },
      [/feature 'steps\/action': per-step length mismatch: 20 value\(s\) is not a multiple of 7/]],
    ['steps that disagree', { transform: replace('steps/observation/joint_state', (f) => ({ kind: 'float', values: f.values.subarray(7) })) },
      [/feature 'steps\/observation\/joint_state': has 2 step\(s\) where 'steps\/observation\/image' has 3/]],
    ['bool out of range', { transform: replace('steps/is_last', (f) => ({ kind: 'int64', values: f.values.map(() => 2n) })) },
      [/feature 'steps\/is_last': value 0 \(2\) is out of the range of bool/]],
    ['text not UTF-8', { transform: replace('steps/language_instruction', (f) => ({ kind: 'bytes', values: f.values.map(() => Uint8Array.of(0xc3, 0x28)) })) },
      [/feature 'steps\/language_instruction': value 0 is not valid UTF-8 text/]],
    ['per-episode feature with two values', { transform: replace('episode_metadata/file_path', (f) => ({ kind: 'bytes', values: [...f.values, ...f.values] })) },
      [/feature 'episode_metadata\/file_path': has 2 value\(s\), features.json's text needs 1/]],
    ['garbage Example bytes', { rawRecord: (b, _s, i) => (i === 1 ? enc.encode('\u00ff\u00ffgarbage, not a protobuf') : b) },
      [/not a valid tf.train.Example/]],
  ];
  for (const [name, opts, patterns] of cases) {
    const { ds } = await liberoDir(t, opts);
    const seen = [];
    await rejectsWith((async () => { for await (const ep of ds.readEpisodes('train')) seen.push(ep.episode); })(), [shard0, ...patterns]);
    assert.deepEqual(seen, [0], `${name}: the episodes before the bad one are read`);
  }
});

test('TFDS: an empty episode is refused (TFDS writes empty lists for it)', async (t) => {
  const { ds } = await liberoDir(t, { steps: [2, 0] });
  await rejectsWith(collect(ds), [/record 1 \(episode 1\): empty episode: the steps \('steps'\) hold 0 steps/]);
  // An Example whose step features are absent altogether is a missing feature, not an empty episode.
  const { ds: ds2 } = await liberoDir(t, { transform: (e, _s, i) => (i === 0 ? e.filter(([k]) => !k.startsWith('steps/')) : e) });
  await rejectsWith(collect(ds2), [/record 0 \(episode 0\), feature 'steps\/observation\/image': missing feature/]);
});

test('TFDS: framing errors in a shard name the shard, record and episode', async (t) => {
  const cases = [
    ['bad length CRC', (b, off) => { b[off[1] + 9] ^= 0x10; return b; }, /record 1 \(episode 1\) at byte \d+: length CRC32C mismatch/],
    ['bad data CRC', (b, off) => { b[off[1] + 40] ^= 0x01; return b; }, /record 1 \(episode 1\) at byte \d+: data CRC32C mismatch/],
    ['truncated record', (b) => b.subarray(0, b.length - 10), /record 1 \(episode 1\) at byte \d+: truncated record: its length \d+ runs past the end of the file/],
    ['garbage bytes', (b) => Buffer.from(b.map((_, i) => (i * 7919) & 255)), /record 0 \(episode 0\) at byte 0: length CRC32C mismatch/],
  ];
  for (const [, mutate, re] of cases) {
    const { ds, shardPaths } = await liberoDir(t);
    const path = shardPaths.train[0];
    const bytes = readFileSync(path);
    const offsets = [];
    for await (const r of readTfRecords(path)) offsets.push(r.offset);
    writeFileSync(path, mutate(Buffer.from(bytes), offsets));
    await rejectsWith(collect(ds), [new RegExp(`tfds file .*libero_goal-train\\.tfrecord-00000-of-00001, `), re]);
  }
});

test('TFDS: a shard whose record count differs from shardLengths, and a missing shard, are named', async (t) => {
  const { ds, shardPaths } = await liberoDir(t, { steps: [2, 2, 2], shardLengths: [2, 1] });
  // Shard 1 loses its only record: 0 records where shardLengths says 1.
  writeFileSync(shardPaths.train[1], Buffer.alloc(0));
  await rejectsWith(collect(ds), [/00001-of-00002, split 'train' shard 1: the shard holds 0 record\(s\), dataset_info.json's shardLengths gives it 1/]);
  // Shard 0 gets an extra record.
  const extra = Buffer.concat([readFileSync(shardPaths.train[0]), frameByHand(encodeExample(episodeEntries(liberoSpec({ imageSize: 8 }), await liberoEpisode({ steps: 1, seed: 99, imageSize: 8 }))))]);
  writeFileSync(shardPaths.train[0], extra);
  await rejectsWith(collect(ds), [/00000-of-00002, record 2 \(episode 2\) at byte \d+: the shard holds more records than the 2 dataset_info.json gives it/]);
  rmSync(shardPaths.train[0]);
  await rejectsWith(collect(ds), [/libero_goal-train\.tfrecord-00000-of-00002: shard file is missing/]);
});

test('TFDS: bad metadata is refused when the directory is opened', async (t) => {
  const { dir } = await liberoDir(t);
  const info = JSON.parse(readFileSync(join(dir, 'dataset_info.json'), 'utf8'));
  const features = JSON.parse(readFileSync(join(dir, 'features.json'), 'utf8'));
  const withInfo = async (mutate, re) => {
    writeFileSync(join(dir, 'dataset_info.json'), typeof mutate === 'string' ? mutate : JSON.stringify(mutate(structuredClone(info))));
    await rejectsWith(openTfdsDataset(dir), [/dataset_info\.json/, re]);
  };
  await withInfo('{ not json', /is not valid JSON/);
  await withInfo((i) => ({ ...i, name: '../evil' }), /name must be a dataset name/);
  await withInfo((i) => ({ ...i, fileFormat: 'array_record' }), /fileFormat 'array_record' is not read \(only tfrecord\)/);
  await withInfo((i) => ({ ...i, splits: [{ name: 'train' }] }), /splits\[0\]: has neither shardLengths nor numShards/);
  await withInfo((i) => ({ ...i, splits: [{ name: 'train', shardLengths: ['2', 'x'] }] }), /shardLengths\[1\] must be an integer/);
  // A template that leaves the directory, or has an unknown variable, is refused when shards are listed.
  for (const [template, re] of [['../{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}', /outside the dataset directory/], ['{DATASET}-{SHARD}', /unknown variable \{SHARD\}/]]) {
    writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify({ ...info, splits: [{ ...info.splits[0], filepathTemplate: template }] }));
    const ds = await openTfdsDataset(dir);
    assert.throws(() => ds.shardPaths('train'), (e) => e instanceof FormatError && re.test(e.message) && lines(e) === 1);
  }
  writeFileSync(join(dir, 'dataset_info.json'), JSON.stringify(info));
  // features.json without the steps Dataset is not RLDS.
  writeFileSync(join(dir, 'features.json'), JSON.stringify({ ...features, featuresDict: { features: { episode_metadata: features.featuresDict.features.episode_metadata } } }));
  await rejectsWith(openTfdsDataset(dir), [/features\.json: has no top-level Dataset\/Sequence feature \(the RLDS steps\)/]);
  writeFileSync(join(dir, 'features.json'), JSON.stringify(features));
  // No metadata at all.
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  await rejectsWith(openTfdsDataset(empty), [/has no dataset_info\.json/]);
});

test('TFDS: other dtypes and encodings as TFDS stores them; unsupported features are listed, not read', async (t) => {
  const root = tempDir(t, 'craftgrad-rlds-');
  const spec = {
    steps: dataset({
      obs: tensor([2, 2], 'uint8'),
      idx: scalar('int64'),
      small: tensor([2], 'int16'),
      d: tensor([1], 'float64'),
      cam: image([null, null, 3], 'png'),
      names: tensor([2], 'string'),
    }),
    episode_id: scalar('int32'),
    title: text(),
  };
  const frame = Uint8Array.of(137, 80, 78, 71);
  const steps = [0, 1, 2].map((s) => ({ obs: Uint8Array.of(s, 1, 2, 255), idx: BigInt(2 ** 40) * BigInt(s + 1), small: [-300, s], d: [0.1 * s], cam: frame, names: ['a', `b${s}`] }));
  const { dir } = await writeTfdsDataset(root, { name: 'misc', spec, splits: { train: [{ steps, episode_id: -7, title: 'héllo' }] } });
  // Add features this reader does not decode: a ragged tensor and a video.
  const fj = JSON.parse(readFileSync(join(dir, 'features.json'), 'utf8'));
  fj.featuresDict.features.steps.sequence.feature.featuresDict.features.ragged = { tensor: { shape: { dimensions: ['-1'] }, dtype: 'float32', encoding: 'none' } };
  fj.featuresDict.features.clip = { pythonClassName: 'tensorflow_datasets.core.features.video_feature.Video', video: { shape: { dimensions: ['2', '4', '4', '3'] } } };
  writeFileSync(join(dir, 'features.json'), JSON.stringify(fj));
  const ds = await openTfdsDataset(dir);
  assert.deepEqual(ds.unsupported.map((u) => u.key), ['steps/ragged', 'clip']);
  assert.match(ds.unsupported[1].reason, /video/);
  const [ep] = await collect(ds);
  const f = ep.features;
  assert.equal(ep.steps, 3);
  assert.deepEqual([f.get('steps/obs').constructor.name, ...f.get('steps/obs')], ['Uint8Array', 0, 1, 2, 255, 1, 1, 2, 255, 2, 1, 2, 255]);
  assert.deepEqual([...f.get('steps/idx')], [1n, 2n, 3n].map((k) => k * 2n ** 40n));
  assert.deepEqual([f.get('steps/small').constructor.name, ...f.get('steps/small')], ['Int16Array', -300, 0, -300, 1, -300, 2]);
  assert.deepEqual([f.get('steps/d').constructor.name, ...f.get('steps/d')], ['Float64Array', 0, Math.fround(0.1), Math.fround(0.2)]);
  assert.deepEqual(f.get('steps/cam').map((b) => [...b]), [[...frame], [...frame], [...frame]]);
  assert.deepEqual(f.get('steps/names').map((b) => new TextDecoder().decode(b)), ['a', 'b0', 'a', 'b1', 'a', 'b2']);
  assert.deepEqual([f.get('episode_id').constructor.name, ...f.get('episode_id')], ['Int32Array', -7]);
  assert.deepEqual(f.get('title'), ['héllo']);
  assert.equal(ds.features.find((s) => s.key === 'steps/cam').encoding, 'png');
});

test('TFDS: tensors with encoding bytes and zlib (one raw little-endian entry per step)', async (t) => {
  const { deflateSync } = await import('node:zlib');
  const root = tempDir(t, 'craftgrad-rlds-');
  const spec = { steps: dataset({ a: tensor([3], 'float32'), z: tensor([2], 'int32') }) };
  const a = [[1, 2, 3], [4, 5, 6]];
  const z = [[-1, 7], [8, 2 ** 30]];
  const { dir } = await writeTfdsDataset(root, {
    name: 'enc', spec, splits: { train: [{ steps: a.map((v, i) => ({ a: v, z: z[i] })) }] },
    transform: (entries) => entries.map(([k]) => (k === 'steps/a'
      ? [k, { kind: 'bytes', values: a.map((v) => new Uint8Array(Float32Array.from(v).buffer)) }]
      : [k, { kind: 'bytes', values: z.map((v) => new Uint8Array(deflateSync(new Uint8Array(Int32Array.from(v).buffer)))) }])),
  });
  const fj = JSON.parse(readFileSync(join(dir, 'features.json'), 'utf8'));
  const inner = fj.featuresDict.features.steps.sequence.feature.featuresDict.features;
  inner.a.tensor.encoding = 'bytes';
  inner.z.tensor.encoding = 'zlib';
  writeFileSync(join(dir, 'features.json'), JSON.stringify(fj));
  const [ep] = await collect(await openTfdsDataset(dir));
  assert.deepEqual([...ep.features.get('steps/a')], a.flat());
  assert.deepEqual([ep.features.get('steps/z').constructor.name, ...ep.features.get('steps/z')], ['Int32Array', ...z.flat()]);
});

test('TFDS: mutated Examples (valid framing) never crash or hang the reader — each is read or refused with a FormatError', { timeout: 120_000 }, async (t) => {
  const spec = liberoSpec({ imageSize: 8 });
  const base = encodeExample(episodeEntries(spec, await liberoEpisode({ steps: 3, seed: 42, imageSize: 8 })));
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const variants = [];
  for (let k = 0; k < 150; k++) {
    const b = Uint8Array.from(base);
    const kind = k % 3;
    if (kind === 0) for (let j = 0; j < 1 + Math.floor(rand() * 4); j++) b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8);
    if (kind === 1) { variants.push(b.subarray(0, Math.floor(rand() * b.length))); continue; }
    if (kind === 2) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    variants.push(b);
  }
  const root = tempDir(t, 'craftgrad-rlds-');
  const { dir, shardPaths } = await writeTfdsDataset(root, { name: 'fuzz', spec, splits: { train: [await liberoEpisode({ steps: 1, seed: 1, imageSize: 8 })] } });
  const ds = await openTfdsDataset(dir);
  let read = 0;
  let refused = 0;
  for (const v of variants) {
    writeFileSync(shardPaths.train[0], frameByHand(v));
    try {
      const eps = await collect(ds);
      assert.equal(eps.length, 1);
      read++;
    } catch (e) {
      assert.ok(e instanceof FormatError, `not a FormatError: ${e?.stack ?? e}`);
      assert.equal(lines(e), 1, e.message);
      assert.match(e.message, /fuzz-train\.tfrecord-00000-of-00001, record 0 \(episode 0\)/);
      refused++;
    }
  }
  assert.equal(read + refused, variants.length);
  assert.ok(refused > 50, `refused ${refused} of ${variants.length}`);
});
