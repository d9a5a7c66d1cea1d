// safetensors reader/writer: round trips, a byte-exact file built from the spec, and
// every structural rule of the reader, each error naming its field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FormatError, encodeSafetensors, decodeSafetensors, writeSafetensorsFile, readSafetensorsFile,
} from '../dist/formats/index.js';
import { tempDir } from './helpers/temp-dir.mjs';

const enc = new TextEncoder();

/** A safetensors file from raw header text and data bytes, exactly as given. */
function rawFile(headerText, data = new Uint8Array(0), headerLen) {
  const h = enc.encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function expectFormatError(fn, fieldPattern, detailPattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${e}`);
    assert.ok(e instanceof Error);
    assert.match(e.message, fieldPattern);
    assert.match(e.field ?? '', fieldPattern);
    if (detailPattern) assert.match(e.message, detailPattern);
    return true;
  });
}

const samples = {
  f32: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1.5, -2, 3, 0, Infinity, -0]) },
  f64: { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -1e300, Number.MIN_VALUE]) },
  i32: { dtype: 'I32', shape: [1, 2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
  i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
  u8: { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) },
  f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
  bf16: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4049]) },
  i8: { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
  i16: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
  u16: { dtype: 'U16', shape: [1], data: new Uint16Array([65535]) },
  u32: { dtype: 'U32', shape: [1], data: new Uint32Array([4e9]) },
  u64: { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
  bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
  scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
  scalar64: { dtype: 'I64', shape: [], data: new BigInt64Array([-7n]) },
  empty: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
  empty2d: { dtype: 'F64', shape: [4, 0], data: new Float64Array(0) },
};

test('round trip of every dtype, incl. empty and zero-dim tensors, with metadata', () => {
  const bytes = encodeSafetensors(samples, { format: 'pt', note: 'ünï' });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(hlen % 8, 0, 'header padded to a multiple of 8');
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { format: 'pt', note: 'ünï' });
  assert.deepEqual(Object.keys(tensors).sort(), Object.keys(samples).sort());
  for (const [name, t] of Object.entries(samples)) {
    const got = tensors[name];
    assert.equal(got.dtype, t.dtype, name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.equal(got.data.constructor, t.data.constructor, name);
    assert.deepEqual(Array.from(got.data), Array.from(t.data), name);
  }
  // -0 survives (bit-exact, not just ==)
  assert.ok(Object.is(tensors.f32.data[5], -0));
});

test('no metadata gives metadata undefined; tensors are laid out in sorted-name order', () => {
  const bytes = encodeSafetensors({ b: samples.u8, a: samples.f32 });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
  assert.deepEqual(header.a.data_offsets, [0, 24]);
  assert.deepEqual(header.b.data_offsets, [24, 29]);
  assert.equal(header.__metadata__, undefined);
  assert.equal(decodeSafetensors(bytes).metadata, undefined);
});

test('byte-for-byte match with a tiny file built by hand from the spec', () => {
  const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
    + '"b":{"dtype":"U8","shape":[1,3],"data_offsets":[8,11]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  const data = new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 7, 8, 9]); // 1.0f, -2.0f, 7 8 9
  const expected = rawFile(padded, data);
  const got = encodeSafetensors(
    { b: { dtype: 'U8', shape: [1, 3], data: new Uint8Array([7, 8, 9]) },
      a: { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) } },
    { format: 'pt' });
  assert.deepEqual(Buffer.from(got).toString('hex'), Buffer.from(expected).toString('hex'));
  const back = decodeSafetensors(expected);
  assert.deepEqual(Array.from(back.tensors.a.data), [1, -2]);
});

test('unaligned data (header length not a multiple of 8) is copied, values intact', () => {
  const json = '{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}'; // 55 bytes: data at offset 63
  assert.notEqual((8 + json.length) % 8, 0);
  const data = new Uint8Array(new Float64Array([0.1, -3]).buffer);
  const { tensors } = decodeSafetensors(rawFile(json, data));
  assert.deepEqual(Array.from(tensors.x.data), [0.1, -3]);
});

test('aligned tensors are views into the input buffer (no copy)', () => {
  const bytes = encodeSafetensors({ w: samples.f64 });
  const { tensors } = decodeSafetensors(bytes);
  assert.equal(tensors.w.data.buffer, bytes.buffer);
});

test('tensors may be listed in any offset order and a "__proto__" name is an ordinary name', () => {
  const json = '{"z":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  const { tensors } = decodeSafetensors(rawFile(json, new Uint8Array([5, 6])));
  assert.deepEqual(Object.keys(tensors), ['z', '__proto__']);
  assert.deepEqual(Array.from(Object.getOwnPropertyDescriptor(tensors, '__proto__').value.data), [5]);
  assert.equal(Object.getPrototypeOf(tensors), Object.prototype);
});

test('writeSafetensorsFile / readSafetensorsFile round trip; errors name the file', async (t) => {
  const dir = tempDir(t, 'craftgrad-st-');
  const path = join(dir, 'model.safetensors');
  await writeSafetensorsFile(path, samples, { step: '200' });
  assert.deepEqual(readFileSync(path), Buffer.from(encodeSafetensors(samples, { step: '200' })));
  const { tensors, metadata } = await readSafetensorsFile(path);
  assert.equal(metadata.step, '200');
  assert.deepEqual(Array.from(tensors.i64.data), Array.from(samples.i64.data));

  const bad = join(dir, 'bad.safetensors');
  writeFileSync(bad, rawFile('{"a":{"dtype":"Q8","shape":[],"data_offsets":[0,1]}}', new Uint8Array(1)));
  await assert.rejects(readSafetensorsFile(bad), (e) => {
    assert.ok(e instanceof FormatError);
    assert.equal(e.file, bad);
    assert.equal(e.field, 'tensors["a"].dtype');
    assert.ok(e.message.includes(bad), e.message);
    return true;
  });
});

test('malformed: header length', () => {
  expectFormatError(() => decodeSafetensors(new Uint8Array(5)), /header length/, /shorter/);
  expectFormatError(() => decodeSafetensors(rawFile('{}', new Uint8Array(0), 200 * 1024 * 1024)), /header length/, /cap/);
  expectFormatError(() => decodeSafetensors(rawFile('{}', new Uint8Array(0), 2 ** 40)), /header length/, /cap/);
  expectFormatError(() => decodeSafetensors(rawFile('{}', new Uint8Array(0), 3)), /header length/, /past the end/);
});

test('malformed: header not UTF-8, not JSON, not an object', () => {
  const notUtf8 = rawFile('{}');
  notUtf8[9] = 0xff;
  expectFormatError(() => decodeSafetensors(notUtf8), /header/, /UTF-8/);
  expectFormatError(() => decodeSafetensors(rawFile('{"a":')), /header/, /not valid JSON/);
  expectFormatError(() => decodeSafetensors(rawFile('[1,2]')), /header/, /JSON object/);
  expectFormatError(() => decodeSafetensors(rawFile('null    ')), /header/, /JSON object/);
  expectFormatError(() => decodeSafetensors(rawFile('{"a":7}')), /tensors\["a"\]/, /must be an object/);
});

test('malformed: bad dtype and bad shapes', () => {
  const h = (dtype, shape) => JSON.stringify({ a: { dtype, shape, data_offsets: [0, 4] } });
  expectFormatError(() => decodeSafetensors(rawFile(h('F128', [1]), new Uint8Array(4))), /tensors\["a"\]\.dtype/, /F128/);
  expectFormatError(() => decodeSafetensors(rawFile(h(7, [1]), new Uint8Array(4))), /tensors\["a"\]\.dtype/);
  for (const shape of [[-1], [1.5], ['1'], 'x', null, [2 ** 60]]) {
    expectFormatError(() => decodeSafetensors(rawFile(h('F32', shape), new Uint8Array(4))), /tensors\["a"\]\.shape/);
  }
});

test('malformed: data_offsets out of range, wrong size, not a pair', () => {
  const one = (offs, n = 8) => rawFile(JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: offs } }), new Uint8Array(n));
  expectFormatError(() => decodeSafetensors(one([0, 8], 4)), /tensors\["a"\]\.data_offsets/, /beyond the data buffer/);
  expectFormatError(() => decodeSafetensors(one([0, 12], 12)), /tensors\["a"\]\.data_offsets/, /does not match/);
  expectFormatError(() => decodeSafetensors(one([8, 0])), /tensors\["a"\]\.data_offsets/, /after end/);
  expectFormatError(() => decodeSafetensors(one([0])), /tensors\["a"\]\.data_offsets/, /\[begin, end\]/);
  expectFormatError(() => decodeSafetensors(one([-8, 0])), /tensors\["a"\]\.data_offsets/);
});

test('malformed: overlapping tensors, gaps, trailing bytes', () => {
  const two = (ob, n) => rawFile(JSON.stringify({
    a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
    b: { dtype: 'U8', shape: [4], data_offsets: ob },
  }), new Uint8Array(n));
  expectFormatError(() => decodeSafetensors(two([2, 6], 6)), /tensors\["b"\]\.data_offsets/, /overlaps tensor "a"/);
  expectFormatError(() => decodeSafetensors(two([0, 4], 4)), /data_offsets/, /overlaps/);
  expectFormatError(() => decodeSafetensors(two([6, 10], 10)), /tensors\["b"\]\.data_offsets/, /gap/);
  expectFormatError(() => decodeSafetensors(two([4, 8], 9)), /data_offsets/, /trailing/);
  // a gap at the start of the buffer
  expectFormatError(() => decodeSafetensors(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', new Uint8Array(2))), /tensors\["a"\]\.data_offsets/, /gap/);
});

test('malformed: duplicate tensor names (only possible in raw JSON text)', () => {
  const text = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
  expectFormatError(() => decodeSafetensors(rawFile(text, new Uint8Array(2))), /tensors\["a"\]/, /more than once/);
  // keys inside nested objects, and escaped spellings, are handled
  const nested = '{"__metadata__":{"a":"x","b":"y"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0061":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  expectFormatError(() => decodeSafetensors(rawFile(nested, new Uint8Array(1))), /tensors\["a"\]/, /more than once/);
  const nestedOk = '{"__metadata__":{"a":"x"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  assert.equal(decodeSafetensors(rawFile(nestedOk, new Uint8Array(1))).metadata.a, 'x');
});

test('malformed: metadata values must be strings', () => {
  expectFormatError(() => decodeSafetensors(rawFile('{"__metadata__":{"k":1}}')), /__metadata__\.k/, /strings/);
  expectFormatError(() => decodeSafetensors(rawFile('{"__metadata__":[]}')), /__metadata__/);
  expectFormatError(() => encodeSafetensors({}, { k: 5 }), /__metadata__\.k/);
});

test('encoder rejects mismatched tensors, naming the field', () => {
  expectFormatError(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }), /tensors\["w"\]\.data/, /Float32Array/);
  expectFormatError(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /tensors\["w"\]\.data/, /needs 3/);
  expectFormatError(() => encodeSafetensors({ w: { dtype: 'X', shape: [], data: new Float32Array(1) } }), /tensors\["w"\]\.dtype/);
  expectFormatError(() => encodeSafetensors({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(1) } }), /tensors\["w"\]\.shape/);
  expectFormatError(() => encodeSafetensors({ __metadata__: samples.u8 }), /__metadata__/, /reserved/);
});

test('Python safetensors.torch.load_file reads what we write', (t) => {
  const py = ['python3', '/usr/bin/python3'].find((p) =>
    spawnSync(p, ['-c', 'import safetensors.torch, torch'], { stdio: 'ignore' }).status === 0);
  if (!py) {
    t.skip('python3 with safetensors + torch not installed (Debian has no python3-safetensors; PyPI unreachable)');
    return;
  }
  const dir = tempDir(t, 'craftgrad-stpy-');
  const path = join(dir, 'x.safetensors');
  writeFileSync(path, encodeSafetensors({ a: samples.f32, b: samples.i64, c: samples.u8, d: samples.f64, e: samples.i32, s: samples.scalar }, { k: 'v' }));
  const r = spawnSync(py, ['-c', `
import sys, json, safetensors.torch, safetensors
t = safetensors.torch.load_file(sys.argv[1])
with safetensors.safe_open(sys.argv[1], 'pt') as f: meta = f.metadata()
print(json.dumps({k: [str(v.dtype), list(v.shape), v.flatten().tolist()] for k, v in t.items()} | {'meta': meta}))
`, path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // Python's json writes inf as Infinity, which JSON.parse rejects; 1e999 parses to Infinity.
  const out = JSON.parse(r.stdout.replace(/\bInfinity\b/g, '1e999'));
  assert.deepEqual(out.a, ['torch.float32', [2, 3], [1.5, -2, 3, 0, Infinity, -0]]);
  assert.deepEqual(out.c, ['torch.uint8', [5], [0, 1, 127, 128, 255]]);
  assert.deepEqual(out.s, ['torch.float32', [], [42]]);
  assert.deepEqual(out.meta, { k: 'v' });
});
