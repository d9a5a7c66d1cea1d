// native/mpi through binding.mpi and src/parallel/world.ts: the checks at the N-API boundary
// (in this process, no launcher), and the collectives on 2 and 3 ranks under mpirun
// (test/helpers/mpi-collectives-child.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/backend.js';
import { detectLauncher } from '../dist/parallel/launcher.js';
import { mpiSkipReason, mpirun } from './helpers/mpi.mjs';

const child = fileURLToPath(new URL('./helpers/mpi-collectives-child.mjs', import.meta.url));

test('backendInfo says whether MPI is compiled, and whether NCCL can be loaded', () => {
  const info = backendInfo();
  assert.equal(typeof info.mpi.compiled, 'boolean');
  assert.equal(info.mpi.compiled, binding.mpi.compiled);
  if (info.mpi.compiled) assert.match(info.mpi.library, /MPI/);
  else assert.match(info.mpi.reason, /no MPI support/);
  // NCCL is looked for at run time (test/nccl.test.mjs): either found, or the reason why not.
  if (info.nccl.available) assert.match(info.nccl.version, /^\d+\.\d+\.\d+$/);
  else assert.match(info.nccl.reason, /no CUDA backend|NCCL could not be loaded|not a usable NCCL|needs NCCL 2\.7/);
});

test('a launcher is recognised by its environment only', () => {
  assert.equal(detectLauncher({}), undefined);
  assert.equal(detectLauncher({ PATH: '/bin', OMPI_COMM_WORLD_SIZE: '' }), undefined);
  assert.deepEqual(detectLauncher({ OMPI_COMM_WORLD_SIZE: '2' }), { evidence: 'OMPI_COMM_WORLD_SIZE=2' });
  assert.deepEqual(detectLauncher({ PMI_RANK: '0' }), { evidence: 'PMI_RANK=0' });
});

test('binding.mpi refuses bad arguments and calls before init with a clear error, never an abort', () => {
  // This process was not started by a launcher: MPI is never initialised here.
  const notLive = binding.mpi.compiled ? /not initialised/ : /no MPI support/;
  for (const call of [() => binding.mpi.rank(), () => binding.mpi.size(), () => binding.mpi.barrier(),
    () => binding.mpi.sumInRankOrder([new Float32Array(4)]), () => binding.mpi.allgather(new Float64Array(1)),
    () => binding.mpi.reduceScatterInRankOrder([new Float32Array(4)]), () => binding.mpi.allgatherSegments([new Float32Array(4)]),
    () => binding.mpi.gatherSegments(new Float32Array(4), 4, 0)]) {
    assert.throws(call, (e) => e.code === 'ERR_CRAFTGRAD_MPI' && notLive.test(e.message));
  }
  assert.throws(() => binding.mpi.sumInRankOrder('x'), { name: 'TypeError', message: /arrays must be an Array of Float32Array, got a string/ });
  assert.throws(() => binding.mpi.sumInRankOrder([new Float32Array(2), 3]), { name: 'TypeError', message: /arrays\[1\]/ });
  for (const f of ['reduceScatterInRankOrder', 'allgatherSegments']) {
    assert.throws(() => binding.mpi[f]('x'), { name: 'TypeError', message: /arrays must be an Array of Float32Array, got a string/ });
    assert.throws(() => binding.mpi[f]([new Float32Array(2), new Float64Array(2)]), { name: 'TypeError', message: /arrays\[1\]/ });
  }
  assert.throws(() => binding.mpi.gatherSegments([1], 1, 0), { name: 'TypeError', message: /segment/ });
  assert.throws(() => binding.mpi.gatherSegments(new Float32Array(1), 1.5, 0), { name: 'RangeError', message: /n must be an integer/ });
  assert.throws(() => binding.mpi.gatherSegments(new Float32Array(1), 1, -1), { name: 'RangeError', message: /root must be a rank/ });
  // The segments need no MPI: the first n % size are one longer.
  assert.deepEqual([0, 1, 2].map((r) => binding.mpi.segment(10, r, 3)), [[0, 4], [4, 7], [7, 10]]);
  assert.deepEqual(binding.mpi.segment(1, 1, 2), [1, 1]);
  assert.throws(() => binding.mpi.segment(10, 3, 3), { name: 'RangeError', message: /rank must be an integer in \[0, size\)/ });
  assert.throws(() => binding.mpi.segment(-1, 0, 1), { name: 'RangeError', message: /n must be an integer/ });
  assert.throws(() => binding.mpi.segment(4, 0, 0), { name: 'RangeError', message: /size must be an integer/ });
  assert.throws(() => binding.mpi.allgather([1]), { name: 'TypeError', message: /values must be a Float64Array/ });
  assert.throws(() => binding.mpi.broadcast('x', 0), { name: 'TypeError', message: /data must be a TypedArray/ });
  assert.throws(() => binding.mpi.broadcast(new Uint8Array(1), -1), { name: 'RangeError', message: /root must be a rank/ });
  assert.throws(() => binding.mpi.broadcast(new Uint8Array(1), 0.5), { name: 'RangeError', message: /root must be a rank/ });
  for (const code of [0, 256, 1.5, Number.NaN]) {
    assert.throws(() => binding.mpi.abort(code), { name: 'RangeError', message: /code must be an integer from 1 to 255/ });
  }
  assert.throws(() => binding.mpi.abort('1'), { name: 'TypeError' });
  assert.equal(binding.mpi.finalize(), undefined);  // nothing to finalize: a no-op
});

for (const ranks of [2, 3]) {
  test(`${ranks} ranks: rank-order sums bit-exact on every rank, mismatches refused on every rank without ending the job`, (t) => {
    const skip = mpiSkipReason();
    if (skip) return t.skip(skip);
    const r = mpirun(ranks, [process.execPath, child], { timeout: 60_000 });
    assert.equal(r.code, 0, `mpirun failed:\n${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.rank).sort(), Array.from({ length: ranks }, (_, i) => i));
    for (const l of lines) {
      assert.equal(l.size, ranks);
      for (const [name, result] of Object.entries(l.results)) assert.equal(result, 'ok', `rank ${l.rank}: ${name}`);
      assert.equal(Object.keys(l.results).length, 21);
    }
  });
}

test('a rank that dies of an uncaught error prints it before MPI_Abort ends the job', { skip: mpiSkipReason() }, () => {
  // Node emits 'exit' before it prints an uncaught error, and World's exit hook aborts the
  // job: without World's own print the rank's words were lost.
  const worldJs = new URL('../dist/parallel/world.js', import.meta.url).href;
  const script = `const { World } = await import(${JSON.stringify(worldJs)}); const w = World.open(); ` +
    'if (w.rank === 1) throw new Error(`rank ${w.rank} failed: out of tea`); w.barrier();';
  const r = mpirun(2, [process.execPath, '--input-type=module', '-e', script], { timeout: 60_000 });
  assert.notEqual(r.code, 0);
  assert.equal(r.signal, null, 'ended by itself, not by the test\'s timeout');
  assert.match(r.stderr, /Error: rank 1 failed: out of tea/);
});
