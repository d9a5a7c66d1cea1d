// ShuffleBuffer (src/data/shuffle-buffer.ts): tf.data's shuffle over the repeated stream of
// training samples. Checked against a reimplementation written from
// tensorflow/core/kernels/data/shuffle_dataset_op.cc as it reads (lazy fill at each GetNext,
// slices' start/end counters, the swap with the oldest slot), drawing the same random numbers;
// what is true of its order (N = 1 is the stream, the k-th output is among the first N + k − 1
// stream elements, outputs and buffer together are the stream read so far, and no, a buffer as
// large as the set does not give a permutation per epoch when the stream repeats); resume from
// a saved state; bad values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShuffleBuffer, Sampler, Rng } from '../dist/index.js';

/** GetNextInternal on an endless input (repeat() before shuffle()), as the kernel writes it. */
function tfShuffle(size, n, seed, count) {
  const rng = new Rng(seed);
  const buffer = new Array(n);
  let start = 0, end = 0, p = 0;
  const out = [];
  for (let k = 0; k < count; k++) {
    while (end - start < n) buffer[end++ % n] = p++ % size;  // FillBuffer / AddToShuffleBuffer
    const offset = rng.int(end - start);                     // Random() % (end - start)
    const index = (start + offset) % n;
    out.push(buffer[index]);
    const t = buffer[index];                                 // std::swap with the oldest slot
    buffer[index] = buffer[start % n];
    buffer[start % n] = t;
    start++;
  }
  return out;
}

function draw(b, count) {
  const out = [];
  while (out.length < count) out.push(...b.next());
  return out.slice(0, count);
}

test("the buffer's outputs are tf.data's slot order with the same draws, across epochs, for buffers smaller and larger than the set", () => {
  for (const [size, n, seed] of [[10, 3, 0], [10, 10, 1], [7, 16, 2], [23, 5, 3], [5, 1, 4], [1, 4, 5]]) {
    const got = draw(new ShuffleBuffer(size, { batchSize: 3, bufferSize: n, seed }), 6 * size);
    assert.deepEqual(got, tfShuffle(size, n, seed, 6 * size), `size ${size}, buffer ${n}, seed ${seed}`);
  }
  // The seed matters: the comparison above can fail.
  assert.notDeepEqual(draw(new ShuffleBuffer(20, { batchSize: 4, bufferSize: 8, seed: 0 }), 40), tfShuffle(20, 8, 1, 40));
});

