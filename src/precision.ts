// The precision of a model's products: 'fp32', or 'bf16' as the seed's bf16 autocast (every
// product, the attention's included, with bf16 inputs and fp32 accumulation; norms, softmax
// statistics, losses, features, both gradient sets, the surgery and AdamW stay fp32:
// ARCHITECTURE.md §8 "Precision"). bf16 is a CUDA device's only. The one place a precision
// spec is resolved, as device.ts is for devices.
import type { RawBackendInfo } from '../binding.js';
import { binding } from './native.js';
import { argRangeError, argTypeError, describeValue } from './errors.js';
import type { DeviceName } from './device.js';

export type Precision = 'fp32' | 'bf16';
export type PrecisionSpec = Precision | 'auto';
export const PRECISION_SPECS: readonly PrecisionSpec[] = ['auto', 'fp32', 'bf16'];

/** Tensor cores with bf16 inputs: compute capability 8.0 (Ampere) and newer. */
const BF16_MIN_CAPABILITY = 8;

/**
 * Why `device` cannot run bf16 products at tensor-core speed, or undefined when it can:
 * the CPU (fp32 only), a GPU older than compute capability 8.0, or no cuBLASLt to load
 * (the products would fall back to the fp32 kernels).
 */
export function bf16Unsupported(device: DeviceName, info: Pick<RawBackendInfo, 'cuda' | 'cublasLt'> = binding.backendInfo()): string | undefined {
  if (device === 'cpu') return 'the CPU computes in fp32';
  const d = info.cuda.devices[Number(device.slice('cuda:'.length))];
  const major = d ? Number(String(d.computeCapability).split('.')[0]) : Number.NaN;
  if (!(major >= BF16_MIN_CAPABILITY)) return `${device} has compute capability ${d?.computeCapability ?? 'unknown'} (bf16 tensor cores need 8.0 or newer)`;
  if (!info.cublasLt.available) return `cuBLASLt is not available (${info.cublasLt.reason ?? 'unknown reason'})`;
  return undefined;
}

/**
 * The precision `spec` means on `device`: 'auto' is bf16 where {@link bf16Unsupported} finds
 * nothing against it, else fp32; 'bf16' on the CPU is refused (RangeError naming `name`).
 * 'bf16' on a GPU without cuBLASLt is allowed: its products run on the fp32 kernels, with a
 * notice from the native side.
 */
export function resolvePrecision(spec: unknown, device: DeviceName, name: string): Precision {
  if (typeof spec !== 'string') throw argTypeError(`${name} must be a string, got ${describeValue(spec)}`);
  if (!(PRECISION_SPECS as readonly string[]).includes(spec)) throw argRangeError(`${name} must be 'auto', 'fp32' or 'bf16', got '${spec}'`);
  if (spec === 'auto') return bf16Unsupported(device) === undefined ? 'bf16' : 'fp32';
  if (spec === 'bf16' && device === 'cpu') throw argRangeError(`${name} bf16 needs a CUDA device (the device is cpu): the CPU computes in fp32`);
  return spec as Precision;
}

/** A model class's `precision` option: 'fp32' (the default), 'bf16' (CUDA devices only) or 'auto', resolved on its device. */
export function checkModelPrecision(value: unknown, device: DeviceName, name = 'options.precision'): Precision {
  return value === undefined ? 'fp32' : resolvePrecision(value, device, name);
}
