// The text of one progress line, in the seed's format:
//   Step 120/2000 | Loss: 0.1234 | Ret: 0.0812/0.1000 | λ: 0.050→0.052 | Conflict: 23.45% |
//   GradNorm: 1.23 | LR: 5.00e-04 | 312 samples/s
// Pure functions, shared by the live bar, the plain lines and train_progress.log. The live
// bar's line is fitted to the terminal (fitProgressLine): whole parts are dropped, least
// useful first, so nothing is ever cut mid-word.
import type { MetricsRow } from './metrics.js';

function fixed(v: number | undefined, digits: number): string {
  return v === undefined ? '-' : v.toFixed(digits);
}

/** The seed's 4 decimals, or '%.2e' for small non-zero values that 4 decimals would show as 0.0000/0.0002. */
function small(v: number | undefined): string {
  return v !== undefined && v !== 0 && Math.abs(v) < 1e-3 ? sci(v) : fixed(v, 4);
}

/** 5e-4 as Python's '%.2e' writes it: '5.00e-04' (two-digit exponent). */
export function sci(v: number | undefined): string {
  if (v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  return v.toExponential(2).replace(/e([+-])(\d)$/, 'e$10$2');
}

/** Seconds as m:ss or h:mm:ss. */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * The metric part of a progress line. A baseline row (no lambda_before) gets the short
 * form: step, loss, grad norm, LR, throughput. Validation and skipped steps are appended
 * when present.
 */
export function formatStepLine(row: MetricsRow, totalSteps: number): string {
  const parts = [`Step ${row.step}/${totalSteps}`, `Loss: ${fixed(row.action_loss, 4)}`];
  if (row.lambda_before !== undefined) {
    parts.push(
      `Ret: ${small(row.retention_loss)}/${small(row.retention_budget)}`,
      `λ: ${fixed(row.lambda_before, 3)}→${fixed(row.lambda_after, 3)}`,
      `Conflict: ${row.conflict_ratio === undefined ? '-' : (row.conflict_ratio * 100).toFixed(2)}%`,
    );
  }
  parts.push(`GradNorm: ${fixed(row.grad_norm, 2)}`, `LR: ${sci(row.lr)}`);
  parts.push(`${row.samples_per_s === undefined ? '-' : Math.round(row.samples_per_s)} samples/s`);
  if (row.val_action_loss !== undefined) parts.push(`Val: ${fixed(row.val_action_loss, 4)}`);
  if (row.nonfinite_skipped) parts.push(`Skipped: ${row.nonfinite_skipped}`);
  return parts.join(' | ');
}

/** One ' | '-separated part of the live line; parts with a lower `keep` are dropped first. */
export interface ProgressPart {
  text: string;
  keep: number;
}

const SEP = ' | ';

/** A 20-cell bar of step / total in cli-progress's shades_classic characters. */
export function progressBar(step: number, total: number, size = 20): string {
  const filled = total > 0 ? Math.max(0, Math.min(size, Math.round((step / total) * size))) : 0;
  return '\u2588'.repeat(filled) + '\u2591'.repeat(size - filled);
}

/**
 * The parts of the live line, in display order, each with how much it matters: step,
 * loss, λ and ETA are kept longest; then retention, validation and skipped steps; then
 * the bar and elapsed time; conflict ratio, grad norm, LR and throughput go first.
 */
export function progressParts(row: MetricsRow, totalSteps: number, times: { elapsed: string; eta: string }): ProgressPart[] {
  const parts: ProgressPart[] = [{ text: `Step ${row.step}/${totalSteps}`, keep: 100 }, { text: `Loss: ${fixed(row.action_loss, 4)}`, keep: 90 }];
  if (row.lambda_before !== undefined) {
    parts.push(
      { text: `Ret: ${small(row.retention_loss)}/${small(row.retention_budget)}`, keep: 70 },
      { text: `λ: ${fixed(row.lambda_before, 3)}→${fixed(row.lambda_after, 3)}`, keep: 80 },
      { text: `Conflict: ${row.conflict_ratio === undefined ? '-' : (row.conflict_ratio * 100).toFixed(2)}%`, keep: 30 },
    );
  }
  parts.push(
    { text: `GradNorm: ${fixed(row.grad_norm, 2)}`, keep: 20 },
    { text: `LR: ${sci(row.lr)}`, keep: 15 },
    { text: `${row.samples_per_s === undefined ? '-' : Math.round(row.samples_per_s)} samples/s`, keep: 10 },
  );
  if (row.val_action_loss !== undefined) parts.push({ text: `Val: ${fixed(row.val_action_loss, 4)}`, keep: 60 });
  if (row.nonfinite_skipped) parts.push({ text: `Skipped: ${row.nonfinite_skipped}`, keep: 65 });
  parts.push(
    { text: progressBar(row.step, totalSteps), keep: 50 },
    { text: `elapsed ${times.elapsed}`, keep: 40 },
    { text: `ETA ${times.eta}`, keep: 80 },
  );
  return parts;
}

/** Terminal columns a string takes (code points: the line's characters are all one column wide). */
function columns(s: string): number {
  return [...s].length;
}

/**
 * The parts joined by ' | ', dropping whole parts (lowest `keep` first; among equals, the
 * later one) until the line fits in `width` columns. When even the first part is wider,
 * it is cut: a line must never wrap, or the live bar stacks up on the screen.
 */
export function fitProgressLine(parts: readonly ProgressPart[], width: number): string {
  const kept = [...parts];
  const line = () => kept.map((p) => p.text).join(SEP);
  while (kept.length > 1 && columns(line()) > width) {
    let drop = 0;
    kept.forEach((p, i) => { if (p.keep <= kept[drop]!.keep) drop = i; });
    kept.splice(drop, 1);
  }
  const out = line();
  return columns(out) > width ? [...out].slice(0, Math.max(0, width)).join('') : out;
}
