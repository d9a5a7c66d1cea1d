// Metrics sinks and the progress display: JSONL/CSV content and resume truncation, the
// seed's progress line format, and no carriage returns off a TTY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  JsonlSink, CsvSink, METRIC_KEYS, MultiSink, ProgressReporter, RunError,
} from '../dist/index.js';
import { CSV_HEADER, truncateCsv } from '../dist/run/csv-sink.js';
import { formatStepLine } from '../dist/run/progress-format.js';
import { truncateJsonl } from '../dist/run/jsonl-sink.js';
import { tempDir } from './helpers/temp-dir.mjs';

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-metrics-');
  return dir;
}

const craftRow = (step) => ({
  step, epoch: 0, action_loss: 0.1234, retention_loss: 0.0812, retention_budget: 0.1, lambda_before: 0.05,
  lambda_after: 0.052, conflict_ratio: 0.2345, num_conflicts: 3, num_tensors: 13, grad_norm: 1.234, lr: 5e-4,
  nonfinite_skipped: 0, step_ms: 12.5, samples_per_s: 312.4,
});
const baseRow = (step) => ({ step, epoch: 1, action_loss: 0.5, grad_norm: 2, lr: 1e-3, nonfinite_skipped: 0, step_ms: 3, samples_per_s: 100 });

function sink() {
  const chunks = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return { stream, text: () => chunks.join('') };
}

test('progress line in the seed format; baseline rows get the short form', () => {
  assert.equal(
    formatStepLine({ ...craftRow(120) }, 2000),
    'Step 120/2000 | Loss: 0.1234 | Ret: 0.0812/0.1000 | λ: 0.050→0.052 | Conflict: 23.45% | GradNorm: 1.23 | LR: 5.00e-04 | 312 samples/s',
  );
  assert.equal(formatStepLine(baseRow(7), 10), 'Step 7/10 | Loss: 0.5000 | GradNorm: 2.00 | LR: 1.00e-03 | 100 samples/s');
  assert.match(formatStepLine({ ...baseRow(8), val_action_loss: 0.25, nonfinite_skipped: 2 }, 10), /\| Val: 0\.2500 \| Skipped: 2$/);
});

test('off a TTY: plain lines every N steps, the last step, no carriage returns; same lines in the log', (t) => {
  const dir = tmp(t);
  const out = sink();
  let now = 0;
  const p = new ProgressReporter({ totalSteps: 25, stream: out.stream, tty: false, everySteps: 10, everySeconds: 1e6, logFile: join(dir, 'train_progress.log'), now: () => now });
  for (let s = 1; s <= 25; s++) {
    now += 100;
    p.update(craftRow(s));
  }
  p.message('saved checkpoint');
  p.stop();
  const text = out.text();
  assert.ok(!text.includes('\r'), 'no carriage return');
  assert.ok(!text.includes('\x1b'), 'no escape sequences');
  const lines = text.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' |')[0]), ['Step 10/25', 'Step 20/25', 'Step 25/25', 'saved checkpoint']);
  assert.match(lines[0], /\| elapsed 0:01 \| ETA 0:02$/);
  assert.equal(readFileSync(join(dir, 'train_progress.log'), 'utf8'), text);
});

test('off a TTY: a line when T seconds pass even between N-step marks', () => {
  const out = sink();
  let now = 0;
  const p = new ProgressReporter({ totalSteps: 100, stream: out.stream, tty: false, everySteps: 50, everySeconds: 1, now: () => now });
  for (let s = 1; s <= 5; s++) {
    now += 600;
    p.update(baseRow(s));
  }
  p.stop();
  assert.deepEqual(out.text().trim().split('\n').map((l) => l.split(' |')[0]), ['Step 2/100', 'Step 4/100']);
});

