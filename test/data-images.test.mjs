// The robot datasets' images (src/data/images): the decode equal to TensorFlow's (libjpeg-turbo
// IFAST; the decoder itself: test/jpeg-decoder.test.mjs), the lanczos3/antialias resize
// against an independent float64 reading of TF's scale_and_translate, each augmentation op
// against float64 implementations of TF's formulas, and prepareFrame's determinism. Fixtures: test/fixtures/images/make-fixtures.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  decodeImage, ImageDecodeError, resizeLanczos3, resizeImageUint8, roundHalfEven, computeSpans,
  uint8ToFloat, floatToUint8, cropAndResize, adjustBrightness, adjustContrast, adjustSaturation, adjustHue,
  augmentParams, augmentImage, centerCropBox, centerCropImage, prepareFrame, augmentRng,
} from '../dist/data/images/index.js';
import { Rng } from '../dist/data/rng.js';

const fixtures = fileURLToPath(new URL('./fixtures/images/', import.meta.url));
const jpeg = readFileSync(fixtures + 'scene-q95.jpg');

function ppmPixels(buf) {
  let lines = 0, i = 0;
  while (lines < 3) if (buf[i++] === 10) lines++;
  return new Uint8Array(buf.subarray(i));
}

function compareU8(a, b) {
  assert.equal(a.length, b.length);
  let differ = 0, max = 0, sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) differ++;
    if (d > max) max = d;
    sum += d;
  }
  return { differ, share: differ / a.length, max, mean: sum / a.length };
}

// ---- float64 references, written from TF's definitions (not from src/) ----

function refResize(src, H, W, C, oh, ow) {
  // scale_and_translate_op.cc: sample centre (i + 0.5) / scale; antialias widens the lanczos3
  // support by 1/scale when downsampling; weights normalised per output pixel; rows then columns.
  const axis = (out, inn) => {
    const scale = out / inn, ks = Math.max(1 / scale, 1), taps = [];
    for (let i = 0; i < out; i++) {
      const c = (i + 0.5) / scale;
      const lo = Math.max(0, Math.ceil(c - 3 * ks - 0.5)), hi = Math.min(inn - 1, Math.floor(c + 3 * ks - 0.5));
      const ws = [];
      for (let j = lo; j <= hi; j++) {
        const t = Math.abs((j + 0.5 - c) / ks);
        ws.push(t >= 3 ? 0 : t < 1e-9 ? 1 : (3 * Math.sin(Math.PI * t) * Math.sin(Math.PI * t / 3)) / (Math.PI * Math.PI * t * t));
      }
      const sum = ws.reduce((a, b) => a + b, 0);
      taps.push({ lo, ws: ws.map((w) => w / sum) });
    }
    return taps;
  };
  const rows = axis(oh, H), cols = axis(ow, W);
  const mid = new Float64Array(oh * W * C);
  for (let y = 0; y < oh; y++) rows[y].ws.forEach((w, k) => {
    for (let i = 0; i < W * C; i++) mid[y * W * C + i] += w * src[(rows[y].lo + k) * W * C + i];
  });
  const out = new Float64Array(oh * ow * C);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) cols[x].ws.forEach((w, k) => {
    for (let c = 0; c < C; c++) out[(y * ow + x) * C + c] += w * mid[(y * W + cols[x].lo + k) * C + c];
  });
  return out;
}

const toU8 = (a) => Uint8Array.from(a, (v) => Math.min(255, Math.max(0, roundHalfEven(v))));

function refCropAndResize(img, H, W, [y1, x1, y2, x2], ch, cw) {
  const out = new Float64Array(ch * cw * 3);
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) {
    const iy = y1 * (H - 1) + (y * (y2 - y1) * (H - 1)) / (ch - 1), ix = x1 * (W - 1) + (x * (x2 - x1) * (W - 1)) / (cw - 1);
    const y0 = Math.floor(iy), x0 = Math.floor(ix), yb = Math.ceil(iy), xr = Math.ceil(ix), fy = iy - y0, fx = ix - x0;
    for (let c = 0; c < 3; c++) {
      const p = (yy, xx) => img[(yy * W + xx) * 3 + c];
      const top = p(y0, x0) * (1 - fx) + p(y0, xr) * fx, bot = p(yb, x0) * (1 - fx) + p(yb, xr) * fx;
      out[(y * cw + x) * 3 + c] = top * (1 - fy) + bot * fy;
    }
  }
  return out;
}

