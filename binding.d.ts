// Types of the raw native module (build/Release/craftgrad.node or a prebuild).
// Internal: src/native.ts is the only code that touches it; argument order is positional
// for speed, and every argument is validated again on the native side.

export interface RawSurgeryResult<Out> {
  out: Out;
  conflicts: Uint8Array;
  dots: Float64Array;
  cosines?: Float64Array;
  numConflicts: number;
  numTensors: number;
  conflictRatio: number;
  gradNorm: number;
  nonFinite: number;
}

export interface RawCpuInfo {
  isa: string;
  available: string[];
  threads: number;
  note?: string;
}

export interface RawCudaDevice {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
  l2CacheBytes: number;
}

export interface RawCudaInfo {
  compiled: boolean;
  available: boolean;
  reason?: string;
  driverVersion?: number;
  runtimeVersion?: number;
  devices: RawCudaDevice[];
  /** CUDA builds: the tuning overrides in effect (CRAFTGRAD_CUDA_GEMM, CRAFTGRAD_CUDA_GROUP_BYTES). */
  tuning?: RawCudaTuning;
}

export interface RawCudaTuning {
  /** The model's product kernel: 'auto' (by shape) unless CRAFTGRAD_CUDA_GEMM forces one. */
  gemm: 'auto' | 'simple' | 'tiled64' | 'tiled128';
  /** The surgery's L2 group size in bytes of a + r, or null for the default (40% of L2). */
  groupBytes: number | null;
  /** The values that were ignored, and why. */
  note?: string;
}

export interface RawBackendInfo {
  backends: string[];
  napiVersion: number;
  cpu: RawCpuInfo;
  cuda: RawCudaInfo;
}

/** Device memory holding `length` float32 values (CUDA builds only). */
export interface DeviceBuffer {
  readonly device: number;
  readonly length: number;
  readonly disposed: boolean;
  upload(src: Float32Array, offsetElements: number): void;
  download(dst: Float32Array, offsetElements: number): void;
  fill(value: number): void;
  dispose(): void;
}

/** A cached per-layout table (tensor sizes) on one device (CUDA builds only). */
export interface DeviceLayout {
  readonly device: number;
  readonly length: number;
  readonly numTensors: number;
  readonly disposed: boolean;
  dispose(): void;
}

/** craftReduce: the surgery's pass 1 for the trainer (no writes). */
export interface RawCraftReduceResult {
  conflicts: Uint8Array;
  dots: Float64Array;
  /** c_i = λ − (conflict ? d/(q+eps) : 0), to hand to adamwFused. */
  coefficients: Float64Array;
  numConflicts: number;
  numTensors: number;
  conflictRatio: number;
  /** From d, q, ‖a‖² and c (see native/cpu/adamw_cpu.h for the cancellation caveat). */
  gradNorm: number;
  nonFinite: number;
}

export interface NativeBinding {
  surgery(act: Float32Array[], ret: Float32Array[], out: Float32Array[] | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean): RawSurgeryResult<Float32Array[]>;
  surgeryAsync(act: Float32Array[], ret: Float32Array[], out: Float32Array[] | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean): Promise<RawSurgeryResult<Float32Array[]>>;
  surgeryFlat(act: Float32Array, ret: Float32Array, sizes: ArrayLike<number>, out: Float32Array | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean): RawSurgeryResult<Float32Array>;
  surgeryFlatAsync(act: Float32Array, ret: Float32Array, sizes: ArrayLike<number>, out: Float32Array | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean): Promise<RawSurgeryResult<Float32Array>>;
  backendInfo(): RawBackendInfo;
  setThreads(threads: number): void;

  // The optimizer step (CPU GradSet layouts; native/napi/adamw_call.cc).
  craftReduce(act: Float32Array, ret: Float32Array, sizes: Float64Array, lambda: number, eps: number,
    projection: boolean): RawCraftReduceResult;
  adamwFused(act: Float32Array, ret: Float32Array, sizes: Float64Array, coefficients: Float64Array,
    params: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number, beta2: number,
    eps: number, weightDecay: number, step: number, gradScale: number): void;
  adamw(grad: Float32Array, params: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number,
    beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): void;

