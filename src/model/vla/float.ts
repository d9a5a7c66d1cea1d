// Float conversions the VLA files need: any float tensor to float32 (shape and values
// checked, errors naming file and tensor), and float32 rounded to a checkpoint's storage
// dtype (round to nearest even, as torch's .to(bfloat16/float16) does).
import { FormatError } from '../../formats/errors.js';
import { isFloatDType, widenToF32 } from '../../formats/float16.js';
import type { DType, Tensor, TypedArray } from '../../formats/tensor.js';

/** A named float32 tensor as the VLA files hold it. */
export interface F32Tensor {
  shape: readonly number[];
  data: Float32Array;
}

/** `t` as a fresh float32 array of shape `shape`; `field` names it in errors. */
export function tensorToF32(t: Tensor, shape: readonly number[] | null, file: string, field: string, format: string): Float32Array {
  const fail = (f: string, detail: string): never => {
    throw new FormatError(format, detail, { file, field: f });
  };
  if (!isFloatDType(t.dtype)) fail(`${field}.dtype`, `is ${t.dtype}; must be F32, F16 or BF16`);
  if (shape !== null && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    fail(field, `has shape [${t.shape.join(', ')}] but [${shape.join(', ')}] is needed`);
  }
  const out = new Float32Array(t.data.length);
  widenToF32(t.dtype as 'F32' | 'F16' | 'BF16', t.data as Float32Array | Uint16Array, out);
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) fail(field, `has a non-finite value (${out[i]}) at flat index ${i}`);
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

function f16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry rounds into the exponent (up to inf)
  return sign | h;
}

/** float32 values stored as `dtype` (F32 returned as is; F16/BF16 rounded to nearest even). */
export function f32ToDType(data: Float32Array, dtype: DType): TypedArray {
  if (dtype === 'F32') return data;
  if (dtype !== 'BF16' && dtype !== 'F16') throw new RangeError(`f32ToDType: ${dtype} is not a float storage dtype`);
  const out = new Uint16Array(data.length);
  const conv = dtype === 'BF16' ? bf16Bits : f16Bits;
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]!);
  return out;
}
