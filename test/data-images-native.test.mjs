// The native image work (native/data through src/data/images/native-ops.ts) against the
// TypeScript it replaces in the pipeline (resize.ts, augment.ts, vla-dataset.ts's
// normalizeImage), which test/data-images.test.mjs checks against float64 readings of TF's
// kernels: the same bytes for every op and option over random images, sizes and draws and the
// fixture; prepareFrame and prepareNormalizedFrame equal the TypeScript composition; the same
// bits in a worker thread and whatever CRAFTGRAD_CPU_ISA / CRAFTGRAD_THREADS say; every bad
// argument is a TypeError or RangeError naming it, and nothing is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import {
  decodeImage, resizeLanczos3, resizeImageUint8, computeSpans, augmentImage, augmentParams, centerCropImage, centerCropBox,
  cropAndResize, uint8ToFloat, floatToUint8, clip01, adjustBrightness, adjustContrast, adjustSaturation, adjustHue,
  prepareFrame, augmentRng, drawUniform,
} from '../dist/data/images/index.js';
import {
  resizeLanczos3Native, resizeImageUint8Native, augmentImageNative, centerCropImageNative, normalizeImageNative,
} from '../dist/data/images/native-ops.js';
import { prepareNormalizedFrame } from '../dist/data/images/frame-pool.js';
import { normalizeImage } from '../dist/data/vla-dataset.js';
import { imageAugment, imageNormalize, imageResize } from '../dist/native-calls.js';
import sharp from 'sharp';
import { rng } from './helpers/random.mjs';

const fixtures = fileURLToPath(new URL('./fixtures/images/', import.meta.url));
const jpeg = readFileSync(fixtures + 'scene-q95.jpg');
const NORMS = [
  [{ mean: [0.484375, 0.455078125, 0.40625], std: [0.228515625, 0.2236328125, 0.224609375] }, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }],
  [{ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }],
];

const bytes = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/** Byte equality (so +0 and -0, and every float's last bit, count), with the first difference in the message. */
function same(a, b, what) {
  assert.equal(a.constructor, b.constructor, `${what}: types`);
  assert.equal(a.length, b.length, `${what}: lengths`);
  if (bytes(a).equals(bytes(b))) return;
  let i = 0;
  while (Object.is(a[i], b[i])) i++;
  assert.fail(`${what}: differs first at ${i}: native ${a[i]} vs TypeScript ${b[i]}`);
}

function randomImage(next, n, kind) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const u = next();
    // Smooth, noisy, saturated (0/255 runs), and grey (equal channels: the HSV kernels' ties).
    out[i] = kind === 0 ? Math.floor(u * 256) : kind === 1 ? (u < 0.5 ? 0 : 255) : kind === 2 ? Math.floor(128 + 60 * Math.sin(i / 97) + u * 8) : out[i - (i % 3)] ?? 0;
    if (kind === 3 && i % 3 === 0) out[i] = Math.floor(u * 256);
  }
  return out;
}

const fixtureFrame = async () => (await decodeImage(jpeg)).data;

/** augment.ts's chain up to the last clip (what augmentImage / centerCropImage convert to uint8). */
function tsAugmentFloat(src, H, W, box, color) {
  const x = clip01(cropAndResize(uint8ToFloat(src), H, W, box, H, W));
  if (!color) return x;
  clip01(adjustBrightness(x, color.brightness));
  clip01(adjustContrast(x, 3, color.contrast));
  clip01(adjustSaturation(x, color.saturation));
  return clip01(adjustHue(x, color.hue));
}

/** The native chain's float32 image (imageAugment with a Float32Array out), and its uint8 form, both checked against augment.ts. */
function sameAugment(src, H, W, p, what) {
  const color = p.brightness === undefined ? undefined : { brightness: p.brightness, contrast: p.contrast, saturation: p.saturation, hue: p.hue };
  const ts = tsAugmentFloat(src, H, W, p.box, color);
  const native = new Float32Array(src.length);
  imageAugment(src, native, { height: H, width: W, box: p.box, ...(color ? { color } : {}) });
  same(native, ts, `${what} (float32)`);
  const u8 = new Uint8Array(src.length);
  imageAugment(src, u8, { height: H, width: W, box: p.box, ...(color ? { color } : {}) });
  same(u8, color ? augmentImage(src, H, W, p) : floatToUint8(ts), `${what} (uint8)`);
}

