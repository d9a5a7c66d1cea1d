// Run by test/mpi-collectives.test.mjs under mpirun: the World's collectives on every
// rank, each result checked here against what the rank computes on its own. Prints one
// JSON line per rank: { rank, size, results }.
import { World } from '../../dist/parallel/world.js';
import { binding } from '../../dist/native.js';

const world = World.open();
const { rank, size } = world;
const results = {};
const expectThrow = (name, fn, pattern) => {
  try {
    fn();
    results[name] = 'did not throw';
  } catch (e) {
    results[name] = pattern.test(e.message) ? 'ok' : `wrong error: ${e.message}`;
  }
};

// Values that round differently in different orders: each rank's array is a pure
// function of (rank, i), so every rank can compute the rank-order sum itself.
const n = 1001;
const valueOf = (r, i) => Math.fround(Math.sin(i * 12.9898 + r * 78.233) * 10 ** ((i + r) % 7 - 3));
const mine = Float32Array.from({ length: n }, (_, i) => valueOf(rank, i));
const expected = new Float32Array(n);
for (let i = 0; i < n; i++) {
  let s = valueOf(0, i);
  for (let r = 1; r < size; r++) s = Math.fround(s + valueOf(r, i));
  expected[i] = s;
}
world.sumInRankOrder([mine]);
results.sumInRankOrder = mine.every((v, i) => Object.is(v, expected[i])) ? 'ok' : 'differs from the rank-order sum';

// The two halves of sumInRankOrder, and the gather to one rank (the sharded step's).
const segments = Array.from({ length: size }, (_, r) => world.segment(n, r));
results.segments = segments[0].start === 0 && segments[size - 1].end === n &&
  segments.every((s, r) => (r === 0 || s.start === segments[r - 1].end) && s.end - s.start - Math.floor(n / size) === (r < n % size ? 1 : 0))
  ? 'ok' : `bad segments ${JSON.stringify(segments)}`;
const { start, end } = world.segment(n);
const scattered = Float32Array.from({ length: n }, (_, i) => valueOf(rank, i));
world.reduceScatterInRankOrder([scattered]);
results.reduceScatter = scattered.every((v, i) => Object.is(v, i >= start && i < end ? expected[i] : Math.fround(valueOf(rank, i))))
  ? 'ok' : 'segment not the rank-order sum, or the rest changed';
world.allgatherSegments([scattered]);
results.allgatherSegments = scattered.every((v, i) => Object.is(v, expected[i])) ? 'ok' : 'differs from sumInRankOrder';
const gathered = world.gatherSegments(expected.slice(start, end), n, size - 1);
results.gatherSegments = rank === size - 1
  ? (gathered instanceof Float32Array && gathered.every((v, i) => Object.is(v, expected[i])) ? 'ok' : 'wrong gather')
  : (gathered === undefined ? 'ok' : 'a non-root rank got data');

// More than two rounds of the reduce-scatter (1 << 20 floats of each segment per round), with
// segments of unequal length: the rounds must not change a bit.
{
  const big = 2 * (1 << 20) * size + 3;
  const x = Float32Array.from({ length: big }, (_, i) => valueOf(rank, i));
  world.sumInRankOrder([x]);
  let ok = true;
  for (let i = 0; i < big && ok; i++) {
    let e = valueOf(0, i);
    for (let r = 1; r < size; r++) e = Math.fround(e + valueOf(r, i));
    ok = Object.is(x[i], e);
  }
  results.rounds = ok ? 'ok' : 'a multi-round sum differs from the rank-order sum';
}

// An empty array and a shorter-than-ranks array.
const tiny = Float32Array.from({ length: 1 }, () => rank + 1);
world.sumInRankOrder([new Float32Array(0), tiny]);
results.tiny = tiny[0] === (size * (size + 1)) / 2 ? 'ok' : `got ${tiny[0]}`;

results.sum = JSON.stringify(world.sum([rank, 1])) === JSON.stringify([(size * (size - 1)) / 2, size]) ? 'ok' : 'wrong';
results.broadcastJson = JSON.stringify(world.broadcastJson(rank === 0 ? { a: [1, 'x'] } : undefined)) === '{"a":[1,"x"]}' ? 'ok' : 'wrong';

// Errors found on every rank together, none of them fatal to the job.
expectThrow('lengths differ', () => world.sumInRankOrder([new Float32Array(3 + rank)]), /differs across ranks/);
expectThrow('broadcast sizes differ', () => world.broadcast(new Uint8Array(2 + rank)), /another size/);
expectThrow('bad root', () => binding.mpi.broadcast(new Uint8Array(1), size), /root is \d+ but there are \d+ ranks/);
expectThrow('not a list', () => binding.mpi.sumInRankOrder(new Float32Array(2)), /arrays must be an Array of Float32Array/);
expectThrow('not floats', () => binding.mpi.sumInRankOrder([new Float64Array(2)]), /Float32Array/);
expectThrow('gather type', () => binding.mpi.allgather([1, 2]), /values must be a Float64Array/);
expectThrow('scatter lengths differ', () => world.reduceScatterInRankOrder([new Float32Array(5 + rank)]), /differs across ranks/);
expectThrow('gather lengths differ', () => world.allgatherSegments([new Float32Array(5 + rank)]), /differs across ranks/);
expectThrow('wrong segment', () => world.gatherSegments(new Float32Array(rank === 0 ? 1 : world.segment(10).end - world.segment(10).start), 10), /segment has the wrong length/);
expectThrow('gather n', () => binding.mpi.gatherSegments(new Float32Array(1), -1, 0), /n must be an integer/);
expectThrow('abort code', () => binding.mpi.abort(0), /code must be an integer from 1 to 255/);

// Still in step after the refused calls: one more collective agrees.
results.after = world.sum([1])[0] === size ? 'ok' : 'out of step';
console.log(JSON.stringify({ rank, size, results }));
world.markComplete();
