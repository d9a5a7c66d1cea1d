// The comparison CRaFT exists for: each run's final validation action loss and validation
// retention loss (how far its features drifted, against the budget ε), and, when a
// baseline is among the runs, every other run's difference from it.
import type { AtStep, RunSummary } from './summary.js';

export interface Difference {
  /** value − baseline value. */
  delta: number;
  /** value / baseline value (undefined when the baseline's value is 0). */
  ratio: number | undefined;
}

export interface ComparisonRow {
  label: string;
  mode: RunSummary['mode'];
  valAction: AtStep | undefined;
  valRetention: AtStep | undefined;
  budget: number | undefined;
  /** valRetention / budget. */
  budgetRatio: number | undefined;
  /** Differences from the baseline (undefined for the baseline itself, or without one). */
  valActionDiff: Difference | undefined;
  valRetentionDiff: Difference | undefined;
}

export interface Comparison {
  /** The label of the run the others are compared with: the first baseline among the runs. */
  baseline: string | undefined;
  rows: ComparisonRow[];
}

function difference(a: AtStep | undefined, b: AtStep | undefined): Difference | undefined {
  if (a === undefined || b === undefined) return undefined;
  return { delta: a.value - b.value, ratio: b.value !== 0 ? a.value / b.value : undefined };
}

export function compareRuns(summaries: readonly RunSummary[]): Comparison {
  const base = summaries.find((s) => s.mode === 'baseline');
  const rows = summaries.map((s): ComparisonRow => {
    const isBase = s === base;
    return {
      label: s.label,
      mode: s.mode,
      valAction: s.finalVal,
      valRetention: s.finalValRetention,
      budget: s.budget,
      budgetRatio: s.finalValRetention !== undefined && s.budget !== undefined ? s.finalValRetention.value / s.budget : undefined,
      valActionDiff: base && !isBase ? difference(s.finalVal, base.finalVal) : undefined,
      valRetentionDiff: base && !isBase ? difference(s.finalValRetention, base.finalValRetention) : undefined,
    };
  });
  return { baseline: base?.label, rows };
}
