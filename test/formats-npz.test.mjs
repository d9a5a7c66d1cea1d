// .npy and .npz: header versions, dtypes, fortran-order refusal, stored/deflated/zip64
// archives, CRC and truncation detection, and (when numpy is installed) numpy itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FormatError, decodeNpy, encodeNpy, decodeNpz, encodeNpz, readNpzFile,
} from '../dist/formats/index.js';
import { readZip, writeZip } from '../dist/formats/zip.js';
import { crc32 } from '../dist/formats/crc.js';
import { tempDir } from './helpers/temp-dir.mjs';

const enc = new TextEncoder();

/** A .npy file by hand: magic, version, header-length field, header text (unpadded), data. */
function rawNpy(major, headerText, data) {
  const lenBytes = major === 1 ? 2 : 4;
  const h = enc.encode(headerText);
  const out = new Uint8Array(8 + lenBytes + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, h.length, true); else dv.setUint32(8, h.length, true);
  out.set(h, 8 + lenBytes);
  out.set(data, 8 + lenBytes + h.length);
  return out;
}
const bytesOf = (ta) => new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength);

function expectFormatError(fn, pattern, field) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${e}`);
    assert.match(e.message, pattern);
    if (field) assert.match(e.field ?? '', field);
    return true;
  });
}

const samples = {
  f4: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
  f8: { dtype: 'F64', shape: [2], data: new Float64Array([Math.E, -0]) },
  i4: { dtype: 'I32', shape: [3], data: new Int32Array([-1, 0, 2 ** 31 - 1]) },
  i8: { dtype: 'I64', shape: [1, 1], data: new BigInt64Array([-(2n ** 62n)]) },
  u1: { dtype: 'U8', shape: [4], data: new Uint8Array([0, 9, 200, 255]) },
  b1: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
  f2: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
  scalar: { dtype: 'F64', shape: [], data: new Float64Array([7.25]) },
  empty: { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
};

function assertSameTensor(got, want, name) {
  assert.equal(got.dtype, want.dtype, name);
  assert.deepEqual(got.shape, want.shape, name);
  assert.equal(got.data.constructor, want.data.constructor, name);
  assert.deepEqual(Array.from(got.data), Array.from(want.data), name);
}

test('npy round trip of every dtype in v1, v2 and v3; data starts 64-byte aligned', () => {
  for (const version of [1, 2, 3]) {
    for (const [name, t] of Object.entries(samples)) {
      const bytes = encodeNpy(t, { version });
      assert.equal(bytes[6], version);
      const lenField = version === 1 ? new DataView(bytes.buffer).getUint16(8, true) : new DataView(bytes.buffer).getUint32(8, true);
      const start = (version === 1 ? 10 : 12) + lenField;
      assert.equal(start % 64, 0, `${name} v${version}`);
      assert.equal(bytes[start - 1], 0x0a, 'header ends with a newline');
      assertSameTensor(decodeNpy(bytes), t, `${name} v${version}`);
    }
  }
});

test('npy header text matches what numpy writes', () => {
  const b = encodeNpy(samples.f4);
  const text = new TextDecoder().decode(b.subarray(10, 10 + new DataView(b.buffer).getUint16(8, true)));
  assert.equal(text.trimEnd(), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  const one = new TextDecoder().decode(encodeNpy(samples.i4).subarray(10, 64));
  assert.match(one, /'shape': \(3,\)/);
  const zero = new TextDecoder().decode(encodeNpy(samples.scalar).subarray(10, 64));
  assert.match(zero, /'shape': \(\)/);
});

test('hand-written v1 and v2 headers (other key order, double quotes, no padding) decode', () => {
  const data = bytesOf(new Int32Array([5, -6]));
  const v1 = decodeNpy(rawNpy(1, "{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}", data));
  assert.deepEqual(Array.from(v1.data), [5, -6]);
  const v2 = decodeNpy(rawNpy(2, '{"descr": "<i4", "fortran_order": False, "shape": (1, 2)}\n', data));
  assert.deepEqual(v2.shape, [1, 2]);
  assert.deepEqual(Array.from(v2.data), [5, -6]);
});

test('big-endian data is byte-swapped; fortran order is refused', () => {
  const be = new Uint8Array([0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0]); // 1.0, -2.0
  const t = decodeNpy(rawNpy(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", be));
  assert.deepEqual(Array.from(t.data), [1, -2]);
  expectFormatError(
    () => decodeNpy(rawNpy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new Uint8Array(16)), { source: 'w.npy' }),
    /w\.npy.*fortran_order.*Fortran-order arrays are not supported/, /fortran_order/);
});

test('malformed npy headers are rejected naming the field', () => {
  const ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  expectFormatError(() => decodeNpy(new Uint8Array(20)), /magic/, /magic/);
  const v9 = rawNpy(1, ok, new Uint8Array(4));
  v9[6] = 9;
  expectFormatError(() => decodeNpy(v9), /version 9/, /version/);
  expectFormatError(() => decodeNpy(rawNpy(1, ok.replace('<f4', '<c16'), new Uint8Array(4))), /unsupported dtype '<c16'/, /descr/);
  expectFormatError(() => decodeNpy(rawNpy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4))), /structured/, /descr/);
  expectFormatError(() => decodeNpy(rawNpy(1, ok.replace('(1,)', '(-1,)'), new Uint8Array(4))), /shape/, /shape/);
  expectFormatError(() => decodeNpy(rawNpy(1, "{'descr': '<f4', 'shape': (1,", new Uint8Array(4))), /header dict/, /header/);
  expectFormatError(() => decodeNpy(rawNpy(1, ok, new Uint8Array(3))), /truncated/, /data/);
  expectFormatError(() => decodeNpy(rawNpy(1, ok, new Uint8Array(8))), /unexpected bytes/, /data/);
  const long = rawNpy(1, ok, new Uint8Array(4));
  new DataView(long.buffer).setUint16(8, 60000, true);
  expectFormatError(() => decodeNpy(long), /past the end/, /header length/);
  expectFormatError(() => encodeNpy({ dtype: 'BF16', shape: [1], data: new Uint16Array(1) }), /no numpy equivalent/, /dtype/);
});

test('npz stored and deflated, with and without zip64, round trip', () => {
  for (const compress of [false, true]) {
    for (const forceZip64 of [false, true]) {
      const bytes = encodeNpz(samples, { compress, forceZip64 });
      const back = decodeNpz(bytes);
      assert.deepEqual(Object.keys(back), Object.keys(samples));
      for (const [k, t] of Object.entries(samples)) assertSameTensor(back[k], t, `${k} compress=${compress} zip64=${forceZip64}`);
      // the EOCD record says 0xFFFF entries exactly when zip64 end records were written
      assert.equal(new DataView(bytes.buffer).getUint16(bytes.length - 12, true), forceZip64 ? 0xffff : Object.keys(samples).length);
    }
  }
  const big = { z: { dtype: 'F64', shape: [4096], data: new Float64Array(4096) } };
  assert.ok(encodeNpz(big, { compress: true }).length < encodeNpz(big).length / 10, 'deflate actually compresses');
});

test('zip reader: archive comment, non-.npy entry, duplicate entry, unsupported method', () => {
  const plain = writeZip([{ name: 'a.npy', data: encodeNpy(samples.u1) }]);
  const withComment = new Uint8Array(plain.length + 5);
  withComment.set(plain);
  withComment.set(enc.encode('hello'), plain.length);
  new DataView(withComment.buffer).setUint16(plain.length - 2, 5, true);
  assert.deepEqual(Array.from(decodeNpz(withComment).a.data), [0, 9, 200, 255]);

  expectFormatError(() => decodeNpz(writeZip([{ name: 'readme.txt', data: enc.encode('x') }]), { source: 'm.npz' }),
    /m\.npz.*not a \.npy entry/, /readme\.txt/);
  expectFormatError(() => readZip(writeZip([{ name: 'a', data: enc.encode('1') }, { name: 'a', data: enc.encode('2') }])),
    /appears twice/, /entry "a"/);
  const bz = writeZip([{ name: 'a.npy', data: encodeNpy(samples.u1) }]);
  const cd = bz.length - 22 - (46 + 5);
  new DataView(bz.buffer).setUint16(cd + 10, 12, true); // bzip2
  expectFormatError(() => readZip(bz), /compression method 12/, /entry "a\.npy"/);
});

test('zip reader: deflated entries inflate no further than their claimed size, which deflate must be able to reach', () => {
  const zeros = new Uint8Array(1 << 20); // deflates to about 1 KiB
  const z = writeZip([{ name: 'z.npy', data: zeros }], { compress: true });
  const cd = z.length - 22 - (46 + 'z.npy'.length);
  const dv = new DataView(z.buffer);
  assert.equal(readZip(z)[0].data.length, zeros.length);
  // A claim deflate cannot reach from the compressed size is refused before inflating.
  const huge = z.slice();
  new DataView(huge.buffer).setUint32(cd + 24, 0xfffffff0, true);
  expectFormatError(() => readZip(huge), /claims 4294967280 bytes inflated from \d+: impossible for deflate/, /entry "z\.npy"/);
  // A smaller claim stops inflation there instead of inflating everything, then fails.
  const small = z.slice();
  new DataView(small.buffer).setUint32(cd + 24, 1000, true);
  expectFormatError(() => readZip(small), /inflates past its declared size of 1000 bytes/, /entry "z\.npy"/);
  // A larger claim (still within the deflate bound) fails when the stream ends short.
  const large = z.slice();
  new DataView(large.buffer).setUint32(cd + 24, zeros.length + 1000, true);
  expectFormatError(() => readZip(large), /inflated to 1048576 bytes, central directory says 1049576/, /entry "z\.npy"/);
  // storedOnly refuses a deflated entry outright.
  expectFormatError(() => readZip(z, { storedOnly: true }), /is deflated/, /entry "z\.npy"/);
  assert.equal(dv.getUint16(cd + 10, true), 8);
});

test('corrupted CRC32 in an npz entry is detected (stored and deflated)', () => {
  // flip one data byte of a stored entry
  const stored = encodeNpz({ w: samples.f4 });
  const s2 = stored.slice();
  s2[30 + 'w.npy'.length + 64 + 3] ^= 0x01; // inside the array data
  expectFormatError(() => decodeNpz(s2, { source: 'ckpt.npz' }), /ckpt\.npz.*CRC32 mismatch/, /entry "w\.npy"/);
  // wrong CRC recorded in the central directory of a deflated archive
  const defl = encodeNpz({ w: samples.f4 }, { compress: true });
  const cd = defl.length - 22 - (46 + 'w.npy'.length);
  const dv = new DataView(defl.buffer);
  dv.setUint32(cd + 16, dv.getUint32(cd + 16, true) ^ 0x80000000, true);
  expectFormatError(() => decodeNpz(defl), /CRC32 mismatch/, /entry "w\.npy"/);
});

test('truncated or garbage archives are detected', () => {
  const full = encodeNpz(samples, { compress: true });
  for (const cut of [1, 10, 22, full.length >> 1, full.length - 1]) {
    expectFormatError(() => decodeNpz(full.subarray(0, full.length - cut), { source: 't.npz' }), /t\.npz/);
  }
  expectFormatError(() => decodeNpz(enc.encode('definitely not a zip file at all, no sir')), /not a zip archive/, /end of central directory/);
  // corrupt deflate stream with a matching size claim
  const bad = writeZip([{ name: 'a.npy', data: new Uint8Array(100) }], { compress: true });
  bad[30 + 5] ^= 0xff;
  expectFormatError(() => readZip(bad), /deflate data is corrupt|CRC32 mismatch|inflated to/, /entry "a\.npy"/);
});

test('zip writer output matches the CRC32 standard check value and is readable by our reader', () => {
  assert.equal(crc32(enc.encode('123456789')), 0xcbf43926);
  const data = enc.encode('123456789');
  const z = writeZip([{ name: 'check.txt', data }]);
  assert.equal(new DataView(z.buffer).getUint32(14, true), 0xcbf43926);
  assert.deepEqual(Buffer.from(readZip(z)[0].data).toString(), '123456789');
  assert.deepEqual(Buffer.from(readZip(writeZip([{ name: 'x', data }], { compress: true }))[0].data), Buffer.from(data));
});

function findNumpyPython() {
  return ['python3', '/usr/bin/python3'].find((p) =>
    spawnSync(p, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);
}

test('numpy reads our .npy/.npz and we read numpy\'s np.savez / np.savez_compressed', async (t) => {
  const py = findNumpyPython();
  if (!py) {
    t.skip('python3 with numpy not installed (Debian package python3-numpy)');
    return;
  }
  const dir = tempDir(t, 'craftgrad-npz-');
  const ours = { f4: samples.f4, i8: samples.i8, b1: samples.b1, scalar: samples.scalar, empty: samples.empty };
  writeFileSync(join(dir, 'ours.npz'), encodeNpz(ours, { compress: true, forceZip64: true }));
  writeFileSync(join(dir, 'ours_stored.npz'), encodeNpz(ours));
  writeFileSync(join(dir, 'ours_v3.npy'), encodeNpy(samples.f4, { version: 3 }));
  const r = spawnSync(py, ['-c', `
