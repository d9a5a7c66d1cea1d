// tf.image.resize(image, size, method='lanczos3', antialias=True) on a uint8 image, in float32
// as TensorFlow's ScaleAndTranslate CPU kernel computes it, then dlimp's conversion back to
// uint8 (dlimp/utils.py:12-17, resize_image: `tf.image.resize(image, size, method="lanczos3",
// antialias=True)` then `tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)`; called
// from openvla-oft prismatic/vla/datasets/rlds/obs_transforms.py:79).
//
// No library computes this kernel: sharp/libvips' lanczos3 uses its own support and
// normalisation (and rounds inside), PIL's LANCZOS differs in support and sample grid, so the
// arithmetic is written out here after the TF source:
// - resize_images_v2 passes scale = float32(new) / float32(old) and translation 0 to
//   ScaleAndTranslate (tensorflow/python/ops/image_ops_impl.py, resize_with_scale_and_translate);
// - ComputeSpansCore (tensorflow/core/kernels/image/scale_and_translate_op.cc): inv_scale =
//   float(1.0 / scale); kernel_scale = max(inv_scale, 1) with antialias (the kernel is widened by
//   the scale when downsampling); sample_f = (x + 0.5f) * inv_scale; the span runs from
//   ceil(sample_f - radius·kernel_scale - 0.5f) to floor(sample_f + radius·kernel_scale - 0.5f),
//   clamped to the image; each weight is kernel(|source + 0.5f - sample_f| / kernel_scale), and
//   the weights are divided by their float sum (when that sum is not ~0);
// - LanczosKernelFunc (tensorflow/core/kernels/image/sampling_kernels.h): radius 3,
//   kPI = 3.14159265359f, 1 for |x| <= 1e-3, else r·sin(πx)·sin(πx/r)/(π²x²), in float;
// - GatherSpans (scale_and_translate_op.cc): rows first into a float (outH × inW × C) buffer,
//   then columns, each output a float sum of w·pixel in source order.
// Every float32 operation is rounded with Math.fround in the same order, so the only expected
// differences to TF are sinf's last bit (glibc vs a correctly rounded sin) and any FMA contraction
// a TF build might use (the release builds are not compiled for FMA); the test compares with an
// independent float64 implementation and states the share off by one.

/** A float image, height × width × channels, row-major, channels interleaved. */
export interface FloatImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

const f = Math.fround;
const LANCZOS_RADIUS = 3;
const K_PI = f(3.14159265359);
const K_PI2 = f(K_PI * K_PI);
const FLT_MIN = 1.1754943508222875e-38;
const MIN_TOTAL_WEIGHT = f(1000 * FLT_MIN);

/** TF's LanczosKernelFunc(3) in float32 (sampling_kernels.h). */
export function lanczos3Kernel(x: number): number {
  x = Math.abs(x);
  if (x > LANCZOS_RADIUS) return 0;
  if (x <= 1e-3) return 1;
  const pix = f(K_PI * x);
  const num = f(f(LANCZOS_RADIUS * f(Math.sin(pix))) * f(Math.sin(f(pix / LANCZOS_RADIUS))));
  return f(num / f(f(K_PI2 * x) * x));
}

/** One axis's spans: for output i, weights[i*spanSize ..] apply to inputs starts[i] ... */
export interface Spans {
  spanSize: number;
  starts: Int32Array;
  weights: Float32Array;
}

