// NCCL on CUDA devices (native/cuda/nccl_communicator.cc, src/parallel/device-group.ts)
// under mpirun. On the CUDA emulator's build (test/cuda-emulator/run.js) the ranks load the
// emulator's NCCL stand-in (test/cuda-emulator/nccl): 2 and 3 ranks share the emulated
// device; on a real GPU the system's NCCL with as many ranks as there are GPUs (one rank
// with one GPU: NCCL refuses two ranks on one device). Checked: the device collectives give
// the bits of the MPI host collectives; an NCCL asynchronous error reaches JS; a failed
// init fails every rank; and `mpirun -np 2 craftgrad train --device cuda` reduces on the
// device with the same bits as through the host, and matches the one-process run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/backend.js';
import { announceGpu } from './helpers/gpu.mjs';
import { cliPath, runCli } from './helpers/cli.mjs';
import { mpiSkipReason, mpirun } from './helpers/mpi.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const child = fileURLToPath(new URL('./helpers/nccl-collectives-child.mjs', import.meta.url));
const oneRankChild = fileURLToPath(new URL('./helpers/nccl-one-rank-child.mjs', import.meta.url));
const cuda = backendInfo().cuda;
const gpuSkip = announceGpu(import.meta.url);
const emulated = cuda.devices.some((d) => /emulator/i.test(d.name));

// The NCCL the ranks load: the emulator's stand-in, built beside the emulator's addon, or
// the machine's own.
const standIn = process.env.CRAFTGRAD_PREBUILD ? join(process.env.CRAFTGRAD_PREBUILD, 'build', 'cuda-emulator', 'libnccl.so.2') : '';
const ncclEnv = emulated ? { CRAFTGRAD_NCCL_LIBRARY: standIn } : {};
function skipReason() {
  if (gpuSkip) return gpuSkip;
  const mpi = mpiSkipReason();
  if (mpi) return mpi;
  if (emulated && !existsSync(standIn)) return `the emulator's NCCL stand-in is not built (${standIn}): it needs MPI at build time`;
  if (!emulated && !backendInfo().nccl.available) return `no NCCL on this machine: ${backendInfo().nccl.reason}`;
  return undefined;
}
const skip = skipReason();
if (skip) console.log(`# nccl-cuda.test.mjs: skipped (${skip})`);
// With the stand-in, any number of ranks share the emulated device; real NCCL needs one GPU per rank.
const rankCounts = emulated ? [2, 3] : [Math.min(3, cuda.devices.length)];

function ranksOf(r) {
  return r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).sort((a, b) => a.rank - b.rank);
}

for (const ranks of rankCounts) {
  test(`${ranks} rank(s): the NCCL collectives and the host relay on device sets give the MPI host collectives' bits (rounds of 100 floats)`, (t) => {
    if (skip) return t.skip(skip);
    // Rounds of 100 floats of each segment: the 4636-float set takes several.
    const r = mpirun(ranks, [process.execPath, child, 'collectives'], { env: { ...ncclEnv, CRAFTGRAD_NCCL_ROUND_FLOATS: '100' } });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const all = ranksOf(r);
    assert.equal(all.length, ranks);
    for (const { rank, results } of all) {
      assert.ok(Object.keys(results).length >= 26, `rank ${rank} ran every check`);
      for (const [k, v] of Object.entries(results)) assert.equal(v, 'ok', `rank ${rank}: ${k}`);
    }
  });
}

test('one rank: NCCL loads, makes an id, opens a communicator of one on the device, keeps the set\'s bits, and refuses use after abort', (t) => {
  if (gpuSkip) return t.skip(gpuSkip);
  if (emulated && skip) return t.skip(skip);
  if (!emulated && !backendInfo().nccl.available) return t.skip(`no NCCL on this machine: ${backendInfo().nccl.reason}`);
  // Real NCCL needs no MPI for one rank; the emulator's stand-in moves bytes over MPI.
  const command = [process.execPath, oneRankChild];
  const r = emulated ? mpirun(1, command, { env: ncclEnv }) : spawnSync(command[0], command.slice(1), { encoding: 'utf8', timeout: 120_000 });
  const code = emulated ? r.code : r.status;
  assert.equal(code, 0, `${r.stdout}\n${r.stderr}`);
  const { info, results } = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop());
  t.diagnostic(`NCCL ${info.version} from ${info.library}`);
  assert.equal(Object.keys(results).length, 4);
  for (const [k, v] of Object.entries(results)) assert.equal(v, 'ok', k);
});