function rgb2hsv(r, g, b) {
  const v = Math.max(r, g, b), mn = Math.min(r, g, b), d = v - mn;
  const s = v > 0 ? d / v : 0;
  let h = 0;
  if (d > 0) {
    if (v === r) h = ((g - b) / d) / 6;
    else if (v === g) h = ((b - r) / d + 2) / 6;
    else h = ((r - g) / d + 4) / 6;
    if (h < 0) h += 1;
  }
  return [h, s, v];
}
function hsv2rgb(h, s, v) {
  const i = Math.floor(h * 6) % 6, fr = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s), q = v * (1 - s * fr), t = v * (1 - s * (1 - fr));
  return [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i];
}
const refBrightness = (img, d) => img.map((x) => x + d);
function refContrast(img, k) {
  const n = img.length / 3, mean = [0, 0, 0];
  for (let i = 0; i < img.length; i++) mean[i % 3] += img[i] / n;
  return img.map((x, i) => mean[i % 3] + k * (x - mean[i % 3]));
}
function refHsvMap(img, fn) {
  const out = new Float64Array(img.length);
  for (let p = 0; p < img.length; p += 3) {
    const [h, s, v] = rgb2hsv(img[p], img[p + 1], img[p + 2]);
    out.set(hsv2rgb(...fn(h, s, v)), p);
  }
  return out;
}
const refSaturation = (img, k) => refHsvMap(img, (h, s, v) => [h, Math.min(1, Math.max(0, s * k)), v]);
const refHue = (img, d) => refHsvMap(img, (h, s, v) => [((h + d) % 1 + 1) % 1, s, v]);
const clip = (a) => a.map((x) => Math.min(1, Math.max(0, x)));
const refToU8 = (a) => Uint8Array.from(a, (x) => Math.min(255, Math.trunc(x * 255.5)));

function maxAbs(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ---- decode ----

test('decode: the frame is TF\'s decode_image pixels (libjpeg-turbo IFAST) to the bit; sharp\'s ISLOW gap is what that removes', async () => {
  const img = await decodeImage(jpeg);
  assert.equal(img.width, 256);
  assert.equal(img.height, 256);
  // The committed reference: `djpeg -dct fast` (libjpeg-turbo 2.1.5 JDCT_IFAST, SIMD on: what
  // tf.io.decode_image gives on x86-64).
  const ifast = ppmPixels(gunzipSync(readFileSync(fixtures + 'scene-q95.ifast.ppm.gz')));
  assert.deepEqual(compareU8(img.data, ifast), { differ: 0, share: 0, max: 0, mean: 0 }, 'decodeImage equals djpeg -dct fast');
  // What the decode was before (sharp: libvips/libjpeg-turbo JDCT_ISLOW), for the record:
  // 69.09% of the values differ from TF's, mean 1.162, max 14 (sharp 0.35.6).
  const sharp = (await import('sharp')).default;
  const islow = new Uint8Array(await sharp(jpeg).raw().toBuffer());
  const gap = compareU8(islow, ifast);
  console.log(`# sharp's (ISLOW) decode against TF's: ${(gap.share * 100).toFixed(2)}% of values differ, mean ${gap.mean.toFixed(3)}, max ${gap.max}`);
  assert.ok(gap.share > 0.5 && gap.max >= 8, 'the two IDCTs differ on this frame (so the equality above means something)');
  const djpeg = spawnSync('djpeg', ['-dct', 'fast', '-ppm'], { input: jpeg, maxBuffer: 1 << 24 });
  if (djpeg.status === 0) assert.deepEqual(ppmPixels(djpeg.stdout), ifast, 'the fixture is this machine\'s djpeg -dct fast');
  else console.log('# djpeg not found (Debian: libjpeg-turbo-progs): compared with the committed fixture only');
});

test('decode: bytes that are not an image throw ImageDecodeError, naming the view in prepareFrame', async () => {
  await assert.rejects(decodeImage(new Uint8Array([1, 2, 3, 4])), ImageDecodeError);
  await assert.rejects(decodeImage(new Uint8Array(0)), ImageDecodeError);
  await assert.rejects(decodeImage(jpeg.subarray(0, 600)), ImageDecodeError);
  await assert.rejects(prepareFrame([jpeg, new Uint8Array([0xff, 0xd8, 0xff, 0])], { size: 32, augment: 'none' }), /view 1/);
});

// ---- resize ----

test('resize: lanczos3 antialias in float32 matches a float64 reading of TF within 1 uint8 level', async () => {
  const img = await decodeImage(jpeg);
  const cases = [
    { src: img.data, H: 256, W: 256, oh: 224, ow: 224 }, // LIBERO's frames → 224
    { src: img.data, H: 256, W: 256, oh: 100, ow: 61 }, // strong downsampling
    { src: resizeImageUint8(img.data, 256, 256, 40, 30), H: 40, W: 30, oh: 224, ow: 224 }, // upsampling
  ];
  for (const { src, H, W, oh, ow } of cases) {
    const ours = resizeLanczos3(src, H, W, 3, oh, ow).data;
    const ref = refResize(src, H, W, 3, oh, ow);
    const fmax = maxAbs(ours, ref);
    const u8 = compareU8(toU8(ours), toU8(ref));
    console.log(`# resize ${H}×${W}→${oh}×${ow}: float max |Δ| ${fmax.toExponential(2)}; uint8 ${(u8.share * 100).toFixed(4)}% off by one, max ${u8.max}`);
    // TF's own float32 error (sinf of a float argument, float weights and sums) against exact
    // arithmetic: a few 1e-3 on the 0..255 scale.
    assert.ok(fmax < 5e-3, `float max ${fmax}`);
    assert.ok(u8.max <= 1, `uint8 max ${u8.max}`);
    assert.ok(u8.share < 1e-3, `share ${u8.share}`);
  }
  // 256 → 224: kernel support widened by 256/224 → 9 taps, weights normalised.
  const sp = computeSpans(224, 256, 0.875);
  assert.equal(sp.spanSize, 9);
  for (let i = 0; i < 224; i++) {
    const s = sp.weights.subarray(i * 9, i * 9 + 9).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(s - 1) < 1e-6);
  }
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-0.5), -0);
});

