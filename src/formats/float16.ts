// 16-bit floats to float32, exactly. bf16 is the upper half of a float32, so widening is a
// shift. IEEE fp16 widens through a table of all 65536 bit patterns, built once, which
// keeps subnormals (exact in float32), ±inf, and NaN payloads (shifted into the top of
// the float32 mantissa, as a hardware conversion does).

let f16Table: Uint32Array | undefined;

/** The float32 bit pattern of an fp16 bit pattern. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal: mant·2^-24, a normal float32. Shift the leading 1 into the hidden bit.
  let e = -1;
  let m = mant;
  do {
    m <<= 1;
    e++;
  } while ((m & 0x400) === 0);
  return (sign | ((112 - e) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

function table(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** Writes float32 values of fp16 bits `src` into `dst` (same length). */
export function widenF16(src: Uint16Array, dst: Float32Array): void {
  const t = table();
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
}

/** Writes float32 values of bf16 bits `src` into `dst` (same length). */
export function widenBF16(src: Uint16Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
}

/** The dtypes a float32 load accepts. */
export type FloatDType = 'F32' | 'F16' | 'BF16';

export function isFloatDType(d: string): d is FloatDType {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

/** Copies F32/F16/BF16 element data into float32 `dst` (the same element count). */
export function widenToF32(dtype: FloatDType, src: Float32Array | Uint16Array, dst: Float32Array): void {
  if (src.length !== dst.length) throw new RangeError(`widenToF32: ${src.length} source elements for ${dst.length} destination elements`);
  if (dtype === 'F32') dst.set(src as Float32Array);
  else if (dtype === 'BF16') widenBF16(src as Uint16Array, dst);
  else widenF16(src as Uint16Array, dst);
}
