// Device gradient sets reduced through host memory with MPI, for runs where some rank cannot
// use NCCL: each set is copied to the host, reduced by World (rank order, the same bits as
// DeviceGroup's), and copied back. The same interface as DeviceGroup, so both data-parallel
// designs work with either; it costs a device → host and a host → device copy of every set.
import type { GradSet } from '../gradset.js';
import type { DeviceReducer } from './device-reducer.js';
import type { World } from './world.js';

export class HostRelay implements DeviceReducer {
  readonly world: World;
  readonly device: string;

  constructor(world: World, device: string) {
    this.world = world;
    this.device = device;
  }

  #through(sets: readonly GradSet[], reduce: (arrays: Float32Array[]) => void): void {
    for (const s of sets) {
      if (s.device !== this.device) throw new RangeError(`a set on ${s.device} given to the host relay of ${this.device}`);
    }
    const flats = sets.map((s) => s.toFlat());
    reduce(flats);
    sets.forEach((s, i) => s.set(flats[i]!));
  }

  reduceScatterInRankOrder(sets: readonly GradSet[]): void {
    this.#through(sets, (a) => this.world.reduceScatterInRankOrder(a));
  }

  allgatherSegments(sets: readonly GradSet[]): void {
    this.#through(sets, (a) => this.world.allgatherSegments(a));
  }

  sumInRankOrder(sets: readonly GradSet[]): void {
    this.#through(sets, (a) => this.world.sumInRankOrder(a));
  }
}