test('resize: the gap to PIL LANCZOS (a different filter, not matched) is stated when PIL is there', async (t) => {
  const img = await decodeImage(jpeg);
  const py = spawnSync('/usr/bin/python3', ['-c', `
import sys, numpy as np
from PIL import Image
a = np.frombuffer(sys.stdin.buffer.read(), dtype=np.uint8).reshape(256, 256, 3)
sys.stdout.buffer.write(np.asarray(Image.fromarray(a).resize((224, 224), Image.LANCZOS)).tobytes())`], { input: img.data, maxBuffer: 1 << 24 });
  if (py.status !== 0) return t.skip('no python3 with PIL');
  const gap = compareU8(resizeImageUint8(img.data, 256, 256, 224, 224), new Uint8Array(py.stdout));
  console.log(`# resize vs PIL LANCZOS: ${(gap.share * 100).toFixed(2)}% of values differ, max ${gap.max}`);
  assert.ok(gap.max > 0);
});

// ---- augmentation ops ----

async function frame224() {
  const img = await decodeImage(jpeg);
  return resizeImageUint8(img.data, 256, 256, 224, 224);
}

test('augment ops: crop, brightness, contrast, saturation, hue match float64 TF formulas', async () => {
  const u8 = await frame224();
  const x = uint8ToFloat(u8);
  const x64 = Float64Array.from(u8, (v) => v / 255);
  assert.ok(maxAbs(x, x64) < 1e-7);
  const p = augmentParams(0.37);
  const checks = [
    ['crop', cropAndResize(x, 224, 224, p.box, 224, 224), refCropAndResize(x64, 224, 224, p.box, 224, 224)],
    ['brightness', adjustBrightness(Float32Array.from(x), p.brightness), refBrightness(x64, p.brightness)],
    ['contrast', adjustContrast(Float32Array.from(x), 3, p.contrast), refContrast(x64, p.contrast)],
    ['saturation', adjustSaturation(Float32Array.from(x), p.saturation), refSaturation(x64, p.saturation)],
    ['hue', adjustHue(Float32Array.from(x), p.hue), refHue(x64, p.hue)],
    ['hue-', adjustHue(Float32Array.from(x), -0.05), refHue(x64, -0.05)],
    ['saturation-max', adjustSaturation(Float32Array.from(x), 1.2), refSaturation(x64, 1.2)],
  ];
  for (const [name, ours, ref] of checks) {
    const m = maxAbs(ours, ref);
    const u = compareU8(floatToUint8(clip(Float32Array.from(ours))), refToU8(clip(ref)));
    console.log(`# ${name}: float max |Δ| ${m.toExponential(2)}; uint8 ${(u.share * 100).toFixed(4)}% off by one, max ${u.max}`);
    assert.ok(m < 2e-5, `${name}: ${m}`);
    assert.ok(u.max <= 1, name);
  }
  // The whole augmentation against the float64 chain.
  const ours = augmentImage(u8, 224, 224, p);
  let r = clip(refCropAndResize(x64, 224, 224, p.box, 224, 224));
  r = clip(refBrightness(r, p.brightness)); r = clip(refContrast(r, p.contrast));
  r = clip(refSaturation(r, p.saturation)); r = clip(refHue(r, p.hue));
  const all = compareU8(ours, refToU8(r));
  console.log(`# augment chain: uint8 ${(all.share * 100).toFixed(4)}% off by one, max ${all.max}`);
  assert.ok(all.max <= 1 && all.share < 1e-3);
  // Centre crop (evaluation).
  const cc = compareU8(centerCropImage(u8, 224, 224), refToU8(clip(refCropAndResize(x64, 224, 224, centerCropBox(), 224, 224))));
  assert.ok(cc.max <= 1 && cc.share < 1e-3);
});

