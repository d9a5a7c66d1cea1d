import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestTime, bestTimeAsync } from '../dist/bench/timing.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('bestTimeAsync awaits every run and keeps the fastest', async () => {
  const delays = [5, 300, 30, 200];  // the warm-up, then three timed runs
  let calls = 0, running = 0;
  const best = await bestTimeAsync(async () => {
    assert.equal(running, 0, 'a run started before the previous one finished');
    running++;
    await sleep(delays[calls++]);
    running--;
  }, { reps: 3, warmup: 1 });
  assert.equal(calls, 4);
  assert.ok(best >= 0.029 && best < 0.2, `best ${best} s should be the 30 ms run`);
});

test('bestTime keeps the fastest of its synchronous runs', () => {
  const spin = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
  const delays = [1, 150, 10, 100];
  let calls = 0;
  const best = bestTime(() => spin(delays[calls++]), { reps: 3, warmup: 1 });
  assert.equal(calls, 4);
  assert.ok(best >= 0.0099 && best < 0.1, `best ${best} s should be the 10 ms run`);
});
