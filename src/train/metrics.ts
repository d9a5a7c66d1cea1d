// Per-step metrics: the keys of ARCHITECTURE.md §5 and the one interface sinks implement.
// The key list itself is the run layer's (src/run/metrics.ts): one list for the trainer's
// rows and the files' columns. A run-layer MetricsSink (write(row): void) is a valid
// StepMetricsSink: pass it in `sinks` as is.
import { METRIC_KEYS, CRAFT_KEYS, WALL_CLOCK_KEYS } from '../run/metrics.js';

export { METRIC_KEYS };
/** Keys that exist only in CRaFT mode (absent from baseline rows). */
export const CRAFT_METRIC_KEYS = CRAFT_KEYS;
/** Keys that depend on wall-clock time (excluded when comparing runs bit for bit). */
export const WALL_CLOCK_METRIC_KEYS = WALL_CLOCK_KEYS;

/** A metric key. */
export type StepMetricKey = (typeof METRIC_KEYS)[number];

/** The keys a run's rows can hold: all of them in CRaFT mode, the CRaFT ones left out in baseline mode. */
export function metricKeys(mode: 'craft' | 'baseline'): StepMetricKey[] {
  if (mode === 'craft') return [...METRIC_KEYS];
  return METRIC_KEYS.filter((k) => !CRAFT_METRIC_KEYS.includes(k));
}

/**
 * One optimizer step's metrics. `step` is the number of optimizer steps done (1 after the
 * first), `nonfinite_skipped` the running count of skipped steps, `val_action_loss` and
 * `val_retention_loss` present on validation steps only, the CRaFT keys absent in baseline mode.
 */
export interface StepMetrics {
  step: number;
  epoch: number;
  action_loss: number;
  retention_loss?: number;
  retention_budget?: number;
  lambda_before?: number;
  lambda_after?: number;
  conflict_ratio?: number;
  num_conflicts?: number;
  num_tensors?: number;
  grad_norm: number;
  lr: number;
  nonfinite_skipped: number;
  step_ms: number;
  samples_per_s: number;
  val_action_loss?: number;
  /**
   * Retention loss on the validation split (no-gradient anchor forward), on validation
   * steps when the source measures it: in baseline mode too, where it shows the drift
   * CRaFT would have held to its budget.
   */
  val_retention_loss?: number;
}

/** What a step produced beyond the row (a side channel: sinks that only want rows ignore it). */
export interface StepDetail {
  /** 1 where tensor i conflicted this step (CRaFT mode; all zeros in baseline mode). */
  conflicts: Uint8Array;
  /** <g_act_i, g_ret_i> per tensor (CRaFT mode), else <g_act_i, g_act_i>. */
  dots: Float64Array;
  /** True when the step was skipped for a non-finite gradient or loss. */
  skipped: boolean;
  /** The factor the gradient was multiplied by (1 when not clipped). */
  clipScale: number;
  /** Samples in the step. */
  samples: number;
  /** Set when validation ran this step and its time limit cut it short. */
  valTruncated?: boolean;
}

/** Where metrics rows go. `write` may be async; the trainer awaits it before the next step. */
export interface StepMetricsSink {
  write(row: Readonly<StepMetrics>, detail: Readonly<StepDetail>): void | Promise<void>;
  close?(): void | Promise<void>;
}
