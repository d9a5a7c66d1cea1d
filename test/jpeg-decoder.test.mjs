// The addon's JPEG decoder (native/data/jpeg_decoder.h, binding.decodeJpeg;
// src/data/images/jpeg.ts): bit for bit what libjpeg-turbo's `djpeg -dct fast` gives (the
// IFAST IDCT with fancy upsampling: tf.io.decode_image), on JPEGs that libjpeg-turbo's own
// cjpeg makes at test time (sizes, qualities, subsamplings, restart intervals, grey, RGB,
// several scans, optimised tables), including where libjpeg-turbo's SIMD and C code disagree
// (it follows the SIMD code TF runs on x86-64); the unsupported kinds fall back to sharp; every
// malformed input is an error (truncations at every offset, byte flips, crafted headers),
// never a crash or a hang; and it decodes on worker threads. Without cjpeg/djpeg
// (Debian: libjpeg-turbo-progs) the comparisons skip and say so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { binding } from '../dist/native.js';
import { decodeImage, ImageDecodeError } from '../dist/data/images/index.js';

const fixture = readFileSync(fileURLToPath(new URL('./fixtures/images/scene-q95.jpg', import.meta.url)));

function tool(name) {
  const r = spawnSync(name, ['-version'], { encoding: 'utf8' });
  return r.error ? undefined : `${r.stdout}${r.stderr}`;
}
const djpegVersion = tool('djpeg');
const haveTools = djpegVersion !== undefined && tool('cjpeg') !== undefined;
const noTools = haveTools ? false : 'cjpeg/djpeg not found (Debian: apt-get install libjpeg-turbo-progs)';
if (noTools) console.log(`# skipping the comparisons with libjpeg-turbo: ${noTools}`);

/** A deterministic test picture: gradients, hard edges, a few flat boxes and noise. */
function picture(w, h, seed) {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const edge = ((x >> 3) + (y >> 2)) % 3 === 0;
      px[i] = (x * 255) / Math.max(1, w - 1);
      px[i + 1] = edge ? 230 : (y * 255) / Math.max(1, h - 1);
      px[i + 2] = (x ^ y) & 1 ? 40 + rnd() * 60 : 200 - rnd() * 100;
    }
  }
  return Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), px]);
}

function run(cmd, args, input, env) {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 26, env: env ? { ...process.env, ...env } : process.env });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const cjpeg = (ppm, args) => run('cjpeg', args, ppm);

/** A PNM's header and pixels. */
function pnm(buf) {
  let lines = 0, i = 0;
  while (lines < 3) if (buf[i++] === 10) lines++;
  const [magic, dims] = buf.subarray(0, i).toString('latin1').split('\n');
  const [w, h] = dims.split(' ').map(Number);
  return { channels: magic === 'P5' ? 1 : 3, width: w, height: h, data: new Uint8Array(buf.subarray(i)) };
}
const djpeg = (jpg, env) => pnm(run('djpeg', ['-dct', 'fast', '-pnm'], jpg, env));

