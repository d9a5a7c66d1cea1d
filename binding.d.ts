// Types of the raw native module (build/Release/craftgrad.node or a prebuild).
// Internal: only the core modules touch it (src/native.ts loads it, src/native-calls.ts names each
// operation for the layers above core: test/architecture-layers.test.mjs); operands are positional,
// everything else named options, and every argument is validated again on the native side.

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
  gemm: 'auto' | 'simple' | 'tiled64' | 'tiled128' | 'small32';
  /** The surgery's L2 group size in bytes of a + r, or null for the default (40% of L2). */
  groupBytes: number | null;
  /** Who computes fp32 products: the hand-written kernels (default) or cuBLASLt (CRAFTGRAD_CUDA_FP32_GEMM=cublaslt). */
  fp32Gemm: 'kernels' | 'cublaslt';
  /** The values that were ignored, and why. */
  note?: string;
}

export interface RawBackendInfo {
  backends: string[];
  napiVersion: number;
  cpu: RawCpuInfo;
  cuda: RawCudaInfo;
  mpi: RawMpiInfo;
  nccl: RawNcclInfo;
  cublasLt: RawCublasLtInfo;
}

/** Whether cuBLASLt (bf16 products on CUDA devices, loaded at run time: native/cublaslt) can be used. */
export interface RawCublasLtInfo {
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
  /** The file loaded (CRAFTGRAD_CUBLASLT_LIBRARY, else libcublasLt.so.13 or .so.12 as native/cublaslt/cublaslt_library.h searches). */
  library?: string;
  /** cuBLASLt's version, e.g. "13.0.2". */
  version?: string;
}

/** Whether NCCL (multi-GPU reductions, loaded at run time: native/nccl) can be used. */
export interface RawNcclInfo {
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
  /** The file loaded (CRAFTGRAD_NCCL_LIBRARY, else libnccl.so.2 on the loader's path). */
  library?: string;
  /** NCCL's version, e.g. "2.21.5". */
  version?: string;
}

/** A rank's member of an NCCL group on one CUDA device (native/napi/nccl_call.h). */
export interface RawNcclCommunicator {
  readonly rank: number;
  readonly size: number;
  readonly device: string;
  /** Each set's segment (native/core/segments.h) ends holding every rank's copies summed in rank order. Collective. */
  reduceScatterInRankOrder(sets: TensorSet[]): void;
  /** Every rank's segment of each set into every rank's. Collective. */
  allgatherSegments(sets: TensorSet[]): void;
  /** Ends the group now (peers' calls fail); later calls throw. */
  abort(): void;
}

export interface RawNccl {
  info(): RawNcclInfo;
  /** A new rendezvous id (ncclGetUniqueId): rank 0 makes it, every rank passes it to Communicator. */
  uniqueId(): Uint8Array;
  /** Joins the group (ncclCommInitRank): collective over the `size` ranks. */
  Communicator: new (options: { id: Uint8Array; rank: number; size: number; device: string }) => RawNcclCommunicator;
}

/** Whether this build has MPI (native/mpi), the implementation, and this process's place in its world. */
export interface RawMpiInfo {
  compiled: boolean;
  reason?: string;
  /** The implementation's version line, e.g. "Open MPI v4.1.4". */
  library?: string;
  initialized?: boolean;
  rank?: number;
  size?: number;
}

/**
 * MPI's collectives (native/napi/mpi_call.h), for src/parallel. Every call but `compiled` and
 * `info` throws (code ERR_CRAFTGRAD_MPI) in a build without MPI, or before init().
 */
