// The pipeline's resize, augmentation and normalisation on the native addon (native/data,
// issue #28 "Throughput"): to the bit what resize.ts, augment.ts and vla-dataset.ts's
// normalizeImage compute (test/data-images-native.test.mjs compares them), several times
// faster. The TypeScript stays the reference: it is checked against float64 readings of TF's
// kernels (test/data-images.test.mjs), the native code against it.
//
// The resize's spans (which inputs each output reads, and the float32 lanczos3 weights) come
// from resize.ts's computeSpans, cached per (output, input) size: they are a few thousand sin
// calls per size pair, and taking them from the TypeScript keeps the weights its bits whatever
// this platform's libm does (V8's Math.sin and a C library's sin may round differently).
import { imageAugment, imageNormalize, imageResize } from '../../native-calls.js';
import type { RawImageSpans } from '../../../binding.js';
import type { PixelNormalization } from '../vla-dataset.js';
import { computeSpans, type FloatImage } from './resize.js';
import { centerCropBox, type AugmentParams } from './augment.js';

const f = Math.fround;
const spansCache = new Map<string, RawImageSpans>();

/** resize.ts's spans for an axis of `inputSize` resized to `outputSize` (scale f(out)/f(in), as resizeLanczos3). */
function spansFor(outputSize: number, inputSize: number): RawImageSpans {
  const key = `${outputSize}:${inputSize}`;
  let s = spansCache.get(key);
  if (!s) {
    if (spansCache.size >= 64) spansCache.clear();
    s = computeSpans(outputSize, inputSize, f(f(outputSize) / f(inputSize)));
    spansCache.set(key, s);
  }
  return s;
}

function resizeOptions(height: number, width: number, channels: number, outHeight: number, outWidth: number) {
  return { height, width, channels, outHeight, outWidth, rowSpans: spansFor(outHeight, height), colSpans: spansFor(outWidth, width) };
}

/** resizeLanczos3 of a uint8 image, natively: the float32 result. */
export function resizeLanczos3Native(src: Uint8Array, height: number, width: number, channels: number, outHeight: number, outWidth: number): FloatImage {
  const data = new Float32Array(outHeight * outWidth * channels);
  imageResize(src, data, resizeOptions(height, width, channels, outHeight, outWidth));
  return { width: outWidth, height: outHeight, channels, data };
}

/** resizeImageUint8 (lanczos3, rounded half to even, clipped), natively; into `out` when given. */
export function resizeImageUint8Native(src: Uint8Array, height: number, width: number, outHeight: number, outWidth: number,
  out = new Uint8Array(outHeight * outWidth * 3)): Uint8Array {
  imageResize(src, out, resizeOptions(height, width, 3, outHeight, outWidth));
  return out;
}

/** augmentImage (crop, brightness, contrast, saturation, hue), natively; into `out` when given (may be src). */
export function augmentImageNative(src: Uint8Array, height: number, width: number, params: AugmentParams,
  out = new Uint8Array(src.length)): Uint8Array {
  const { box, brightness, contrast, saturation, hue } = params;
  imageAugment(src, out, { height, width, box, color: { brightness, contrast, saturation, hue } });
  return out;
}

/** centerCropImage (the central cropScale area resized back), natively; into `out` when given (may be src). */
export function centerCropImageNative(src: Uint8Array, height: number, width: number, cropScale = 0.9,
  out = new Uint8Array(src.length)): Uint8Array {
  imageAugment(src, out, { height, width, box: centerCropBox(cropScale) });
  return out;
}

/** normalizeImage (both towers, 6 planes of H × H at `out`), natively. */
export function normalizeImageNative(rgb: Uint8Array, H: number, norm: readonly [PixelNormalization, PixelNormalization], out: Float32Array): void {
  imageNormalize(rgb, out, { height: H, width: H, mean: [...norm[0].mean, ...norm[1].mean], std: [...norm[0].std, ...norm[1].std] });
}
