// craftgrad info: the build (backends compiled, CPU kernel variant and features), the
// GPUs seen, and the versions.
import type { Argv } from 'yargs';
import type { RawCudaTuning } from '../../../binding.js';
import { backendInfo } from '../../backend.js';
import { rebuildAdvice } from '../../rebuild.js';
import { bf16Unsupported } from '../../precision.js';

/** The CUDA tuning in effect (native/cuda/tuning.h), in words; the GPU benchmarks' records use it too. */
export function describeCudaTuning(t: RawCudaTuning): string {
  const text = `product kernel ${t.gemm === 'auto' ? 'by shape' : `${t.gemm} (CRAFTGRAD_CUDA_GEMM)`}, surgery L2 groups of ` +
    (t.groupBytes === null ? '40% of L2' : `${t.groupBytes} bytes (CRAFTGRAD_CUDA_GROUP_BYTES)`) +
    (t.fp32Gemm === 'cublaslt' ? ', fp32 products through cuBLASLt (CRAFTGRAD_CUDA_FP32_GEMM)' : '');
  return t.note ? `${text}; ${t.note}` : text;
}

/**
 * `craftgrad info`'s text for `info` (default: this build's backendInfo()). A backend that
 * is not compiled in comes with what to install and the command that rebuilds craftgrad
 * from where it stands (`rebuild`, default src/rebuild.ts's for this copy).
 */
export function infoText(info: ReturnType<typeof backendInfo> = backendInfo(), rebuild: string = rebuildAdvice()): string {
  const lines = [
    `craftgrad ${info.version}`,
    `  Node.js ${process.version} (Node-API ${process.versions.napi}; addon built for Node-API ${info.napiVersion}), ${process.platform}-${process.arch}`,
    `  backends compiled: ${info.backends.join(', ')}`,
    `  CPU kernels: ${info.cpu.isa} (this CPU can run: ${info.cpu.available.join(', ')}), ${info.cpu.threads} threads` +
      (info.cpu.note ? ` — ${info.cpu.note}` : ''),
  ];
  const cuda = info.cuda;
  const tuning = cuda.tuning;
  const forced = tuning && (tuning.gemm !== 'auto' || tuning.groupBytes !== null || tuning.fp32Gemm === 'cublaslt' || tuning.note);
  if (!cuda.compiled) lines.push(`  CUDA: not compiled into this build (to add it: install the CUDA toolkit, nvcc on the PATH or in /usr/local/cuda, then ${rebuild})`);
  else if (!cuda.available) lines.push(`  CUDA: compiled, not available: ${cuda.reason ?? 'unknown reason'}`);
  else {
    const v = (x?: number) => (x ? `${Math.floor(x / 1000)}.${(x % 1000) / 10}` : '?');
    lines.push(`  CUDA: driver ${v(cuda.driverVersion)}, runtime ${v(cuda.runtimeVersion)}`);
    for (const d of cuda.devices) {
      const bf16 = bf16Unsupported(`cuda:${d.index}`, info);
      lines.push(`    cuda:${d.index} ${d.name}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, compute capability ${d.computeCapability}; ` +
        `--precision auto: ${bf16 === undefined ? 'bf16' : `fp32 (${bf16})`}`);
    }
  }
  if (forced) lines.push(`  CUDA tuning: ${describeCudaTuning(tuning)}`);
  lines.push(info.mpi.compiled
    ? `  MPI: ${info.mpi.library || 'compiled'} (multi-process training: mpirun -np N craftgrad train ...)`
    : `  MPI: not compiled into this build (multi-process training needs an MPI implementation at build time: install one, Debian: apt-get install libopenmpi-dev, then ${rebuild})`);
  lines.push(info.nccl.available
    ? `  NCCL: ${info.nccl.version} (${info.nccl.library}): GPU ranks reduce on the device`
    : `  NCCL: not available: ${info.nccl.reason ?? 'unknown reason'}`);
  lines.push(info.cublasLt.available
    ? `  cuBLASLt: ${info.cublasLt.version} (${info.cublasLt.library}): bf16 products on the GPU`
    : `  cuBLASLt: not available: ${info.cublasLt.reason ?? 'unknown reason'}`);
  return lines.join('\n');
}

export function registerInfo(y: Argv): Argv {
  return y.command('info', 'Show the build (backends, CPU kernels), the GPUs seen and the versions',
    (b) => b.option('json', { type: 'boolean', default: false, describe: 'Print the raw information as JSON' }),
    (args) => {
      console.log(args.json ? JSON.stringify(backendInfo(), null, 2) : infoText());
    });
}