export interface RawMpi {
  readonly compiled: boolean;
  info(): RawMpiInfo;
  init(): void;
  rank(): number;
  size(): number;
  /** Each array summed across ranks in place, in rank order (bit-identical on every rank). */
  sumInRankOrder(arrays: Float32Array[]): void;
  /**
   * The first half of sumInRankOrder: each rank's segment (segment(n, rank, size)) of each
   * array ends holding the rank-order sum of that segment; the rest is left as it was.
   */
  reduceScatterInRankOrder(arrays: Float32Array[]): void;
  /** The second half of sumInRankOrder: every rank's segment of each array into every rank's. */
  allgatherSegments(arrays: Float32Array[]): void;
  /** Every rank's segment (its segment's length) of n floats into a Float32Array(n) on root; undefined elsewhere. */
  gatherSegments(segment: Float32Array, n: number, root: number): Float32Array | undefined;
  /** [start, end) of rank's segment of n floats over size ranks (no MPI needed). */
  segment(n: number, rank: number, size: number): [number, number];
  /** MPI_Allreduce(MPI_SUM) in place, in the implementation's order. */
  allreduceSum(arrays: Float32Array[]): void;
  /** Root's bytes into every rank's view. */
  broadcast(data: ArrayBufferView, root: number): void;
  /** Every rank's values, rank by rank. */
  allgather(values: Float64Array): Float64Array;
  barrier(): void;
  /** MPI_Abort: ends every rank of the job with `code` (1-255). */
  abort(code: number): never;
  finalize(): void;
}

/** 'cpu' or 'cuda:N' (src/device.ts resolves 'auto' and 'cuda'). */
export type RawDeviceName = 'cpu' | `cuda:${number}`;

/**
 * Tensors packed back to back in one backend's memory: a Float32Array for 'cpu' (wrapped
 * without a copy when `data` is given), device memory for 'cuda:N'. Elements are fp32, or bf16
 * on a device (`dtype: 'bf16'`, 2 bytes each: frozen base weights; upload rounds to nearest
 * even, download widens exactly; only a model step's `frozen` accepts one, every other
 * operation refuses it with a TypeError). Every operation takes its backend from its
 * TensorSet operands.
 */
export interface TensorSet {
  readonly device: RawDeviceName;
  readonly dtype: 'fp32' | 'bf16';
  /** Elements (not bytes). */
  readonly length: number;
  /** length × 4 (fp32) or × 2 (bf16). */
  readonly byteLength: number;
  readonly numTensors: number;
  readonly disposed: boolean;
  /** The host array of a 'cpu' set (a live view); undefined on a device. */
  readonly data: Float32Array | undefined;
  upload(src: Float32Array, offset?: number): void;
  download(dst: Float32Array, offset?: number): void;
  fill(value: number): void;
  dispose(): void;
}

export interface TensorSetOptions {
  device: RawDeviceName;
  /** Tensor sizes; or `like`, whose sizes (and, on the same device, layout) the set shares. */
  sizes?: ArrayLike<number>;
  like?: TensorSet;
  /** 'cpu' only: the array to wrap (sum(sizes) elements); zeros otherwise. */
  data?: Float32Array;
  /** 'fp32' (default) or 'bf16' (a device only: RangeError on 'cpu'). */
  dtype?: 'fp32' | 'bf16';
}

/** A part of another set, no copy: elements [offset, offset + Σsizes) of `view`, on its device. */
export interface TensorSetViewOptions {
  view: TensorSet;
  offset: number;
  sizes: ArrayLike<number>;
}

export interface RawSurgeryOptions<Out> {
  lambda: number;
  eps: number;
  projection: boolean;
  cosines: boolean;
  out?: Out;
  /** Flat host arrays: the tensor sizes. */
  sizes?: ArrayLike<number>;
  /** Host arrays: where to compute (default 'cpu'; 'cuda:N' stages them through the device). */
  device?: RawDeviceName;
}

export interface RawReduceOptions {
  lambda: number;
  eps: number;
  projection: boolean;
}

export interface RawAdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The optimizer's step count after this step (>= 1). */
  step: number;
  /** Multiplies the gradient (clipping). */
  gradScale: number;
}

/** The built-in model's configuration (src/model/config.ts's AdapterPolicyConfig). */
export interface RawModelConfig {
  tokens: number;
  width: number;
  blocks: number;
  rank: number;
  alpha: number;
  bridgeBlock: number;
  pooling: 'mean' | 'max';
  anchorType: 'concat' | 'aq_only' | 'raw_only';
  headWidth: number;
  chunk: number;
  actionDims: number;
}

export interface RawTensorDesc {
  name: string;
  shape: number[];
}

export type RawModelMode = 'craft' | 'baseline' | 'eval' | 'evalRetention';

