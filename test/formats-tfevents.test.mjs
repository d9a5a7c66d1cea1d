// TensorBoard event files: writer output read back by the independent reader with every
// CRC checked, corruption detection, the CRC32C known vector and the masking rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  FormatError, TfEventsWriter, readTfEvents,
} from '../dist/formats/index.js';
import { crc32c } from '../dist/formats/crc.js';
import { maskCrc, frameRecord, FILE_VERSION } from '../dist/formats/tfevents.js';
import { crc32cTable, crc32Table } from '../dist/formats/crc.js';
import { tempDir } from './helpers/temp-dir.mjs';

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-tfe-');
  return dir;
}

const enc = new TextEncoder();

test('CRC32C known vector and the TFRecord mask', () => {
  assert.equal(crc32c(enc.encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // mask = rotr(crc, 15) + 0xa282ead8 (mod 2^32), computed here independently with BigInt
  const c = 0xe3069283n;
  const rot = ((c >> 15n) | (c << 17n)) & 0xffffffffn;
  assert.equal(maskCrc(0xe3069283), Number((rot + 0xa282ead8n) & 0xffffffffn));
  assert.equal(maskCrc(0), 0xa282ead8);
});

test('package CRCs agree with the pure-JS table fallback (also on unaligned subarrays)', () => {
  const buf = new Uint8Array(100_003);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
  for (const [a, b] of [[0, buf.length], [1, 77], [3, 100_000]]) {
    const part = buf.subarray(a, b);
    assert.equal(crc32c(part), crc32cTable(part));
  }
  assert.equal(crc32Table(enc.encode('123456789')), 0xcbf43926);
  assert.equal(crc32cTable(enc.encode('123456789')), 0xe3069283);
  // continuation: crc of a+b equals crc of b started from crc of a
  assert.equal(crc32c(buf.subarray(10, 20), crc32c(buf.subarray(0, 10))), crc32c(buf.subarray(0, 20)));
});

test('record framing of a known payload, checked byte by byte', () => {
  const data = enc.encode('abc');
  const rec = frameRecord(data);
  assert.equal(rec.length, 8 + 4 + 3 + 4);
  const dv = new DataView(rec.buffer);
  assert.equal(dv.getBigUint64(0, true), 3n);
  assert.equal(dv.getUint32(8, true), maskCrc(crc32c(new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0]))));
  assert.deepEqual(Array.from(rec.subarray(12, 15)), [0x61, 0x62, 0x63]);
  assert.equal(dv.getUint32(15, true), maskCrc(crc32c(data)));
});

test('writer: file name, file_version first, scalars and session logs read back', (t) => {
  const dir = tmp(t);
  const w = new TfEventsWriter(join(dir, 'run'), { hostname: 'hostA', wallTime: 1700000000.5 });
  assert.match(basename(w.path), /^events\.out\.tfevents\.1700000000\.hostA\.\d+\.\d+$/);
  w.addScalars(1, { action_loss: 0.5, lr: 1e-4, grad_norm: 3 }, 1700000001.25);
  w.addScalars(2, { action_loss: 0.25, nan_metric: NaN, inf: -Infinity }, 1700000002);
  w.addSessionLog(2, 'CHECKPOINT', { checkpointPath: 'checkpoints/step-000002', wallTime: 1700000003 });
  w.addSessionLog(1, 'START', { msg: 'resumed', wallTime: 1700000004 });
  w.addScalars(0, {}, 1700000005);
  w.close();
  w.close(); // idempotent
  assert.throws(() => w.addScalars(3, { a: 1 }), /closed/);

  const events = readTfEvents(w.path);
  assert.equal(events.length, 6);
  assert.deepEqual(events[0], { wallTime: 1700000000.5, step: 0, fileVersion: FILE_VERSION });
  assert.equal(FILE_VERSION, 'brain.Event:2');
  assert.deepEqual(events[1], { wallTime: 1700000001.25, step: 1, scalars: { action_loss: 0.5, lr: Math.fround(1e-4), grad_norm: 3 } });
  assert.equal(events[2].step, 2);
  assert.equal(events[2].scalars.action_loss, 0.25);
  assert.ok(Number.isNaN(events[2].scalars.nan_metric));
  assert.equal(events[2].scalars.inf, -Infinity);
  assert.deepEqual(events[3], { wallTime: 1700000003, step: 2, sessionLog: { status: 'CHECKPOINT', checkpointPath: 'checkpoints/step-000002' } });
  assert.deepEqual(events[4], { wallTime: 1700000004, step: 1, sessionLog: { status: 'START', msg: 'resumed' } });
  assert.deepEqual(events[5], { wallTime: 1700000005, step: 0, scalars: {} });
  // the same bytes also parse when handed in as a buffer
  assert.deepEqual(readTfEvents(new Uint8Array(readFileSync(w.path))), events);
});

