// The contract between the Trainer and whatever produces gradients (the built-in model,
// or host code through HostGradientSource). Kept deliberately small: the source owns its
// parameters, its data sampler and its RNG; the trainer owns the optimizer, λ and the loop.
import type { GradSet } from '../gradset.js';

/** A JSON-serializable value (what `saveState` returns and `restoreState` takes). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What one micro-batch reports back to the trainer. */
export interface MicroBatchResult {
  /** Mean action loss over the micro-batch's samples. */
  actionLoss: number;
  /**
   * Mean retention loss over the micro-batch's samples. Required when the trainer asked
   * for a retention gradient (`gRet` given); ignored in baseline mode.
   */
  retentionLoss?: number | undefined;
  /** Number of samples in the micro-batch (for samples/s and the meters). */
  samples: number;
  /** The epoch the micro-batch's samples were drawn in (0-based), when the source tracks one. */
  epoch?: number | undefined;
}

/** What a validation pass reports. */
export interface ValidationResult {
  /** Mean action loss over the validation samples evaluated. */
  actionLoss: number;
  /**
   * Optional: mean retention loss (feature drift from the anchor) over the same samples,
   * measured in baseline mode too. Logged as `val_retention_loss` when it is a number.
   */
  retentionLoss?: number;
  /** Samples evaluated (fewer than the split when the time limit cut the pass short). */
  samples: number;
  /** True when the time limit stopped the pass before the end of the split. */
  truncated?: boolean | undefined;
}

/**
 * A source of gradients the Trainer can drive.
 *
 * Per optimizer step the trainer zeroes its accumulators and calls `accumulate` once per
 * micro-batch with `scale = 1 / microBatches`, so the accumulators end up holding the mean
 * of the raw gradients. The trainer then updates `params` in place. A source that sets
 * `supportsOverwrite` is not zeroed for: it gets `overwrite = true` on the step's first
 * micro-batch instead (one pass over the gradients fewer per step).
 */
export interface GradientSource {
  /** The trainable parameters, one tensor per entry; updated in place by the trainer. */
  readonly params: GradSet;
  /** One name per tensor of `params` (the names checkpoints use). */
  readonly paramNames: readonly string[];
  /**
   * Optional: the real shape of each tensor of `params` (same order; each shape's product
   * is the tensor's size). Checkpoints store the tensors (and their AdamW moments) with
   * these shapes; without them, 1-D.
   */
  readonly paramShapes?: readonly (readonly number[])[];
  /**
   * Draws the next micro-batch from the source's own sampler, computes its losses and
   * adds `scale · g_act` into `gAct` and, when `gRet` is given (CRaFT mode), `scale · g_ret`
   * into `gRet`. `gRet` undefined means baseline mode: no anchor forward, no retention
   * gradient. Both sets have the layout (sizes, device) of `params`. Must not modify `params`.
   * `overwrite` (only ever true when `supportsOverwrite`): replace the sets' contents.
   */
  accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite?: boolean): MicroBatchResult | Promise<MicroBatchResult>;
  /**
   * Optional: true when `accumulate` honours `overwrite` (write `scale · g` instead of
   * adding it). The trainer then skips zeroing the accumulators.
   */
  readonly supportsOverwrite?: boolean | undefined;
  /**
   * Optional: the action loss (and, optionally, the retention loss) on the validation split. Should stop drawing batches once
   * `timeLimitMs` have passed and report what it evaluated (`truncated: true`).
   */
  validate?: ((options: { timeLimitMs: number }) => ValidationResult | Promise<ValidationResult>) | undefined;
  /** The source's state beyond `params` (sampler position, RNG, ...), for exact resume. */
  saveState(): JsonValue;
  /** Restores what `saveState` returned. */
  restoreState(state: JsonValue): void;
}
