// A communicator of one rank on a CUDA device through binding.nccl, for test/nccl-cuda.test.mjs:
// what one GPU can check of the NCCL path (real NCCL refuses two ranks on one device). Run
// without a launcher on a real GPU (NCCL itself needs no MPI), and under `mpirun -np 1` on
// the emulator, whose NCCL stand-in moves bytes over MPI. Prints { info, results }.
import { binding } from '../../dist/native.js';
import { GradSet, gradSetInternals } from '../../dist/gradset.js';
import { World } from '../../dist/parallel/world.js';

const world = World.open();  // undefined without a launcher
const device = process.env.NCCL_TEST_DEVICE ?? 'cuda:0';
const results = {};
const info = binding.backendInfo().nccl;

const id = binding.nccl.uniqueId();
results.uniqueId = id.length === 128 && id.some((b) => b !== 0) ? 'ok' : `not 128 bytes with content: ${id.length}`;
const comm = new binding.nccl.Communicator({ id, rank: 0, size: 1, device });
results.shape = comm.rank === 0 && comm.size === 1 && comm.device === device ? 'ok' : `rank ${comm.rank} of ${comm.size} on ${comm.device}`;

// With one rank the rank-order sum of a set is the set, bit for bit.
const values = Float32Array.from({ length: 1001 }, (_, i) => Math.fround(Math.sin(i) * 10 ** ((i % 7) - 3)));
const set = GradSet.fromArrays([values.subarray(0, 1000), values.subarray(1000)], { device });
comm.reduceScatterInRankOrder([gradSetInternals(set)]);
comm.allgatherSegments([gradSetInternals(set)]);
const after = set.toFlat();
results.collectives = after.every((v, i) => Object.is(v, values[i])) ? 'ok' : 'the set changed';

comm.abort();
try {
  comm.allgatherSegments([gradSetInternals(set)]);
  results.afterAbort = 'no error';
} catch (e) {
  results.afterAbort = /aborted/.test(e.message) ? 'ok' : e.message;
}
set.dispose();
console.log(JSON.stringify({ info, results }));
world?.markComplete();
