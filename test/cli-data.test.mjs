// `craftgrad data DIR`: the printed summary of a tiny LIBERO-format RLDS directory
// (test/helpers/rlds-writer.mjs: real JPEG frames, two shards), `--export` read back with the
// VLA tensor file's loader and compared exactly with an independent reading of the episodes
// the test wrote (numpy's float32 arithmetic for the normalised actions and proprio, the raw
// JPEG bytes through prepareFrame for the images), the statistics file written beside it,
// `--stats`, padded input_ids from the model's tokenizer, `--page`, and a corrupt shard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { TINY_VLA, writeTinyVla } from './helpers/vla-tiny.mjs';
import { writeTinyQwen2 } from './helpers/tiny-qwen2-tokenizer.mjs';
import { liberoEpisode, liberoSpec, writeTfdsDataset } from './helpers/rlds-writer.mjs';
import { loadVlaDatasetFile } from '../dist/data/vla-dataset.js';
import { readSafetensorsFile, encodeSafetensors } from '../dist/formats/safetensors.js';
import { publishSafetensorsStreamed } from '../dist/formats/safetensors-writer.js';
import { augmentRng, prepareFrame } from '../dist/data/images/index.js';
import { loadPromptTokenizer, promptInputIds } from '../dist/data/rlds/index.js';

const INSTRUCTIONS = ['pick up the black bowl', 'put the plate on the stove'];
// Record order: shard 0 holds episodes 0-2, shard 1 episodes 3-4; episode 4 is shorter than a chunk.
const STEPS = [16, 12, 9, 14, 5];
const CHUNK = 8, SIZE = 16;

async function setup(t) {
  const root = tempDir(t, 'craftgrad-data-cli-');
  const episodes = [];
  for (let e = 0; e < STEPS.length; e++) episodes.push(await liberoEpisode({ steps: STEPS[e], seed: e + 1, instruction: INSTRUCTIONS[e % 2], imageSize: 32 }));
  const { dir, shardPaths } = await writeTfdsDataset(root, {
    name: 'libero_tiny', folder: 'libero_tiny_no_noops', spec: liberoSpec({ imageSize: 32 }), splits: { train: episodes }, shardLengths: { train: [3, 2] },
  });
  return { root, dir, shardPaths, episodes };
}

/** A tiny VLA-Adapter directory with a Qwen2-style tokenizer (4 action queries); returns it and the pad id. */
function tinyModel(root) {
  const model = writeTinyVla(join(root, 'model'), { spec: { ...TINY_VLA, vocab: 320 } }).dir;
  return { model, padId: writeTinyQwen2(model) };
}

/** The samples as the test reads the episodes: [episode, t] in record order, steps ascending. */
function expectedSamples() {
  const out = [];
  STEPS.forEach((T, e) => { for (let t = 0; t + CHUNK <= T; t++) out.push([e, t]); });
  return out;
}

/**
 * Normalised chunks and proprio of every sample, computed by numpy from the raw episodes and
 * the statistics file: LIBERO's transform (actions[:6] ++ 1 − clip(gripper, 0, 1); proprio =
 * state[:6] ++ state[-2:]) and BOUNDS_Q99 as upstream's tf.data graph computes it in float32
 * (x − float32(q01), float32(q99 − q01 + 1e-8) in float64, the rest float32), the gripper
 * not normalised, zero where min == max.
 */