export interface RawModelStepOptions {
  config: RawModelConfig;
  mode: RawModelMode;
  /** TensorSets on one device; anchor for 'craft' and 'evalRetention', gAct for 'craft' and 'baseline', gRet for 'craft'. */
  params: TensorSet;
  frozen: TensorSet;
  anchor?: TensorSet | null;
  gAct?: TensorSet | null;
  gRet?: TensorSet | null;
  /** Host arrays: batch×T×D tokens, batch×K×A actions. */
  tokens: Float32Array;
  actions: Float32Array;
  batch: number;
  accumulate: boolean;
  scale: number;
  /** 'fp32' (default) or 'bf16' (CUDA only; RangeError on the CPU): every product of the step, the attention's included, with bf16 inputs and fp32 accumulation. */
  precision?: 'fp32' | 'bf16';
}

/** The Qwen2 policy's configuration (native/core/qwen2_desc.h; src/model/qwen2/qwen2-policy.ts fills it). */
export interface RawQwen2Config {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  prefixTokens: number;
  promptTokens: number;
  /** Q = K, the action queries. */
  queries: number;
  rank: number;
  alpha: number;
  /** Linear layers with LoRA: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. */
  targets: readonly string[];
  actionDims: number;
  headWidth: number;
  /** C_R = hidden_states[bridgeLayer], 0..numLayers. */
  bridgeLayer: number;
  bridgeSpan: 'prefix' | 'prefix+prompt';
  pooling: 'mean' | 'max';
  anchorType: 'concat' | 'aq_only' | 'raw_only';
}

export interface RawQwen2StepOptions {
  config: RawQwen2Config;
  mode: RawModelMode;
  /** TensorSets on one device; anchor for 'craft' and 'evalRetention', gAct for 'craft' and 'baseline', gRet for 'craft'. */
  params: TensorSet;
  anchor?: TensorSet | null;
  gAct?: TensorSet | null;
  gRet?: TensorSet | null;
  /**
   * The frozen backbone: host arrays (V·D), one buffer per decoder layer (weights.ts order), (D)
   * on the CPU; or one TensorSet on the step's device holding those V·D, L layers and D
   * tensors in that order (required on a CUDA device: uploaded once, kept by Qwen2Policy).
   */
  frozen: { embedTokens: Float32Array; layers: readonly Float32Array[]; finalNorm: Float32Array } | TensorSet;
  /** Host arrays: batch×P×D prefix (when P > 0), batch×S token ids (when S > 0), batch×Q×A actions. */
  prefix?: Float32Array | null;
  inputIds?: Int32Array | null;
  actions: Float32Array;
  batch: number;
  accumulate: boolean;
  scale: number;
  /** 'fp32' (default) or 'bf16' (CUDA only; RangeError on the CPU): every product of the step, the attention's included, with bf16 inputs and fp32 accumulation; required when `frozen` is a bf16 set. */
  precision?: 'fp32' | 'bf16';
}

/** One ViT tower of VLA-Adapter (native/core/vla_desc.h VitConfig). */
export interface RawVitConfig {
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpHidden: number;
  patchSize: number;
  imageSize: number;
  /** 0 or 1. */
  classToken: number;
  regTokens: number;
  layerScale: boolean;
  layerNormEps: number;
}

/** VLA-Adapter's configuration (native/core/vla_desc.h; src/model/vla/vla-policy.ts fills it). */
export interface RawVlaConfig {
  /** [featurizer (DINOv2), fused_featurizer (SigLIP)]. */
  towers: readonly [RawVitConfig, RawVitConfig];
  views: number;
  projectorHidden: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** S: input ids per sample, BOS first and the `queries` action placeholders last. */
  inputIds: number;
  queries: number;
  rank: number;
  alpha: number;
  headBlocks: number;
  chunk: number;
  actionDims: number;
  /** 0: no proprio token. */
  proprioDim: number;
  /** C_R = hidden_states[bridgeLayer], 0..numLayers. */
  bridgeLayer: number;
  bridgeSpan: 'vision' | 'vision+prompt';
  pooling: 'mean' | 'max';
  anchorType: 'concat' | 'aq_only' | 'raw_only';
}

