// The per-tensor conflict log (src/run/conflict-log.ts): round trip, torn last record,
// resume truncation, refusals.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConflictLogWriter, readConflictLog } from '../dist/index.js';
import { conflictRecordBytes } from '../dist/run/conflict-log.js';
import { tempDir } from './helpers/temp-dir.mjs';

// 19 tensors: the flags span three bytes, the last one partly.
const NAMES = Array.from({ length: 19 }, (_, i) => `block${i >> 1}.lora_${i & 1 ? 'B' : 'A'}`);
const flagsAt = (step) => Uint8Array.from(NAMES, (_, t) => ((step * 7 + t * 3) % 5 === 0 ? 1 : 0));

test('conflict log: round trip of steps, names and flags', (t) => {
  const dir = tempDir(t, 'craftgrad-conflicts-');
  const w = new ConflictLogWriter(dir, NAMES);
  const steps = [1, 2, 3, 5, 8, 13, 2 ** 40];
  for (const s of steps) w.append(s, flagsAt(s));
  w.close();
  const header = JSON.parse(readFileSync(join(dir, 'conflicts.json'), 'utf8'));
  assert.equal(header.format, 'craftgrad-conflicts');
  assert.equal(header.version, 1);
  assert.equal(header.record_bytes, 8 + 3);
  assert.equal(statSync(join(dir, 'conflicts.bin')).size, steps.length * conflictRecordBytes(NAMES.length));
  const log = readConflictLog(dir);
  assert.deepEqual(log.names, NAMES);
  assert.deepEqual(log.steps, steps);
  assert.equal(log.droppedBytes, 0);
  steps.forEach((s, i) => assert.deepEqual(log.flags.subarray(i * NAMES.length, (i + 1) * NAMES.length), flagsAt(s), `step ${s}`));
});

test('conflict log: a torn last record is dropped by the reader and by a reopening writer', (t) => {
  const dir = tempDir(t, 'craftgrad-conflicts-');
  const w = new ConflictLogWriter(dir, NAMES);
  for (let s = 1; s <= 4; ++s) w.append(s, flagsAt(s));
  w.close();
  const bin = join(dir, 'conflicts.bin');
  truncateSync(bin, statSync(bin).size - 5); // a kill in the middle of record 4
  let log = readConflictLog(dir);
  assert.deepEqual(log.steps, [1, 2, 3]);
  assert.equal(log.droppedBytes, conflictRecordBytes(NAMES.length) - 5);
  const w2 = new ConflictLogWriter(dir, NAMES); // resume: appends after the last whole record
  assert.equal(w2.length, 3);
  w2.append(4, flagsAt(4));
  w2.close();
  log = readConflictLog(dir);
  assert.deepEqual(log.steps, [1, 2, 3, 4]);
  assert.equal(log.droppedBytes, 0);
  assert.deepEqual(log.flags.subarray(3 * NAMES.length), flagsAt(4));
});

test('conflict log: truncateAfter drops the steps after a checkpoint, then appending goes on', (t) => {
  const dir = tempDir(t, 'craftgrad-conflicts-');
  const w = new ConflictLogWriter(dir, NAMES);
  for (let s = 10; s <= 100; s += 10) w.append(s, flagsAt(s));
  w.close();
  const r = new ConflictLogWriter(dir, NAMES);
  r.truncateAfter(55);
  assert.equal(r.length, 5);
  assert.throws(() => r.append(50, flagsAt(50)), /not after the last logged step 50/);
  r.append(60, flagsAt(61));
  r.truncateAfter(1000); // nothing after: no-op
  r.close();
  const log = readConflictLog(dir);
  assert.deepEqual(log.steps, [10, 20, 30, 40, 50, 60]);
  assert.deepEqual(log.flags.subarray(5 * NAMES.length), flagsAt(61));
  const z = new ConflictLogWriter(dir, NAMES);
  z.truncateAfter(0);
  z.close();
  assert.deepEqual(readConflictLog(dir).steps, []);
});

test('conflict log: bad arguments, other tensors, no log, bad header', (t) => {
  const dir = tempDir(t, 'craftgrad-conflicts-');
  assert.equal(readConflictLog(dir), null, 'no log: null');
  const w = new ConflictLogWriter(dir, NAMES);
  assert.throws(() => w.append(1, new Uint8Array(3)), /flags has 3 entries, expected 19/);
  assert.throws(() => w.append(-1, flagsAt(1)), RangeError);
  assert.throws(() => w.append(1, [0, 1]), TypeError);
  w.close();
  assert.throws(() => w.append(1, flagsAt(1)), /closed/);
  assert.throws(() => new ConflictLogWriter(dir, ['x', 'y']), /logs other tensors.*replace: true/);
  const fresh = new ConflictLogWriter(dir, ['x', 'y'], { replace: true });
  fresh.append(3, Uint8Array.of(0, 1));
  fresh.close();
  assert.deepEqual(readConflictLog(dir), { names: ['x', 'y'], steps: [3], flags: Uint8Array.of(0, 1), droppedBytes: 0 });
  appendFileSync(join(dir, 'conflicts.json'), 'garbage');
  assert.throws(() => readConflictLog(dir), /conflicts\.json: not valid JSON/);
});