function numpyReading(root, episodes, statsFile, name) {
  const raw = episodes.map((ep) => ({
    action: ep.steps.map((s) => Array.from(s.action)), state: ep.steps.map((s) => Array.from(s.observation.state)),
  }));
  const input = join(root, 'raw.json');
  writeFileSync(input, JSON.stringify({ raw, samples: expectedSamples(), stats: statsFile, name, chunk: CHUNK }));
  const py = `
import json, sys, numpy as np
d = json.load(open(sys.argv[1])); st = json.load(open(d['stats']))[d['name']]
def norm(x, s, mask):
    q01 = np.array(s['q01'], np.float64); q99 = np.array(s['q99'], np.float64)
    y = (np.float32(2) * (x - q01.astype(np.float32))) / (q99 - q01 + 1e-8).astype(np.float32) - np.float32(1)
    y = np.clip(y, -1, 1).astype(np.float32)
    y = np.where(mask, y, x)
    return np.where(np.array(s['min']) == np.array(s['max']), np.float32(0), y).astype(np.float32)
acts, props = [], []
for ep in d['raw']:
    a = np.array(ep['action'], np.float32); s = np.array(ep['state'], np.float32)
    a = np.concatenate([a[:, :6], np.float32(1) - np.clip(a[:, -1:], np.float32(0), np.float32(1))], axis=1)
    p = np.concatenate([s[:, :6], s[:, -2:]], axis=1)
    acts.append(norm(a, st['action'], np.array(st['action']['mask']))); props.append(norm(p, st['proprio'], np.ones(8, bool)))
A = np.stack([acts[e][t:t + d['chunk']].reshape(-1) for e, t in d['samples']]).astype('<f4')
P = np.stack([props[e][t] for e, t in d['samples']]).astype('<f4')
sys.stdout.write(A.tobytes().hex() + '\\n' + P.tobytes().hex())
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, input], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) return { skip: r.stderr || r.error?.message };
  const [a, p] = r.stdout.trim().split('\n').map((h) => new Float32Array(new Uint8Array(Buffer.from(h, 'hex')).buffer));
  return { actions: a, proprio: p };
}

test('the summary: name, version, episodes, steps, samples, tasks with counts, statistics', async (t) => {
  const { dir } = await setup(t);
  const r = runCli(['data', dir, '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /^libero_tiny 1\.0\.0 \(.*libero_tiny_no_noops\/1\.0\.0\), split train$/m);
  assert.match(out, /^episodes: 5 \(0 without an instruction and 1 shorter than a chunk give no sample\)$/m);
  assert.match(out, /^steps: 56 \(per episode: min 5, mean 11\.2, max 16\)$/m);
  const samples = expectedSamples();
  assert.match(out, new RegExp(`^samples: ${samples.length} \\(`, 'm'));
  // Tasks: episodes 0 and 2 (4 gives none), 1 and 3.
  const count = (task) => samples.filter(([e]) => e % 2 === task).length;
  assert.match(out, new RegExp(`^\\s+2\\s+${count(0)}\\s+"pick up the black bowl"$`, 'm'));
  assert.match(out, new RegExp(`^\\s+2\\s+${count(1)}\\s+"put the plate on the stove"$`, 'm'));
  assert.match(out, /^tasks: 2$/m);
  assert.match(out, /^statistics: computed from the episodes .*\(56 transitions, 5 trajectories\)/m);
  // The action table: 7 dims, the gripper marked; proprio: 8 dims.
  assert.match(out, /^action \(7 dims/m);
  assert.match(out, /^\s+6\s+(\S+\s+){6}not normalised$/m);
  const proprioRows = out.split('proprio (8 dims):\n')[1].trim().split('\n');
  assert.equal(proprioRows.length, 9, 'a header and 8 dims');
  // The gripper's min and max after LIBERO's transform are 0 and 1 (−1 → 1 open, +1 → 0 closed).
  assert.match(out, /^\s+6\s+\S+\s+\S+\s+\S+\s+\S+\s+0\s+1\.0000\s+not normalised$/m);
});

test('--export: the samples read back with the loader equal an independent reading; the statistics file beside it', async (t) => {
  const { root, dir, episodes } = await setup(t);
  const out = join(root, 'out', 'samples.safetensors');
  runCli(['data', dir]); // nothing written without --export
  const missingDir = runCli(['data', dir, '--export', out]);
  assert.equal(missingDir.code, 2);
  assert.match(missingDir.stderr, /--export .*does not exist/);
  const outDir = join(root, 'out');
  spawnSync('mkdir', ['-p', outDir]);
  const { model } = tinyModel(root);
  const r = runCli(['data', dir, '--export', out, '--model', model, '--image-size', String(SIZE), '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`exported ${expectedSamples().length} samples to .*samples\\.safetensors`));
  assert.deepEqual(readdirSync(outDir).sort(), ['dataset_statistics.json', 'samples.safetensors'], 'no temp file left');

  const samples = expectedSamples();
  const file = await readSafetensorsFile(out);
  assert.deepEqual(Array.from(file.tensors.episode.data), samples.map(([e]) => e));
  assert.deepEqual(Array.from(file.tensors.t.data), samples.map(([, s]) => s));
  const instructions = JSON.parse(file.metadata.instructions);
  assert.deepEqual(instructions, INSTRUCTIONS);
  assert.deepEqual(Array.from(file.tensors.task.data), samples.map(([e]) => e % 2));
  assert.deepEqual(Array.from(file.tensors.instruction.data), samples.map(([e]) => e % 2));
  assert.equal(file.metadata.augment, 'none');

  // The statistics file: upstream's layout, keyed by the builder's name.
  const statsPath = join(outDir, 'dataset_statistics.json');
  const stats = JSON.parse(readFileSync(statsPath, 'utf8'));
  assert.deepEqual(Object.keys(stats), ['libero_tiny']);
  const s = stats.libero_tiny;
  assert.deepEqual(Object.keys(s), ['action', 'proprio', 'num_transitions', 'num_trajectories']);
  assert.deepEqual(Object.keys(s.action), ['mean', 'std', 'max', 'min', 'q01', 'q99', 'mask']);
  assert.deepEqual(s.action.mask, [true, true, true, true, true, true, false]);
  assert.equal(s.num_transitions, 56);
  assert.equal(s.num_trajectories, 5);
  // min/max straight from the raw episodes (every episode counts, the short one too).
  const gripper = episodes.flatMap((ep) => ep.steps.map((st) => Math.fround(1 - Math.min(1, Math.max(0, st.action[6])))));
  assert.equal(s.action.min[6], Math.min(...gripper));
  assert.equal(s.action.max[0], Math.max(...episodes.flatMap((ep) => ep.steps.map((st) => st.action[0]))));
  assert.equal(s.proprio.min[7], Math.min(...episodes.flatMap((ep) => ep.steps.map((st) => st.observation.state[7]))));

  // The loader reads it; numbers equal numpy's reading of the raw episodes with that file.
  const ds = await loadVlaDatasetFile(out);
  assert.equal(ds.size, samples.length);
  assert.equal(ds.views, 2);
  assert.equal(ds.imageSize, SIZE);
  assert.equal(ds.actionSize, CHUNK * 7);
  assert.equal(ds.proprioDim, 8);
  assert.deepEqual(Array.from(ds.episode), samples.map(([e]) => e));
  const py = numpyReading(root, episodes, statsPath, 'libero_tiny');
  if (py.skip) t.diagnostic(`numpy not available (${py.skip}); actions and proprio checked against the file only`);
  else {
    assert.deepEqual(ds.actions, py.actions, 'normalised chunks');
    assert.deepEqual(ds.proprio, py.proprio, 'normalised proprio');
  }
  // Images: prepareFrame without augmentation of the JPEG bytes the test wrote, both views.
  const plane = 2 * SIZE * SIZE * 3;
  for (const [n, [e, st]] of samples.entries()) {
    const step = episodes[e].steps[st].observation;
    const want = await prepareFrame([step.image, step.wrist_image], { size: SIZE, augment: 'none' });
    assert.deepEqual(ds.images.subarray(n * plane, (n + 1) * plane), want, `sample ${n} (episode ${e}, step ${st})`);
  }

  // --augment: each sample's own draw, augmentRng(seed, 0, sample); other pixels than without.
  const aug = join(outDir, 'aug.safetensors');
  const ra = runCli(['data', dir, '--export', aug, '--model', model, '--image-size', String(SIZE), '--augment', '--seed', '5', '--views', '1', '--threads', '1']);
  assert.equal(ra.code, 0, ra.stderr);
  const da = await loadVlaDatasetFile(aug);
  assert.equal(da.views, 1);
  const one = SIZE * SIZE * 3;
  for (const n of [0, 7, samples.length - 1]) {
    const [e, st] = samples[n];
    const want = await prepareFrame([episodes[e].steps[st].observation.image], { size: SIZE, augment: 'random', rng: augmentRng(5, 0, n) });
    assert.deepEqual(da.images.subarray(n * one, (n + 1) * one), want, `augmented sample ${n}`);
    assert.notDeepEqual(da.images.subarray(n * one, (n + 1) * one), ds.images.subarray(n * plane, n * plane + one));
  }

  // --stats: another file's statistics are the ones applied (and reported).
  const other = join(root, 'other-stats.json');
  const o = structuredClone(stats);
  o.libero_tiny.action.q99 = o.libero_tiny.action.q99.map((v) => v * 2);
  o.libero_tiny.proprio.q01 = o.libero_tiny.proprio.q01.map((v) => v - 0.25);
  writeFileSync(other, JSON.stringify(o));
  const withStats = join(outDir, 'with-stats.safetensors');
  const rs = runCli(['data', dir, '--stats', other, '--export', withStats, '--image-size', '8', '--views', '1', '--threads', '1']);
  assert.equal(rs.code, 0, rs.stderr);
  assert.match(rs.stdout, /statistics: from --stats .*other-stats\.json/);
  // Without --model the file has no input_ids (the loader then refuses it, naming the field).
  assert.match(rs.stdout, /no input_ids: give --model/);
  const fileS = await readSafetensorsFile(withStats);
  assert.ok(!('input_ids' in fileS.tensors));
  await assert.rejects(loadVlaDatasetFile(withStats), /input_ids/);
  const dsS = { actions: fileS.tensors.actions.data, proprio: fileS.tensors.proprio.data };
  const pyS = numpyReading(root, episodes, other, 'libero_tiny');
  if (!pyS.skip) {
    assert.deepEqual(dsS.actions, pyS.actions);
    assert.deepEqual(dsS.proprio, pyS.proprio);
  }
  assert.notDeepEqual(dsS.actions, ds.actions, 'the given statistics changed the numbers');
});

test('--export --model: input_ids from the model\'s tokenizer, right-padded with its pad id when prompts differ in length', async (t) => {
  const { root, dir } = await setup(t);
  const { model, padId: base } = tinyModel(root);
  const out = join(root, 'ids.safetensors');
  const r = runCli(['data', dir, '--export', out, '--model', model, '--image-size', '8', '--views', '1', '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  const tok = await loadPromptTokenizer(model);
  const rows = INSTRUCTIONS.map((s) => promptInputIds(tok, s, TINY_VLA.queries));
  const S = Math.max(...rows.map((x) => x.length));
  const file = await readSafetensorsFile(out);
  const ds = await loadVlaDatasetFile(out);
  assert.equal(ds.inputIds, S);
  const samples = expectedSamples();
  const padded = rows[0].length !== rows[1].length;
  assert.ok(padded, 'the two instructions tokenize to different lengths (the padding is exercised)');
  assert.match(r.stdout, new RegExp(`right-padded with pad id ${base}`));
  assert.equal(file.metadata.input_ids_padding, 'right');
  assert.equal(file.metadata.action_placeholders, String(TINY_VLA.queries), 'the placeholders are action_queries.weight\'s rows');
  for (const [n, [e]] of samples.entries()) {
    const want = new Int32Array(S).fill(base);  // <|endoftext|>, the tokenizer's pad_token
    want.set(rows[e % 2]);
    assert.deepEqual(ds.ids.subarray(n * S, (n + 1) * S), want, `row ${n}`);
    assert.equal(file.tensors.input_lengths.data[n], rows[e % 2].length);
  }
  assert.equal(ds.ids[0], base + 1, 'rows start with <|im_start|>');
});

test('--page: a self-contained page with the instructions, both views of 6 frames of 3 episodes, and action plots', async (t) => {
  const { root, dir } = await setup(t);
  const page = join(root, 'data.html');
  const out = join(root, 'aug.safetensors');
  const { model } = tinyModel(root);
  const r = runCli(['data', dir, '--page', page, '--export', out, '--model', model, '--augment', '--seed', '3', '--image-size', String(SIZE), '--threads', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /page of 3 episodes \(26 images\) written to/);
  const html = readFileSync(page, 'utf8');
  for (const s of INSTRUCTIONS) assert.ok(html.includes(s), s);
  // Episodes 0, 1, 2 give 9, 5 and 2 samples: 6 + 5 + 2 frames (every sample when fewer than 6), 2 views each.
  const imgs = [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)"[^>]*data-episode="(\d+)" data-step="(\d+)" data-sample="(\d+)" data-view="(\d)">/g)];
  assert.equal(imgs.length, (6 + 5 + 2) * 2);
  assert.equal((html.match(/<img /g) ?? []).length, imgs.length);
  assert.deepEqual([...new Set(imgs.map((m) => Number(m[2])))], [0, 1, 2]);
  assert.equal((html.match(/<svg/g) ?? []).length, 3, 'one action plot per episode');
  assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html.replace(/xmlns(:xlink)?="[^"]*"/g, '')), 'no script, nothing fetched');
  // The page shows the exported (augmented) pixels of those samples.
  const ds = await loadVlaDatasetFile(out);
  const one = SIZE * SIZE * 3;
  for (const m of [imgs[0], imgs[imgs.length - 1]]) {
    const { data, info } = await sharp(Buffer.from(m[1], 'base64')).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, SIZE);
    const k = Number(m[4]) * 2 + Number(m[5]);
    assert.deepEqual(new Uint8Array(data), ds.images.subarray(k * one, (k + 1) * one), `sample ${m[4]} view ${m[5]}`);
  }
});

test('a corrupt shard: one line naming the shard, record and check, exit 2, no file written', async (t) => {
  const { root, dir, shardPaths } = await setup(t);
  const shard = shardPaths.train[1];
  const bytes = readFileSync(shard);
  bytes[bytes.length - 40] ^= 0xff;  // inside the last record (episode 4, record 1 of shard 1)
  writeFileSync(shard, bytes);
  const out = join(root, 'x.safetensors'), page = join(root, 'x.html');
  const r = runCli(['data', dir, '--export', out, '--page', page, '--threads', '1']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /libero_tiny-train\.tfrecord-00001-of-00002.*record 1.*CRC/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(r.stdout, '');
  for (const f of [out, page, join(root, 'dataset_statistics.json')]) assert.ok(!existsSync(f), `${f} not written`);
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('.tmp-')), []);
  // Options that need --export or --page are refused without them.
  const stray = runCli(['data', dir, '--augment']);
  assert.equal(stray.code, 2);
  assert.match(stray.stderr, /--augment applies to --export and --page/);
});

test('the streamed safetensors writer: the same bytes as encodeSafetensors; a short stream publishes nothing', async (t) => {
  const root = tempDir(t, 'craftgrad-st-stream-');
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]), b = Uint8Array.from({ length: 40 }, (_, i) => i * 3);
  const path = join(root, 'x.safetensors');
  async function* pieces(bytes, size) { for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size); }
  await publishSafetensorsStreamed(path, { b: { dtype: 'U8', shape: [4, 10], chunks: () => pieces(b, 7) }, a: { dtype: 'F32', shape: [2, 3], data: a } }, { k: 'v' });
  assert.deepEqual(new Uint8Array(readFileSync(path)), encodeSafetensors({ a: { dtype: 'F32', shape: [2, 3], data: a }, b: { dtype: 'U8', shape: [4, 10], data: b } }, { k: 'v' }));
  const bad = join(root, 'bad.safetensors');
  await assert.rejects(publishSafetensorsStreamed(bad, { b: { dtype: 'U8', shape: [4, 10], chunks: () => pieces(b.subarray(0, 30), 7) } }), /stream gave 30 bytes, the header promises 40/);
  await assert.rejects(publishSafetensorsStreamed(bad, { b: { dtype: 'U8', shape: [2, 10], chunks: () => pieces(b, 7) } }), /more than/);
  assert.deepEqual(readdirSync(root), ['x.safetensors']);
});
