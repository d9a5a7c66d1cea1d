// The sharded (ZeRO-1) data-parallel step (docs/ARCHITECTURE.md §7): every rank owns one
// contiguous segment [start, end) of the flat parameter layout (World.segment: the segments
// of the rank-order reductions), which cuts tensors into pieces. After the gradients are
// reduce-scattered (DataParallelSource with `sharded`), each rank
//   1. runs pass 1 (craftReduce) on its pieces: per-piece d, q, ‖a‖² and non-finite flags;
//   2. all-gathers the per-tensor partials (4 doubles per tensor) and adds them in rank
//      order, then turns them into coefficients, conflicts, norm and the non-finite count by
//      craftCombine (the code craftReduce uses): every rank has the same bits;
//   3. runs pass 2 + AdamW (adamwFused) on its pieces, with m and v held for them only;
//   4. all-gathers the parameters, so every rank holds the same weights.
// On GPUs a rank's segment is a view of the device set (no copy), and the parameters are
// all-gathered by the run's DeviceReducer (NCCL, or host copies).
// Pass 2 and AdamW are elementwise: a piece's update has the bits the whole tensor's would
// have with the same coefficient. Only the per-tensor sums are added in another order than
// one process adds them (pieces, then ranks), so a run matches the one-process run to
// rounding, and itself bit for bit.
import { GradSet, gradSetView } from '../gradset.js';
import type { DeviceReducer } from '../parallel/device-reducer.js';
import { HostRelay } from '../parallel/host-relay.js';
import type { World } from '../parallel/world.js';
import { craftCombine, craftReduce, type CraftReduceResult } from './optimizer.js';

/** One piece of a tensor in this rank's segment. */
export interface ShardPiece {
  tensor: number;
  /** Offset of the piece in its tensor. */
  offset: number;
  length: number;
}

export class ShardedStep {
  readonly world: World;
  /** The whole layout's tensor sizes. */
  readonly sizes: readonly number[];
  readonly numElements: number;
  /** This rank's segment of the flat layout. */
  readonly start: number;
  readonly end: number;
  readonly pieces: readonly ShardPiece[];
  readonly #views = new WeakMap<GradSet, GradSet>();
  readonly #pieceCoefficients: Float64Array;
  readonly #devices: DeviceReducer | undefined;

  /** `devices`: what all-gathers sets on a GPU (default: host copies, HostRelay). */
  constructor(world: World, sizes: readonly number[], devices?: DeviceReducer) {
    this.world = world;
    this.#devices = devices;
    this.sizes = [...sizes];
    this.numElements = sizes.reduce((a, b) => a + b, 0);
    if (this.numElements < world.size) {
      throw new RangeError(`the sharded data-parallel step needs at least one element per rank: ${this.numElements} elements, ${world.size} ranks`);
    }
    ({ start: this.start, end: this.end } = world.segment(this.numElements));
    const pieces: ShardPiece[] = [];
    let at = 0;
    sizes.forEach((n, tensor) => {
      const lo = Math.max(at, this.start), hi = Math.min(at + n, this.end);
      if (hi > lo) pieces.push({ tensor, offset: lo - at, length: hi - lo });
      at += n;
    });
    this.pieces = pieces;
    this.#pieceCoefficients = new Float64Array(pieces.length);
  }

  /** The pieces' sizes (the layout of this rank's segment). */
  get pieceSizes(): number[] {
    return this.pieces.map((p) => p.length);
  }

  /** This rank's segment of a set of the whole layout, as a set of its pieces (a view on its device: no copy). */
  view(set: GradSet): GradSet {
    let v = this.#views.get(set);
    if (!v) {
      if (set.numElements !== this.numElements) throw new RangeError(`the set has ${set.numElements} elements, the sharded layout ${this.numElements}`);
      v = set.device === 'cpu' ? GradSet.wrap(set.data.subarray(this.start, this.end), this.pieceSizes) : gradSetView(set, this.start, this.pieceSizes);
      this.#views.set(set, v);
    }
    return v;
  }

  /**
   * Pass 1 over the whole layout, computed on this rank's pieces and combined across ranks
   * (collective: every rank calls it). `act`, `ret`: whole-layout sets whose segment holds
   * the reduced sums; `ret` may be `act`.
   */
  reduce(act: GradSet, ret: GradSet, options: { lambda: number; eps?: number; projection?: boolean }): CraftReduceResult {
    const k = this.sizes.length;
    const local = craftReduce(this.view(act), this.view(ret), options);
    const mine = new Float64Array(4 * k);
    this.pieces.forEach((p, j) => {
      mine[p.tensor] = local.dots[j]!;
      mine[k + p.tensor] = local.retNormsSq[j]!;
      mine[2 * k + p.tensor] = local.actNormsSq[j]!;
      mine[3 * k + p.tensor] = local.nonFiniteFlags[j]!;
    });
    // Rank by rank, added in rank order: the same doubles on every rank.
    const all = this.world.allgather(mine);
    const total = new Float64Array(4 * k);
    for (const row of all) for (let i = 0; i < 4 * k; i++) total[i] += row[i]!;
    const flags = new Uint8Array(k);
    for (let i = 0; i < k; i++) flags[i] = total[3 * k + i]! > 0 ? 1 : 0;
    return craftCombine({
      dots: total.subarray(0, k), retNormsSq: total.subarray(k, 2 * k), actNormsSq: total.subarray(2 * k, 3 * k), nonFiniteFlags: flags,
    }, options);
  }

  /** The per-tensor coefficients of the pieces, in piece order. */
  pieceCoefficients(coefficients: Float64Array): Float64Array {
    this.pieces.forEach((p, j) => (this.#pieceCoefficients[j] = coefficients[p.tensor]!));
    return this.#pieceCoefficients;
  }

  /** Every rank's segment of `params` (a set of the whole layout) into every rank's (collective). */
  allgather(params: GradSet): void {
    if (params.device === 'cpu') this.world.allgatherSegments([params.data]);
    else (this.#devices ?? new HostRelay(this.world, params.device)).allgatherSegments([params]);
  }

  /**
   * A set of the whole layout from every rank's pieces (`segment`: a set of this rank's
   * pieces), on `root`; a set of zeros of the whole layout elsewhere. Collective.
   */
  gather(segment: GradSet, root = 0): GradSet {
    const full = this.world.gatherSegments(segment.device === 'cpu' ? segment.data : segment.toFlat(), this.numElements, root);
    return full ? GradSet.wrap(full, this.sizes) : GradSet.zeros(this.sizes);
  }

  /** This rank's pieces of a whole-layout set (a copy, in the pieces' layout). */
  slice(full: GradSet): GradSet {
    const flat = full.device === 'cpu' ? full.data.slice(this.start, this.end) : full.toFlat().slice(this.start, this.end);
    return GradSet.wrap(flat, this.pieceSizes);
  }
}
