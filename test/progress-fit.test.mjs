// The live progress line fits the terminal: whole parts are dropped, least useful first,
// so at 80 columns step, loss, λ and ETA remain and nothing is cut mid-word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ProgressReporter } from '../dist/index.js';
import { fitProgressLine, progressParts, progressBar } from '../dist/run/progress-format.js';

const craftRow = {
  step: 1500, epoch: 20, action_loss: 0.0602, retention_loss: 9.81e-5, retention_budget: 2e-4, lambda_before: 0.0523,
  lambda_after: 0.0518, conflict_ratio: 0.3333, num_conflicts: 4, num_tensors: 12, grad_norm: 0.1486, lr: 1e-3,
  nonfinite_skipped: 2, step_ms: 9.3, samples_per_s: 3423.5, val_action_loss: 0.0671,
};
const baseRow = { step: 1500, epoch: 20, action_loss: 0.0466, grad_norm: 0.25, lr: 1e-3, nonfinite_skipped: 0, step_ms: 6.6, samples_per_s: 4820 };
const times = { elapsed: '0:21', eta: '1:02:03' };
const cols = (s) => [...s].length;

test('fitted at 60/80/120/160/200 columns: never wider, whole parts only, the essentials kept', () => {
  for (const [name, row] of [['craft', craftRow], ['baseline', baseRow]]) {
    const parts = progressParts(row, 3000, times);
    const texts = parts.map((p) => p.text);
    const full = texts.join(' | ');
    let prev = 0;
    for (const width of [60, 80, 120, 160, 200]) {
      const line = fitProgressLine(parts, width);
      assert.ok(cols(line) <= width, `${name} @${width}: ${cols(line)} columns: ${line}`);
      const shown = line.split(' | ');
      for (const p of shown) assert.ok(texts.includes(p), `${name} @${width}: '${p}' is a whole part`);
      // Kept parts stay in display order.
      assert.deepEqual(shown, texts.filter((t) => shown.includes(t)), `${name} @${width}: order`);
      assert.equal(shown[0], 'Step 1500/3000');
      assert.match(line, /Loss: 0\.0\d{3}/);
      assert.match(line, /ETA 1:02:03$/);
      if (name === 'craft') assert.match(line, /λ: 0\.052→0\.052/);
      assert.ok(shown.length >= prev, `${name}: a wider terminal shows no fewer parts`);
      prev = shown.length;
      if (cols(full) <= width) assert.equal(line, full, `${name} @${width}: everything fits`);
    }
    assert.ok(cols(full) > 80, `${name}: the full line needs more than 80 columns (${cols(full)}), so 80 drops parts`);
  }
  // At 80 columns the CRaFT line is exactly the essentials plus what fits, least useful dropped first.
  const at80 = fitProgressLine(progressParts(craftRow, 3000, times), 80).split(' | ');
  for (const gone of ['GradNorm', 'LR', 'samples/s', 'Conflict']) assert.ok(!at80.some((p) => p.includes(gone)), `${gone} dropped at 80`);
});

test('a part is never cut, except a first part wider than the terminal', () => {
  const parts = [{ text: 'Step 1/2', keep: 100 }, { text: 'Loss: 0.5000', keep: 90 }, { text: 'LR: 1.00e-03', keep: 10 }];
  assert.equal(fitProgressLine(parts, 100), 'Step 1/2 | Loss: 0.5000 | LR: 1.00e-03');
  assert.equal(fitProgressLine(parts, 30), 'Step 1/2 | Loss: 0.5000');
  assert.equal(fitProgressLine(parts, 10), 'Step 1/2');
  assert.equal(fitProgressLine(parts, 4), 'Step');
  assert.equal(progressBar(5, 10), '██████████░░░░░░░░░░');
  assert.equal(progressBar(0, 0), '░'.repeat(20));
});

test('the live bar on an 80-column terminal draws lines of at most 79 columns with step, loss, λ and ETA', () => {
  const chunks = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  stream.isTTY = true;
  stream.columns = 80;
  stream.cursorTo = (x, y, cb) => { stream.write('\n'); cb?.(); return true; };
  stream.clearLine = (d, cb) => { cb?.(); return true; };
  stream.moveCursor = (dx, dy, cb) => { cb?.(); return true; };
  let now = 0;
  const p = new ProgressReporter({ totalSteps: 3000, stream, now: () => (now += 200) });
  p.update({ ...craftRow, step: 1 });
  p.update(craftRow);
  p.stop();
  // Each redraw is a cursor move then the line: split on the escape sequences.
  // eslint-disable-next-line no-control-regex
  const lines = chunks.join('').split(/\x1b\[[0-9;?]*[A-Za-z]|[\r\n]/).filter((l) => l.startsWith('Step 1500'));
  assert.ok(lines.length > 0, 'the bar drew the last row');
  for (const l of lines) {
    assert.ok(cols(l) <= 79, `${cols(l)} columns: ${l}`);
    assert.match(l, /^Step 1500\/3000 \| Loss: 0\.0602 \| .*λ: 0\.052→0\.052.* \| ETA \d+:\d\d$/);
  }
});
