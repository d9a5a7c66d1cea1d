// The numbers of the summary table, one row per run. Pure functions of the rows, so the
// table and the tests agree on what "final", "best" and "total time" mean.
import type { ReportMetricKey, ReportRow } from './metrics-read.js';
import type { RunData } from './run-load.js';

export interface AtStep {
  value: number;
  step: number;
}

export interface RunSummary {
  label: string;
  mode: RunData['mode'];
  /** Last logged step (undefined without rows). */
  steps: number | undefined;
  rows: number;
  finalAction: AtStep | undefined;
  bestAction: AtStep | undefined;
  finalVal: AtStep | undefined;
  bestVal: AtStep | undefined;
  finalRetention: AtStep | undefined;
  /** The budget ε in force at the final retention value. */
  finalBudget: number | undefined;
  /** The last retention loss measured on the validation split (baseline runs too). */
  finalValRetention: AtStep | undefined;
  /** The run's retention budget ε (logged, else from config.json): what val retention is measured against. */
  budget: number | undefined;
  meanConflictRatio: number | undefined;
  /** Wall time of the optimizer steps, from step_ms (validation is not part of step_ms). */
  totalMs: number | undefined;
  nonfiniteSkipped: number | undefined;
}

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The last row with a finite value of `key`. */
export function finalOf(rows: readonly ReportRow[], key: ReportMetricKey): AtStep | undefined {
  for (let i = rows.length - 1; i >= 0; --i) {
    const v = rows[i]![key];
    if (finite(v)) return { value: v, step: rows[i]!.step };
  }
  return undefined;
}

/** The smallest finite value of `key` (the first step reaching it). */
export function bestOf(rows: readonly ReportRow[], key: ReportMetricKey): AtStep | undefined {
  let best: AtStep | undefined;
  for (const r of rows) {
    const v = r[key];
    if (finite(v) && (!best || v < best.value)) best = { value: v, step: r.step };
  }
  return best;
}

export function meanOf(rows: readonly ReportRow[], key: ReportMetricKey): number | undefined {
  let sum = 0, n = 0;
  for (const r of rows) {
    const v = r[key];
    if (finite(v)) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum / n : undefined;
}

/**
 * Σ step_ms over the steps. A row may stand for several steps (logging every N steps), so
 * each row's step_ms counts once per step since the previous row.
 */
export function totalStepMs(rows: readonly ReportRow[]): number | undefined {
  let total = 0, any = false, prev = 0;
  for (const r of rows) {
    const gap = Math.max(1, r.step - prev);
    prev = r.step;
    if (finite(r.step_ms)) {
      total += r.step_ms * gap;
      any = true;
    }
  }
  return any ? total : undefined;
}

export function summarize(run: RunData): RunSummary {
  const rows = run.rows;
  const finalRetention = finalOf(rows, 'retention_loss');
  const budgetRow = finalRetention && rows.find((r) => r.step === finalRetention.step);
  const budget = budgetRow?.retention_budget;
  return {
    label: run.label,
    mode: run.mode,
    steps: rows.length > 0 ? rows[rows.length - 1]!.step : undefined,
    rows: rows.length,
    finalAction: finalOf(rows, 'action_loss'),
    bestAction: bestOf(rows, 'action_loss'),
    finalVal: finalOf(rows, 'val_action_loss'),
    bestVal: bestOf(rows, 'val_action_loss'),
    finalRetention,
    finalBudget: finite(budget) ? budget : finalOf(rows, 'retention_budget')?.value,
    finalValRetention: finalOf(rows, 'val_retention_loss'),
    budget: run.budget,
    meanConflictRatio: meanOf(rows, 'conflict_ratio'),
    totalMs: totalStepMs(rows),
    nonfiniteSkipped: finalOf(rows, 'nonfinite_skipped')?.value,
  };
}
