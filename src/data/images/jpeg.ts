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
// No well-kept npm library exposes the DCT method: sharp/libvips (jpegload has no such option;
// its mozjpeg decodes with JDCT_ISLOW), @cornerstonejs/codec-libjpeg-turbo-8bit (WASM
// libjpeg-turbo, calls tjDecompress2 with flags 0, i.e. ISLOW), jpeg-js (pure JS with pdf.js's
// own IDCT, neither of libjpeg-turbo's). So we decode with sharp (its libvips binary ships inside
// the npm package) and MEASURE the gap to TF's IFAST decode: test/data-images.test.mjs compares
// with libjpeg-turbo's own `djpeg -dct fast` output (committed fixtures) and records the share
// of values that differ and the largest difference. sharp's output equals `djpeg -dct int`
// (libjpeg-turbo ISLOW, fancy upsampling) exactly on the same fixtures.

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

// sharp loads libvips (tens of MB); only the image pipeline needs it, so it is imported on
// first use rather than with the package.
function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then((m) => m.default);
  return sharpModule;
}

/**
 * Decodes an encoded frame (JPEG, as the RLDS datasets store them; PNG also works) to 8-bit
 * RGB, as `tf.io.decode_image(..., expand_animations=False, dtype=tf.uint8)` followed by the
 * 3-channel use upstream makes of it. No EXIF rotation and no colour management, as TF.
 * JPEGs decode with libjpeg-turbo's accurate IDCT (ISLOW), not TF's IFAST: see the top of this
 * file for the measured difference.
 */
export async function decodeImage(bytes: Uint8Array): Promise<RgbImage> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new ImageDecodeError('image bytes are empty');
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
  const src = out.data;
  const data = new Uint8Array(width * height * 3);
  if (channels === 3) {
    data.set(src.subarray(0, data.length));
  } else if (channels === 1) {
    // A grey JPEG: TF would give one channel, which upstream's saturation/hue ops reject; we
    // repeat it into R, G and B so such a frame still trains.
    for (let i = 0; i < width * height; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = src[i];
  } else {
    throw new ImageDecodeError(`image has ${channels} channels; 1 or 3 expected`);
  }
  return { width, height, data };
}
