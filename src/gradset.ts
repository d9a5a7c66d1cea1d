// GradSet: a list of float32 tensors in one contiguous allocation on one device. The form
// in which gradients, parameters and optimizer state live, so a step never leaves its device.
import type { DeviceBuffer, DeviceLayout } from '../binding.js';
import { binding } from './native.js';
import { argRangeError, argTypeError, describeValue } from './errors.js';
import { CPU, parseDevice, requireCuda, type DeviceName, type DeviceSpec, type ResolvedDevice } from './device.js';

export interface GradSetOptions {
  /** 'cpu' (default), 'cuda', 'cuda:N', or 'auto' (the first GPU when there is one). */
  device?: DeviceSpec | undefined;
}

type Storage =
  | { kind: 'cpu'; data: Float32Array }
  | { kind: 'cuda'; buffer: DeviceBuffer; layout?: DeviceLayout };

const MAX_ELEMENTS = 2 ** 52;

export function checkSizes(sizes: unknown, name: string): number[] {
  if (!Array.isArray(sizes) && !ArrayBuffer.isView(sizes)) {
    throw argTypeError(`${name} must be an Array of non-negative integers, got ${describeValue(sizes)}`);
  }
  const list = Array.from(sizes as ArrayLike<unknown>);
  let total = 0;
  list.forEach((s, i) => {
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
      throw argRangeError(`${name}[${i}] must be a non-negative integer, got ${describeValue(s)}`);
    }
    total += s;
  });
  if (total > MAX_ELEMENTS) throw argRangeError(`${name} adds up to ${total} elements, more than ${MAX_ELEMENTS}`);
  return list as number[];
}

// Set by the class's static block, which alone sees its private fields (see gradSetInternals).
let internalsOf: (set: GradSet) => GradSetInternals;
let adoptInto: (like: GradSet, out: Float32Array | DeviceBuffer) => GradSet;

export class GradSet {
  /** 'cpu' or 'cuda:N'. */
  readonly device: DeviceName;
  /** Element count of each tensor. */
  readonly sizes: readonly number[];
  /** Element offset of each tensor in the flat storage. */
  readonly offsets: readonly number[];
  readonly numElements: number;
  #storage: Storage | undefined;
  readonly #sizesF64: Float64Array;

