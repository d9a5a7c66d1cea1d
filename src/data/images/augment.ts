// Upstream's training-time image augmentation and its evaluation-time centre crop, on float32
// images in [0, 1], with every float32 operation rounded as TensorFlow's CPU kernels round it.
//
// The configuration (openvla-oft prismatic/vla/datasets/datasets.py:151-166, VLA-Adapter
// prismatic/vla/datasets/datasets.py:204-218, `image_aug=True`):
//   random_resized_crop scale [0.9, 0.9] ratio [1, 1]; random_brightness [0.2];
//   random_contrast [0.8, 1.2]; random_saturation [0.8, 1.2]; random_hue [0.05];
//   augment_order: crop, brightness, contrast, saturation, hue.
// dlimp's augment_image (dlimp/augmentations.py:63-136) converts uint8 → float32
// (`convert_image_dtype`: x · float32(1/255)), applies each op with the SAME stateless seed,
// clips to [0, 1] after every op, and converts back with `convert_image_dtype(...,
// saturate=True)`: trunc(clamp(x · 255.5, 0, 255)) (tensorflow/python/ops/image_ops_impl.py,
// convert_image_dtype).
//
// The draw. Every op draws `tf.random.stateless_uniform(shape, seed, lo, hi)` =
// u·(hi − lo) + lo in float32 with the same seed, and Philox's first output gives the same u
// for shape [] and [1]; so ONE uniform u per image drives every op:
//   crop offset (both axes, dlimp/augmentations.py:24-27) = u·(1 − √0.9),
//   brightness delta = u·0.4 − 0.2, contrast = u·0.4 + 0.8, saturation = u·0.4 + 0.8,
//   hue delta = u·0.1 − 0.05.
// TF's float32 uniform has 23 random bits (Uint32ToFloat: mantissa bits over [1, 2) minus 1);
// so does ours. The views of a frame: upstream's obs_transforms.augment
// (openvla-oft prismatic/vla/datasets/rlds/obs_transforms.py:27-38) passes `seed + i` to the
// i-th image, i.e. each view gets its OWN u (the comment "Augment all images with the same
// seed" in rlds/dataset.py:413 refers to the per-frame base seed). prepareFrame follows that by
// default and can give all views one u instead (options.sameDrawForViews).
// TF's Philox stream itself cannot be reproduced from a craftgrad seed (upstream seeds it from
// the stateful tf.random.uniform), so draws come from the caller's Rng: same distribution, and
// the same (seed, step, sample) gives the same pixels.

import type { Rng } from '../rng.js';

const f = Math.fround;
const INV_255 = f(1 / 255);

/** uint8 → float32 in [0, 1] as tf.image.convert_image_dtype: x · float32(1/255). */
export function uint8ToFloat(src: Uint8Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f(src[i] * INV_255);
  return out;
}

/** float32 → uint8 as tf.image.convert_image_dtype(..., saturate=True): trunc(clamp(x · 255.5)). */
export function floatToUint8(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = f(src[i] * 255.5);
    out[i] = v > 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
  }
  return out;
}