test('a buffer of 1 gives the stream: the samples in order, epoch after epoch', () => {
  const b = new ShuffleBuffer(5, { batchSize: 4, bufferSize: 1, seed: 9 });
  assert.deepEqual([...b.next(), ...b.next(), ...b.next()], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
  assert.equal(b.epoch, 2);
  assert.equal(b.position, 2);
});

test('the k-th output is one of the first N + k − 1 stream elements; outputs and buffer hold the stream read so far', () => {
  const size = 50, n = 8;
  const b = new ShuffleBuffer(size, { batchSize: 1, bufferSize: n, seed: 11 });
  const seen = new Map();
  for (let k = 1; k <= 3 * size; k++) {
    const [s] = b.next();
    seen.set(s, (seen.get(s) ?? 0) + 1);
    // In the first epoch sample s is stream element s.
    if (k <= size - n + 1) assert.ok(s <= n + k - 2, `output ${k} is sample ${s}, past stream element ${n + k - 2}`);
    const st = b.state();
    assert.equal(st.stream, n + k);
    const held = new Map(seen);
    for (const v of st.buffer) held.set(v, (held.get(v) ?? 0) + 1);
    const expected = new Map();
    for (let p = 0; p < st.stream; p++) expected.set(p % size, (expected.get(p % size) ?? 0) + 1);
    assert.deepEqual([...held].sort((x, y) => x[0] - y[0]), [...expected].sort((x, y) => x[0] - y[0]), `after ${k} outputs`);
  }
  // Not a uniform shuffle: the first outputs come from the start of the stream.
  const first = new ShuffleBuffer(size, { batchSize: 10, bufferSize: n, seed: 11 }).next();
  assert.ok(Math.max(...first) <= n + 8, `${[...first]}`);
});

test('a buffer as large as the set: the first epoch is a permutation only until the repeat refills it', () => {
  // Filled with one whole epoch, the first output is any sample; its slot then takes the next
  // epoch's first sample, so the first `size` outputs can repeat one (tf.data with repeat()
  // before shuffle() does the same). Over the seeds tried, some first epochs are not
  // permutations, and every sample's count over many epochs stays within the buffer's spread.
  const size = 6;
  let repeats = 0;
  for (let seed = 0; seed < 20; seed++) {
    const b = new ShuffleBuffer(size, { batchSize: size, bufferSize: size, seed });
    const epoch = [...b.next()];
    if (new Set(epoch).size < size) repeats++;
    const counts = new Array(size).fill(0);
    for (const s of epoch) counts[s]++;
    for (let e = 1; e < 50; e++) for (const s of b.next()) counts[s]++;
    // 50 epochs handed out: the stream has given each sample 51 times (the buffer holds one
    // epoch's worth), less the copies still in the buffer (0 to size of them).
    const held = new Array(size).fill(0);
    for (const s of b.state().buffer) held[s]++;
    counts.forEach((c, s) => assert.equal(c, 51 - held[s], `counts ${counts}, buffered ${held}`));
  }
  assert.ok(repeats > 0, 'some first epoch repeats a sample');
  // Before any refill, the buffer is exactly the first epoch: its first output ranges over all of it.
  const firsts = new Set();
  for (let seed = 0; seed < 60; seed++) firsts.add(new ShuffleBuffer(size, { batchSize: 1, bufferSize: size, seed }).next()[0]);
  assert.equal(firsts.size, size);
});

test('a run resumed from a saved state (through JSON) continues identically; clone() too', () => {
  const a = new ShuffleBuffer(37, { batchSize: 5, bufferSize: 12, seed: 3 });
  draw(a, 5 * 9);
  const saved = JSON.parse(JSON.stringify(a.state()));
  const clone = a.clone();
  const rest = draw(a, 5 * 20);
  assert.deepEqual(draw(ShuffleBuffer.fromState(saved), 5 * 20), rest);
  assert.deepEqual(draw(clone, 5 * 20), rest);
  const b = ShuffleBuffer.fromState(saved);
  assert.deepEqual([b.size, b.batchSize, b.bufferSize, b.epoch, b.position], [37, 5, 12, 1, 8]);
  // Memory: the state holds N indices, whatever the set's size.
  assert.equal(new ShuffleBuffer(1_000_000, { batchSize: 4, bufferSize: 3 }).state().buffer.length, 3);
});

test('bad sizes and states are refused by name', () => {
  for (const bad of [0, -1, 1.5, '8', Number.NaN, 2 ** 31]) {
    assert.throws(() => new ShuffleBuffer(10, { batchSize: 2, bufferSize: bad }), /options\.bufferSize must be an integer from 1 to 2147483647/);
  }
  assert.throws(() => new ShuffleBuffer(0, { batchSize: 2, bufferSize: 4 }), /size must be a positive integer/);
  assert.throws(() => new ShuffleBuffer(10, { batchSize: 2, bufferSize: 4, buffer: 4 }), /buffer/);
  const st = new ShuffleBuffer(10, { batchSize: 2, bufferSize: 4 }).state();
  assert.throws(() => ShuffleBuffer.fromState(new Sampler(10, { batchSize: 2 }).state()), /ShuffleBufferState/);
  assert.throws(() => ShuffleBuffer.fromState({ ...st, buffer: st.buffer.slice(1) }), /state\.buffer must be an Array of 4/);
  assert.throws(() => ShuffleBuffer.fromState({ ...st, buffer: [0, 1, 2, 10] }), /state\.buffer\[3\]/);
  assert.throws(() => ShuffleBuffer.fromState({ ...st, stream: 3 }), /state\.stream/);
  assert.throws(() => ShuffleBuffer.fromState({ ...st, rng: [0, 0] }), /rng state/);
});
