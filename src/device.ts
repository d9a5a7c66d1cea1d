// Device names: 'cpu' and 'cuda:N'; what users may ask for adds 'auto' and 'cuda' (= cuda:0,
// or, in a process an MPI launcher started, the GPU of its local rank: see cudaIndexForThisRank).
// The one place a device spec is resolved: the binding takes canonical names only and
// picks the backend from them (native/napi/backends.cc).
import { binding } from './native.js';
import { argRangeError, argTypeError, describeValue } from './errors.js';
import { rebuildAdvice } from './rebuild.js';

export type DeviceName = 'cpu' | `cuda:${number}`;
export type DeviceSpec = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface ResolvedDevice {
  kind: 'cpu' | 'cuda';
  index: number;
  name: DeviceName;
}

export const CPU: ResolvedDevice = { kind: 'cpu', index: 0, name: 'cpu' };

/** Parses a device spec; 'auto' resolves to `whenAuto`. Does not check availability. */
export function parseDevice(spec: unknown, name: string, whenAuto: ResolvedDevice): ResolvedDevice {
  if (typeof spec !== 'string') throw argTypeError(`${name} must be a string, got ${describeValue(spec)}`);
  if (spec === 'auto') return whenAuto;
  if (spec === 'cpu') return CPU;
  const m = /^cuda(?::(\d{1,3}))?$/.exec(spec);
  if (!m) throw argRangeError(`${name} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got '${spec}'`);
  const index = m[1] === undefined ? cudaIndexForThisRank() : Number(m[1]);
  return { kind: 'cuda', index, name: `cuda:${index}` };
}

/** The variables launchers set to a process's rank among those on its machine (Open MPI, MPICH/Hydra, PMIx, Slurm). */
const LOCAL_RANK_VARIABLES = ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'PMIX_LOCAL_RANK', 'SLURM_LOCALID'] as const;

/**
 * The GPU 'cuda' means: cuda:0, except in a process an MPI launcher started, where it is
 * the local rank modulo the visible devices, so that the ranks of one machine spread over
 * its GPUs (as torchrun's LOCAL_RANK is used). Ranks sharing a GPU is refused by NCCL itself.
 */
export function cudaIndexForThisRank(env: NodeJS.ProcessEnv = process.env): number {
  for (const v of LOCAL_RANK_VARIABLES) {
    const local = Number(env[v]);
    if (env[v] === undefined || env[v] === '' || !Number.isSafeInteger(local) || local < 0) continue;
    const count = binding.backendInfo().cuda.devices.length;
    return count > 0 ? local % count : 0;
  }
  return 0;
}

/** Throws a clear Error unless CUDA device `index` can be used by this build on this machine. */
export function requireCuda(index: number, name: string): void {
  const info = binding.backendInfo().cuda;
  if (!info.compiled) {
    throw new Error(`${name}: CUDA was requested but this build of craftgrad has no CUDA backend ` +
      `(install the CUDA toolkit, nvcc on the PATH or in /usr/local/cuda, then rebuild craftgrad with ${rebuildAdvice()}; see README "Troubleshooting")`);
  }
  if (!info.available) throw new Error(`${name}: CUDA was requested but is not available: ${info.reason ?? 'unknown reason'}`);
  if (index >= info.devices.length) {
    throw argRangeError(`${name}: cuda:${index} does not exist (${info.devices.length} CUDA device(s) visible)`);
  }
}

/** The best device for new data: the first GPU when one is usable, else the CPU. */
export function defaultDevice(): ResolvedDevice {
  const info = binding.backendInfo().cuda;
  if (!info.available || info.devices.length === 0) return CPU;
  const index = cudaIndexForThisRank();
  return { kind: 'cuda', index, name: `cuda:${index}` };
}

/**
 * Where new data goes: `spec` with 'auto' as {@link defaultDevice}; a CUDA device must be
 * usable here (clear Error otherwise). `name` names the option in messages.
 */
export function resolveDataDevice(spec: unknown, name: string): ResolvedDevice {
  return usable(parseDevice(spec, name, defaultDevice()), name);
}

/** `device` itself once it is known to be usable by this build on this machine (clear Error otherwise). */
export function usable(device: ResolvedDevice, name: string): ResolvedDevice {
  if (device.kind === 'cuda') requireCuda(device.index, name);
  return device;
}