function countDiffer(a, b) {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function assertSame(jpg, label) {
  const ref = djpeg(jpg);
  const got = binding.decodeJpeg(jpg);
  assert.deepEqual([got.width, got.height, got.channels], [ref.width, ref.height, ref.channels], label);
  assert.equal(countDiffer(got.data, ref.data), 0, `${label}: values that differ from djpeg -dct fast`);
}

test('djpeg is libjpeg-turbo', { skip: noTools }, () => {
  assert.match(djpegVersion, /libjpeg-turbo/, 'the reference must be libjpeg-turbo (TF\'s library)');
  console.log(`# reference: ${djpegVersion.trim().split('\n')[0]}`);
});

test('equal to djpeg -dct fast: sizes, qualities and subsamplings (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, mixed)', { skip: noTools }, () => {
  let n = 0;
  for (const [w, h] of [[1, 1], [2, 3], [3, 2], [5, 17], [17, 5], [16, 16], [33, 47], [64, 8], [255, 9], [256, 256]]) {
    const ppm = picture(w, h, w * 31 + h);
    for (const q of ['20', '75', '95', '100']) {
      for (const sample of ['1x1', '2x1', '2x2', '1x2', '4x1', '2x2,1x2,2x1']) {
        if (w * h > 5000 && q !== '95' && sample !== '2x2') continue; // the big frame: its usual forms only
        assertSame(cjpeg(ppm, ['-quality', q, '-sample', sample]), `${w}x${h} q${q} ${sample}`);
        n++;
      }
    }
  }
  assert.ok(n > 200, `${n} files`);
});

test('equal to djpeg -dct fast: restart intervals, grey, RGB, several scans, optimised and q1 tables, the committed frame', { skip: noTools }, () => {
  const ppm = picture(37, 29, 7);
  for (const r of ['1B', '2B', '5B', '1']) {
    for (const sample of ['1x1', '2x1', '2x2']) assertSame(cjpeg(ppm, ['-restart', r, '-sample', sample]), `restart ${r} ${sample}`);
  }
  assertSame(cjpeg(ppm, ['-grayscale', '-restart', '3B']), 'grey');
  const rgb = cjpeg(ppm, ['-rgb']);
  assertSame(rgb, 'RGB (component ids R, G, B)');
  assert.equal(binding.decodeJpeg(rgb).channels, 3);
  assertSame(cjpeg(ppm, ['-optimize', '-quality', '1', '-baseline']), 'optimised tables, quality 1');
  // Sequential files with one scan per component, or two.
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-jpeg-'));
  try {
    writeFileSync(join(dir, 'three.txt'), '0;\n1;\n2;\n');
    writeFileSync(join(dir, 'two.txt'), '0 2;\n1;\n');
    assertSame(cjpeg(ppm, ['-scans', join(dir, 'three.txt'), '-sample', '2x2']), 'three scans');
    assertSame(cjpeg(ppm, ['-scans', join(dir, 'two.txt'), '-sample', '2x2', '-restart', '2B', '-optimize']), 'two scans with restarts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assertSame(fixture, 'scene-q95.jpg');
});

test('where libjpeg-turbo\'s SIMD and C IDCTs differ (16-bit overflow), it gives the SIMD result, as TF on x86-64', { skip: noTools }, () => {
  // A quality-100 file (coefficients up to ±1024) whose quantisation tables are then rewritten
  // to large values: the dequantised coefficients overflow 16 bits, where the SSE2 code wraps
  // and the C code (32-bit) does not.
  const jpg = Buffer.from(cjpeg(picture(61, 43, 3), ['-quality', '100', '-sample', '1x1']));
  for (let i = 2; i + 4 < jpg.length;) {
    const m = jpg[i + 1], len = jpg.readUInt16BE(i + 2);
    if (m === 0xdb) for (let k = 0; k < 64; k++) jpg[i + 5 + k] = (37 * k + 11) % 256 || 1;
    if (m === 0xda) break;
    i += 2 + len;
  }
  const simd = djpeg(jpg), plainC = djpeg(jpg, { JSIMD_FORCENONE: '1' });
  const apart = countDiffer(simd.data, plainC.data);
  console.log(`# djpeg with SIMD and with JSIMD_FORCENONE=1 differ in ${apart} of ${simd.data.length} values on this file`);
  assertSame(jpg, 'overflowing quantisation tables');
  if (apart === 0) console.log('# (this djpeg has no SIMD code, or it is off: the two paths agree here)');
  else assert.ok(countDiffer(binding.decodeJpeg(jpg).data, plainC.data) > 0, 'differs from the C path');
  // On ordinary files the two paths agree (so either is TF's there).
  const ordinary = cjpeg(picture(61, 43, 3), ['-quality', '95']);
  assert.equal(countDiffer(djpeg(ordinary).data, djpeg(ordinary, { JSIMD_FORCENONE: '1' }).data), 0);
});

test('decodeImage: grey repeated into RGB; a non-Uint8Array is a TypeError', { skip: noTools }, async () => {
  const grey = cjpeg(picture(9, 7, 1), ['-grayscale']);
  const img = await decodeImage(grey);
  const ref = djpeg(grey);
  assert.equal(ref.channels, 1);
  assert.deepEqual(img.data, Uint8Array.from({ length: 9 * 7 * 3 }, (_, i) => ref.data[Math.floor(i / 3)]));
  assert.throws(() => binding.decodeJpeg('not bytes'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
});

test('progressive and arithmetic-coded JPEGs go to sharp, with one warning that they are not TF-exact', { skip: noTools }, async () => {
  const ppm = picture(40, 24, 5);
  const warnings = [];
  const onWarning = (w) => { if (w.code === 'CRAFTGRAD_JPEG_FALLBACK') warnings.push(w.message); };
  process.on('warning', onWarning);
  try {
    for (const args of [['-progressive'], ['-arithmetic']]) {
      const jpg = cjpeg(ppm, args);
      assert.throws(() => binding.decodeJpeg(jpg), { code: 'ERR_CRAFTGRAD_JPEG_UNSUPPORTED', message: args[0] === '-progressive' ? /progressive/ : /arithmetic/ });
      const img = await decodeImage(jpg);
      const islow = pnm(run('djpeg', ['-dct', 'int', '-ppm'], jpg));
      assert.equal(countDiffer(img.data, islow.data), 0, `${args[0]}: sharp's decode (djpeg -dct int)`);
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(warnings.length, 1, 'warned once');
    assert.match(warnings[0], /progressive.*sharp.*TensorFlow/);
  } finally {
    process.off('warning', onWarning);
  }
});

/** A small 4:2:0 file with restarts, as every malformed case's starting point. */
const small = () => Buffer.from(haveTools ? cjpeg(picture(21, 19, 9), ['-quality', '90', '-restart', '1B']) : fixture);

async function decodeOrError(bytes) {
  try {
    const img = await decodeImage(bytes);
    assert.equal(img.data.length, img.width * img.height * 3);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof ImageDecodeError, `not an ImageDecodeError: ${e?.stack ?? e}`);
    return e.message;
  }
}

test('malformed: every truncation of a small file is an ImageDecodeError', async () => {
  const jpg = small();
  const messages = new Set();
  for (let n = 0; n < jpg.length; n++) {
    const r = await decodeOrError(jpg.subarray(0, n));
    assert.notEqual(r, 'ok', `truncated to ${n} of ${jpg.length} bytes decoded`);
    messages.add(r.replace(/\d+/g, 'N'));
  }
  console.log(`# ${jpg.length} truncations, the messages:\n${[...messages].map((m) => `#   ${m}`).join('\n')}`);
  assert.ok([...messages].some((m) => /truncated/.test(m)));
});

test('malformed: random byte flips decode or give an ImageDecodeError, never a crash or a hang', async () => {
  const jpg = small();
  let s = 12345, ok = 0, failed = 0, compared = 0;
  const rnd = (n) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
  const started = Date.now();
  for (let t = 0; t < 3000; t++) {
    const bad = Buffer.from(jpg);
    for (let k = 1 + rnd(3); k > 0; k--) bad[rnd(bad.length)] = rnd(256);
    if ((await decodeOrError(bad)) === 'ok') {
      ok++;
      // What it decodes, libjpeg-turbo decodes to the same pixels (a few hundred compared:
      // each is a djpeg process).
      if (haveTools && compared < 300 && bad[0] === 0xff && bad[1] === 0xd8 && bad[2] === 0xff) {
        let native;
        try {
          native = binding.decodeJpeg(bad);
        } catch {
          continue; // went to sharp (an unsupported kind)
        }
        const r = spawnSync('djpeg', ['-dct', 'fast', '-pnm'], { input: bad, maxBuffer: 1 << 24 });
        assert.equal(countDiffer(native.data, pnm(r.stdout).data), 0, `corrupted copy ${t}: differs from djpeg`);
        compared++;
      }
    } else failed++;
  }
  console.log(`# 3000 corrupted copies: ${ok} decoded (${compared} of them equal to djpeg's), ${failed} refused, in ${Date.now() - started} ms`);
  assert.ok(failed > 100);
});

/** The segments of a JPEG (marker, start of the marker, end of the segment), up to SOS. */
function segments(jpg) {
  const out = [];
  for (let i = 2; i + 4 <= jpg.length;) {
    const m = jpg[i + 1], end = i + 2 + jpg.readUInt16BE(i + 2);
    out.push({ m, start: i, end });
    if (m === 0xda) break;
    i = end;
  }
  return out;
}

test('malformed headers: each is refused naming the problem', async () => {
  const jpg = small();
  const segs = segments(jpg);
  const seg = (m) => segs.find((x) => x.m === m);
  const sof = seg(0xc0), dht = seg(0xc4), sos = seg(0xda);
  const cut = (a, b) => Buffer.concat([jpg.subarray(0, a), jpg.subarray(b)]);
  const withSof = (w, h) => { const b = Buffer.from(jpg); b.writeUInt16BE(h, sof.start + 5); b.writeUInt16BE(w, sof.start + 7); return b; };
  const cases = [
    [Buffer.from([0xff, 0xd8, 0xff, 0xd9]), /no image|before any frame header/],
    [withSof(65535, 65535), /more than 2\^26 pixels/],
    [withSof(8000, 8000), /truncated: the frame header declares 8000x8000/],
    [withSof(0, 19), /width is 0/],
    // SOS before SOF: the frame header moved behind the scan header.
    [Buffer.concat([jpg.subarray(0, sof.start), jpg.subarray(sof.end, sos.end), jpg.subarray(sof.start, sof.end), jpg.subarray(sos.end)]), /scan \(SOS\) before the frame header/],
    [Buffer.concat([jpg.subarray(0, sos.start), Buffer.from([0xff, 0xd9])]), /ends before the EOI|before any scan/],
    [cut(jpg.length - 2, jpg.length), /truncated/],
  ];
  // A Huffman table with more codes than fit: 3 codes of length 1.
  const badDht = Buffer.from(jpg);
  badDht[dht.start + 5] = 3;
  cases.push([badDht, /bad Huffman table/]);
  // A restart marker out of sequence.
  const rst = Buffer.from(jpg);
  const at = rst.indexOf(Buffer.from([0xff, 0xd0]), sos.end);
  assert.ok(at > 0, 'the file has restart markers');
  rst[at + 1] = 0xd3;
  cases.push([rst, /expected restart marker RST0, found RST3/]);
  // A scan naming a component the frame does not have.
  const comp = Buffer.from(jpg);
  comp[sos.start + 5] = 77;
  cases.push([comp, /component 77/]);
  for (const [bytes, re] of cases) {
    await assert.rejects(decodeImage(bytes), (e) => e instanceof ImageDecodeError && re.test(e.message), `expected ${re}`);
  }
});

test('decodes on worker threads (the addon loads in workers), the same pixels', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(async ({ decodeImage }) => {
      const img = await decodeImage(new Uint8Array(workerData.bytes));
      parentPort.postMessage(img.data);
    }).catch((e) => parentPort.postMessage(String(e.stack)));`;
  const url = new URL('../dist/data/images/index.js', import.meta.url).href;
  const main = (await decodeImage(fixture)).data;
  const results = await Promise.all([0, 1].map(() => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { url, bytes: fixture } });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  })));
  for (const r of results) assert.deepEqual(r, main);
});

test('a worker terminated while it decodes does not take the process down', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(async ({ decodeImage }) => {
      const bytes = new Uint8Array(workerData.bytes);
      parentPort.postMessage('started');
      for (;;) await Promise.all([decodeImage(bytes), decodeImage(bytes)]);
    });`;
  const url = new URL('../dist/data/images/index.js', import.meta.url).href;
  for (let k = 0; k < 5; k++) {
    const w = new Worker(code, { eval: true, workerData: { url, bytes: fixture } });
    await new Promise((resolve) => w.once('message', resolve));
    await new Promise((resolve) => setTimeout(resolve, 5 * k));
    await w.terminate();
  }
  assert.ok((await decodeImage(fixture)).width === 256, 'still decoding after the terminations');
});