/** tf.clip_by_value(image, 0, 1) in place (dlimp/augmentations.py:131). */
export function clip01(img: Float32Array): Float32Array {
  for (let i = 0; i < img.length; i++) {
    const v = img[i];
    img[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return img;
}

/** A crop box in TF's normalised [y1, x1, y2, x2] (float32 values). */
export type Box = [number, number, number, number];

/**
 * tf.image.crop_and_resize(image[None], [box], [0], (cropHeight, cropWidth)) with the default
 * method 'bilinear' and extrapolation 0, for one 3-channel float image
 * (tensorflow/core/kernels/image/crop_and_resize_op.cc, CropAndResize<CPUDevice>).
 */
export function cropAndResize(
  img: Float32Array, height: number, width: number, box: Box, cropHeight: number, cropWidth: number,
): Float32Array {
  const C = 3;
  const [y1, x1, y2, x2] = box.map(f);
  const out = new Float32Array(cropHeight * cropWidth * C);
  const hScale = cropHeight > 1 ? f(f(f(y2 - y1) * (height - 1)) / (cropHeight - 1)) : 0;
  const wScale = cropWidth > 1 ? f(f(f(x2 - x1) * (width - 1)) / (cropWidth - 1)) : 0;
  for (let y = 0; y < cropHeight; y++) {
    const inY = cropHeight > 1 ? f(f(y1 * (height - 1)) + f(y * hScale)) : f(0.5 * (y1 + y2) * (height - 1));
    if (inY < 0 || inY > height - 1) continue; // extrapolation_value 0
    const top = Math.floor(inY), bottom = Math.ceil(inY);
    const yLerp = f(inY - top);
    for (let x = 0; x < cropWidth; x++) {
      const inX = cropWidth > 1 ? f(f(x1 * (width - 1)) + f(x * wScale)) : f(0.5 * (x1 + x2) * (width - 1));
      if (inX < 0 || inX > width - 1) continue;
      const left = Math.floor(inX), right = Math.ceil(inX);
      const xLerp = f(inX - left);
      const o = (y * cropWidth + x) * C;
      for (let d = 0; d < C; d++) {
        const tl = img[(top * width + left) * C + d], tr = img[(top * width + right) * C + d];
        const bl = img[(bottom * width + left) * C + d], br = img[(bottom * width + right) * C + d];
        const t = f(tl + f(f(tr - tl) * xLerp));
        const b = f(bl + f(f(br - bl) * xLerp));
        out[o + d] = f(t + f(f(b - t) * yLerp));
      }
    }
  }
  return out;
}

/** tf.image.adjust_brightness on a float image: x + delta in float32, in place. */
export function adjustBrightness(img: Float32Array, delta: number): Float32Array {
  const d = f(delta);
  for (let i = 0; i < img.length; i++) img[i] = f(img[i] + d);
  return img;
}

/**
 * tf.image.adjust_contrast (AdjustContrastv2, tensorflow/core/kernels/image/adjust_contrast_op.cc):
 * per channel mean m, then x ← m + factor·(x − m), in place. The mean is summed as the kernel
 * sums it (ReduceMeanAcrossImage: fold the plane in halves, float adds, then · float(1/n)), so
 * the float32 result is the kernel's to the bit.
 */
export function adjustContrast(img: Float32Array, channels: number, factor: number): Float32Array {
  const n = img.length / channels;
  const sum = new Float32Array(img.length);
  let remaining = n;
  let round = 0;
  do {
    const right = Math.floor(remaining / 2);
    const left = remaining - right;
    if (round === 0) {
      for (let i = 0; i < right * channels; i++) sum[i] = f(img[left * channels + i] + img[i]);
      if (left > right) for (let c = 0; c < channels; c++) sum[right * channels + c] = img[right * channels + c];
    } else {
      for (let i = 0; i < right * channels; i++) sum[i] = f(sum[i] + sum[left * channels + i]);
    }
    remaining = left;
    round++;
  } while (remaining > 1);
  const scaling = f(1 / n);
  const fac = f(factor);
  const mean = new Float32Array(channels);
  for (let c = 0; c < channels; c++) mean[c] = f(sum[c] * scaling);
  for (let i = 0; i < img.length; i++) {
    const m = mean[i % channels];
    img[i] = f(m + f(fac * f(img[i] - m)));
  }
  return img;
}

// adjust_saturation_op.cc, internal::rgb_to_hsv / hsv_to_rgb, float32 as written there.
function rgbToHsv(r: number, g: number, b: number, out: Float32Array): void {
  const vv = Math.max(r, Math.max(g, b));
  const range = f(vv - Math.min(r, Math.min(g, b)));
  const s = vv > 0 ? f(range / vv) : 0;
  const norm = f(1 / f(6 * range));
  let hh: number;
  if (r === vv) hh = f(norm * f(g - b));
  else if (g === vv) hh = f(f(norm * f(b - r)) + 2.0 / 6.0);
  else hh = f(f(norm * f(r - g)) + 4.0 / 6.0);
  if (range <= 0) hh = 0;
  if (hh < 0) hh = f(hh + 1);
  out[0] = hh; out[1] = s; out[2] = vv;
}

function hsvToRgb(h: number, s: number, v: number, out: Float32Array, o: number): void {
  const c = f(s * v);
  const m = f(v - c);
  const dh = f(h * 6);
  const cat = Math.trunc(dh);
  let fmodu = dh;
  while (fmodu <= 0) fmodu = f(fmodu + 2);
  while (fmodu >= 2) fmodu = f(fmodu - 2);
  const x = f(c * f(1 - Math.abs(f(fmodu - 1))));
  let rr = 0, gg = 0, bb = 0;
  switch (cat) {
    case 0: rr = c; gg = x; break;
    case 1: rr = x; gg = c; break;
    case 2: gg = c; bb = x; break;
    case 3: gg = x; bb = c; break;
    case 4: rr = x; bb = c; break;
    case 5: rr = c; bb = x; break;
    default: break;
  }
  out[o] = f(rr + m); out[o + 1] = f(gg + m); out[o + 2] = f(bb + m);
}

/** tf.image.adjust_saturation (AdjustSaturation CPU kernel): s ← clamp(s·factor, 0, 1) in HSV, in place. */
export function adjustSaturation(img: Float32Array, factor: number): Float32Array {
  const scale = f(factor);
  const hsv = new Float32Array(3);
  for (let p = 0; p < img.length; p += 3) {
    rgbToHsv(img[p], img[p + 1], img[p + 2], hsv);
    const s = Math.min(1, Math.max(0, f(hsv[1] * scale)));
    hsvToRgb(hsv[0], s, hsv[2], img, p);
  }
  return img;
}

/**
 * tf.image.adjust_hue (AdjustHue CPU kernel, adjust_hue_op.cc): hue in [0, 6) from the
 * hue/value-range decomposition, h += 6·delta wrapped into [0, 6), back to RGB; in place.
 */
export function adjustHue(img: Float32Array, delta: number): Float32Array {
  const dh = f(f(delta) * 6);
  for (let p = 0; p < img.length; p += 3) {
    const r = img[p], g = img[p + 1], b = img[p + 2];
    let vMax: number, vMid: number, vMin: number, cat: number;
    if (r < g) {
      if (b < r) { vMax = g; vMid = r; vMin = b; cat = 1; }
      else if (b > g) { vMax = b; vMid = g; vMin = r; cat = 3; }
      else { vMax = g; vMid = b; vMin = r; cat = 2; }
    } else {
      if (b < g) { vMax = r; vMid = g; vMin = b; cat = 0; }
      else if (b > r) { vMax = b; vMid = r; vMin = g; cat = 4; }
      else { vMax = r; vMid = b; vMin = g; cat = 5; }
    }
    let h: number;
    if (vMax === vMin) h = 0;
    else {
      const ratio = f(f(vMid - vMin) / f(vMax - vMin));
      h = f(cat + ((cat & 1) === 0 ? ratio : f(1 - ratio)));
    }
    h = f(h + dh);
    while (h < 0) h = f(h + 6);
    while (h >= 6) h = f(h - 6);
    const hc = Math.trunc(h);
    let ratio = f(h - hc);
    if ((hc & 1) !== 0) ratio = f(1 - ratio);
    const mid = f(vMin + f(ratio * f(vMax - vMin)));
    let rr: number, gg: number, bb: number;
    switch (hc) {
      case 0: rr = vMax; gg = mid; bb = vMin; break;
      case 1: rr = mid; gg = vMax; bb = vMin; break;
      case 2: rr = vMin; gg = vMax; bb = mid; break;
      case 3: rr = vMin; gg = mid; bb = vMax; break;
      case 4: rr = mid; gg = vMin; bb = vMax; break;
      default: rr = vMax; gg = vMin; bb = mid;
    }
    img[p] = rr; img[p + 1] = gg; img[p + 2] = bb;
  }
  return img;
}

/** A float32 uniform in [0, 1) with 23 random bits, as TF's stateless float32 uniform. */
export function drawUniform(rng: Rng): number {
  return (rng.nextU32() >>> 9) * 2 ** -23;
}

/** Upstream's augmentation parameters, all from the image's one uniform draw u (see the top). */
export interface AugmentParams {
  u: number;
  box: Box;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** stateless_uniform(seed, lo, hi) = u·(hi − lo) + lo in float32 (stateless_random_ops.py). */
function uniformBetween(u: number, lo: number, hi: number): number {
  const l = f(lo), h = f(hi);
  return f(f(u * f(h - l)) + l);
}

/** The parameters upstream's augment_image derives from one uniform u (float32 as TF). */
export function augmentParams(u: number): AugmentParams {
  // random_resized_crop (dlimp/augmentations.py:6-38): scale 0.9, ratio 1 → side √0.9, and
  // the same u for the y and x offsets.
  const side = Math.min(1, Math.max(0, f(Math.sqrt(f(0.9)))));
  const offset = uniformBetween(u, 0, f(1 - side));
  const box: Box = [offset, offset, f(offset + side), f(offset + side)];
  return {
    u,
    box,
    brightness: uniformBetween(u, -0.2, 0.2),
    contrast: uniformBetween(u, 0.8, 1.2),
    saturation: uniformBetween(u, 0.8, 1.2),
    hue: uniformBetween(u, -0.05, 0.05),
  };
}

/**
 * dlimp's augment_image with upstream's kwargs on one uint8 RGB image (height × width × 3):
 * crop and resize back (bilinear), brightness, contrast, saturation, hue, each clipped to [0, 1],
 * then back to uint8.
 */
export function augmentImage(src: Uint8Array, height: number, width: number, params: AugmentParams): Uint8Array {
  let img = uint8ToFloat(src);
  img = clip01(cropAndResize(img, height, width, params.box, height, width));
  clip01(adjustBrightness(img, params.brightness));
  clip01(adjustContrast(img, 3, params.contrast));
  clip01(adjustSaturation(img, params.saturation));
  clip01(adjustHue(img, params.hue));
  return floatToUint8(img);
}

/** The evaluation-time centre crop: area 0.9, resized back to the image's size. */
export function centerCropBox(cropScale = 0.9): Box {
  // experiments/robot/openvla_utils.py:568-615 (crop_and_resize) in openvla-oft / VLA-Adapter.
  const side = Math.min(1, Math.max(0, f(Math.sqrt(f(cropScale)))));
  const offset = f(f(1 - side) / 2);
  return [offset, offset, f(offset + side), f(offset + side)];
}

/**
 * Upstream's center_crop_image (openvla_utils.py:618-645): uint8 → float, crop_and_resize of
 * the central 0.9 area back to the same size (bilinear), clip, uint8.
 */
export function centerCropImage(src: Uint8Array, height: number, width: number, cropScale = 0.9): Uint8Array {
  const img = clip01(cropAndResize(uint8ToFloat(src), height, width, centerCropBox(cropScale), height, width));
  return floatToUint8(img);
}
