// The tensor shape shared by every format here: a dtype name (safetensors spelling),
// a shape and a typed array over little-endian element data. Readers return views into
// the file's bytes where alignment allows, so loading a checkpoint does not copy twice.
import { endianness } from 'node:os';

export type DType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL';

export type TypedArray =
  | Float64Array | Float32Array
  | BigInt64Array | Int32Array | Int16Array | Int8Array
  | BigUint64Array | Uint32Array | Uint16Array | Uint8Array;

/**
 * F16 and BF16 have no JS typed array: they are carried as Uint16Array of raw bits.
 * BOOL is a Uint8Array of 0/1.
 */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

type TypedArrayCtor = {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  new (length: number): TypedArray;
  readonly name: string;
};

export const DTYPE_ARRAY: Readonly<Record<DType, TypedArrayCtor>> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array,
  I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array,
  U64: BigUint64Array, U32: Uint32Array, U16: Uint16Array, U8: Uint8Array,
  BOOL: Uint8Array,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_ARRAY, s);
}

export function dtypeSize(dtype: DType): number {
  return DTYPE_ARRAY[dtype].BYTES_PER_ELEMENT;
}

// Every format here stores little-endian data and we hand out plain typed arrays,
// which use host order: refuse to run silently wrong on a big-endian host.
if (endianness() !== 'LE') {
  throw new Error('craftgrad formats: big-endian hosts are not supported');
}

/** Number of elements of a shape (1 for a zero-dim scalar). Shape must be validated. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when `shape` is an array of non-negative safe integers. */
export function isValidShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/**
 * A typed-array view of `bytes` as `dtype`; copies when the bytes are not aligned to
 * the element size (typed arrays cannot be unaligned). `bytes.length` must be a
 * multiple of the element size.
 */
export function viewAs(bytes: Uint8Array, dtype: DType): TypedArray {
  const Ctor = DTYPE_ARRAY[dtype];
  const size = Ctor.BYTES_PER_ELEMENT;
  const count = bytes.length / size;
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Ctor(copy.buffer, 0, count);
}

/** The bytes of a typed array, without copying. */
export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Checks a tensor given to a writer: known dtype, valid shape, a typed array of the
 * dtype's kind whose length equals the shape's element count. `where` names it in errors.
 */
export function checkTensor(t: Tensor, where: string, fail: (field: string, detail: string) => never): void {
  if (t === null || typeof t !== 'object') fail(where, 'is not a tensor object');
  if (!isDType(t.dtype)) fail(`${where}.dtype`, `unknown dtype ${JSON.stringify(t.dtype)}`);
  if (!isValidShape(t.shape)) fail(`${where}.shape`, `must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
  const Ctor = DTYPE_ARRAY[t.dtype];
  if (!(t.data instanceof Ctor)) {
    const got = (t.data as object | null)?.constructor?.name ?? String(t.data);
    fail(`${where}.data`, `dtype ${t.dtype} needs a ${Ctor.name}, got ${got}`);
  }
  const n = numel(t.shape);
  if (t.data.length !== n) fail(`${where}.data`, `has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${n}`);
}
