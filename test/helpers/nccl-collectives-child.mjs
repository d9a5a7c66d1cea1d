// Run by test/nccl-cuda.test.mjs under mpirun: the NCCL group's collectives on device sets
// (src/parallel/device-group.ts) on every rank, each result checked against the MPI host
// collectives of the same data (World), which must give the same bits. Prints one JSON line
// per rank: { rank, size, device, results }. argv[2]: 'collectives' or 'async-error'.
import { World } from '../../dist/parallel/world.js';
import { DeviceGroup } from '../../dist/parallel/device-group.js';
import { HostRelay } from '../../dist/parallel/host-relay.js';
import { GradSet } from '../../dist/gradset.js';

const mode = process.argv[2] ?? 'collectives';
const world = World.open();
const { rank, size } = world;
const device = process.env.NCCL_TEST_DEVICE ?? 'cuda:0';
const results = {};
const done = () => {
  console.log(JSON.stringify({ rank, size, device, results }));
  world.markComplete();
};

// A rank's values: a pure function of (rank, i) that rounds differently in different orders.
const valueOf = (r, i) => Math.fround(Math.sin(i * 12.9898 + r * 78.233) * 10 ** ((i + r) % 7 - 3));
const hostCopy = (n, r = rank) => Float32Array.from({ length: n }, (_, i) => valueOf(r, i));
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

const { group, why } = DeviceGroup.open(world, device, 'nccl');
if (!group) throw new Error(`no NCCL group: ${why}`);

if (mode === 'async-error') {
  // CGEMU_NCCL_ASYNC_ERROR_AFTER=2: the first sum (a reduce-scatter group and an all-gather
  // group) goes through, the next reports
  // NCCL's asynchronous error, which must reach JS as ERR_CRAFTGRAD_NCCL, not hang.
  const set = GradSet.fromArrays([hostCopy(40)], { device });
  group.sumInRankOrder([set]);
  try {
    group.sumInRankOrder([set]);
    results.asyncError = 'no error';
  } catch (e) {
    results.asyncError = e.code === 'ERR_CRAFTGRAD_NCCL' ? e.message : `wrong error ${e.code}: ${e.message}`;
  }
  try {
    group.sumInRankOrder([set]);
    results.afterAbort = 'no error';
  } catch (e) {
    results.afterAbort = e.message;
  }
  done();
} else {
  // Sizes: fewer floats than ranks, uneven segments, several tensors per set, and (with
  // CRAFTGRAD_NCCL_ROUND_FLOATS small) several rounds per call.
  for (const sizes of [[1], [2, 3], [1001], [37, 500, 4096, 3]]) {
    const n = sizes.reduce((a, b) => a + b, 0);
    const key = sizes.join('+');
    const arrays = (r) => {
      const flat = hostCopy(n, r);
      let at = 0;
      return sizes.map((k) => flat.subarray(at, (at += k)));
    };
    const expected = hostCopy(n);
    world.sumInRankOrder([expected]);

    const { start, end } = world.segment(n);
    const mine = hostCopy(n);
    // NCCL, and the host relay (ranks without NCCL, copying only what it needs): the same bits.
    for (const [prefix, reducer] of [['', group], ['host relay ', new HostRelay(world, device)]]) {
      const whole = GradSet.fromArrays(arrays(rank), { device });
      reducer.sumInRankOrder([whole]);
      results[`${prefix}sum ${key}`] = same(whole.toFlat(), expected) ? 'ok' : 'differs from the MPI rank-order sum';

      const half = GradSet.fromArrays(arrays(rank), { device });
      reducer.reduceScatterInRankOrder([half]);
      results[`${prefix}reduceScatter ${key}`] = same(half.toFlat(), mine.map((v, i) => (i >= start && i < end ? expected[i] : v)))
        ? 'ok' : 'segment not the rank-order sum, or the rest changed';
      reducer.allgatherSegments([half]);
      results[`${prefix}allgather ${key}`] = same(half.toFlat(), expected) ? 'ok' : 'differs after the all-gather';
      whole.dispose();
      half.dispose();
    }
  }
  // Two sets in one call, each reduced on its own.
  const a = GradSet.fromArrays([hostCopy(300)], { device });
  const b = GradSet.fromArrays([hostCopy(7, rank + 1)], { device });
  group.sumInRankOrder([a, b]);
  const ea = hostCopy(300), eb = hostCopy(7, rank + 1);
  world.sumInRankOrder([ea, eb]);
  results['two sets'] = same(a.toFlat(), ea) && same(b.toFlat(), eb) ? 'ok' : 'differs';
  // A CPU set is refused before any transfer, on every rank alike.
  try {
    group.sumInRankOrder([GradSet.zeros([4])]);
    results['cpu set refused'] = 'accepted';
  } catch (e) {
    results['cpu set refused'] = /a set on cpu given to the NCCL group of cuda:/.test(e.message) ? 'ok' : e.message;
  }
  done();
}