test('augment parameters: one uniform drives every op, as dlimp with one stateless seed', () => {
  const lo = augmentParams(0), hi = augmentParams(1 - 2 ** -23), mid = augmentParams(0.5);
  const side = Math.fround(Math.sqrt(Math.fround(0.9)));
  assert.deepEqual(lo.box, [0, 0, side, side]);
  assert.ok(Math.abs(hi.box[0] - (1 - side)) < 1e-6 && hi.box[0] === hi.box[1]);
  assert.ok(Math.abs(lo.brightness + 0.2) < 1e-7 && Math.abs(hi.brightness - 0.2) < 1e-6);
  assert.ok(Math.abs(lo.contrast - 0.8) < 1e-7 && Math.abs(hi.saturation - 1.2) < 1e-6);
  assert.ok(Math.abs(lo.hue + 0.05) < 1e-8 && Math.abs(mid.hue) < 1e-8);
  assert.ok(Math.abs(mid.box[0] - (1 - side) / 2) < 1e-7);
  const cb = centerCropBox();
  assert.ok(Math.abs(cb[0] - (1 - side) / 2) < 1e-7 && Math.abs(cb[2] - cb[0] - side) < 1e-7);
});

// ---- prepareFrame ----

test('prepareFrame: views × size × size × 3; the same (seed, step, sample) gives the same pixels', async () => {
  const other = readFileSync(fixtures + 'scene-q95.jpg');
  const a = await prepareFrame([jpeg, other], { size: 224, augment: 'random', rng: augmentRng(7, 100, 3) });
  const b = await prepareFrame([jpeg, other], { size: 224, augment: 'random', rng: augmentRng(7, 100, 3) });
  const c = await prepareFrame([jpeg, other], { size: 224, augment: 'random', rng: augmentRng(7, 100, 4) });
  assert.equal(a.length, 2 * 224 * 224 * 3);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const plane = 224 * 224 * 3;
  // Upstream gives each view its own draw (seed + i): identical bytes, different pixels.
  assert.notDeepEqual(a.subarray(0, plane), a.subarray(plane));
  const shared = await prepareFrame([jpeg, other], { size: 224, augment: 'random', rng: augmentRng(7, 100, 3), sameDrawForViews: true });
  assert.deepEqual(shared.subarray(0, plane), shared.subarray(plane));
  // The draw is the rng's first uniform per view: view 0 equals augmentImage with that u.
  const rng = augmentRng(7, 100, 3);
  const u0 = (rng.nextU32() >>> 9) * 2 ** -23;
  assert.deepEqual(a.subarray(0, plane), augmentImage(await frame224(), 224, 224, augmentParams(u0)));
  // 'none' is decode + resize; 'center' the centre crop of it.
  const none = await prepareFrame([jpeg], { size: 224, augment: 'none' });
  assert.deepEqual(none, await frame224());
  assert.deepEqual(await prepareFrame([jpeg], { size: 224, augment: 'center' }), centerCropImage(none, 224, 224));
  await assert.rejects(prepareFrame([jpeg], { size: 224, augment: 'random' }), /rng/);
  await assert.rejects(prepareFrame([jpeg], { size: 0, augment: 'none' }), /size/);
  assert.throws(() => augmentRng(-1, 0, 0), /seed/);
  assert.ok(new Rng(1) instanceof Rng);
});

test('augmentRng: the first draw (view 0) depends on the seed, the step and the sample', () => {
  const first = (seed, step, sample) => augmentRng(seed, step, sample).nextU32();
  for (const vary of [(i) => [7, 100, i], (i) => [7, i, 3], (i) => [i, 100, 3]]) {
    const draws = new Set(Array.from({ length: 64 }, (_, i) => first(...vary(i))));
    assert.equal(draws.size, 64, `64 distinct first draws for ${vary(1)} …`);
  }
});
