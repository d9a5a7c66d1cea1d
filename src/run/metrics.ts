// The metric row of ARCHITECTURE.md §5 and the one interface every sink implements. The key
// order here is the contract: CSV columns, JSONL keys and TensorBoard tags all follow it.

/**
 * Every metric key, in column order (ARCHITECTURE.md §5). New keys go at the end: a metrics.csv
 * written by an older version then has a header that is a prefix of this one, and a
 * resume can widen it (csv-sink.ts) without moving any column.
 */
export const METRIC_KEYS = [
  'step', 'epoch', 'action_loss', 'retention_loss', 'retention_budget', 'lambda_before',
  'lambda_after', 'conflict_ratio', 'num_conflicts', 'num_tensors', 'grad_norm', 'lr',
  'nonfinite_skipped', 'step_ms', 'samples_per_s', 'val_action_loss', 'val_retention_loss',
] as const;

export type MetricKey = (typeof METRIC_KEYS)[number];

/** Keys present only in CRaFT mode; a baseline row leaves them out. */
export const CRAFT_KEYS: readonly MetricKey[] = [
  'retention_loss', 'retention_budget', 'lambda_before', 'lambda_after',
  'conflict_ratio', 'num_conflicts', 'num_tensors',
];

/** Keys that measure the wall clock: the only ones a resumed run may change. */
export const WALL_CLOCK_KEYS: readonly MetricKey[] = ['step_ms', 'samples_per_s'];

/**
 * One logged optimizer step. `step` is required; every other key is optional so that a
 * baseline row (no CRaFT keys) and a row without validation fit the same type.
 */
export type MetricsRow = { step: number } & Partial<Record<Exclude<MetricKey, 'step'>, number>>;

/**
 * Where metric rows go. `write` must not reorder rows; `flush` makes everything written
 * so far durable (the run directory calls it before every checkpoint, so a checkpoint is
 * never ahead of its metrics); `close` flushes and releases the sink.
 */
export interface MetricsSink {
  write(row: MetricsRow): void;
  flush?(): void;
  close?(): void;
}

/**
 * Checks a row before any sink sees it: a plain object, integer step, numeric values,
 * no unknown keys (a typo would otherwise silently vanish from the CSV). Errors name the key.
 */
export function checkMetricsRow(row: unknown): MetricsRow {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    throw new TypeError(`metrics row must be a plain object, got ${row === null ? 'null' : typeof row}`);
  }
  const r = row as Record<string, unknown>;
  if (!Number.isSafeInteger(r.step) || (r.step as number) < 0) {
    throw new RangeError(`metrics row: step must be a non-negative integer, got ${String(r.step)}`);
  }
  for (const [k, v] of Object.entries(r)) {
    if (!(METRIC_KEYS as readonly string[]).includes(k)) {
      throw new RangeError(`metrics row at step ${String(r.step)}: unknown key '${k}' (known: ${METRIC_KEYS.join(', ')})`);
    }
    if (v !== undefined && typeof v !== 'number') {
      throw new TypeError(`metrics row at step ${String(r.step)}: ${k} must be a number, got ${typeof v}`);
    }
  }
  return r as MetricsRow;
}

/** A row's defined values in METRIC_KEYS order (stable JSON key order across runs). */
export function orderedEntries(row: MetricsRow): [MetricKey, number][] {
  const out: [MetricKey, number][] = [];
  for (const k of METRIC_KEYS) {
    const v = row[k];
    if (v !== undefined) out.push([k, v]);
  }
  return out;
}

/** Fans one row out to several sinks; the trainer needs to hold only one. */
export class MultiSink implements MetricsSink {
  constructor(readonly sinks: MetricsSink[]) {}
  write(row: MetricsRow): void {
    const checked = checkMetricsRow(row);
    for (const s of this.sinks) s.write(checked);
  }
  flush(): void {
    for (const s of this.sinks) s.flush?.();
  }
  close(): void {
    // Close all even if one throws, then report the first failure.
    let first: unknown;
    for (const s of this.sinks) {
      try {
        s.close?.();
      } catch (e) {
        first ??= e;
      }
    }
    if (first !== undefined) throw first;
  }
}
