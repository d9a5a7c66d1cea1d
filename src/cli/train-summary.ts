// The short summary `craftgrad train` prints at the end, computed from the run's own
// metrics file with the report's code (so it agrees with report.html's table).
import { join } from 'node:path';
import { loadRun } from '../report/run-load.js';
import { summarize } from '../report/summary.js';
import type { TrainRunConfig } from '../train/run-config.js';
import type { TrainingOutcome } from '../train/session.js';
import { resumeCommand } from '../run/signals.js';

export interface SummaryInput {
  dir: string;
  config: TrainRunConfig;
  outcome: TrainingOutcome;
  reportPath: string | undefined;
  show: (path: string) => string;
}

const num = (v: number | null | undefined, digits = 4): string =>
  typeof v !== 'number' ? '–' : Math.abs(v) !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5) ? v.toExponential(3) : v.toFixed(digits);

function peakLambda(rows: readonly { step: number; lambda_after?: number | null }[]): string {
  let peak: { v: number; step: number } | undefined;
  for (const r of rows) if (typeof r.lambda_after === 'number' && (!peak || r.lambda_after > peak.v)) peak = { v: r.lambda_after, step: r.step };
  return peak && peak.v > 0 ? ` (peak ${num(peak.v)} at step ${peak.step})` : '';
}

/**
 * How a retention loss stands against the budget: "0.64× the budget" (two decimals below
 * 10×, one above; two significant digits below 0.01×, where two decimals would read 0.00×).
 */
export function budgetRatio(value: number, budget: number): string {
  const r = value / budget;
  const text = r >= 10 ? r.toFixed(1) : r >= 0.01 || r === 0 ? r.toFixed(2) : r.toPrecision(2);
  return `${text}× the budget`;
}

/** The val retention line: the last retention loss on the validation split against the budget, in both modes. */
function valRetentionLine(s: ReturnType<typeof summarize>, budget: number, craft: boolean): string {
  const v = s.finalValRetention;
  if (!v) return '  val retention     not measured (--val-every 0 or no validation split)';
  const within = v.value <= budget ? 'within' : 'over';
  return `  val retention     ${num(v.value)} (step ${v.step}) against a budget of ${num(budget)}: ${budgetRatio(v.value, budget)}` +
    (craft ? ` (${within})` : ' (a baseline does not hold it)');
}

export function trainSummary({ dir, config, outcome, reportPath, show }: SummaryInput): string {
  const run = loadRun(dir);
  const s = summarize(run);
  const rows = run.rows;
  const first = rows.find((r) => typeof r.action_loss === 'number');
  const last = rows[rows.length - 1];
  const firstVal = rows.find((r) => typeof r.val_action_loss === 'number');
  const rates = rows.map((r) => r.samples_per_s).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const meanRate = rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : undefined;
  const seconds = outcome.elapsedMs / 1000;
  const lines = [
    `craftgrad: finished ${outcome.step} steps${outcome.startStep ? ` (resumed after step ${outcome.startStep})` : ''} in ${seconds.toFixed(1)} s` +
      (meanRate ? `, ${Math.round(meanRate)} samples/s` : '') +
      ` (${outcome.trainSamples} training, ${outcome.valSamples} validation samples)`,
    `  action loss       ${num(first?.action_loss)} → ${num(s.finalAction?.value)}` +
      (s.bestAction ? ` (best ${num(s.bestAction.value)} at step ${s.bestAction.step})` : ''),
    `  validation loss   ${s.finalVal ? `${num(firstVal?.val_action_loss)} → ${num(s.finalVal.value)} (step ${s.finalVal.step})` : 'not measured (--val-every 0 or no validation split)'}`,
  ];
  const budget = s.finalBudget ?? config.budget;
  if (config.craft) {
    const r = s.finalRetention;
    lines.push(
      `  retention loss    ${r ? `${num(r.value)} against a budget of ${num(budget)}: ${budgetRatio(r.value, budget)} (${r.value <= budget ? 'within' : 'over'})` : '–'}`,
      valRetentionLine(s, budget, true),
      `  λ                 ${num(last?.lambda_after)}${config.dual ? peakLambda(rows) : ' (fixed)'}`,
      `  conflict ratio    ${s.meanConflictRatio === undefined ? '–' : (100 * s.meanConflictRatio).toFixed(1) + '%'} on average`,
    );
  } else {
    lines.push(valRetentionLine(s, budget, false), '  baseline run: no λ or conflicts (train with --craft to compare)');
  }
  if (s.nonfiniteSkipped) lines.push(`  skipped steps     ${s.nonfiniteSkipped} (non-finite gradients or losses)`);
  lines.push(
    `  run directory     ${show(dir)}  (metrics.jsonl, metrics.csv, config.json, train_progress.log)`,
    `  checkpoints       ${show(join(dir, 'checkpoints'))}${outcome.lastCheckpoint ? `  (last: ${show(outcome.lastCheckpoint)})` : ''}`,
    `  TensorBoard       tensorboard --logdir ${show(dir)}`,
  );
  if (reportPath) lines.push(`  report            ${show(reportPath)}`);
  // Only what a resume accepts: under a cosine schedule --steps is fixed (the schedule ends there).
  lines.push(config.schedule === 'cosine'
    ? `  train further     a cosine schedule ends at its last step, so a resume cannot add steps: start a new run with --steps ${config.steps * 2}`
    : `  train further     ${resumeCommand(show(dir))} --steps ${config.steps * 2}`);
  return lines.join('\n');
}
