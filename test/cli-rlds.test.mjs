// `craftgrad train --model VLA_DIR --data TFDS_DIR`: VLA-Adapter trained straight from a
// LIBERO-format RLDS directory (test/helpers/rlds-writer.mjs follows the TFDS source; real
// JPEG frames), with the model directory's own tokenizer: samples as OpenVLA-OFT forms them,
// augmentation on, statistics computed and written into every checkpoint, a resumed run
// bit-identical to an uninterrupted one; a malformed shard or statistics file gets one line
// and nothing is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { TINY_VLA, writeTinyVla } from './helpers/vla-tiny.mjs';
import { writeTinyQwen2 } from './helpers/tiny-qwen2-tokenizer.mjs';
import { liberoEpisode, liberoSpec, writeTfdsDataset } from './helpers/rlds-writer.mjs';

const TINY = ['--batch-size', '4', '--rank', '2', '--alpha', '4', '--quiet', '--threads', '2', '--val-every', '0'];

async function setup(t, { episodes = 4, steps = 11 } = {}) {
  const root = tempDir(t, 'craftgrad-rlds-cli-');
  // The tokenizer's ids (bytes, merges, chat specials) fit a 320-token vocabulary.
  const model = writeTinyVla(join(root, 'model'), { spec: { ...TINY_VLA, vocab: 320 } }).dir;
  writeTinyQwen2(model);
  const instructions = ['pick up the black bowl', 'put the plate on the stove'];
  const eps = [];
  for (let e = 0; e < episodes; e++) eps.push(await liberoEpisode({ steps, seed: e + 1, instruction: instructions[e % 2], imageSize: 32 }));
  const { dir: data, shardPaths } = await writeTfdsDataset(root, { name: 'libero_tiny', folder: 'libero_tiny_no_noops', spec: liberoSpec({ imageSize: 32 }), splits: { train: eps } });
  // TINY's --val-every 0 unless the test gives its own (an option given twice is refused).
  const train = (name, extra = []) => runCli(['train', '--model', model, '--data', data, '--out', join(root, 'runs'), '--name', name,
    ...(extra.includes('--val-every') ? TINY.slice(0, -2) : TINY), ...extra]);
  return { root, model, data, shardPaths, train };
}

