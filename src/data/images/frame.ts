// One frame of a robot episode (its views' encoded images) → the uint8 pixels the model sees,
// as upstream's RLDS pipeline makes them: decode, resize to size×size (lanczos3, antialias,
// float32, rounded), then the training augmentation or the evaluation centre crop
// (openvla-oft prismatic/vla/datasets/rlds/dataset.py:403-419 apply_frame_transforms:
// decode_and_resize, then augment when train). The resize and augmentation run on the native
// addon (native-ops.ts), to the bit what resize.ts and augment.ts compute.

import { Rng } from '../rng.js';
import { decodeImage, ImageDecodeError } from './jpeg.js';
import { augmentParams, drawUniform } from './augment.js';
import { augmentImageNative, centerCropImageNative, resizeImageUint8Native } from './native-ops.js';

/**
 * `'random'`: upstream's training augmentation (image_aug=True); `'center'`: the evaluation
 * centre crop of area 0.9 resized back (what upstream's eval feeds a model trained with
 * augmentation); `'none'`: decode and resize only.
 */
export type FrameAugment = 'random' | 'center' | 'none';

export interface PrepareFrameOptions {
  /** Output side in pixels (upstream: 224). */
  size: number;
  augment: FrameAugment;
  /** The draws for `'random'`: one uniform per view, in view order (see augmentRng). */
  rng?: Rng;
  /**
   * Give every view of the frame the same draw. Upstream does not: obs_transforms.augment
   * seeds view i with `seed + i`, an independent draw per view (the default here).
   */
  sameDrawForViews?: boolean;
}

/**
 * Decodes, resizes and augments the views of one frame. Returns uint8 (views × size × size × 3),
 * views in the order given. Throws ImageDecodeError (with the view's index) for bytes that are
 * not an image.
 */
export async function prepareFrame(jpegBytesPerView: readonly Uint8Array[], options: PrepareFrameOptions): Promise<Uint8Array> {
  const { size, augment } = options;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new RangeError(`size must be an integer in [1, 4096], got ${size}`);
  if (augment !== 'random' && augment !== 'center' && augment !== 'none') throw new RangeError(`augment must be 'random', 'center' or 'none', got ${String(augment)}`);
  if (augment === 'random' && !options.rng) throw new RangeError("augment 'random' needs options.rng");
  const views = jpegBytesPerView.length;
  const decoded = await Promise.all(jpegBytesPerView.map(async (bytes, v) => {
    try {
      return await decodeImage(bytes);
    } catch (e) {
      if (e instanceof ImageDecodeError) throw new ImageDecodeError(`view ${v}: ${e.message}`);
      throw e;
    }
  }));
  const plane = size * size * 3;
  const out = new Uint8Array(views * plane);
  let shared: number | undefined;
  for (let v = 0; v < views; v++) {
    const img = decoded[v];
    const px = out.subarray(v * plane, (v + 1) * plane);
    resizeImageUint8Native(img.data, img.height, img.width, size, size, px);
    if (augment === 'random') {
      const u = options.sameDrawForViews ? (shared ??= drawUniform(options.rng!)) : drawUniform(options.rng!);
      augmentImageNative(px, size, size, augmentParams(u), px);
    } else if (augment === 'center') {
      centerCropImageNative(px, size, size, 0.9, px);
    }
  }
  return out;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The augmentation generator for one sample of one step: a function of (seed, step, sample)
 * only, so a resumed run draws the same pixels. Integers in [0, 2^32).
 */
export function augmentRng(seed: number, step: number, sample: number): Rng {
  for (const [k, v] of [['seed', seed], ['step', step], ['sample', sample]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${k} must be an integer in [0, 2^32), got ${v}`);
  }
  const a = mix32(seed ^ 0x243f6a88), b = mix32((step + 0x85a308d3) >>> 0 ^ a), c = mix32((sample + 0x13198a2e) >>> 0 ^ b);
  // Every state word depends on all three: xoshiro128**'s first output is a function of its
  // second word alone, so a word of (seed, step) only there would give every sample of a
  // step the same first draw (view 0's augmentation).
  return new Rng([c, mix32(c ^ 0xa4093822), mix32(c ^ 0x299f31d0), mix32(c ^ 0x082efa98)]);
}
