// What this build and machine offer, and the CPU thread count.
import { createRequire } from 'node:module';
import type { RawCpuInfo, RawCublasLtInfo, RawCudaInfo, RawMpiInfo, RawNcclInfo } from '../binding.js';
import { binding } from './native.js';
import { checkThreadCount } from './validate.js';

const require = createRequire(import.meta.url);
export const version: string = (require('../package.json') as { version: string }).version;

export interface BackendInfo {
  /** craftgrad's version. */
  version: string;
  /** Backends compiled into this build: 'cpu', and 'cuda' when built with nvcc. */
  backends: string[];
  napiVersion: number;
  /** The CPU kernel variant in use (generic, avx2, avx512), those available, and the thread count. */
  cpu: RawCpuInfo;
  /** Whether CUDA is compiled and usable, and every visible device. */
  cuda: RawCudaInfo;
  /** Whether MPI (multi-process training) is compiled in, and the implementation. */
  mpi: RawMpiInfo;
  /** Whether NCCL (multi-GPU reductions, loaded at run time) can be used, the file and its version. */
  nccl: RawNcclInfo;
  /** Whether cuBLASLt (bf16 products on CUDA devices, loaded at run time) can be used, the file and its version. */
  cublasLt: RawCublasLtInfo;
}

export function backendInfo(): BackendInfo {
  const raw = binding.backendInfo();
  return { version, backends: raw.backends, napiVersion: raw.napiVersion, cpu: raw.cpu, cuda: raw.cuda, mpi: raw.mpi, nccl: raw.nccl, cublasLt: raw.cublasLt };
}

/**
 * Sets the number of CPU threads the kernels use (default: CRAFTGRAD_THREADS, else the
 * number of cores). Results are bit-identical for any thread count.
 */
export function setThreads(threads: number): void {
  binding.setThreads(checkThreadCount(threads, 'threads'));
}