test('resize: native equals resize.ts to the bit (float32 result and rounded uint8), every size and channel count', async () => {
  const next = rng(28);
  const img = await fixtureFrame();
  const cases = [[256, 256, 224, 224], [256, 256, 100, 61], [256, 256, 300, 256], [256, 256, 1, 1], [256, 256, 224, 17]];
  for (const [H, W, oh, ow] of cases) {
    same(resizeLanczos3Native(img, H, W, 3, oh, ow).data, resizeLanczos3(img, H, W, 3, oh, ow).data, `fixture ${H}×${W}→${oh}×${ow} float`);
    same(resizeImageUint8Native(img, H, W, oh, ow), resizeImageUint8(img, H, W, oh, ow), `fixture ${H}×${W}→${oh}×${ow} uint8`);
  }
  for (let k = 0; k < 60; k++) {
    const H = 1 + Math.floor(next() * 70), W = 1 + Math.floor(next() * 70), C = 1 + Math.floor(next() * 4);
    const oh = 1 + Math.floor(next() * 90), ow = 1 + Math.floor(next() * 90);
    const src = randomImage(next, H * W * C, k % 3);
    same(resizeLanczos3Native(src, H, W, C, oh, ow).data, resizeLanczos3(src, H, W, C, oh, ow).data, `random ${H}×${W}×${C}→${oh}×${ow} float`);
    if (C === 3) same(resizeImageUint8Native(src, H, W, oh, ow), resizeImageUint8(src, H, W, oh, ow), `random ${H}×${W}→${oh}×${ow} uint8`);
  }
});

test('augment and centre crop: native equals augment.ts to the bit for random images, sizes and draws', async () => {
  const next = rng(2800);
  const u8 = resizeImageUint8(await fixtureFrame(), 256, 256, 224, 224);
  for (const u of [0, 0.37, 0.5, 1 - 2 ** -23, next()]) {
    const p = augmentParams(u);
    same(augmentImageNative(u8, 224, 224, p), augmentImage(u8, 224, 224, p), `fixture u=${u}`);
  }
  same(centerCropImageNative(u8, 224, 224), centerCropImage(u8, 224, 224), 'fixture centre crop');
  for (const u of [0.37, 0.99]) sameAugment(u8, 224, 224, augmentParams(u), `fixture u=${u}`);
  for (let k = 0; k < 80; k++) {
    // 1 × n and n × 1 take crop_and_resize's single-row/column branch.
    const H = k < 4 ? 1 : 1 + Math.floor(next() * 48), W = k >= 4 && k < 8 ? 1 : 1 + Math.floor(next() * 48);
    const src = randomImage(next, H * W * 3, k % 4);
    const p = augmentParams(drawUniform({ nextU32: () => Math.floor(next() * 2 ** 32) }));
    same(augmentImageNative(src, H, W, p), augmentImage(src, H, W, p), `${H}×${W} u=${p.u}`);
    sameAugment(src, H, W, p, `${H}×${W} u=${p.u}`);
    // Parameters beyond upstream's ranges: boxes reaching outside the image (extrapolated with 0),
    // flipped boxes, strong and negative factors, hue at ±1.
    const f = Math.fround, r = (lo, hi) => f(lo + next() * (hi - lo));
    const wild = {
      u: 0, box: [r(-0.5, 0.8), r(-0.5, 0.8), r(0.2, 1.5), r(0.2, 1.5)].map((v, i) => (k % 5 === 0 && i > 1 ? -v : v)),
      brightness: r(-1, 1), contrast: r(-3, 3), saturation: r(-1, 4), hue: [-1, 1, r(-1, 1)][k % 3],
    };
    same(augmentImageNative(src, H, W, wild), augmentImage(src, H, W, wild), `${H}×${W} wild ${JSON.stringify(wild)}`);
    sameAugment(src, H, W, wild, `${H}×${W} wild ${JSON.stringify(wild)}`);
    const scale = [0.9, 0.5, 1, r(0.1, 1)][k % 4];
    same(centerCropImageNative(src, H, W, scale), centerCropImage(src, H, W, scale), `${H}×${W} centre ${scale}`);
    sameAugment(src, H, W, { box: centerCropBox(scale) }, `${H}×${W} centre ${scale}`);
  }
  // Each op alone (the colour params of one op, the others neutral), so an op that differs is named.
  const src = randomImage(next, 37 * 23 * 3, 0);
  const cropped = new Uint8Array(src.length);
  imageAugment(src, cropped, { height: 37, width: 23, box: [0.1, 0.05, 0.93, 0.99] });
  same(cropped, floatToUint8(clip01(cropAndResize(uint8ToFloat(src), 37, 23, [0.1, 0.05, 0.93, 0.99], 37, 23))), 'crop alone');
  const neutral = { brightness: 0, contrast: 1, saturation: 1, hue: 0 };
  for (const [name, value, ts] of [
    ['brightness', 0.13, (x) => adjustBrightness(x, 0.13)], ['contrast', 1.17, (x) => adjustContrast(x, 3, 1.17)],
    ['saturation', 0.83, (x) => adjustSaturation(x, 0.83)], ['hue', -0.04, (x) => adjustHue(x, -0.04)],
  ]) {
    const out = new Uint8Array(src.length);
    imageAugment(src, out, { height: 37, width: 23, box: [0, 0, 1, 1], color: { ...neutral, [name]: value } });
    let x = clip01(cropAndResize(uint8ToFloat(src), 37, 23, [0, 0, 1, 1], 37, 23));
    x = clip01(adjustBrightness(x, 0)); x = clip01(adjustContrast(x, 3, 1)); x = clip01(adjustSaturation(x, 1)); x = clip01(adjustHue(x, 0));
    let y = clip01(cropAndResize(uint8ToFloat(src), 37, 23, [0, 0, 1, 1], 37, 23));
    y = clip01(adjustBrightness(y, name === 'brightness' ? value : 0)); y = clip01(adjustContrast(y, 3, name === 'contrast' ? value : 1));
    y = clip01(adjustSaturation(y, name === 'saturation' ? value : 1)); y = clip01(adjustHue(y, name === 'hue' ? value : 0));
    same(out, floatToUint8(y), name);
    assert.ok(!bytes(floatToUint8(x)).equals(bytes(out)), `${name} changes the image`);
  }
  // out may be src itself (the pipeline augments in place).
  const inPlace = Uint8Array.from(src);
  augmentImageNative(inPlace, 37, 23, augmentParams(0.61), inPlace);
  same(inPlace, augmentImage(src, 37, 23, augmentParams(0.61)), 'in place');
});

