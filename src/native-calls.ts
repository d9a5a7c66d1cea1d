// The addon's operations that the layers above core use, one named function each
// (ARCHITECTURE.md §2): the models' steps and layouts, the optimizer's kernels, the set
// copy, the robot datasets' JPEG decoder and image work, MPI and NCCL. Those layers never
// call the raw binding themselves; they call these, and hold only the handles these return
// (an MPI world, an NCCL communicator, a bf16 set of frozen weights). Each passes
// its arguments through unchanged: binding.d.ts states them, and the native side checks
// them. The core modules (GradSet, the surgery, devices, backendInfo) call the binding
// directly.
import type { NativeBinding, RawDeviceName, RawMpi, RawNcclCommunicator, RawNcclInfo, TensorSet } from '../binding.js';
import { binding } from './native.js';

type Call<K extends keyof NativeBinding> = NativeBinding[K];

/** Copies `count` elements between two sets on one device (binding.copy). */
/**
 * A bf16 TensorSet on `device` holding `arrays` back to back, each rounded to bf16 (nearest
 * even) on its way up, one array at a time: frozen weights at 2 bytes per element, no fp32 copy
 * on the device (ARCHITECTURE.md §8 "Precision").
 */
export function uploadBf16Set(device: RawDeviceName, arrays: readonly Float32Array[]): TensorSet {
  const set = new binding.TensorSet({ device, sizes: arrays.map((a) => a.length), dtype: 'bf16' });
  let at = 0;
  for (const a of arrays) {
    set.upload(a, at);
    at += a.length;
  }
  return set;
}

export const copy: Call<'copy'> = (options) => binding.copy(options);

/** The built-in model's forward and backward, one micro-batch (binding.modelStep). */
export const modelStep: Call<'modelStep'> = (options) => binding.modelStep(options);
/** {@link modelStep} on a worker thread. */
export const modelStepAsync: Call<'modelStepAsync'> = (options) => binding.modelStepAsync(options);
/** The built-in model's tensors in layout order (binding.modelTensors). */
export const modelTensors: Call<'modelTensors'> = (config) => binding.modelTensors(config);

/** The Qwen2 policy's forward and backward, one micro-batch (binding.qwen2Step). */
export const qwen2Step: Call<'qwen2Step'> = (options) => binding.qwen2Step(options);
/** {@link qwen2Step} on a worker thread. */
export const qwen2StepAsync: Call<'qwen2StepAsync'> = (options) => binding.qwen2StepAsync(options);
/** The Qwen2 policy's trainable tensors in layout order (binding.qwen2Tensors). */
export const qwen2Tensors: Call<'qwen2Tensors'> = (config) => binding.qwen2Tensors(config);

/** VLA-Adapter's forward and backward, one micro-batch (binding.vlaStep). */
export const vlaStep: Call<'vlaStep'> = (options) => binding.vlaStep(options);
/** {@link vlaStep} on a worker thread. */
export const vlaStepAsync: Call<'vlaStepAsync'> = (options) => binding.vlaStepAsync(options);
/** VLA-Adapter's trainable tensors and frozen groups in layout order (binding.vlaTensors). */
export const vlaTensors: Call<'vlaTensors'> = (config) => binding.vlaTensors(config);

/** The surgery's pass 1 (binding.craftReduce). */
export const craftReduce: Call<'craftReduce'> = (act, ret, options) => binding.craftReduce(act, ret, options);
/** craftReduce's result from per-tensor sums (binding.craftCombine). */
export const craftCombine: Call<'craftCombine'> = (sums, options) => binding.craftCombine(sums, options);
/** AdamW with a materialised gradient (binding.adamw). */
export const adamw: Call<'adamw'> = (params, m, v, grad, options) => binding.adamw(params, m, v, grad, options);
/** The surgery's pass 2 fused with AdamW (binding.adamwFused). */
export const adamwFused: Call<'adamwFused'> = (params, m, v, act, ret, options) => binding.adamwFused(params, m, v, act, ret, options);

/** A baseline JPEG decoded as TensorFlow's decode_image decodes it (binding.decodeJpeg), synchronously. */
export const decodeJpeg: Call<'decodeJpeg'> = (bytes) => binding.decodeJpeg(bytes);
/** tf.image.resize(lanczos3, antialias) of a uint8 image with the caller's spans (binding.imageResize). */
export const imageResize: Call<'imageResize'> = (src, out, options) => binding.imageResize(src, out, options);
/** Upstream's augmentation or centre crop of a uint8 RGB image (binding.imageAugment). */
export const imageAugment: Call<'imageAugment'> = (src, out, options) => binding.imageAugment(src, out, options);
/** Both towers' pixel normalisation of a uint8 RGB image, 6 planes (binding.imageNormalize). */
export const imageNormalize: Call<'imageNormalize'> = (rgb, out, options) => binding.imageNormalize(rgb, out, options);

/** Whether this build has MPI. */
export function mpiCompiled(): boolean {
  return binding.mpi.compiled;
}

/** Initialises MPI (once; later calls return at once) and gives its collectives. */
export function initMpi(): RawMpi {
  binding.mpi.init();
  return binding.mpi;
}

/** Whether NCCL can be used here, the file and its version. */
export function ncclInfo(): RawNcclInfo {
  return binding.nccl.info();
}

/** A new NCCL rendezvous id (rank 0 makes it). */
export function ncclUniqueId(): Uint8Array {
  return binding.nccl.uniqueId();
}

/** Joins the NCCL group of `size` ranks (collective). */
export function ncclCommunicator(options: { id: Uint8Array; rank: number; size: number; device: string }): RawNcclCommunicator {
  return new binding.nccl.Communicator(options);
}
