// A GradientSource for one rank of a data-parallel run: the rank's own source (which
// computes its contiguous share of every global batch, weighted so that the shares sum to
// the batch mean: AdapterPolicySource's `shard`), plus the reductions that make every rank
// see the same step. After a step's last micro-batch both raw gradient sets are summed
// across ranks in rank order (World.sumInRankOrder), so the surgery, λ and the conflict
// statistics that follow are identical on every rank, bit for bit; each micro-batch's
// losses and sample count, and every validation pass, are reduced too. A non-finite value
// on any rank makes the sum non-finite on every rank, so all ranks skip the same steps.
//
// Two designs (docs/ARCHITECTURE.md §7; CRAFTGRAD_DATA_PARALLEL, src/parallel/launcher.ts):
// - plain: both sets are summed whole on every rank (sumInRankOrder), and every rank runs
//   the whole surgery and AdamW: 2 × 2 gradient-sizes sent per rank per step, as N → ∞.
// - sharded (ZeRO-1, `sharded: true`, the default): both sets are only reduce-scattered
//   (reduceScatterInRankOrder): each rank ends with the sums of its own segment of the
//   flat layout, the rest of the sets keep its local values. The trainer's ShardedStep
//   (src/train/sharded-step.ts) then runs pass 1 and AdamW on that segment and all-gathers
//   the parameters: 3 gradient-sizes, and the optimizer state divided by N.
// Host sets go through World (MPI); device sets through a DeviceReducer: the ranks' NCCL
// group (DeviceGroup, on the GPUs) or host copies (HostRelay), with the same bits.
import type { GradSet } from '../gradset.js';
import type { DeviceReducer } from './device-reducer.js';
import { HostRelay } from './host-relay.js';
import type { World } from './world.js';

// The Trainer's GradientSource (src/train/source.ts), declared structurally: src/train sits
// above this layer (docs/ARCHITECTURE.md §2).
type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
interface MicroBatchResult { actionLoss: number; retentionLoss?: number | undefined; samples: number; epoch?: number | undefined }
interface ValidationResult { actionLoss: number; retentionLoss?: number; samples: number; truncated?: boolean | undefined }
export interface GradientSource {
  readonly params: GradSet;
  readonly paramNames: readonly string[];
  readonly paramShapes?: readonly (readonly number[])[];
  readonly supportsOverwrite?: boolean | undefined;
  accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite?: boolean): MicroBatchResult | Promise<MicroBatchResult>;
  validate?: ((options: { timeLimitMs: number }) => ValidationResult | Promise<ValidationResult>) | undefined;
  saveState(): JsonValue;
  restoreState(state: JsonValue): void;
}

export class DataParallelSource implements GradientSource {
  readonly #inner: GradientSource;
  readonly #world: World;
  readonly #microBatches: number;
  #drawn = 0;  // micro-batches drawn in the current step
  /** Reduce-scatter only (the sharded step), instead of summing whole sets. */
  readonly sharded: boolean;
  /** What reduces device sets (undefined for CPU parameters). */
  readonly #devices: DeviceReducer | undefined;

  /**
   * `microBatches`: the trainer's micro-batches per step (the gradients are reduced after
   * the last). `sharded`: leave each rank only its segment's sums. `devices`: what reduces
   * sets on a GPU (a DeviceGroup, for NCCL); by default host copies (HostRelay), same bits.
   */
  constructor(inner: GradientSource, world: World, microBatches: number, options: { sharded?: boolean; devices?: DeviceReducer | undefined } = {}) {
    this.#inner = inner;
    this.#world = world;
    this.#microBatches = microBatches;
    this.sharded = options.sharded ?? false;
    const device = inner.params.device;
    this.#devices = device === 'cpu' ? undefined : (options.devices ?? new HostRelay(world, device));
  }

  get params(): GradSet {
    return this.#inner.params;
  }
  get paramNames(): readonly string[] {
    return this.#inner.paramNames;
  }
  get paramShapes(): readonly (readonly number[])[] {
    return this.#inner.paramShapes ?? this.#inner.params.sizes.map((n) => [n]);
  }
  get supportsOverwrite(): boolean | undefined {
    return this.#inner.supportsOverwrite;
  }

  async accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite?: boolean): Promise<MicroBatchResult> {
    if (overwrite) this.#drawn = 0;  // the first micro-batch of a step
    const r = await this.#inner.accumulate(gAct, gRet, scale, overwrite);
    this.#drawn += 1;
    // Means over the whole global batch: sums weighted by each rank's samples, in rank order.
    const ret = typeof r.retentionLoss === 'number' ? r.retentionLoss : 0;
    const [act, retSum, samples] = this.#world.sum([r.actionLoss * r.samples, ret * r.samples, r.samples]) as [number, number, number];
    if (this.#drawn === this.#microBatches) {
      this.#drawn = 0;
      this.#reduce(gAct);
      if (gRet) this.#reduce(gRet);
    }
    return {
      actionLoss: act / samples, samples, ...(r.epoch === undefined ? {} : { epoch: r.epoch }),
      ...(typeof r.retentionLoss === 'number' ? { retentionLoss: retSum / samples } : {}),
    };
  }

  // Host sets in place with MPI; device sets with the device reducer.
  #reduce(set: GradSet): void {
    if (set.device === 'cpu') {
      if (this.sharded) this.#world.reduceScatterInRankOrder([set.data]);
      else this.#world.sumInRankOrder([set.data]);
      return;
    }
    // A device set is on the parameters' device, for which the constructor set #devices.
    if (this.sharded) this.#devices!.reduceScatterInRankOrder([set]);
    else this.#devices!.sumInRankOrder([set]);
  }

  get validate(): ((options: { timeLimitMs: number }) => Promise<ValidationResult>) | undefined {
    const inner = this.#inner.validate?.bind(this.#inner);
    if (!inner) return undefined;
    return async (options) => {
      const v = await inner(options);
      // A rank whose share of the split is empty evaluated nothing: it adds nothing.
      const w = v.samples > 0 ? v.samples : 0;
      const ret = typeof v.retentionLoss === 'number';
      const [act, retSum, samples, truncated, withRet] = this.#world.sum([
        w ? v.actionLoss * w : 0, w && ret ? v.retentionLoss! * w : 0, w, v.truncated ? 1 : 0, ret ? 1 : 0,
      ]) as [number, number, number, number, number];
      return {
        actionLoss: samples ? act / samples : Number.NaN, samples,
        ...(withRet === this.#world.size ? { retentionLoss: samples ? retSum / samples : Number.NaN } : {}),
        ...(truncated > 0 ? { truncated: true } : {}),
      };
    };
  }

  saveState(): JsonValue {
    return this.#inner.saveState();
  }

  restoreState(state: JsonValue): void {
    this.#drawn = 0;
    this.#inner.restoreState(state);
  }
}