test('on a TTY: a live bar that redraws in place', async () => {
  const out = sink();
  out.stream.isTTY = true;
  out.stream.columns = 300;
  out.stream.cursorTo = (x, y, cb) => { out.stream.write('\x1b[G'); cb?.(); return true; };
  out.stream.clearLine = (d, cb) => { out.stream.write('\x1b[2K'); cb?.(); return true; };
  out.stream.moveCursor = (dx, dy, cb) => { cb?.(); return true; };
  const p = new ProgressReporter({ totalSteps: 3, stream: out.stream });
  assert.equal(p.tty, true);
  for (let s = 1; s <= 3; s++) p.update(craftRow(s));
  p.stop();
  assert.match(out.text(), /Step 3\/3 \| Loss: 0\.1234 .* \| 312 samples\/s \| [█░]{20} \| elapsed \d+:\d\d \| ETA \d+:\d\d/);
});

test('JSONL: one object per row in key order, non-finite as null; CSV: header of every key, empty cells', (t) => {
  const dir = tmp(t);
  const sinks = new MultiSink([new JsonlSink(join(dir, 'm.jsonl')), new CsvSink(join(dir, 'm.csv'))]);
  sinks.write(craftRow(1));
  // written as it comes: visible before flush/close
  assert.equal(readFileSync(join(dir, 'm.jsonl'), 'utf8').split('\n').length, 2);
  sinks.write({ ...baseRow(2), action_loss: NaN, val_action_loss: 0.75 });
  sinks.close();
  const lines = readFileSync(join(dir, 'm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(lines[0]), METRIC_KEYS.filter((k) => k !== 'val_action_loss' && k !== 'val_retention_loss'));
  assert.deepEqual(lines[0], craftRow(1));
  assert.equal(lines[1].action_loss, null);
  assert.equal(lines[1].val_action_loss, 0.75);
  assert.ok(!('lambda_before' in lines[1]));
  const csv = readFileSync(join(dir, 'm.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], CSV_HEADER);
  assert.equal(csv[0], METRIC_KEYS.join(','));
  assert.equal(csv[1], '1,0,0.1234,0.0812,0.1,0.05,0.052,0.2345,3,13,1.234,0.0005,0,12.5,312.4,,');
  assert.equal(csv[2], '2,1,nan,,,,,,,,2,0.001,0,3,100,0.75,');
});

test('rows are checked: unknown keys and non-numbers are refused by name', () => {
  const s = new MultiSink([]);
  assert.throws(() => s.write({ step: 1, loss: 2 }), /unknown key 'loss'/);
  assert.throws(() => s.write({ step: 1, lr: '1' }), /lr must be a number/);
  assert.throws(() => s.write({ step: -1 }), /step must be a non-negative integer/);
});

test('resume truncation: rows after the resume step and a torn last line are dropped, then appended', (t) => {
  const dir = tmp(t);
  const j = join(dir, 'm.jsonl');
  const c = join(dir, 'm.csv');
  const a = new MultiSink([new JsonlSink(j), new CsvSink(c)]);
  for (let s = 1; s <= 8; s++) a.write(baseRow(s));
  a.close();
  appendFileSync(j, '{"step": 9, "epo');
  appendFileSync(c, '9,1,0.');
  const b = new MultiSink([new JsonlSink(j, { resumeStep: 5 }), new CsvSink(c, { resumeStep: 5 })]);
  b.write(baseRow(6));
  b.close();
  assert.deepEqual(readFileSync(j, 'utf8').trim().split('\n').map((l) => JSON.parse(l).step), [1, 2, 3, 4, 5, 6]);
  const csv = readFileSync(c, 'utf8').trim().split('\n');
  assert.equal(csv[0], CSV_HEADER);
  assert.deepEqual(csv.slice(1).map((l) => Number(l.split(',')[0])), [1, 2, 3, 4, 5, 6]);
  // a damaged line in the middle is an error naming the file and line, not silently dropped
  writeFileSync(j, '{"step":1}\nnot json\n{"step":3}\n');
  assert.throws(() => truncateJsonl(j, 2), (e) => e instanceof RunError && e.message.includes(j) && e.field === 'line 2');
  writeFileSync(c, 'a,b\n1,2\n');
  assert.throws(() => truncateCsv(c, 1), (e) => e instanceof RunError && e.field === 'header');
});
