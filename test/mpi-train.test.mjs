// `mpirun -np N craftgrad train`: data-parallel training over MPI (README "Multi-process
// training"). Each test skips, saying why, where mpirun or an MPI build is missing; CI
// installs Open MPI (.ci/run). Tiny model, short runs: CI has two cores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { cliPath, runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { mpiSkipReason, mpirun, mpirunSpawn, rankPid } from './helpers/mpi.mjs';

const skip = mpiSkipReason();
const dir = skip ? undefined : tempDir(test, 'craftgrad-mpi-');

// Unequal shares (7 samples over 2 or 3 ranks), two micro-batches, a budget small enough
// that λ moves, validation: every reduction on the path.
const TINY = ['--width', '16', '--tokens', '4', '--blocks', '2', '--rank', '2', '--head-width', '16', '--batch-size', '7',
  '--grad-accum', '2', '--budget', '1e-7', '--val-every', '10', '--log-every', '1', '--quiet', '--threads', '1'];
const STEPS = 50;
const train = (args) => ['train', '--out', dir, ...TINY, ...args];

function rows(name) {
  return readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.step !== undefined);
}
/** The rows without their timings (the only fields that may differ run to run). */
const untimed = (rs) => rs.map(({ step_ms, samples_per_s, ...rest }) => rest);
function checkpointBytes(name, step) {
  const ck = join(dir, name, 'checkpoints', `step-${String(step).padStart(6, '0')}`);
  return ['model.safetensors', 'optimizer.safetensors', 'anchor.safetensors'].map((f) => readFileSync(join(ck, f)));
}
function trainMpi(ranks, args, env = {}) {
  const r = mpirun(ranks, [process.execPath, cliPath, ...train(args)], { timeout: 120_000, env });
  assert.equal(r.code, 0, `mpirun -np ${ranks} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

// The single-process run every comparison starts from.
let one;
test('the one-process reference run', (t) => {
  if (skip) return t.skip(skip);
  const r = runCli(train(['--name', 'one', '--steps', String(STEPS)]));
  assert.equal(r.code, 0, r.stderr);
  one = rows('one');
  assert.equal(one.length, STEPS);
  assert.ok(one.some((row) => row.lambda_after > 0), 'λ moved (the dual update is exercised)');
});

const COMPARED = ['action_loss', 'retention_loss', 'grad_norm', 'lambda_after', 'val_action_loss', 'val_retention_loss', 'lr', 'epoch', 'nonfinite_skipped'];
/** Every step's metrics of run `name` against the one-process run's, within 1e-5 relative; the largest difference. */
function compareWithOne(name, ranks) {
  const n = rows(name);
  assert.equal(n.length, one.length);
  let worst = 0;
  n.forEach((row, i) => {
    assert.equal(row.step, one[i].step);
    for (const k of COMPARED) {
      assert.equal(typeof row[k], typeof one[i][k], `step ${row.step} ${k}`);
      if (typeof row[k] !== 'number') continue;
      const rel = row[k] === one[i][k] ? 0 : Math.abs(row[k] - one[i][k]) / Math.max(Math.abs(row[k]), Math.abs(one[i][k]));
      worst = Math.max(worst, rel);
      assert.ok(rel <= 1e-5, `step ${row.step} ${k}: ${row[k]} with ${ranks} ranks, ${one[i][k]} with one (relative ${rel})`);
    }
  });
  return worst;
}

// The default design is the sharded (ZeRO-1) step; CRAFTGRAD_DATA_PARALLEL=plain selects the plain one.
for (const ranks of [2, 3]) {
  test(`${ranks} ranks (sharded step): the metrics of every step match the one-process run within 1e-5 relative, ranks hold identical weights`, (t) => {
    if (skip) return t.skip(skip);
    assert.ok(one, 'the reference run ran');
    const r = trainMpi(ranks, ['--name', `n${ranks}`, '--steps', String(STEPS)]);
    assert.match(r.stderr, new RegExp(`the ${ranks} ranks hold identical weights \\(digest [0-9a-f]{12}\\)`));
    assert.match(r.stderr, /data-parallel step: sharded/);
    assert.match(r.stdout, new RegExp(`${ranks} ranks \\(MPI\\)`));
    t.diagnostic(`largest relative difference from the one-process run: ${compareWithOne(`n${ranks}`, ranks).toExponential(2)}`);
    // Rank 0 alone wrote the run: one writer of each file, and the checkpoints hold the whole state.
    assert.ok(existsSync(join(dir, `n${ranks}`, 'checkpoints', `step-${String(STEPS).padStart(6, '0')}`, 'optimizer.safetensors')));
  });
}

test('2 ranks, the plain design (CRAFTGRAD_DATA_PARALLEL=plain): matches the one-process run within 1e-5 relative too', (t) => {
  if (skip) return t.skip(skip);
  assert.ok(one, 'the reference run ran');
  const r = trainMpi(2, ['--name', 'plain2', '--steps', String(STEPS)], { CRAFTGRAD_DATA_PARALLEL: 'plain' });
  assert.match(r.stderr, /the 2 ranks hold identical weights/);
  assert.match(r.stderr, /data-parallel step: plain/);
  t.diagnostic(`largest relative difference from the one-process run: ${compareWithOne('plain2', 2).toExponential(2)}`);
  // The checkpoint format is the same whichever design wrote it: the same tensors, names and shapes.
  const header = (name) => {
    const b = readFileSync(join(dir, name, 'checkpoints', `step-${String(STEPS).padStart(6, '0')}`, 'optimizer.safetensors'));
    const h = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString());
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, k === '__metadata__' ? v : { dtype: v.dtype, shape: v.shape }]));
  };
  assert.deepEqual(header('n2'), header('plain2'));
});

test('2 ranks, the plain design: stopped half-way and resumed, bit-identical to the uninterrupted plain run', (t) => {
  if (skip) return t.skip(skip);
  const plain = { CRAFTGRAD_DATA_PARALLEL: 'plain' };
  trainMpi(2, ['--name', 'plainhalf', '--steps', String(STEPS / 2)], plain);
  const r = mpirun(2, [process.execPath, cliPath, 'train', '--resume', join(dir, 'plainhalf'), '--steps', String(STEPS), '--quiet'], { timeout: 120_000, env: plain });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(untimed(rows('plainhalf')), untimed(rows('plain2')));
  assert.deepEqual(checkpointBytes('plainhalf', STEPS), checkpointBytes('plain2', STEPS));
});

test('without --threads each rank takes its share of the cores', (t) => {
  if (skip) return t.skip(skip);
  const args = train(['--name', 'threads', '--steps', '2']).filter((a, i, all) => a !== '--threads' && all[i - 1] !== '--threads');
  const r = mpirun(2, [process.execPath, cliPath, ...args], { timeout: 120_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const share = Math.max(1, Math.floor(availableParallelism() / 2));
  assert.match(r.stdout, new RegExp(`CPU \\([a-z0-9]+, ${share} threads\\), 2 ranks \\(MPI\\)`));
});

test('CRAFTGRAD_DATA_PARALLEL other than sharded or plain is refused', (t) => {
  if (skip) return t.skip(skip);
  const r = mpirun(2, [process.execPath, cliPath, ...train(['--name', 'badmode', '--steps', '2'])], { env: { CRAFTGRAD_DATA_PARALLEL: 'zero3' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /CRAFTGRAD_DATA_PARALLEL must be 'sharded' or 'plain', got "zero3"/);
});

test('CRAFTGRAD_DEVICE_REDUCE other than auto, nccl or host is refused before the run directory is made', (t) => {
  if (skip) return t.skip(skip);
  const r = mpirun(2, [process.execPath, cliPath, ...train(['--name', 'badreduce', '--steps', '2'])], { env: { CRAFTGRAD_DEVICE_REDUCE: 'gloo' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /CRAFTGRAD_DEVICE_REDUCE must be 'auto', 'nccl' or 'host', got "gloo"/);
  assert.equal(existsSync(join(dir, 'badreduce')), false);
});

test('2 ranks: a run is bit-identical to itself (metrics and every checkpointed tensor)', (t) => {
  if (skip) return t.skip(skip);
  trainMpi(2, ['--name', 'again', '--steps', String(STEPS)]);
  assert.deepEqual(untimed(rows('again')), untimed(rows('n2')));
  assert.deepEqual(checkpointBytes('again', STEPS), checkpointBytes('n2', STEPS));
});

test('a checkpoint of 2 ranks is refused by 3 ranks and by one process, naming the count to use', (t) => {
  if (skip) return t.skip(skip);
  const r3 = mpirun(3, [process.execPath, cliPath, 'train', '--resume', join(dir, 'n2'), '--steps', String(STEPS + 5), '--quiet']);
  assert.notEqual(r3.code, 0);
  assert.match(r3.stderr, /saved by a run of 2 processes \(ranks\), this one has 3: resume it with mpirun -np 2/);
  const r1 = runCli(['train', '--resume', join(dir, 'n2'), '--steps', String(STEPS + 5), '--quiet']);
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /saved by a run of 2 processes \(ranks\), this one has 1: resume it with mpirun -np 2/);
});

// Long enough to be interrupted part-way; the uninterrupted run is the reference.
const LONG = 200;
const tagged = (tag) => ({ env: { MPI_TEST_TAG: tag } });
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function interruptRank1(name, signal) {
  const tag = `${name}-${process.pid}`;
  const job = mpirunSpawn(2, [process.execPath, cliPath, ...train(['--name', name, '--steps', String(LONG), '--save-every', '10'])], tagged(tag));
  const first = join(dir, name, 'checkpoints', 'step-000010');
  const deadline = Date.now() + 60_000;
  while (!existsSync(first) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(existsSync(first), `the run made no checkpoint within 60 s:\n${job.out}`);
  const pid = rankPid(tag, 1);
  const peer = rankPid(tag, 0);
  assert.ok(pid && peer, 'ranks 0 and 1 found');
  const sent = Date.now();
  process.kill(pid, signal);
  const timer = setTimeout(() => job.kill('SIGKILL'), 30_000);
  const end = await job.done;
  clearTimeout(timer);
  // mpirun may exit a moment before rank 0 is gone: the time that counts is rank 0's (and a
  // resume started while it lives is refused by the run lock, rightly).
  while (alive(peer) && Date.now() - sent < 30_000) await new Promise((r) => setTimeout(r, 20));
  return { ...end, seconds: (Date.now() - sent) / 1000, peerAlive: alive(peer), out: job.out };
}

let long;
test(`2 ranks, the uninterrupted ${LONG}-step reference`, (t) => {
  if (skip) return t.skip(skip);
  trainMpi(2, ['--name', 'long', '--steps', String(LONG), '--save-every', '10']);
  long = rows('long');
});

test('SIGTERM to rank 1 stops both ranks after the same step with one checkpoint; --resume ends bit-identical', async (t) => {
  if (skip) return t.skip(skip);
  assert.ok(long, 'the reference run ran');
  const end = await interruptRank1('term', 'SIGTERM');
  assert.equal(end.code, 143, `mpirun's exit: ${JSON.stringify(end)}\n${end.out}`);
  assert.match(end.out, /Stopped by SIGTERM after step (\d+)/);
  const stoppedAt = Number(/Stopped by SIGTERM after step (\d+)/.exec(end.out)[1]);
  assert.ok(stoppedAt < LONG, 'stopped part-way');
  assert.ok(existsSync(join(dir, 'term', 'checkpoints', `step-${String(stoppedAt).padStart(6, '0')}`)), 'checkpoint of the stop step');
  trainMpi(2, ['--resume', join(dir, 'term')]);
  assert.deepEqual(untimed(rows('term')), untimed(long));
  assert.deepEqual(checkpointBytes('term', LONG), checkpointBytes('long', LONG));
});

test('kill -9 of rank 1 ends the other rank within 10 s with a non-zero exit; the run resumes from its last checkpoint, bit-identical', async (t) => {
  if (skip) return t.skip(skip);
  assert.ok(long, 'the reference run ran');
  const end = await interruptRank1('killed', 'SIGKILL');
  assert.ok(end.code !== 0 || end.signal, `mpirun exited 0 after a rank was killed:\n${end.out}`);
  assert.ok(!end.peerAlive && end.seconds < 10, `rank 0 took ${end.seconds} s to end after the kill (alive: ${end.peerAlive})`);
  t.diagnostic(`rank 0 ended ${end.seconds.toFixed(2)} s after the kill (exit ${end.code})`);
  assert.ok(!existsSync(join(dir, 'killed', 'checkpoints', `step-${String(LONG).padStart(6, '0')}`)), 'the run did not finish');
  trainMpi(2, ['--resume', join(dir, 'killed')]);
  assert.deepEqual(untimed(rows('killed')), untimed(long));
  assert.deepEqual(checkpointBytes('killed', LONG), checkpointBytes('long', LONG));
});
