// JPEG decoding for the robot datasets' frames.
//
// Upstream decodes with `tf.io.decode_image(image, expand_animations=False, dtype=tf.uint8)`
// (openvla-oft prismatic/vla/datasets/rlds/obs_transforms.py:75, identical in VLA-Adapter).
// That is TensorFlow's DecodeImage op, which for JPEG sets `flags_.dct_method = JDCT_IFAST`
// (tensorflow/core/kernels/image/decode_image_op.cc, DecodeImageV2Op constructor: "For
// `DecodeImage` op, set JPEG decoding setting to TF default" → `jpeg::UncompressFlags()` with
// dct_method JDCT_IFAST, fancy_upscaling true): libjpeg-turbo's fast integer IDCT, not the
// accurate JDCT_ISLOW that libjpeg-turbo and every common decoder use by default.
//
// No well-kept npm library exposes the DCT method (sharp/libvips and the WASM libjpeg-turbo
// builds decode with ISLOW, which differs from TF's pixels in ~69% of the values, up to 14
// levels), so baseline JPEGs go through the addon's own decoder (native/data/jpeg_decoder.h):
// libjpeg-turbo's IFAST IDCT as its x86-64 SSE2 code computes it, fancy upsampling and its
// YCbCr tables, equal to `djpeg -dct fast` (libjpeg-turbo, SIMD on) to the bit
// (test/data-images.test.mjs, test/jpeg-decoder.test.mjs). JPEGs it does not decode
// (progressive, arithmetic-coded, lossless, 12-bit, CMYK) and PNGs go to sharp (libvips,
// shipped inside the npm package), whose JPEG decode is ISLOW: not TF's pixels, said once per
// process in a warning. Malformed JPEGs are an ImageDecodeError naming the problem.

import { decodeJpeg } from '../../native-calls.js';

/** An 8-bit RGB image, rows of `width` pixels, channels interleaved (height × width × 3). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Thrown for bytes that are not a decodable 8-bit JPEG/PNG image with 1 or 3 channels. */
export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | undefined;

// sharp loads libvips (tens of MB); only PNGs and the JPEGs the native decoder refuses need
// it, so it is imported on first use rather than with the package.
function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

let warnedFallback = false;

/** Grey (1 channel) or RGB (3) pixels → RGB; grey is repeated into R, G and B. */
function toRgb(width: number, height: number, channels: number, src: Uint8Array): RgbImage {
  if (channels === 3) return { width, height, data: src.length === width * height * 3 ? src : src.slice(0, width * height * 3) };
  if (channels !== 1) throw new ImageDecodeError(`image has ${channels} channels; 1 or 3 expected`);
  // A grey JPEG: TF would give one channel, which upstream's saturation/hue ops reject; we
  // repeat it into R, G and B so such a frame still trains.
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = src[i]!;
  return { width, height, data };
}

async function decodeWithSharp(bytes: Uint8Array): Promise<RgbImage> {
  const sharp = await loadSharp();
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    out = await sharp(bytes, { failOn: 'error', limitInputPixels: 1 << 26, sequentialRead: true })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageDecodeError(`not a decodable image (${(e as Error).message.split('\n')[0]})`);
  }
  const { width, height, channels } = out.info;
  return toRgb(width, height, channels, new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength));
}

/**
 * Decodes an encoded frame (JPEG, as the RLDS datasets store them; PNG also works) to 8-bit
 * RGB, as `tf.io.decode_image(..., expand_animations=False, dtype=tf.uint8)` followed by the
 * 3-channel use upstream makes of it. No EXIF rotation and no colour management, as TF.
 * Baseline JPEGs decode to TF's exact pixels (see the top of this file); other JPEGs and PNGs
 * through sharp.
 */
export async function decodeImage(bytes: Uint8Array): Promise<RgbImage> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new ImageDecodeError('image bytes are empty');
  if (bytes.length < 3 || bytes[0] !== 0xff || bytes[1] !== 0xd8 || bytes[2] !== 0xff) return decodeWithSharp(bytes);
  let img;
  try {
    // Synchronous (about 1 ms for a 256×256 frame): the frame pool's workers run it on their
    // own threads.
    img = decodeJpeg(bytes);
  } catch (e) {
    const { code, message } = e as { code?: string; message: string };
    if (code === 'ERR_CRAFTGRAD_JPEG_INVALID') throw new ImageDecodeError(`not a decodable JPEG image: ${message}`);
    if (code !== 'ERR_CRAFTGRAD_JPEG_UNSUPPORTED') throw e;
    if (!warnedFallback) {
      warnedFallback = true;
      process.emitWarning(`craftgrad: a JPEG frame that the TF-exact decoder does not decode (${message}) is decoded by sharp, ` +
        `with libjpeg-turbo's accurate IDCT, not TensorFlow's fast one: its pixels differ slightly from upstream's (said once per process)`,
      { code: 'CRAFTGRAD_JPEG_FALLBACK' });
    }
    return decodeWithSharp(bytes);
  }
  return toRgb(img.width, img.height, img.channels, img.data);
}
