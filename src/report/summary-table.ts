// The summary table of the runs as HTML: one row per run, numbers formatted for reading.
import type { AtStep, RunSummary } from './summary.js';
import { compareRuns, type Difference } from './comparison.js';
import { escapeHtml } from './html-escape.js';

/** 4 significant digits; small and large values in exponent form. */
export function formatNumber(v: number | undefined): string {
  if (v === undefined) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

function atStep(a: AtStep | undefined): string {
  return a === undefined ? '—' : `${formatNumber(a.value)} <span class="at">@${a.step}</span>`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '—';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - 60 * m)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function retention(s: RunSummary): string {
  if (s.finalRetention === undefined) return s.mode === 'baseline' ? '<span class="na">baseline</span>' : '—';
  const value = `${formatNumber(s.finalRetention.value)}`;
  if (s.finalBudget === undefined) return `${value} (no budget logged)`;
  const ok = s.finalRetention.value <= s.finalBudget;
  return `${value} / ${formatNumber(s.finalBudget)} <span class="${ok ? 'ok' : 'over'}">${ok ? 'within' : 'over'}</span>`;
}

export const SUMMARY_COLUMNS = [
  'run', 'mode', 'steps', 'final action loss', 'best action loss', 'final val loss', 'best val loss',
  'final retention / budget', 'mean conflict ratio', 'total step time', 'skipped (non-finite)',
] as const;

export function summaryTableHtml(summaries: readonly RunSummary[]): string {
  const head = SUMMARY_COLUMNS.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = summaries.map((s) => {
    const cells = [
      `<th scope="row">${escapeHtml(s.label)}</th>`,
      s.mode === 'craft' ? 'CRaFT' : s.mode === 'baseline' ? 'baseline' : '—',
      s.steps === undefined ? '—' : `${s.steps}${s.rows !== s.steps ? ` <span class="at">(${s.rows} rows)</span>` : ''}`,
      atStep(s.finalAction), atStep(s.bestAction), atStep(s.finalVal), atStep(s.bestVal),
      retention(s),
      s.meanConflictRatio === undefined ? (s.mode === 'baseline' ? '<span class="na">baseline</span>' : '—') : formatNumber(s.meanConflictRatio),
      formatDuration(s.totalMs),
      s.nonfiniteSkipped === undefined ? '—' : String(s.nonfiniteSkipped),
    ];
    return `<tr>${cells.map((c, i) => (i === 0 ? c : `<td>${c}</td>`)).join('')}</tr>`;
  }).join('\n');
  return `<table class="summary">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** A difference from the baseline: signed, and as a multiple of the baseline's value. */
export function formatDifference(d: Difference | undefined): string {
  if (d === undefined) return '—';
  const sign = d.delta > 0 ? '+' : d.delta < 0 ? '−' : '±';
  const ratio = d.ratio === undefined ? '' : ` (${formatNumber(d.ratio)}×)`;
  return `${sign}${formatNumber(Math.abs(d.delta))}${ratio}`;
}

export const COMPARISON_COLUMNS = [
  'run', 'mode', 'final val action loss', 'vs baseline', 'final val retention loss', '× budget ε', 'vs baseline',
] as const;

/**
 * The table that answers "what does CRaFT buy": final validation action and retention
 * loss of each run, the retention as a multiple of the budget, and the differences from
 * the first baseline among the runs (the columns say "—" when there is none).
 */
export function comparisonTableHtml(summaries: readonly RunSummary[]): string {
  const c = compareRuns(summaries);
  const head = COMPARISON_COLUMNS.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = c.rows.map((r) => {
    const ratio = r.budgetRatio === undefined ? '—'
      : `${formatNumber(r.budgetRatio)}× <span class="${r.budgetRatio <= 1 ? 'ok' : 'over'}">${r.budgetRatio <= 1 ? 'within' : 'over'}</span>`;
    const isBase = r.label === c.baseline;
    const cells = [
      `<th scope="row">${escapeHtml(r.label)}</th>`,
      r.mode === 'craft' ? 'CRaFT' : r.mode === 'baseline' ? 'baseline' : '—',
      atStep(r.valAction), isBase ? '<span class="na">reference</span>' : formatDifference(r.valActionDiff),
      atStep(r.valRetention), ratio, isBase ? '<span class="na">reference</span>' : formatDifference(r.valRetentionDiff),
    ];
    return `<tr>${cells.map((x, i) => (i === 0 ? x : `<td>${x}</td>`)).join('')}</tr>`;
  }).join('\n');
  const note = c.baseline === undefined
    ? 'No baseline among these runs (train one with --no-craft) to compare with.'
    : `Differences are from the baseline run ${c.baseline}: value − baseline (value / baseline).`;
  return `<table class="summary comparison">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>\n` +
    `<p class="meta">${escapeHtml(note)} Retention loss: how far the features moved from their initial values, on the validation split.</p>`;
}