/** ComputeSpansCore of scale_and_translate_op.cc for the Lanczos3 kernel, translation 0. */
export function computeSpans(outputSize: number, inputSize: number, scale: number, antialias = true): Spans {
  const invScale = f(1.0 / scale);
  const invTranslate = f(-invScale * 0);
  const kernelScale = antialias ? Math.max(invScale, 1) : 1;
  const reach = f(LANCZOS_RADIUS * kernelScale);
  const spanSize = Math.min(2 * Math.ceil(reach) + 1, inputSize);
  const starts = new Int32Array(outputSize);
  const weights = new Float32Array(spanSize * outputSize);
  const oneOverKernelScale = f(1 / kernelScale);
  const temp: number[] = [];
  for (let x = 0; x < outputSize; x++) {
    const colF = f(x + 0.5);
    const sampleF = f(f(colF * invScale) + invTranslate);
    if (sampleF < 0 || sampleF > inputSize) continue;
    let spanStart = Math.ceil(f(f(sampleF - reach) - 0.5));
    let spanEnd = Math.floor(f(f(sampleF + reach) - 0.5));
    spanStart = Math.min(Math.max(spanStart, 0), inputSize - 1);
    spanEnd = Math.min(Math.max(spanEnd, 0), inputSize - 1) + 1;
    if (spanEnd - spanStart > spanSize) throw new Error(`span is too large: ${spanEnd - spanStart} vs ${spanSize}`);
    let total = 0;
    temp.length = 0;
    for (let source = spanStart; source < spanEnd; source++) {
      const kernelPos = f(f(source + 0.5) - sampleF);
      const w = lanczos3Kernel(f(Math.abs(f(kernelPos * oneOverKernelScale))));
      total = f(total + w);
      temp.push(w);
    }
    if (Math.abs(total) >= MIN_TOTAL_WEIGHT) {
      const inv = f(1 / total);
      for (let j = 0; j < temp.length; j++) weights[x * spanSize + j] = f(temp[j] * inv);
    }
    starts[x] = spanStart;
  }
  return { spanSize, starts, weights };
}

/**
 * tf.image.resize(image, [outHeight, outWidth], 'lanczos3', antialias=True) of an 8-bit or
 * float image with `channels` interleaved channels: the float32 result, as TF returns it.
 */
export function resizeLanczos3(
  src: ArrayLike<number>, height: number, width: number, channels: number, outHeight: number, outWidth: number,
): FloatImage {
  if (src.length !== height * width * channels) throw new RangeError(`image has ${src.length} values, not ${height}×${width}×${channels}`);
  if (!(outHeight > 0 && outWidth > 0 && height > 0 && width > 0)) throw new RangeError('image sizes must be positive');
  const rowSpans = computeSpans(outHeight, height, f(f(outHeight) / f(height)));
  const colSpans = computeSpans(outWidth, width, f(f(outWidth) / f(width)));
  // GatherRows: intermediate (outHeight × width × channels).
  const rowLen = width * channels;
  const mid = new Float32Array(outHeight * rowLen);
  for (let y = 0; y < outHeight; y++) {
    const start = rowSpans.starts[y];
    const n = Math.min(start + rowSpans.spanSize, height) - start;
    const out = y * rowLen;
    for (let k = 0; k < n; k++) {
      const w = rowSpans.weights[y * rowSpans.spanSize + k];
      const inRow = (start + k) * rowLen;
      for (let i = 0; i < rowLen; i++) mid[out + i] = f(mid[out + i] + f(w * src[inRow + i]));
    }
  }
  // GatherColumns: output (outHeight × outWidth × channels).
  const dst = new Float32Array(outHeight * outWidth * channels);
  for (let y = 0; y < outHeight; y++) {
    const inRow = y * rowLen;
    for (let x = 0; x < outWidth; x++) {
      const start = colSpans.starts[x];
      const n = Math.min(start + colSpans.spanSize, width) - start;
      const o = (y * outWidth + x) * channels;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc = f(acc + f(colSpans.weights[x * colSpans.spanSize + k] * mid[inRow + (start + k) * channels + c]));
        dst[o + c] = acc;
      }
    }
  }
  return { width: outWidth, height: outHeight, channels, data: dst };
}

/** tf.round: half to even. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** dlimp's `tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)` (dlimp/utils.py:16). */
export function roundClipToUint8(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const r = roundHalfEven(src[i]);
    out[i] = r < 0 ? 0 : r > 255 ? 255 : r;
  }
  return out;
}

/** dlimp's resize_image: lanczos3 with antialias in float32, rounded half to even, clipped, uint8. */
export function resizeImageUint8(src: Uint8Array, height: number, width: number, outHeight: number, outWidth: number): Uint8Array {
  return roundClipToUint8(resizeLanczos3(src, height, width, 3, outHeight, outWidth).data);
}