  private constructor(device: ResolvedDevice, sizes: number[], storage: Storage) {
    this.device = device.name;
    this.sizes = Object.freeze(sizes.slice());
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) {
      offsets.push(total);
      total += s;
    }
    this.offsets = Object.freeze(offsets);
    this.numElements = total;
    this.#sizesF64 = Float64Array.from(sizes);
    this.#storage = storage;
  }

  get numTensors(): number {
    return this.sizes.length;
  }

  /** A set of zeros with the given tensor sizes. */
  static zeros(sizes: ArrayLike<number>, options: GradSetOptions = {}): GradSet {
    const list = checkSizes(sizes, 'sizes');
    const device = resolveSetDevice(options, 'options.device');
    const total = list.reduce((a, b) => a + b, 0);
    if (device.kind === 'cpu') return new GradSet(device, list, { kind: 'cpu', data: new Float32Array(total) });
    const buffer = binding.cudaAlloc!(device.index, total);
    buffer.fill(0);
    return new GradSet(device, list, { kind: 'cuda', buffer });
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
    return new GradSet(CPU, list, { kind: 'cpu', data: flat });
  }

  get disposed(): boolean {
    return this.#storage === undefined;
  }

  /** The flat storage of a CPU set (a live view: writes go into the set). */
  get data(): Float32Array {
    const s = this.#live();
    if (s.kind !== 'cpu') throw new Error(`GradSet.data is only available on the CPU; this set is on ${this.device} (use toFlat())`);
    return s.data;
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
    const s = this.#live();
    if (s.kind === 'cpu') return s.data.slice();
    const out = new Float32Array(this.numElements);
    s.buffer.download(out, 0);
    return out;
  }

  /** Copies `source` (one array per tensor, or one flat array) into the set. */
  set(source: readonly Float32Array[] | Float32Array): void {
    const s = this.#live();
    if (source instanceof Float32Array) {
      if (source.length !== this.numElements) {
        throw argRangeError(`source has ${source.length} elements but the set has ${this.numElements}`);
      }
      if (s.kind === 'cpu') s.data.set(source);
      else s.buffer.upload(source, 0);
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
    source.forEach((a, i) => {
      if (s.kind === 'cpu') s.data.set(a, this.offsets[i]);
      else s.buffer.upload(a, this.offsets[i]!);
    });
  }

  fill(value: number): void {
    if (typeof value !== 'number') throw argTypeError(`value must be a number, got ${describeValue(value)}`);
    const s = this.#live();
    if (s.kind === 'cpu') s.data.fill(value);
    else s.buffer.fill(value);
  }

  /** A new set with the same sizes on another device (or a copy on the same one). */
  to(device: DeviceSpec): GradSet {
    const copy = GradSet.zeros(this.sizes, { device });
    copy.set(this.toFlat());
    return copy;
  }

  /** A new set with the same sizes and device, filled with zeros. */
  zerosLike(): GradSet {
    return GradSet.zeros(this.sizes, { device: this.device });
  }

  /** True when `other` has the same device and tensor sizes. */
  sameLayout(other: GradSet): boolean {
    return other.device === this.device && other.sizes.length === this.sizes.length &&
      other.sizes.every((n, i) => n === this.sizes[i]);
  }

  /** Frees the storage now (device memory is otherwise freed when the set is collected). */
  dispose(): void {
    const s = this.#storage;
    this.#storage = undefined;
    if (s?.kind === 'cuda') {
      s.buffer.dispose();
      // The cached layout holds device tables and pinned host memory of its own; an
      // in-flight async call keeps what it uses alive (the native side holds a reference).
      s.layout?.dispose();
      s.layout = undefined;
    }
  }

  #live(): Storage {
    if (!this.#storage) throw new Error('this GradSet has been disposed');
    return this.#storage;
  }

  #checkIndex(i: number, name: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.numTensors) {
      throw argRangeError(`${name} must be an integer from 0 to ${this.numTensors - 1}, got ${describeValue(i)}`);
    }
  }

  // The accessors below (gradSetInternals, adoptResult) are the native layer's way in:
  // module functions, not statics, so they are not part of the class a user sees.
  static {
    internalsOf = (set) => {
      const storage = set.#live();
      return {
        storage,
        sizes: set.#sizesF64,
        layout: () => {
          if (storage.kind !== 'cuda') throw new Error('layout() is for CUDA sets');
          storage.layout ??= binding.cudaLayout!(storage.buffer.device, set.#sizesF64);
          return storage.layout;
        },
      };
    };
    adoptInto = (like, out) => {
      const device = parseDevice(like.device, 'device', CPU);
      const storage: Storage = out instanceof Float32Array ? { kind: 'cpu', data: out } : { kind: 'cuda', buffer: out };
      return new GradSet(device, like.sizes as number[], storage);
    };
  }
}

/** What the surgery and trainer code hand to the native layer. Internal: src/index.ts does not export it. */
export interface GradSetInternals {
  storage: Storage;
  sizes: Float64Array;
  layout(): DeviceLayout;
}

/** The native pieces of a live set (throws if it has been disposed). Internal. */
export function gradSetInternals(set: GradSet): GradSetInternals {
  return internalsOf(set);
}

/** Wraps a result produced by the native layer in the layout of `like`. Internal. */
export function adoptResult(like: GradSet, out: Float32Array | DeviceBuffer): GradSet {
  return adoptInto(like, out);
}

function resolveSetDevice(options: GradSetOptions, name: string): ResolvedDevice {
  if (options === null || typeof options !== 'object') throw argTypeError(`options must be an object, got ${describeValue(options)}`);
  const spec = options.device ?? 'cpu';
  const auto = binding.backendInfo().cuda.available ? parseDevice('cuda:0', name, CPU) : CPU;
  const device = parseDevice(spec, name, auto);
  if (device.kind === 'cuda') requireCuda(device.index, name);
  return device;
}
