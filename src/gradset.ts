// GradSet: a list of float32 tensors in one contiguous allocation on one device. The form
// in which gradients, parameters and optimizer state live, so a step never leaves its device.
import type { TensorSet } from '../binding.js';
import { binding } from './native.js';
import { argRangeError, argTypeError, describeValue } from './errors.js';
import { checkInteger, checkObject } from './validate.js';
import { resolveDataDevice, type DeviceName, type DeviceSpec } from './device.js';

export interface GradSetOptions {
  /** 'cpu' (default), 'cuda', 'cuda:N', or 'auto' (the first GPU when there is one). */
  device?: DeviceSpec | undefined;
}

const MAX_ELEMENTS = 2 ** 52;

export function checkSizes(sizes: unknown, name: string): number[] {
  if (!Array.isArray(sizes) && !ArrayBuffer.isView(sizes)) {
    throw argTypeError(`${name} must be an Array of non-negative integers, got ${describeValue(sizes)}`);
  }
  const list = Array.from(sizes as ArrayLike<unknown>);
  let total = 0;
  list.forEach((s, i) => {
    total += checkInteger(s, `${name}[${i}]`, 0);
  });
  if (total > MAX_ELEMENTS) throw argRangeError(`${name} adds up to ${total} elements, more than ${MAX_ELEMENTS}`);
  return list as number[];
}

// Set in GradSet's static block (it alone can read #handle): see gradSetInternals below.
let internalsOf: (set: GradSet) => TensorSet;
let adoptInto: (like: GradSet, handle: TensorSet) => GradSet;

export class GradSet {
  /** 'cpu' or 'cuda:N'. */
  readonly device: DeviceName;
  /** Element count of each tensor. */
  readonly sizes: readonly number[];
  /** Element offset of each tensor in the flat storage. */
  readonly offsets: readonly number[];
  readonly numElements: number;
  // The native handle (binding.d.ts TensorSet): host or device memory, and the backend.
  #handle: TensorSet | undefined;