test('an NCCL asynchronous error reaches JS as ERR_CRAFTGRAD_NCCL and the communicator is aborted', { skip: skip || (!emulated && 'needs the emulator\'s failure injection') }, () => {
  const r = mpirun(2, [process.execPath, child, 'async-error'], { env: { ...ncclEnv, CGEMU_NCCL_ASYNC_ERROR_AFTER: '2' } });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const { rank, results } of ranksOf(r)) {
    // The stand-in's error is sticky, so NCCL's next call reports it (ncclCommEnsureReady);
    // on a real GPU it could as well surface from the wait's ncclCommGetAsyncError.
    assert.match(results.asyncError, /(ncclSend|ncclRecv|ncclGroupEnd|an NCCL operation \(a peer or the network failed\)) failed: .*remote process exited or there was a network error/, `rank ${rank}`);
    assert.match(results.afterAbort, /communicator was aborted/, `rank ${rank}`);
  }
});

test('a failed ncclCommInitRank fails the job with NCCL\'s words, never a hang', { skip: skip || (!emulated && 'needs the emulator\'s failure injection') }, () => {
  const r = mpirun(2, [process.execPath, child, 'collectives'], { env: { ...ncclEnv, CGEMU_NCCL_FAIL_INIT: '1' }, timeout: 60_000 });
  assert.notEqual(r.code, 0);
  assert.equal(r.signal, null, 'ended by itself, not by the test\'s timeout');
  assert.match(r.stderr, /ERR_CRAFTGRAD_NCCL|ncclCommInitRank failed: unhandled system error/);
});

// Training: the same run with the gradients reduced by NCCL and through the host must give
// the same bits (both sum segments in rank order), in both designs, and match the one-process run.
const TINY = ['--width', '16', '--tokens', '4', '--blocks', '2', '--rank', '2', '--head-width', '16', '--batch-size', '7',
  '--grad-accum', '2', '--budget', '1e-7', '--val-every', '3', '--log-every', '1', '--quiet', '--threads', '1', '--steps', '6',
  '--device', 'cuda'];
const dir = skip ? undefined : tempDir(test, 'craftgrad-nccl-train-');
const rows = (name) => readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  .filter((row) => row.step !== undefined).map(({ step_ms, samples_per_s, ...rest }) => rest);

function compareWithOne(name) {
  const a = rows(name), b = rows('one');
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((row, i) => {
    for (const k of ['action_loss', 'retention_loss', 'grad_norm', 'lambda_after', 'val_action_loss']) {
      if (typeof row[k] !== 'number') continue;
      const rel = row[k] === b[i][k] ? 0 : Math.abs(row[k] - b[i][k]) / Math.max(Math.abs(row[k]), Math.abs(b[i][k]));
      worst = Math.max(worst, rel);
      assert.ok(rel <= 1e-5, `${name}: step ${row.step} ${k}: ${row[k]} vs ${b[i][k]} (one process)`);
    }
  });
  return worst;
}
function trainRanks(ranks, name, env) {
  const r = mpirun(ranks, [process.execPath, cliPath, 'train', '--out', dir, '--name', name, ...TINY], { env: { ...ncclEnv, ...env } });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`the ${ranks} ranks hold identical weights`));
  return r;
}

