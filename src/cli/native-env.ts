// The CRAFTGRAD_* environment variables read outside the CLI: by the native addon, its
// loader (node-gyp-build reads <PACKAGE>_PREBUILD), its build, and src/parallel
// (CRAFTGRAD_DATA_PARALLEL, CRAFTGRAD_DEVICE_REDUCE). yargs' .env('CRAFTGRAD')
// would take each for an option, and strict parsing would then reject it ("unknown
// argument cudaGemm"), so the CLI declares them as hidden options that nothing reads.
// test/cli.test.mjs checks this list against the sources.
export const NATIVE_ENV_VARIABLES = [
  'CRAFTGRAD_THREADS',
  'CRAFTGRAD_CPU_ISA',
  'CRAFTGRAD_CUDA_GEMM',
  'CRAFTGRAD_CUDA_GROUP_BYTES',
  'CRAFTGRAD_CUDA_FP32_GEMM',
  'CRAFTGRAD_CUBLASLT_LIBRARY',
  'CRAFTGRAD_CUDA',
  'CRAFTGRAD_MPI',
  'CRAFTGRAD_DATA_PARALLEL',
  'CRAFTGRAD_DEVICE_REDUCE',
  'CRAFTGRAD_NCCL_LIBRARY',
  'CRAFTGRAD_NCCL_TIMEOUT_S',
  'CRAFTGRAD_NCCL_ROUND_FLOATS',
  'CRAFTGRAD_DEBUG',
  'CRAFTGRAD_BUILD_FROM_SOURCE',
  'CRAFTGRAD_BUILD_DRY_RUN',
  'CRAFTGRAD_PREBUILD',
] as const;

/** CRAFTGRAD_CUDA_GROUP_BYTES → cuda-group-bytes, the option name yargs derives. */
export function optionNameOf(variable: string): string {
  return variable.replace(/^CRAFTGRAD_/, '').toLowerCase().replace(/_/g, '-');
}
