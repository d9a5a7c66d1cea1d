// How the ranks of a data-parallel run reduce gradient sets that live on their GPUs: with
// NCCL on the devices (DeviceGroup) or through host memory with MPI (HostRelay). Both sum
// fixed segments in rank order, so a run's bits do not depend on which one it got.
import type { GradSet } from '../gradset.js';

export interface DeviceReducer {
  /** The device every set given to it must be on. */
  readonly device: string;
  /** Each set's segment (World.segment) ends holding the rank-order sum of every rank's copy; the rest keeps its values. Collective. */
  reduceScatterInRankOrder(sets: readonly GradSet[]): void;
  /** Every rank's segment of each set into every rank's. Collective. */
  allgatherSegments(sets: readonly GradSet[]): void;
  /** Both halves: every rank ends with the rank-order sums of the whole sets. Collective. */
  sumInRankOrder(sets: readonly GradSet[]): void;
}