test(`mpirun -np ${rankCounts[0]} craftgrad train --device cuda: both designs, reduced by NCCL and through the host with the same bits, within 1e-5 of one process`, (t) => {
  if (skip) return t.skip(skip);
  const ranks = rankCounts[0];
  const one = runCli(['train', '--out', dir, '--name', 'one', ...TINY]);
  assert.equal(one.code, 0, one.stderr);
  // The default: NCCL, and the sharded (ZeRO-1) step with each rank's segment on its GPU.
  const sharded = trainRanks(ranks, 'sharded', {});
  assert.match(sharded.stderr, /gradients are reduced on the GPUs with NCCL \d+\.\d+\.\d+/);
  assert.match(sharded.stderr, /data-parallel step: sharded/);
  t.diagnostic(`sharded on the GPUs: largest relative difference from one process ${compareWithOne('sharded').toExponential(2)}`);
  // The sharded step through host copies (a rank without NCCL): the same bits.
  const shardedHost = trainRanks(ranks, 'sharded-host', { CRAFTGRAD_DEVICE_REDUCE: 'host' });
  assert.match(shardedHost.stderr, /reduced through host memory with MPI \(CRAFTGRAD_DEVICE_REDUCE=host\)/);
  assert.match(shardedHost.stderr, /data-parallel step: sharded/);
  assert.deepEqual(rows('sharded-host'), rows('sharded'), 'the sharded step through NCCL and through the host differ');
  // The plain step, reduced by NCCL and through the host: both sum segments in rank order.
  const nccl = trainRanks(ranks, 'nccl', { CRAFTGRAD_DATA_PARALLEL: 'plain' });
  assert.match(nccl.stderr, /gradients are reduced on the GPUs with NCCL/);
  const host = trainRanks(ranks, 'host', { CRAFTGRAD_DATA_PARALLEL: 'plain', CRAFTGRAD_DEVICE_REDUCE: 'host' });
  assert.match(host.stderr, /reduced through host memory with MPI \(CRAFTGRAD_DEVICE_REDUCE=host\)/);
  assert.deepEqual(rows('nccl'), rows('host'), 'NCCL and the host reduction differ');
  t.diagnostic(`plain: largest relative difference from one process ${compareWithOne('nccl').toExponential(2)}`);
});

test('the sharded step on the GPUs: stopped half-way and resumed, bit-identical to the uninterrupted run', (t) => {
  if (skip) return t.skip(skip);
  assert.ok(existsSync(join(dir, 'sharded', 'metrics.jsonl')), 'the uninterrupted run ran');
  const ranks = rankCounts[0];
  const half = TINY.map((a, i) => (TINY[i - 1] === '--steps' ? '3' : a));
  const first = mpirun(ranks, [process.execPath, cliPath, 'train', '--out', dir, '--name', 'half', ...half], { env: ncclEnv });
  assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
  const r = mpirun(ranks, [process.execPath, cliPath, 'train', '--resume', join(dir, 'half'), '--steps', '6', '--quiet'], { env: ncclEnv });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(rows('half'), rows('sharded'));
  const ck = (name) => ['model.safetensors', 'optimizer.safetensors'].map((f) => readFileSync(join(dir, name, 'checkpoints', 'step-000006', f)));
  assert.deepEqual(ck('half'), ck('sharded'));
});

test('a rank that cannot load NCCL sends every rank through host memory (or, with CRAFTGRAD_DEVICE_REDUCE=nccl, fails them all)', (t) => {
  if (skip) return t.skip(skip);
  if (!emulated) return t.skip('needs the emulator: it hides NCCL from one rank by pointing it at a missing file');
  // Rank 1 alone is pointed at a file that does not exist.
  const hideFromRank1 = ['sh', '-c', 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export CRAFTGRAD_NCCL_LIBRARY=/nowhere/libnccl.so.2; fi; exec "$@"', 'sh'];
  const two = TINY.map((a, i) => (TINY[i - 1] === '--steps' ? '2' : a));
  const run = (name, env) => mpirun(2, [...hideFromRank1, process.execPath, cliPath, 'train', '--out', dir, '--name', name, ...two],
    { env: { ...ncclEnv, ...env }, timeout: 120_000 });
  const fallback = run('one-without-nccl', {});
  assert.equal(fallback.code, 0, `${fallback.stdout}\n${fallback.stderr}`);
  assert.match(fallback.stderr, /gradients are reduced through host memory with MPI \(rank 1 cannot use NCCL\)/);
  assert.match(fallback.stderr, /the 2 ranks hold identical weights/);
  const required = run('nccl-required', { CRAFTGRAD_DEVICE_REDUCE: 'nccl' });
  assert.notEqual(required.code, 0);
  assert.equal(required.signal, null, 'ended by itself, not by the test\'s timeout');
  assert.match(required.stderr, /CRAFTGRAD_DEVICE_REDUCE=nccl but rank 1 cannot use NCCL/);
});
