// PNG encoding of prepared frames, for pages that show what the model sees (`craftgrad data
// --page`): lossless, so the page's pixels are the exported ones. sharp, loaded on first use
// as jpeg.ts loads it.
type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | undefined;

/** PNG bytes of an RGB image (height × width × 3, uint8). */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (rgb.length !== width * height * 3) throw new RangeError(`encodePng: ${rgb.length} bytes is not ${height}×${width}×3`);
  sharpModule ??= import('sharp').then((m) => m.default);
  const sharp = await sharpModule;
  const buf = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A `data:image/png;base64,…` URL of an RGB image. */
export async function pngDataUrl(rgb: Uint8Array, width: number, height: number): Promise<string> {
  return `data:image/png;base64,${Buffer.from(await encodePng(rgb, width, height)).toString('base64')}`;
}
