// bf16 / fp16 -> float32 widening (exact, with subnormals, infinities and NaN payloads)
// and the streamed safetensors reader (pieces across element and tensor boundaries, the
// sha256 of the whole file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { widenF16, widenBF16, f16BitsToF32Bits } from '../dist/formats/float16.js';
import { streamSafetensorsFile, sha256File } from '../dist/formats/safetensors-stream.js';
import { encodeSafetensors, FormatError } from '../dist/formats/index.js';
import { randn, rng } from './helpers/random.mjs';
import { withTempDir } from './helpers/temp-dir.mjs';

const f32bits = (x) => { const dv = new DataView(new ArrayBuffer(4)); dv.setFloat32(0, x, true); return dv.getUint32(0, true); };

test('fp16: hand-computed values, both zeros, subnormals, the largest finite, infinities, NaN payloads', () => {
  const cases = [
    [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504], [0x0400, 2 ** -14],
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)], [0x0200, 2 ** -15], [0x0000, 0], [0x8000, -0],
    [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  const src = Uint16Array.from(cases.map(([b]) => b));
  const out = new Float32Array(src.length);
  widenF16(src, out);
  cases.forEach(([b, v], i) => assert.ok(Object.is(out[i], v), `fp16 0x${b.toString(16)} -> ${out[i]}, expected ${v}`));
  // NaNs keep sign and payload in the top of the float32 mantissa (quiet 0x7e00 -> 0x7fc00000).
  assert.equal(f16BitsToF32Bits(0x7e00), 0x7fc00000);
  assert.equal(f16BitsToF32Bits(0x7d01), 0x7fa02000);
  assert.equal(f16BitsToF32Bits(0xfe00), 0xffc00000);
});

test('fp16: all 65536 bit patterns agree with sign·2^(e-15)·(1+m/1024) computed in double', () => {
  const src = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const out = new Float32Array(65536);
  widenF16(src, out);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    const want = e === 31 ? (m ? NaN : s * Infinity) : e === 0 ? s * m * 2 ** -24 : s * 2 ** (e - 15) * (1 + m / 1024);
    if (!Object.is(out[h], want)) assert.fail(`fp16 0x${h.toString(16)} -> ${out[h]}, expected ${want}`);
  }
});

test('bf16: the upper half of float32, hand-computed values and a float32 subnormal', () => {
  const cases = [[0x3f80, 1], [0xc2f7, -123.5], [0x4049, 3.140625], [0x0001, 2 ** -133], [0x8000, -0], [0x7f80, Infinity], [0xff80, -Infinity]];
  const src = Uint16Array.from(cases.map(([b]) => b));
  const out = new Float32Array(src.length);
  widenBF16(src, out);
  cases.forEach(([b, v], i) => assert.ok(Object.is(out[i], v), `bf16 0x${b.toString(16)} -> ${out[i]}, expected ${v}`));
  const nan = new Float32Array(1);
  widenBF16(Uint16Array.of(0x7fc1), nan);
  assert.equal(f32bits(nan[0]), 0x7fc10000);
});

test('streamed reader: every dtype and piece size gives the tensors decodeSafetensors gives, and the file sha256', () => withTempDir('craftgrad-f16-', async (dir) => {
  const rand = rng(5);
  const a = randn(37, rand), b = Uint16Array.from({ length: 29 }, () => Math.floor(rand() * 0x7c00));
  const c = Uint16Array.from({ length: 13 }, () => Math.floor(rand() * 0x7f00));
  const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [37], data: a }, h: { dtype: 'F16', shape: [29], data: b }, z: { dtype: 'BF16', shape: [13], data: c }, n: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 2) } });
  const path = join(dir, 'm.safetensors');
  writeFileSync(path, bytes);
  const wantH = new Float32Array(29), wantZ = new Float32Array(13);
  widenF16(b, wantH);
  widenBF16(c, wantZ);
  const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
  for (const pieceBytes of [8, 16, 24, 1 << 20]) {
    const outA = new Float32Array(37), outH = new Float32Array(29), outZ = new Float32Array(13);
    const r = await streamSafetensorsFile(path, () => new Map([['a', outA], ['h', outH], ['z', outZ]]), { pieceBytes });
    assert.deepEqual(outA, a);
    assert.deepEqual(outH, wantH);
    assert.deepEqual(outZ, wantZ);
    assert.equal(r.sha256, sha, `pieceBytes ${pieceBytes}`);
    assert.equal(r.bytes, bytes.length);
    assert.deepEqual(r.entries.map((e) => e.name).sort(), ['a', 'h', 'n', 'z']);
  }
  assert.equal(await sha256File(path), sha);
  // An integer tensor cannot be loaded as float32; the error names file and tensor.
  await assert.rejects(streamSafetensorsFile(path, () => new Map([['n', new Float32Array(2)]])),
    (e) => e instanceof FormatError && e.file === path && e.field === 'tensors["n"].dtype');
}));

test('streamed reader: a non-finite weight, a truncated file and a bad header are named errors', () => withTempDir('craftgrad-f16-', async (dir) => {
  const path = join(dir, 'm.safetensors');
  writeFileSync(path, encodeSafetensors({ w: { dtype: 'BF16', shape: [3], data: Uint16Array.of(0x3f80, 0x7fc0, 0) } }));
  await assert.rejects(streamSafetensorsFile(path, () => new Map([['w', new Float32Array(3)]])),
    (e) => e instanceof FormatError && e.field === 'tensors["w"]' && /non-finite value \(NaN\) at flat index 1/.test(e.message));
  const ok = await streamSafetensorsFile(path, () => new Map([['w', new Float32Array(3)]]), { requireFinite: false });
  assert.equal(ok.entries.length, 1);
  const full = readFileSync(path);
  writeFileSync(path, full.subarray(0, full.length - 2));
  await assert.rejects(streamSafetensorsFile(path, () => new Map()), (e) => e instanceof FormatError && e.file === path && /data_offsets/.test(e.field));
  writeFileSync(path, Uint8Array.of(1, 2, 3));
  await assert.rejects(streamSafetensorsFile(path, () => new Map()), (e) => e instanceof FormatError && e.field === 'header length');
}));
