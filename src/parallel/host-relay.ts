// Device gradient sets reduced through host memory with MPI, for runs where some rank cannot
// use NCCL: each set is copied to the host, reduced by World (rank order, the same bits as
// DeviceGroup's), and copied back. The same interface as DeviceGroup, so both data-parallel
// designs work with either. The plain sum copies every set down and up; the sharded step's
// halves copy only what they need of this rank's segment.
import { gradSetInternals, type GradSet } from '../gradset.js';
import type { DeviceReducer } from './device-reducer.js';
import type { World } from './world.js';

export class HostRelay implements DeviceReducer {
  readonly world: World;
  readonly device: string;

  constructor(world: World, device: string) {
    this.world = world;
    this.device = device;
  }

  #check(sets: readonly GradSet[]): void {
    for (const s of sets) {
      if (s.device !== this.device) throw new RangeError(`a set on ${s.device} given to the host relay of ${this.device}`);
    }
  }

  reduceScatterInRankOrder(sets: readonly GradSet[]): void {
    this.#check(sets);
    const flats = sets.map((s) => s.toFlat());
    this.world.reduceScatterInRankOrder(flats);
    // Only this rank's segment changed: copy just that back.
    sets.forEach((s, i) => {
      const { start, end } = this.world.segment(s.numElements);
      if (end > start) gradSetInternals(s).upload(flats[i]!.subarray(start, end), start);
    });
  }

  allgatherSegments(sets: readonly GradSet[]): void {
    this.#check(sets);
    // Only this rank's segment is read from the device: the peers send the rest.
    const flats = sets.map((s) => {
      const flat = new Float32Array(s.numElements);
      const { start, end } = this.world.segment(s.numElements);
      if (end > start) gradSetInternals(s).download(flat.subarray(start, end), start);
      return flat;
    });
    this.world.allgatherSegments(flats);
    sets.forEach((s, i) => s.set(flats[i]!));
  }

  sumInRankOrder(sets: readonly GradSet[]): void {
    this.#check(sets);
    const flats = sets.map((s) => s.toFlat());
    this.world.sumInRankOrder(flats);
    sets.forEach((s, i) => s.set(flats[i]!));
  }
}
