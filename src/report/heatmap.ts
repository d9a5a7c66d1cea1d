// The conflict heatmap of one run: tensors by steps, from its conflict log. Long runs and
// big models are binned (consecutive logged steps, consecutive tensors) and the colour is
// the bin's conflict frequency, so the SVG stays a few thousand rects at most.
import type { TopLevelSpec } from 'vega-lite';
import type { ConflictLog } from '../run/conflict-log.js';
import type { ChartPlan } from './line-charts.js';

export interface HeatmapOptions {
  /** Most step columns before consecutive steps are binned. */
  maxSteps?: number;
  /** Most tensor rows before consecutive tensors are binned. */
  maxTensors?: number;
}

export interface HeatmapCell {
  /** First step of the bin and the step where the next bin starts. */
  x0: number;
  x1: number;
  /** Row label (a tensor name, or a range of tensors). */
  tensor: string;
  /** Fraction of (step, tensor) pairs in the bin that conflicted. */
  freq: number;
}

export interface BinnedConflicts {
  cells: HeatmapCell[];
  /** Row labels top to bottom. */
  rows: string[];
  stepBins: number;
  stepsPerBin: number;
  tensorsPerBin: number;
}

/** Bin i of n items into b bins: [floor(i*n/b), floor((i+1)*n/b)). */
function bounds(n: number, bins: number): number[] {
  return Array.from({ length: bins + 1 }, (_, i) => Math.floor((i * n) / bins));
}

export function binConflicts(log: ConflictLog, options: HeatmapOptions = {}): BinnedConflicts {
  const maxSteps = options.maxSteps ?? 400, maxTensors = options.maxTensors ?? 200;
  const n = log.steps.length, k = log.names.length;
  const sb = bounds(n, Math.min(n, maxSteps));
  const tb = bounds(k, Math.min(k, maxTensors));
  const typicalGap = n > 1 ? (log.steps[n - 1]! - log.steps[0]!) / (n - 1) : 1;
  const unique = new Set(log.names).size === k;
  const rows = tb.slice(0, -1).map((t0, j) => {
    const t1 = tb[j + 1]!;
    if (t1 - t0 === 1) return unique ? log.names[t0]! : `${t0}: ${log.names[t0]}`;
    return `${t0}–${t1 - 1}: ${log.names[t0]} … ${log.names[t1 - 1]}`;
  });
  const cells: HeatmapCell[] = [];
  for (let i = 0; i + 1 < sb.length; ++i) {
    const s0 = sb[i]!, s1 = sb[i + 1]!;
    const x0 = log.steps[s0]!;
    const x1 = s1 < n ? log.steps[s1]! : log.steps[n - 1]! + typicalGap;
    for (let j = 0; j + 1 < tb.length; ++j) {
      const t0 = tb[j]!, t1 = tb[j + 1]!;
      let sum = 0;
      for (let s = s0; s < s1; ++s) for (let t = t0; t < t1; ++t) sum += log.flags[s * k + t]!;
      // Cells that never conflicted are left out: they are the white background, and most
      // cells of a healthy run are such cells, so the SVG stays small.
      if (sum > 0) cells.push({ x0, x1, tensor: rows[j]!, freq: sum / ((s1 - s0) * (t1 - t0)) });
    }
  }
  return { cells, rows, stepBins: sb.length - 1, stepsPerBin: n / Math.max(1, sb.length - 1), tensorsPerBin: k / Math.max(1, tb.length - 1) };
}

/** @internal The chart of one run (report.ts); its spec is vega-lite's type, kept off the public .d.ts. */
export function planHeatmap(label: string, log: ConflictLog | null, options: HeatmapOptions = {}): ChartPlan {
  const id = 'conflicts';
  const title = `Conflicting tensors by step — ${label}`;
  if (!log) return { id, title, missing: 'no conflict log in this run directory (conflicts.json/conflicts.bin)', notes: [] };
  if (log.steps.length === 0 || log.names.length === 0) {
    return { id, title, missing: `the conflict log is empty (${log.names.length} tensors, ${log.steps.length} steps)`, notes: [] };
  }
  const b = binConflicts(log, options);
  const notes: string[] = [`${log.names.length} tensors × ${log.steps.length} logged steps (steps ${log.steps[0]}–${log.steps[log.steps.length - 1]})`];
  const binned = b.stepsPerBin > 1 || b.tensorsPerBin > 1;
  if (binned) notes.push(`binned: about ${b.stepsPerBin.toFixed(1)} steps × ${b.tensorsPerBin.toFixed(1)} tensors per cell; colour = share of conflicts in the cell`);
  notes.push('white: no conflict');
  if (b.cells.length === 0) notes.push('no tensor conflicted at any logged step');
  const rowPx = b.rows.length <= 40 ? 14 : b.rows.length <= 100 ? 6 : 3;
  const showLabels = b.rows.length <= 100;
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 900,
    height: b.rows.length * rowPx,
    data: { values: b.cells },
    mark: { type: 'rect', aria: false }, // no per-cell aria-label: it would double the size of the SVG
    encoding: {
      x: { field: 'x0', type: 'quantitative', title: 'step', scale: { domain: [log.steps[0]!, b.cells.length ? Math.max(...b.cells.map((c) => c.x1)) : log.steps[log.steps.length - 1]! + 1], nice: false } },
      x2: { field: 'x1' },
      y: {
        field: 'tensor', type: 'ordinal', title: showLabels ? null : `tensors (${b.rows.length} rows, top = first)`,
        scale: { domain: b.rows, paddingInner: 0 }, axis: showLabels ? { labelFontSize: rowPx >= 10 ? 10 : 6, labelLimit: 320 } : { labels: false, ticks: false },
      },
      color: {
        field: 'freq', type: 'quantitative', title: binned ? 'conflict share' : 'conflicted',
        scale: { scheme: 'orangered', domain: [0, 1] }, legend: { orient: 'right', gradientLength: Math.min(200, Math.max(60, b.rows.length * rowPx)) },
      },
    },
  } as unknown as TopLevelSpec;
  return { id, title, spec, notes };
}