test('normalise: native equals normalizeImage to the bit, both normalisations, random means and stds', () => {
  const next = rng(280);
  for (let k = 0; k < 12; k++) {
    const H = 1 + Math.floor(next() * 40);
    const src = randomImage(next, H * H * 3, k % 4);
    const norm = k < 2 ? NORMS[k] : [0, 1].map(() => ({ mean: [next(), next(), next()].map((v) => v - 0.2), std: [next(), next(), next()].map((v) => (v + 0.01) * (k % 2 ? -1 : 1)) }));
    const a = new Float32Array(6 * H * H), b = new Float32Array(6 * H * H);
    normalizeImageNative(src, H, norm, a);
    normalizeImage(src, H, norm, b);
    same(a, b, `${H}×${H} norm ${k}`);
  }
});

test('prepareFrame and prepareNormalizedFrame (native) equal the TypeScript composition, every option', async () => {
  const other = resizeImageUint8(await fixtureFrame(), 256, 256, 200, 256);
  // A second view that is not square (200 × 256), as JPEG.
  const buf = await sharp(Buffer.from(other.buffer, other.byteOffset, other.byteLength), { raw: { width: 256, height: 200, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const second = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const views = [jpeg, second];
  const decoded = await Promise.all(views.map((v) => decodeImage(v)));
  for (const size of [224, 64, 300, 17]) {
    const plane = size * size * 3;
    const resized = decoded.map((d) => resizeImageUint8(d.data, d.height, d.width, size, size));
    for (const augment of ['none', 'center', 'random']) {
      for (const sameDrawForViews of augment === 'random' ? [false, true] : [false]) {
        const got = await prepareFrame(views, { size, augment, rng: augmentRng(3, size, 11), sameDrawForViews });
        const draws = augmentRng(3, size, 11);
        const u0 = augment === 'random' ? drawUniform(draws) : 0;
        const want = new Uint8Array(2 * plane);
        resized.forEach((px, v) => {
          const u = v === 0 || sameDrawForViews ? u0 : drawUniform(draws);
          want.set(augment === 'none' ? px : augment === 'center' ? centerCropImage(px, size, size) : augmentImage(px, size, size, augmentParams(u)), v * plane);
        });
        same(got, want, `prepareFrame ${size} ${augment}${sameDrawForViews ? ' sameDrawForViews' : ''}`);
        for (const norm of NORMS) {
          if (sameDrawForViews || size === 300) continue;
          const px = await prepareNormalizedFrame(views, { size, augment, draw: [3, size, 11] }, norm);
          const ref = new Float32Array(2 * 6 * size * size);
          for (let v = 0; v < 2; v++) normalizeImage(want.subarray(v * plane, (v + 1) * plane), size, norm, ref.subarray(v * 6 * size * size, (v + 1) * 6 * size * size));
          same(px, ref, `prepareNormalizedFrame ${size} ${augment}`);
        }
      }
    }
  }
});

/** A digest of every op's output on a few inputs (native path). */
const DIGEST_SCRIPT = `
import { resizeLanczos3Native, resizeImageUint8Native, augmentImageNative, centerCropImageNative, normalizeImageNative } from ${JSON.stringify(new URL('../dist/data/images/native-ops.js', import.meta.url).href)};
import { augmentParams } from ${JSON.stringify(new URL('../dist/data/images/augment.js', import.meta.url).href)};
const h = (await import('node:crypto')).createHash('sha256');
const src = new Uint8Array(61 * 47 * 3).map((_, i) => (i * 2654435761 >>> 13) & 255);
const add = (a) => h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
add(resizeLanczos3Native(src, 61, 47, 3, 40, 70).data);
const r = resizeImageUint8Native(src, 61, 47, 50, 50);
add(r);
add(augmentImageNative(r, 50, 50, augmentParams(0.3)));
add(centerCropImageNative(r, 50, 50));
const out = new Float32Array(6 * 50 * 50);
normalizeImageNative(r, 50, [{ mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.25] }, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }], out);
add(out);
`;

test('the same bits in a worker thread and whatever CRAFTGRAD_CPU_ISA and CRAFTGRAD_THREADS say', async () => {
  const run = (env) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `${DIGEST_SCRIPT}\nconsole.log(h.digest('hex'));`],
      { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const here = run({});
  assert.match(here, /^[0-9a-f]{64}$/);
  for (const env of [{ CRAFTGRAD_CPU_ISA: 'generic', CRAFTGRAD_THREADS: '1' }, { CRAFTGRAD_CPU_ISA: 'avx2', CRAFTGRAD_THREADS: '2' }, { CRAFTGRAD_CPU_ISA: 'avx512' }]) {
    assert.equal(run(env), here, JSON.stringify(env));
  }
  // The addon loads in a worker thread (the frame pool's) and computes the same bytes there.
  const inWorker = await new Promise((resolve, reject) => {
    const w = new Worker(`${DIGEST_SCRIPT}\nparentPort.postMessage(h.digest('hex'));`.replace('import {', "import { parentPort } from 'node:worker_threads';\nimport {"), { eval: true, type: 'module' });
    w.once('message', (m) => { resolve(m); w.terminate(); });
    w.once('error', reject);
  });
  assert.equal(inWorker, here);
});

test('bad arguments: a TypeError or RangeError naming the argument, and nothing written', () => {
  const src = new Uint8Array(8 * 6 * 3).fill(100);
  const sp = (o, i) => { const s = computeSpans(o, i, Math.fround(Math.fround(o) / Math.fround(i))); return { spanSize: s.spanSize, starts: s.starts, weights: s.weights }; };
  const ok = { height: 8, width: 6, channels: 3, outHeight: 4, outWidth: 5, rowSpans: sp(4, 8), colSpans: sp(5, 6) };
  const out = new Uint8Array(4 * 5 * 3);
  imageResize(src, out, ok);
  assert.ok(out.some((v) => v !== 0), 'a good call writes');
  const bad = (fn, type, re, what) => {
    const o = new Uint8Array(4 * 5 * 3);
    assert.throws(() => fn(o), (e) => e instanceof type && re.test(e.message), what);
    assert.ok(o.every((v) => v === 0), `${what}: nothing written`);
  };
  const resizeCases = [
    [(o) => imageResize([1, 2, 3], o, ok), TypeError, /^src must be a Uint8Array, got an Array/],
    [(o) => imageResize(new Uint16Array(144), o, ok), TypeError, /^src must be a Uint8Array, got Uint16Array/],
    [(o) => imageResize(src.subarray(1), o, ok), RangeError, /^src has 143 values, not 144/],
    [(o) => imageResize(src, new Float64Array(60), ok), TypeError, /^out must be a Float32Array .* or a Uint8Array/],
    [(o) => imageResize(src, o.subarray(1), ok), RangeError, /^out has 59 values, not 60/],
    [(o) => imageResize(src, o, { ...ok, height: 0 }), RangeError, /^height must be an integer from 1 to 16384, got 0/],
    [(o) => imageResize(src, o, { ...ok, width: 6.5 }), RangeError, /^width must be an integer/],
    [(o) => imageResize(src, o, { ...ok, outWidth: 16385 }), RangeError, /^outWidth must be an integer from 1 to 16384/],
    [(o) => imageResize(src, o, { ...ok, channels: 17 }), RangeError, /^channels must be an integer from 1 to 16/],
    [(o) => imageResize(src, o, { ...ok, height: 16384, width: 16384, channels: 16 }), RangeError, /^the image of 16384×16384×16 holds more than 2\^31 − 1 values/],
    [(o) => imageResize(src, o, { ...ok, outHeight: 16384, outWidth: 16384, channels: 9 }), RangeError, /^the output of .* holds more than/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: undefined }), TypeError, /^rowSpans must be an object/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: { ...ok.rowSpans, spanSize: 0 } }), RangeError, /^rowSpans\.spanSize must be an integer from 1 to 8, got 0/],
    [(o) => imageResize(src, o, { ...ok, colSpans: { ...ok.colSpans, spanSize: 7 } }), RangeError, /^colSpans\.spanSize must be an integer from 1 to 6/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: { ...ok.rowSpans, starts: new Int32Array(3) } }), RangeError, /^rowSpans\.starts has 3 values, not 4/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: { ...ok.rowSpans, starts: [0, 0, 0, 0] } }), TypeError, /^rowSpans\.starts must be an Int32Array/],
    [(o) => imageResize(src, o, { ...ok, colSpans: { ...ok.colSpans, weights: new Float32Array(3) } }), RangeError, /^colSpans\.weights has 3 values, not 30/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: { ...ok.rowSpans, starts: Int32Array.of(0, 1, 2, 8) } }), RangeError, /^rowSpans\.starts\[3\] must be an input index from 0 to 7, got 8/],
    [(o) => imageResize(src, o, { ...ok, colSpans: { ...ok.colSpans, starts: Int32Array.of(0, -1, 0, 0, 0) } }), RangeError, /^colSpans\.starts\[1\] must be an input index/],
    [(o) => imageResize(src, o, { ...ok, colSpans: { ...ok.colSpans, weights: ok.colSpans.weights.map((w, i) => (i === 7 ? NaN : w)) } }), RangeError, /^colSpans\.weights\[7\] must be a finite number from -1e6 to 1e6, got nan/],
    [(o) => imageResize(src, o, { ...ok, rowSpans: { ...ok.rowSpans, weights: ok.rowSpans.weights.map((w, i) => (i === 0 ? 3e38 : w)) } }), RangeError, /^rowSpans\.weights\[0\] must be a finite number/],
    [() => imageResize(src, src.subarray(0, 60), ok), RangeError, /^out and src overlap in memory/],
    [(o) => imageResize(src, o, null), TypeError, /^options must be an object/],
  ];
  for (const [fn, type, re] of resizeCases) bad(fn, type, re, re.source);
  // A float out overlapping the spans' weights.
  const weights = new Float32Array(4 * 5 * 3 + 30);
  assert.throws(() => imageResize(src, weights.subarray(0, 60), { ...ok, colSpans: { ...ok.colSpans, weights: weights.subarray(30, 60) } }), /^RangeError: out and colSpans overlap/);

  const img = new Uint8Array(4 * 5 * 3).fill(7);
  const aug = { height: 4, width: 5, box: [0, 0, 1, 1], color: { brightness: 0.1, contrast: 1, saturation: 1, hue: 0 } };
  const augCases = [
    [(o) => imageAugment(img, o.subarray(3), aug), RangeError, /^out has 57 values, not 60 \(height × width × 3\)/],
    [(o) => imageAugment(img.subarray(1), o, aug), RangeError, /^src has 59 values/],
    [() => imageAugment(img, new Float64Array(60), aug), TypeError, /^out must be a Uint8Array .* or a Float32Array/],
    [() => { const buf = new ArrayBuffer(240); imageAugment(new Uint8Array(buf, 0, 60), new Float32Array(buf), aug); }, RangeError, /^out and src overlap in memory/],
    [(o) => imageAugment(img, o, { ...aug, height: -4 }), RangeError, /^height must be an integer from 1 to 16384, got -4/],
    [(o) => imageAugment(img, o, { ...aug, box: [0, 0, 1] }), TypeError, /^box must be an Array of 4 numbers, got an Array of 3/],
    [(o) => imageAugment(img, o, { ...aug, box: 'all' }), TypeError, /^box must be an Array of 4 numbers, got a string/],
    [(o) => imageAugment(img, o, { ...aug, box: [0, NaN, 1, 1] }), RangeError, /^box\[1\] must be a finite number/],
    [(o) => imageAugment(img, o, { ...aug, box: [0, 0, 1e7, 1] }), RangeError, /^box\[2\] must be a finite number from -1000000/],
    [(o) => imageAugment(img, o, { ...aug, box: [0, 0, '1', 1] }), TypeError, /^box\[2\] must be a number/],
    [(o) => imageAugment(img, o, { ...aug, color: 3 }), TypeError, /^color must be an object/],
    [(o) => imageAugment(img, o, { ...aug, color: { ...aug.color, hue: 1.5 } }), RangeError, /^hue must be a finite number from -1\.0+ to 1\.0+, got 1\.5/],
    [(o) => imageAugment(img, o, { ...aug, color: { ...aug.color, brightness: Infinity } }), RangeError, /^brightness must be a finite number/],
    [(o) => imageAugment(img, o, { ...aug, color: { ...aug.color, contrast: NaN } }), RangeError, /^contrast must be a finite number/],
    [(o) => imageAugment(img, o, { ...aug, color: { ...aug.color, saturation: undefined } }), TypeError, /^saturation must be a number/],
  ];
  for (const [fn, type, re] of augCases) bad(fn, type, re, re.source);

  const rgb = new Uint8Array(3 * 3 * 3).fill(9);
  const nopt = { height: 3, width: 3, mean: [0, 0, 0, 0, 0, 0], std: [1, 1, 1, 1, 1, 1] };
  const normCases = [
    [() => imageNormalize(rgb, new Float32Array(53), nopt), RangeError, /^out has 53 values, not 54 \(6 × height × width\)/],
    [() => imageNormalize(rgb, new Uint8Array(54), nopt), TypeError, /^out must be a Float32Array, got Uint8Array/],
    [() => imageNormalize(rgb, new Float32Array(54), { ...nopt, mean: [0, 0, 0] }), TypeError, /^mean must be an Array of 6 numbers, got an Array of 3/],
    [() => imageNormalize(rgb, new Float32Array(54), { ...nopt, std: [1, 1, 1, 0, 1, 1] }), RangeError, /^std\[3\] must not be 0/],
    [() => imageNormalize(rgb, new Float32Array(54), { ...nopt, std: [1, 1, 1, 1e-50, 1, 1] }), RangeError, /^std\[3\] must not be 0 \(as float32\)/],
    [() => imageNormalize(rgb, new Float32Array(54), { ...nopt, mean: [0, 0, 0, 0, 0, Infinity] }), RangeError, /^mean\[5\] must be a finite number/],
  ];
  for (const [fn, type, re] of normCases) assert.throws(fn, (e) => e instanceof type && re.test(e.message), re.source);
  // Overlap: out's bytes over rgb's.
  const shared = new ArrayBuffer(54 * 4 + 27);
  assert.throws(() => imageNormalize(new Uint8Array(shared, 0, 27), new Float32Array(shared, 0, 54), nopt), /^RangeError: out and rgb overlap in memory/);
  // A detached buffer.
  const gone = new Uint8Array(144);
  structuredClone(gone.buffer, { transfer: [gone.buffer] });
  assert.throws(() => imageResize(gone, new Uint8Array(60), ok), /^TypeError: src is backed by a detached ArrayBuffer/);
});