export interface RawVlaStepOptions {
  config: RawVlaConfig;
  mode: RawModelMode;
  params: TensorSet;
  anchor?: TensorSet | null;
  gAct?: TensorSet | null;
  gRet?: TensorSet | null;
  /** The frozen groups of vlaTensors(config).frozen: host arrays (CPU) or one TensorSet on the step's device. */
  frozen: readonly Float32Array[] | TensorSet;
  /** batch×views×6×H×W, normalised as upstream's processor. */
  pixels: Float32Array;
  /** batch×inputIds. */
  inputIds: Int32Array;
  /** batch×proprioDim (when proprioDim > 0). */
  proprio?: Float32Array | null;
  /** batch×chunk×actionDims. */
  actions: Float32Array;
  /** chunk×(actionDims·hiddenSize): the head's input perturbation, or null for zeros. */
  noise?: Float32Array | null;
  batch: number;
  accumulate: boolean;
  scale: number;
  /** 'fp32' (default) or 'bf16' (CUDA only; RangeError on the CPU): every product of the step, the attention's included, with bf16 inputs and fp32 accumulation; required when `frozen` is a bf16 set. */
  precision?: 'fp32' | 'bf16';
}

export interface RawGemmOptions {
  M: number;
  N: number;
  K: number;
  alpha: number;
  a: Float32Array;
  transA: boolean;
  b: Float32Array;
  transB: boolean;
  /** 0 or 1. */
  beta: number;
  /** Updated in place: c = beta·c + alpha·op(a)·op(b), row-major. */
  c: Float32Array;
  /** Where to compute (default 'cpu'). */
  device?: RawDeviceName;
  /** CUDA's product kernel: 0 by shape (or CRAFTGRAD_CUDA_GEMM), 1 simple 4×4 in 64×64 tiles, 2 tiled 64×64, 3 tiled 128×128, 4 small32 (4×4 in 32×32 tiles) (same bits). */
  variant?: 0 | 1 | 2 | 3 | 4;
  /**
   * 'fp32' (default), or 'bf16' (CUDA devices only): a and b rounded to bf16 (round to nearest
   * even), fp32 accumulation and c, through cuBLASLt; where cuBLASLt is missing, the fp32
   * kernels compute it, with a one-line notice on stderr once per process.
   */
  precision?: 'fp32' | 'bf16';
}

/** One product of cudaModelGemmBatch: c = beta·c + alpha·op(a)·op(b) (transposes given for the batch). */
export interface RawGemmProduct {
  M: number;
  N: number;
  K: number;
  alpha: number;
  a: Float32Array;
  b: Float32Array;
  /** 0 or 1. */
  beta: number;
  /** Updated in place, row-major. */
  c: Float32Array;
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
  /** Per tensor q = <r, r>. */
  retNormsSq: Float64Array;
  /** Per tensor ‖a‖². */
  actNormsSq: Float64Array;
  /** Per tensor: 1 when a or r holds a NaN/Inf. */
  nonFiniteFlags: Uint8Array;
}

/** craftCombine's input: per-tensor pass-1 sums computed elsewhere (the sharded step). */
export interface RawCraftSums {
  dots: Float64Array;
  retNormsSq: Float64Array;
  actNormsSq: Float64Array;
  nonFiniteFlags: Uint8Array;
}

/** One axis of a lanczos3 resize: output i reads inputs starts[i] .. starts[i] + spanSize − 1 (clamped) with weights[i·spanSize + k] (src/data/images/resize.ts computeSpans). */
export interface RawImageSpans {
  spanSize: number;
  starts: Int32Array;
  weights: Float32Array;
}

export interface RawImageResizeOptions {
  height: number;
  width: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  rowSpans: RawImageSpans;
  colSpans: RawImageSpans;
}

/** The colour ops of upstream's augmentation (augment.ts AugmentParams less the box). */
export interface RawImageColor {
  brightness: number;
  contrast: number;
  saturation: number;
  /** In turns, [-1, 1] (tf.image.adjust_hue's range). */
  hue: number;
}

export interface RawImageAugmentOptions {
  height: number;
  width: number;
  /** TF's normalised [y1, x1, y2, x2], cropped and resized back to height × width (bilinear). */
  box: readonly [number, number, number, number];
  /** The colour ops after the crop; omitted: the crop alone (the centre crop). */
  color?: RawImageColor;
}

export interface RawImageNormalizeOptions {
  height: number;
  width: number;
  /** Per tower g and channel c at [3g + c]. */
  mean: readonly number[];
  std: readonly number[];
}