  // Built-in model (src/model). config: [T, D, L, r, alpha, m, pool, anchor, H, K, A];
  // mode 0 craft, 1 baseline, 2 eval, 3 eval with retention.
  modelStep(config: Float64Array, params: Float32Array, frozen: Float32Array, anchor: Float32Array | null,
    tokens: Float32Array, actions: Float32Array, batch: number, gAct: Float32Array | null, gRet: Float32Array | null,
    mode: number, accumulate: boolean, scale: number): { actionLoss: number; retentionLoss: number };
  modelStepAsync(config: Float64Array, params: Float32Array, frozen: Float32Array, anchor: Float32Array | null,
    tokens: Float32Array, actions: Float32Array, batch: number, gAct: Float32Array | null, gRet: Float32Array | null,
    mode: number, accumulate: boolean, scale: number): Promise<{ actionLoss: number; retentionLoss: number }>;
  /** CUDA builds only: modelStep with params, frozen, anchor, gAct, gRet as DeviceBuffers on one device. */
  cudaModelStep?(config: Float64Array, params: DeviceBuffer, frozen: DeviceBuffer, anchor: DeviceBuffer | null,
    tokens: Float32Array, actions: Float32Array, batch: number, gAct: DeviceBuffer | null, gRet: DeviceBuffer | null,
    mode: number, accumulate: boolean, scale: number): { actionLoss: number; retentionLoss: number };
  /** CUDA builds only: cudaModelStep on a libuv worker thread (buffers kept alive until it settles). */
  cudaModelStepAsync?(config: Float64Array, params: DeviceBuffer, frozen: DeviceBuffer, anchor: DeviceBuffer | null,
    tokens: Float32Array, actions: Float32Array, batch: number, gAct: DeviceBuffer | null, gRet: DeviceBuffer | null,
    mode: number, accumulate: boolean, scale: number): Promise<{ actionLoss: number; retentionLoss: number }>;
  /** CUDA builds only: device-to-device copy of `count` floats (same device, no overlap). Synchronous. */
  cudaCopy?(dst: DeviceBuffer, dstOffset: number, src: DeviceBuffer, srcOffset: number, count: number): void;
  /** CUDA builds only: what the fp32 CUDA-core peak is computed from (benchmarks). */
  cudaDeviceProps?(device: number): { multiprocessors: number; clockKHz: number; computeCapability: string; fp32LanesPerSM: number };
  /** CUDA builds only: milliseconds of each of `reps` launches of the model's product kernel, M×N with inner K (benchmarks). */
  /** variant: 0 by shape (or CRAFTGRAD_CUDA_GEMM), 1 simple 4×4, 2 tiled 64×64, 3 tiled 128×128 (same bits). */
  cudaModelGemmTime?(device: number, M: number, N: number, K: number, transA: boolean, transB: boolean, reps: number, variant: 0 | 1 | 2 | 3): Float64Array;
  /** The GPU's product on host arrays, c updated in place (tests); arguments as modelGemm's. */
  cudaModelGemm?(device: number, M: number, N: number, K: number, alpha: number, a: Float32Array, transA: boolean,
    b: Float32Array, transB: boolean, beta: number, c: Float32Array, variant: 0 | 1 | 2 | 3): void;
  /** c = beta·c + alpha·op(a)·op(b), row-major; beta 0 or 1 (tests and benchmarks). */
  modelGemm(M: number, N: number, K: number, alpha: number, a: Float32Array, transA: boolean,
    b: Float32Array, transB: boolean, beta: number, c: Float32Array): void;
  /** Measured fp32 FMA throughput of the pool's threads, GFLOP/s (0 without AVX-512). */
  fmaPeakGflops(seconds: number): number;

  // CUDA builds only.
  cudaAlloc?(device: number, length: number): DeviceBuffer;
  cudaLayout?(device: number, sizes: Float64Array): DeviceLayout;
  cudaSurgery?(act: DeviceBuffer, ret: DeviceBuffer, out: DeviceBuffer | undefined, layout: DeviceLayout,
    lambda: number, eps: number, projection: boolean, cosines: boolean): RawSurgeryResult<DeviceBuffer>;
  cudaSurgeryAsync?(act: DeviceBuffer, ret: DeviceBuffer, out: DeviceBuffer | undefined, layout: DeviceLayout,
    lambda: number, eps: number, projection: boolean, cosines: boolean): Promise<RawSurgeryResult<DeviceBuffer>>;
  cudaSurgeryHost?(act: Float32Array[], ret: Float32Array[], out: Float32Array[] | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean, device: number): RawSurgeryResult<Float32Array[]>;
  cudaSurgeryHostAsync?(act: Float32Array[], ret: Float32Array[], out: Float32Array[] | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean, device: number): Promise<RawSurgeryResult<Float32Array[]>>;
  cudaSurgeryHostFlat?(act: Float32Array, ret: Float32Array, sizes: ArrayLike<number>, out: Float32Array | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean, device: number): RawSurgeryResult<Float32Array>;
  cudaSurgeryHostFlatAsync?(act: Float32Array, ret: Float32Array, sizes: ArrayLike<number>, out: Float32Array | undefined,
    lambda: number, eps: number, projection: boolean, cosines: boolean, device: number): Promise<RawSurgeryResult<Float32Array>>;
  /**
   * The optimizer step on DeviceBuffers laid out by `layout` (native/napi/cuda_adamw.cc).
   * Hyper-parameters are checked first (RangeError), then the handles (TypeError), then
   * every buffer against the layout (same device, layout.length elements: RangeError).
   * cudaCraftReduce: surgery pass 1 only, one host sync; ret may be act. Same result as craftReduce.
   */
  cudaCraftReduce?(act: DeviceBuffer, ret: DeviceBuffer, layout: DeviceLayout, lambda: number, eps: number,
    projection: boolean): RawCraftReduceResult;
  /** Surgery pass 2 fused with AdamW in one launch: p, m, v (three distinct buffers) updated in place. */
  cudaAdamwFused?(params: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, act: DeviceBuffer, ret: DeviceBuffer,
    coefficients: Float64Array, layout: DeviceLayout, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number, gradScale: number): void;
  /** AdamW alone with g = grad·gradScale. */
  cudaAdamw?(params: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, grad: DeviceBuffer, layout: DeviceLayout,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): void;
  /** Milliseconds of each of `reps` device-to-device copies of `elements` floats, timed with CUDA events (benchmarks). */
  cudaTimeCopy?(device: number, elements: number, reps: number): Float64Array;
  /** Free and total memory of the device now, in bytes (cudaMemGetInfo). */
  cudaMemInfo?(device: number): { freeBytes: number; totalBytes: number };
}
