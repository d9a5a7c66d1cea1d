// The ranks' GPUs as one NCCL group (README "Multi-process training"): device gradient sets
// are reduced on the device, with the bits of World's host reductions (segments summed in
// rank order: native/cuda/nccl_communicator.cc), instead of going device → host → MPI →
// device. NCCL is loaded at run time; rank 0 makes the rendezvous id and MPI carries it to
// the others (as llm.c does). Opening is collective, and every rank takes the same path:
// when any rank cannot use NCCL, all of them reduce through the host (HostRelay) and say why.
import type { RawNcclCommunicator } from '../../binding.js';
import type { GradSet } from '../gradset.js';
import type { DeviceReducer } from './device-reducer.js';
import { gradSetInternals } from '../gradset.js';
import { ncclCommunicator, ncclInfo, ncclUniqueId } from '../native-calls.js';
import type { World } from './world.js';

/** CRAFTGRAD_DEVICE_REDUCE: 'auto' (NCCL when every rank has it), 'nccl' (required) or 'host' (MPI through host memory). */
export type DeviceReduce = 'auto' | 'nccl' | 'host';

export function deviceReduceMode(v: string | undefined = process.env.CRAFTGRAD_DEVICE_REDUCE): DeviceReduce {
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'nccl' || v === 'host') return v;
  throw new RangeError(`CRAFTGRAD_DEVICE_REDUCE must be 'auto', 'nccl' or 'host', got ${JSON.stringify(v)}`);
}

export class DeviceGroup implements DeviceReducer {
  readonly world: World;
  readonly device: string;
  readonly #comm: RawNcclCommunicator;

  private constructor(world: World, device: string, comm: RawNcclCommunicator) {
    this.world = world;
    this.device = device;
    this.#comm = comm;
  }

  /**
   * The NCCL group of the ranks' `device`s, or, when a rank cannot use NCCL (or `mode` is
   * 'host'), undefined and the reason (the same on every rank). Collective. Throws on every
   * rank when `mode` is 'nccl' and a rank lacks NCCL.
   */
  static open(world: World, device: string, mode: DeviceReduce = deviceReduceMode()): { group?: DeviceGroup; why?: string } {
    if (mode === 'host') return { why: 'CRAFTGRAD_DEVICE_REDUCE=host' };
    const info = ncclInfo();
    // Every rank learns which ranks lack NCCL (rank order), so all take the same path.
    const missing = world.allgather([info.available ? 0 : 1]).map((r, rank) => (r[0] ? rank : -1)).filter((r) => r >= 0);
    if (missing.length > 0) {
      const why = `rank ${missing[0]} cannot use NCCL${missing[0] === world.rank ? ` (${info.reason ?? 'unknown reason'})` : ''}`;
      if (mode === 'nccl') throw new Error(`craftgrad: CRAFTGRAD_DEVICE_REDUCE=nccl but ${why}`);
      return { why };
    }
    const id = world.rank === 0 ? ncclUniqueId() : new Uint8Array(128);
    world.broadcast(id);
    const comm = ncclCommunicator({ id, rank: world.rank, size: world.size, device });
    return { group: new DeviceGroup(world, device, comm) };
  }

  /** NCCL's version and file, for the run's log. */
  static describe(): string {
    const i = ncclInfo();
    return i.available ? `NCCL ${i.version} (${i.library})` : `no NCCL (${i.reason})`;
  }

  #handles(sets: readonly GradSet[]) {
    return sets.map((s) => {
      if (s.device !== this.device) throw new RangeError(`a set on ${s.device} given to the NCCL group of ${this.device}`);
      return gradSetInternals(s);
    });
  }

  /** Each set's segment ends holding the rank-order sum of every rank's copy (World.reduceScatterInRankOrder's bits). */
  reduceScatterInRankOrder(sets: readonly GradSet[]): void {
    this.#comm.reduceScatterInRankOrder(this.#handles(sets));
    for (const s of sets) this.world.bytesSent += this.world.reduceScatterBytes(s.numElements);
  }

  /** Every rank's segment of each set into every rank's. */
  allgatherSegments(sets: readonly GradSet[]): void {
    this.#comm.allgatherSegments(this.#handles(sets));
    for (const s of sets) this.world.bytesSent += this.world.allgatherBytes(s.numElements);
  }

  /** Both halves: every rank ends with the rank-order sums of the whole sets (World.sumInRankOrder's bits). */
  sumInRankOrder(sets: readonly GradSet[]): void {
    this.reduceScatterInRankOrder(sets);
    this.allgatherSegments(sets);
  }

  /** Ends the group (peers' pending calls fail). */
  abort(): void {
    this.#comm.abort();
  }
}