export interface RawModelLosses {
  actionLoss: number;
  retentionLoss: number;
}

/**
 * One export per operation whatever the device (native/napi/addon.cc). Options are
 * checked again natively (TypeError/RangeError naming the field); the async forms reject
 * with the same errors the synchronous ones throw.
 */
export interface NativeBinding {
  TensorSet: new (options: TensorSetOptions | TensorSetViewOptions) => TensorSet;

  /** act, ret: TensorSets of one device (out: a TensorSet), Arrays of Float32Array, or flat Float32Arrays with options.sizes. */
  surgery<Out extends TensorSet | Float32Array[] | Float32Array>(act: Out, ret: Out, options: RawSurgeryOptions<Out>): RawSurgeryResult<Out>;
  surgeryAsync<Out extends TensorSet | Float32Array[] | Float32Array>(act: Out, ret: Out, options: RawSurgeryOptions<Out>): Promise<RawSurgeryResult<Out>>;

  /** The surgery's pass 1 (nothing written); ret may be act. */
  craftReduce(act: TensorSet, ret: TensorSet, options: RawReduceOptions): RawCraftReduceResult;
  /** craftReduce's result from given per-tensor sums (same coefficients, flags and norm). */
  craftCombine(sums: RawCraftSums, options: RawReduceOptions): RawCraftReduceResult;
  /** Surgery pass 2 fused with AdamW: p, m, v (distinct, not overlapping act or ret) updated in place. */
  adamwFused(params: TensorSet, m: TensorSet, v: TensorSet, act: TensorSet, ret: TensorSet,
    options: RawAdamWOptions & { coefficients: Float64Array }): void;
  /** AdamW alone with g = grad·gradScale. */
  adamw(params: TensorSet, m: TensorSet, v: TensorSet, grad: TensorSet, options: RawAdamWOptions): void;

  /** The built-in model's forward and backward (one micro-batch). */
  modelStep(options: RawModelStepOptions): RawModelLosses;
  modelStepAsync(options: RawModelStepOptions): Promise<RawModelLosses>;
  /** The model's tensors, names and shapes, in layout order (native/core/model_desc.cc defines them). */
  modelTensors(config: RawModelConfig): { trainable: RawTensorDesc[]; frozen: RawTensorDesc[]; anchor: RawTensorDesc[] };
  /** The Qwen2 policy's forward and backward (one micro-batch), on the backend of its sets. */
  qwen2Step(options: RawQwen2StepOptions): RawModelLosses;
  qwen2StepAsync(options: RawQwen2StepOptions): Promise<RawModelLosses>;
  /** The Qwen2 policy's trainable tensors in layout order (native/core/qwen2_desc.cc); the anchor is the first anchorTensors. */
  qwen2Tensors(config: RawQwen2Config): { trainable: RawTensorDesc[]; anchorTensors: number };
  /** VLA-Adapter's forward and backward (one micro-batch), on the backend of its sets. */
  vlaStep(options: RawVlaStepOptions): RawModelLosses;
  vlaStepAsync(options: RawVlaStepOptions): Promise<RawModelLosses>;
  /** VLA-Adapter's trainable tensors and frozen groups in layout order (native/core/vla_desc.cc); the anchor is the first anchorTensors. */
  vlaTensors(config: RawVlaConfig): { trainable: RawTensorDesc[]; anchorTensors: number; frozen: RawTensorDesc[] };
  /** dst[dstOffset..+count) = src[srcOffset..+count), within one device, no overlap. */
  copy(options: { dst: TensorSet; src: TensorSet; dstOffset?: number; srcOffset?: number; count: number }): void;
  /** The model's product on host arrays, c updated in place (tests and benchmarks). */
  modelGemm(options: RawGemmOptions): void;

  /**
   * A baseline JPEG decoded as TensorFlow's decode_image decodes it (libjpeg-turbo IFAST, fancy
   * upsampling; native/data/jpeg_decoder.h). Throws an Error with code
   * ERR_CRAFTGRAD_JPEG_INVALID (malformed; the message names the problem) or
   * ERR_CRAFTGRAD_JPEG_UNSUPPORTED (progressive, arithmetic, lossless, 12-bit, 2 or 4 components).
   */
  decodeJpeg(bytes: Uint8Array): RawJpegImage;

