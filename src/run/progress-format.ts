// The text of one progress line, in the seed's format:
//   Step 120/2000 | Loss: 0.1234 | Ret: 0.0812/0.1000 | λ: 0.050→0.052 | Conflict: 23.45% |
//   GradNorm: 1.23 | LR: 5.00e-04 | 312 samples/s
// Pure functions, shared by the live bar, the plain lines and train_progress.log.
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