import sys, json, zipfile, numpy as np
d = sys.argv[1]
out = {}
for name in ['ours.npz', 'ours_stored.npz']:
    assert zipfile.ZipFile(d + '/' + name).testzip() is None
    z = np.load(d + '/' + name)
    out[name] = {k: [str(z[k].dtype), list(z[k].shape), z[k].flatten().tolist()] for k in z.files}
a = np.load(d + '/ours_v3.npy'); out['v3'] = [str(a.dtype), list(a.shape), a.flatten().tolist()]
np.savez(d + '/np_stored.npz', a=np.arange(6, dtype='<f4').reshape(2, 3), b=np.array(3, dtype='<i8'), c=np.array([True, False]), e=np.arange(3, dtype='>i4'))
np.savez_compressed(d + '/np_defl.npz', x=np.linspace(0, 1, 1000), u=np.arange(5, dtype=np.uint8))
print(json.dumps(out))
`, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  for (const name of ['ours.npz', 'ours_stored.npz']) {
    assert.deepEqual(out[name].f4, ['float32', [2, 3], [1, 2, 3, 4, 5, -6.5]]);
    assert.deepEqual(out[name].i8, ['int64', [1, 1], [-(2 ** 62)]]);
    assert.deepEqual(out[name].b1, ['bool', [2], [true, false]]);
    assert.deepEqual(out[name].scalar, ['float64', [], [7.25]]);
    assert.deepEqual(out[name].empty, ['float32', [0, 5], []]);
  }
  assert.deepEqual(out.v3, ['float32', [2, 3], [1, 2, 3, 4, 5, -6.5]]);

  const st = await readNpzFile(join(dir, 'np_stored.npz'));
  assert.deepEqual(Array.from(st.a.data), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(st.a.shape, [2, 3]);
  assert.deepEqual(Array.from(st.b.data), [3n]);
  assert.deepEqual(st.b.shape, []);
  assert.deepEqual(Array.from(st.c.data), [1, 0]);
  assert.deepEqual(Array.from(st.e.data), [0, 1, 2]);
  const df = await readNpzFile(join(dir, 'np_defl.npz'));
  assert.equal(df.x.data.length, 1000);
  assert.equal(df.x.data[999], 1);
  assert.deepEqual(Array.from(df.u.data), [0, 1, 2, 3, 4]);
});
