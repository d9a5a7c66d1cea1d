// The robot datasets' images: decode (sharp), resize as tf.image.resize(lanczos3, antialias),
// augment as upstream's dlimp pipeline. docs/ARCHITECTURE.md §4g.
export { decodeImage, ImageDecodeError, type RgbImage } from './jpeg.js';
export {
  resizeLanczos3, resizeImageUint8, roundClipToUint8, roundHalfEven, computeSpans, lanczos3Kernel,
  type FloatImage, type Spans,
} from './resize.js';
export {
  uint8ToFloat, floatToUint8, clip01, cropAndResize, adjustBrightness, adjustContrast, adjustSaturation, adjustHue,
  drawUniform, augmentParams, augmentImage, centerCropBox, centerCropImage, type Box, type AugmentParams,
} from './augment.js';
export { prepareFrame, augmentRng, type FrameAugment, type PrepareFrameOptions } from './frame.js';
export { encodePng, pngDataUrl } from './png.js';