test('VLA-Adapter trains from an RLDS directory; statistics in every checkpoint; resume is bit-identical with augmentation on', async (t) => {
  const { root, train } = await setup(t);
  const full = train('full', ['--steps', '4', '--save-every', '2']);
  assert.equal(full.code, 0, full.stderr);
  const metrics = readFileSync(join(root, 'runs', 'full', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(metrics.length, 4);
  assert.ok(metrics.every((m) => Number.isFinite(m.action_loss) && m.action_loss > 0));
  const ck = join(root, 'runs', 'full', 'checkpoints', 'step-000004');
  const stats = JSON.parse(readFileSync(join(ck, 'dataset_statistics.json'), 'utf8'));
  assert.deepEqual(Object.keys(stats), ['libero_tiny'], 'keyed by the builder name');
  assert.equal(stats.libero_tiny.action.q01.length, 7);
  assert.equal(stats.libero_tiny.proprio.q99.length, 8);
  assert.equal(stats.libero_tiny.num_trajectories, 4);
  const part = train('part', ['--steps', '2', '--save-every', '2']);
  assert.equal(part.code, 0, part.stderr);
  const r = runCli(['train', '--resume', join(root, 'runs', 'part'), '--steps', '4', '--quiet', '--threads', '2']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'action_head--4_checkpoint.pt', 'dataset_statistics.json']) {
    assert.deepEqual(readFileSync(join(root, 'runs', 'part', 'checkpoints', 'step-000004', f)), readFileSync(join(ck, f)), `${f} after resume`);
  }
  // Another seed draws other samples and augmentations: the check above can fail.
  const other = train('other', ['--steps', '4', '--save-every', '2', '--seed', '7']);
  assert.equal(other.code, 0, other.stderr);
  assert.notDeepEqual(readFileSync(join(root, 'runs', 'other', 'checkpoints', 'step-000004', 'model.safetensors')), readFileSync(join(ck, 'model.safetensors')));
});

test('--stats normalises with a given file; one for other dimensions is refused in one line', async (t) => {
  const { root, train } = await setup(t);
  const first = train('a', ['--steps', '1']);
  assert.equal(first.code, 0, first.stderr);
  const statsFile = join(root, 'stats.json');
  writeFileSync(statsFile, readFileSync(join(root, 'runs', 'a', 'checkpoints', 'step-000001', 'dataset_statistics.json')));
  const again = train('b', ['--steps', '1', '--stats', statsFile]);
  assert.equal(again.code, 0, again.stderr);
  const loss = (n) => JSON.parse(readFileSync(join(root, 'runs', n, 'metrics.jsonl'), 'utf8').trim()).action_loss;
  assert.equal(loss('b'), loss('a'), 'the same statistics, read back, give the same first step');
  const s = JSON.parse(readFileSync(statsFile, 'utf8'));
  s.libero_tiny.action.q01 = s.libero_tiny.action.q01.slice(0, 6);
  writeFileSync(statsFile, JSON.stringify(s));
  const bad = train('c', ['--steps', '1', '--stats', statsFile]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /stats\.json.*q01/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.ok(!existsSync(join(root, 'runs', 'c')), 'nothing written');
});

test('a corrupt record is one line naming the shard and the record, before any training', async (t) => {
  const { root, shardPaths, train } = await setup(t);
  const shard = shardPaths.train[0];
  const bytes = readFileSync(shard);
  bytes[bytes.length - 40] ^= 0xff;  // inside the last record's data: its CRC fails
  writeFileSync(shard, bytes);
  const r = train('bad', ['--steps', '1']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /libero_tiny-train\.tfrecord-00000-of-00001.*record 3.*CRC/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.ok(!existsSync(join(root, 'runs', 'bad')), 'nothing written');
});

test('--shots-per-task keeps the first episodes of each instruction; validation holds out episodes and reads center crops', async (t) => {
  const { root, train } = await setup(t, { episodes: 6 });
  const r = train('shots', ['--steps', '2', '--shots-per-task', '1', '--val-fraction', '0.34', '--val-every', '2']);
  assert.equal(r.code, 0, r.stderr);
  // 6 episodes of 11 steps give 4 samples each; two instructions; one episode per instruction
  // held out (0.34 of 3), one of the remaining two kept per instruction: 2 × 4 training samples.
  assert.match(r.stdout, /\(8 training, 8 validation samples\)/, r.stdout);
  const rows = readFileSync(join(root, 'runs', 'shots', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const val = rows.find((m) => m.val_action_loss !== undefined);
  assert.ok(val && Number.isFinite(val.val_action_loss) && Number.isFinite(val.val_retention_loss), JSON.stringify(rows.at(-1)));
});

test('--shuffle-buffer draws through a tf.data-style buffer saved in every checkpoint; resume is bit-identical; a changed value is refused', async (t) => {
  const { root, train } = await setup(t);
  // 8 training samples (2 episodes of 4), batches of 4, a buffer of 6 samples.
  const full = train('full', ['--steps', '4', '--save-every', '2', '--shuffle-buffer', '6']);
  assert.equal(full.code, 0, full.stderr);
  assert.match(full.stderr + full.stdout, /shuffle buffer of 6 samples/);
  assert.equal(JSON.parse(readFileSync(join(root, 'runs', 'full', 'config.json'), 'utf8')).config.shuffle_buffer, 6);
  const ck = join(root, 'runs', 'full', 'checkpoints', 'step-000004');
  const sampler = JSON.parse(readFileSync(join(root, 'runs', 'full', 'checkpoints', 'step-000002', 'state.json'), 'utf8')).trainer.source.sampler;
  assert.deepEqual([sampler.kind, sampler.size, sampler.bufferSize, sampler.stream, sampler.buffer.length], ['shuffle-buffer', 8, 6, 6 + 2 * 4, 6]);
  const part = train('part', ['--steps', '2', '--save-every', '2', '--shuffle-buffer', '6']);
  assert.equal(part.code, 0, part.stderr);
  const r = runCli(['train', '--resume', join(root, 'runs', 'part'), '--steps', '4', '--quiet', '--threads', '2']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'action_head--4_checkpoint.pt']) {
    assert.deepEqual(readFileSync(join(root, 'runs', 'part', 'checkpoints', 'step-000004', f)), readFileSync(join(ck, f)), `${f} after resume`);
  }
  const source = (dir) => JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).trainer.source;
  assert.deepEqual(source(join(root, 'runs', 'part', 'checkpoints', 'step-000004')), source(ck), 'the buffer after resume');
  const changed = runCli(['train', '--resume', join(root, 'runs', 'part'), '--steps', '6', '--quiet', '--shuffle-buffer', '3']);
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /--shuffle-buffer/);
});

test('--shuffle-buffer: a bad value, or one for data that is not an RLDS directory, is one line and nothing is written', (t) => {
  const root = tempDir(t, 'craftgrad-shuffle-buffer-');
  for (const bad of ['-1', '2.5', 'many']) {
    const r = runCli(['train', '--out', root, '--name', 'bad', '--steps', '1', '--quiet', '--shuffle-buffer', bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], /--shuffle-buffer must be (an integer >= 0|a number)/, r.stderr);
  }
  const r = runCli(['train', '--out', root, '--name', 'synthetic', '--steps', '1', '--quiet', '--shuffle-buffer', '4']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.split('\n')[0], /--shuffle-buffer 4 applies to an RLDS dataset directory as --data/, r.stderr);
  assert.ok(!existsSync(join(root, 'bad')) && !existsSync(join(root, 'synthetic')), 'nothing written');
});