  /**
   * The robot datasets' image work (native/data; to the bit what src/data/images computes in
   * TypeScript), on the calling thread. imageResize: tf.image.resize(lanczos3, antialias) of a
   * uint8 image with the given spans; a Float32Array out gets the float result, a Uint8Array
   * dlimp's rounded uint8. imageAugment: uint8 RGB in, crop (and colour ops) as upstream's
   * augmentation; a Uint8Array out gets the uint8 image (and may be src), a Float32Array the
   * float32 image after the last clip. imageNormalize: 6 float32 planes (both towers). out may
   * not overlap an input (except imageAugment's uint8 out, src).
   */
  imageResize(src: Uint8Array, out: Float32Array | Uint8Array, options: RawImageResizeOptions): void;
  imageAugment(src: Uint8Array, out: Uint8Array | Float32Array, options: RawImageAugmentOptions): void;
  imageNormalize(rgb: Uint8Array, out: Float32Array, options: RawImageNormalizeOptions): void;

  backendInfo(): RawBackendInfo;
  mpi: RawMpi;
  nccl: RawNccl;
  setThreads(threads: number): void;

  /**
   * @internal Benchmark-only natives (bench/native), present only in a build made in the
   * repository: the npm package and its prebuilds do not have them. src/ never uses them.
   */
  bench?: RawBenchNatives;
}

/** A decoded JPEG: height × width × channels bytes, rows top to bottom. */
export interface RawJpegImage {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  data: Uint8Array;
}

/** @internal `binding.bench`: measurements for bench/*.js and a few GPU tests. */
export interface RawBenchNatives {
  /** Measured fp32 FMA throughput of the pool's threads, GFLOP/s (0 without AVX-512). */
  fmaPeakGflops(seconds: number): number;
  /** CUDA builds only: what the fp32 CUDA-core peak is computed from. */
  cudaDeviceProps?(device: number): { multiprocessors: number; clockKHz: number; computeCapability: string; fp32LanesPerSM: number };
  /** CUDA builds only: milliseconds of each of `reps` launches of the model's product kernel, M×N with inner K (variant as RawGemmOptions'); precision 'bf16': through cuBLASLt as a model call's bf16 products (the rounding to bf16 timed with them), on pseudo-random operands. */
  cudaModelGemmTime?(device: number, M: number, N: number, K: number, transA: boolean, transB: boolean, reps: number, variant: 0 | 1 | 2 | 3 | 4, precision?: 'fp32' | 'bf16'): Float64Array;
  /** CUDA builds only: milliseconds of each of `reps` runs of the products `shapes` ([M, N, K], 1 to 8, same transposes): batched (one launch per 4 products, as the model's LoRA gradients) or one launch each; precision as cudaModelGemmTime's. */
  cudaModelGemmSetTime?(device: number, shapes: Array<[number, number, number]>, transA: boolean, transB: boolean, reps: number, variant: 0 | 1 | 2 | 3 | 4, batched: boolean, precision?: 'fp32' | 'bf16'): Float64Array;
  /** CUDA builds only: milliseconds of each of `reps` attentionForward (or, with backward, attentionBackward over `streams` streams) calls on device-resident pseudo-random operands, CUDA events after a warm-up. */
  cudaAttentionTime?(operands: {
    device: number; B: number; T: number; Tk?: number; heads: number; kvHeads: number; hd: number; scale: number; causal: boolean;
    gateBegin?: number; gateEnd?: number; precision?: 'fp32' | 'bf16'; backward: boolean; streams?: number; reps: number;
  }): Float64Array;
  /** CUDA builds only (tests): the products (1 to 8, same transposes; each c overwritten) batched as the model batches its LoRA gradients. */
  cudaModelGemmBatch?(device: number, products: RawGemmProduct[], transA: boolean, transB: boolean, variant: 0 | 1 | 2 | 3 | 4): void;
  /** CUDA builds only: milliseconds of each of `reps` device-to-device copies of `elements` floats, timed with CUDA events. */
  cudaTimeCopy?(device: number, elements: number, reps: number): Float64Array;
  /** CUDA builds only: free and total memory of the device now, in bytes (cudaMemGetInfo). */
  cudaMemInfo?(device: number): { freeBytes: number; totalBytes: number };
}
