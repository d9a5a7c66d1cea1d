// Reading a run directory's metrics the way the run-layer tests compare them: two runs that
// must be equal differ only in the wall-clock fields (ARCHITECTURE.md §5, §6).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WALL_CLOCK_KEYS } from '../../dist/run/metrics.js';

/** A metrics row without its wall-clock keys (step_ms, samples_per_s). */
export function withoutWallClock(row) {
  return Object.fromEntries(Object.entries(row).filter(([k]) => !WALL_CLOCK_KEYS.includes(k)));
}

/** The rows of DIR/metrics.jsonl, parsed; without the wall-clock keys unless `wallClock`. */
export function metricsRows(dir, { wallClock = false } = {}) {
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return wallClock ? rows : rows.map(withoutWallClock);
}

/** DIR/metrics.csv: its header line as written, and its rows without the wall-clock cells. */
export function metricsCsv(dir) {
  const [header, ...lines] = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
  const keep = header.split(',').map((k) => !WALL_CLOCK_KEYS.includes(k));
  return { header, rows: lines.map((l) => l.split(',').filter((_, i) => keep[i]).join(',')) };
}