test('flush() puts pending events on disk before close', (t) => {
  const dir = tmp(t);
  const w = new TfEventsWriter(dir, { hostname: 'h' });
  assert.equal(readTfEvents(w.path).length, 1, 'the file_version event is written at once');
  w.addScalars(10, { x: 1 });
  w.flush();
  const ev = readTfEvents(w.path);
  assert.equal(ev.length, 2);
  assert.equal(ev[1].step, 10);
  assert.ok(Math.abs(ev[1].wallTime - Date.now() / 1000) < 60, 'default wall time is now');
  w.close();
});

test('two writers in the same directory and second never clash', (t) => {
  const dir = tmp(t);
  const a = new TfEventsWriter(dir, { hostname: 'h', wallTime: 1 });
  const b = new TfEventsWriter(dir, { hostname: 'h', wallTime: 1, filenameSuffix: '.eval' });
  assert.notEqual(a.path, b.path);
  assert.ok(b.path.endsWith('.eval'));
  a.close();
  b.close();
  assert.equal(readdirSync(dir).length, 2);
});

test('large steps and negative steps survive; bad arguments are refused', (t) => {
  const dir = tmp(t);
  const w = new TfEventsWriter(dir, { hostname: 'h' });
  w.addScalars(2 ** 40 + 3, { a: 1 });
  w.addScalars(-5, { a: 2 });
  assert.throws(() => w.addScalars(1.5, { a: 1 }), (e) => e instanceof FormatError && /step/.test(e.message));
  assert.throws(() => w.addScalars(1, { a: '1' }), /scalars\["a"\]/);
  assert.throws(() => w.addSessionLog(1, 'PAUSE'), /status/);
  w.close();
  const ev = readTfEvents(w.path);
  assert.deepEqual(ev.map((e) => e.step), [0, 2 ** 40 + 3, -5]);
});

test('every CRC is checked: a flipped bit anywhere is detected with record index and offset', (t) => {
  const dir = tmp(t);
  const w = new TfEventsWriter(dir, { hostname: 'h', wallTime: 5 });
  w.addScalars(1, { loss: 1 }, 6);
  w.addScalars(2, { loss: 2 }, 7);
  w.close();
  const good = new Uint8Array(readFileSync(w.path));
  const lengths = [];
  for (let off = 0; off < good.length; ) {
    const len = Number(new DataView(good.buffer).getBigUint64(off, true));
    lengths.push([off, len]);
    off += 16 + len;
  }
  assert.equal(lengths.length, 3);
  const [off1, len1] = lengths[1];
  const cases = [
    [off1 + 0, /record 1 at byte \d+.*length CRC32C mismatch/], // length
    [off1 + 9, /record 1 at byte \d+.*length CRC32C mismatch/], // length CRC
    [off1 + 12 + 2, /record 1 at byte \d+.*data CRC32C mismatch/], // data
    [off1 + 12 + len1 + 1, /record 1 at byte \d+.*data CRC32C mismatch/], // data CRC
  ];
  for (const [pos, pattern] of cases) {
    const bad = good.slice();
    bad[pos] ^= 0x10;
    const path = join(dir, 'bad.tfevents');
    writeFileSync(path, bad);
    assert.throws(() => readTfEvents(path), (e) => {
      assert.ok(e instanceof FormatError);
      assert.match(e.message, pattern);
      assert.equal(e.field, `record 1 at byte ${off1}`);
      assert.equal(e.file, path);
      return true;
    });
  }
  // every single-byte flip anywhere in the file is caught
  for (let pos = 0; pos < good.length; pos++) {
    const bad = good.slice();
    bad[pos] ^= 0x01;
    assert.throws(() => readTfEvents(bad), FormatError, `flip at ${pos} not detected`);
  }
});

test('truncated files and valid-CRC garbage payloads are rejected', () => {
  const rec = frameRecord(new Uint8Array([0x09, 1, 2, 3])); // fixed64 field cut short
  assert.throws(() => readTfEvents(rec), /record 0 at byte 0.*bad Event protobuf/);
  const ok = frameRecord(new Uint8Array([0x10, 0x07])); // step = 7
  assert.deepEqual(readTfEvents(ok), [{ wallTime: 0, step: 7 }]);
  const two = new Uint8Array([...ok, ...ok]);
  assert.throws(() => readTfEvents(two.subarray(0, two.length - 3)), /record 1 at byte 18.*runs past the end/);
  assert.throws(() => readTfEvents(two.subarray(0, ok.length + 5)), /record 1 at byte 18.*truncated record header/);
  // unknown fields are skipped, as protobuf requires
  const withUnknown = frameRecord(new Uint8Array([0x10, 0x07, 0x3a, 0x02, 0x41, 0x42, 0x45, 0, 0, 0, 0]));
  assert.deepEqual(readTfEvents(withUnknown), [{ wallTime: 0, step: 7 }]);
});