  private constructor(sizes: readonly number[], handle: TensorSet) {
    this.device = handle.device;
    this.sizes = Object.freeze(sizes.slice());
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) {
      offsets.push(total);
      total += s;
    }
    this.offsets = Object.freeze(offsets);
    this.numElements = total;
    this.#handle = handle;
  }

  get numTensors(): number {
    return this.sizes.length;
  }

  /** A set of zeros with the given tensor sizes. */
  static zeros(sizes: ArrayLike<number>, options: GradSetOptions = {}): GradSet {
    const list = checkSizes(sizes, 'sizes');
    checkObject(options, 'options');
    const device = resolveDataDevice(options.device ?? 'cpu', 'options.device');
    return new GradSet(list, new binding.TensorSet({ device: device.name, sizes: list }));
  }

  /** A copy of `arrays` as one set. */
  static fromArrays(arrays: readonly Float32Array[], options: GradSetOptions = {}): GradSet {
    if (!Array.isArray(arrays)) throw argTypeError(`arrays must be an Array of Float32Array, got ${describeValue(arrays)}`);
    arrays.forEach((a, i) => {
      if (!(a instanceof Float32Array)) throw argTypeError(`arrays[${i}] must be a Float32Array, got ${describeValue(a)}`);
    });
    const set = GradSet.zeros(arrays.map((a) => a.length), options);
    set.set(arrays);
    return set;
  }

  /** Wraps `flat` (CPU, no copy) as a set of tensors of the given sizes. */
  static wrap(flat: Float32Array, sizes: ArrayLike<number>): GradSet {
    if (!(flat instanceof Float32Array)) throw argTypeError(`flat must be a Float32Array, got ${describeValue(flat)}`);
    const list = checkSizes(sizes, 'sizes');
    const total = list.reduce((a, b) => a + b, 0);
    if (total !== flat.length) throw argRangeError(`sizes add up to ${total} elements but flat has ${flat.length}`);
    return new GradSet(list, new binding.TensorSet({ device: 'cpu', sizes: list, data: flat }));
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** The flat storage of a CPU set (a live view: writes go into the set). */
  get data(): Float32Array {
    const data = this.#live().data;
    if (!data) throw new Error(`GradSet.data is only available on the CPU; this set is on ${this.device} (use toFlat())`);
    return data;
  }

  /** Tensor i of a CPU set, as a live view. */
  view(i: number): Float32Array {
    this.#checkIndex(i, 'i');
    return this.data.subarray(this.offsets[i], this.offsets[i]! + this.sizes[i]!);
  }

  /** A copy of every tensor, on the host. */
  toArrays(): Float32Array[] {
    const flat = this.toFlat();
    return this.sizes.map((n, i) => flat.slice(this.offsets[i], this.offsets[i]! + n));
  }

  /** A copy of the whole set as one host array. */
  toFlat(): Float32Array {
    const out = new Float32Array(this.numElements);
    this.#live().download(out, 0);
    return out;
  }

  /** Copies `source` (one array per tensor, or one flat array) into the set. */
  set(source: readonly Float32Array[] | Float32Array): void {
    const s = this.#live();
    if (source instanceof Float32Array) {
      if (source.length !== this.numElements) {
        throw argRangeError(`source has ${source.length} elements but the set has ${this.numElements}`);
      }
      s.upload(source, 0);
      return;
    }
    if (!Array.isArray(source)) throw argTypeError(`source must be a Float32Array or an Array of them, got ${describeValue(source)}`);
    if (source.length !== this.numTensors) {
      throw argRangeError(`source has ${source.length} tensors but the set has ${this.numTensors}`);
    }
    source.forEach((a, i) => {
      if (!(a instanceof Float32Array)) throw argTypeError(`source[${i}] must be a Float32Array, got ${describeValue(a)}`);
      if (a.length !== this.sizes[i]) throw argRangeError(`source[${i}] has ${a.length} elements but tensor ${i} has ${this.sizes[i]}`);
    });
    source.forEach((a, i) => s.upload(a, this.offsets[i]!));
  }

  fill(value: number): void {
    if (typeof value !== 'number') throw argTypeError(`value must be a number, got ${describeValue(value)}`);
    this.#live().fill(value);
  }

  /** A new set with the same sizes on another device (or a copy on the same one). */
  to(device: DeviceSpec): GradSet {
    const copy = GradSet.zeros(this.sizes, { device });
    copy.set(this.toFlat());
    return copy;
  }

  /** A new set with the same sizes and device, filled with zeros. */
  zerosLike(): GradSet {
    // Sharing the layout spares a device set its own copy of the tables (optimizer moments).
    const like = this.#handle;
    return new GradSet(this.sizes, new binding.TensorSet(like ? { device: this.device, like } : { device: this.device, sizes: this.sizes }));
  }

  /** True when `other` has the same device and tensor sizes. */
  sameLayout(other: GradSet): boolean {
    return other.device === this.device && other.sizes.length === this.sizes.length &&
      other.sizes.every((n, i) => n === this.sizes[i]);
  }

  /**
   * Frees the storage now (device memory is otherwise freed when the set is collected). An
   * in-flight async call keeps what it uses alive (the native side holds a reference).
   */
  dispose(): void {
    this.#handle?.dispose();
    this.#handle = undefined;
  }

  #live(): TensorSet {
    if (!this.#handle) throw new Error('this GradSet has been disposed');
    return this.#handle;
  }

  #checkIndex(i: number, name: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.numTensors) {
      throw argRangeError(`${name} must be an integer from 0 to ${this.numTensors - 1}, got ${describeValue(i)}`);
    }
  }

  // Module-private access (not a public static): set by this block, exported below as
  // functions that src/index.ts does not re-export.
  static {
    internalsOf = (set) => set.#live();
    adoptInto = (like, handle) => new GradSet(like.sizes, handle);
  }
}


/** The native handle the surgery, optimizer and model code hand to the binding (internal). */
export function gradSetInternals(set: GradSet): TensorSet {
  return internalsOf(set);
}

/**
 * Elements [start, start + Σsizes) of `set` as a set of tensors of `sizes`, sharing its
 * memory on its device (a rank's segment in the sharded data-parallel step; internal).
 */
export function gradSetView(set: GradSet, start: number, sizes: readonly number[]): GradSet {
  return adoptInto({ sizes } as unknown as GradSet, new binding.TensorSet({ view: internalsOf(set), offset: start, sizes }));
}

/** Wraps a set the native layer made (a surgery's out) in the sizes of `like` (internal). */
export function adoptResult(like: GradSet, handle: TensorSet): GradSet {
  return adoptInto(like, handle);
}
