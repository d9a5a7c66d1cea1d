// The line charts of the report, as vega-lite specs: which metrics each chart shows, how
// runs and series are told apart (colour = run, dash = series), and what the page says
// when a chart has nothing to show.
import type { TopLevelSpec } from 'vega-lite';
import type { ReportMetricKey, ReportRow } from './metrics-read.js';
import type { RunData } from './run-load.js';

export interface SeriesDef {
  key: ReportMetricKey;
  name: string;
  /** Draw points too (sparse series such as validation). */
  points?: boolean;
}

export interface LineChartDef {
  id: string;
  title: string;
  yTitle: string;
  series: SeriesDef[];
  /** Switch to a log y scale when the values span more than this ratio (all positive). */
  logAbove?: number;
  /** Only CRaFT runs have these metrics: baseline runs are not "missing" them. */
  craftOnly?: boolean;
}

export const LINE_CHARTS: readonly LineChartDef[] = [
  { id: 'loss', title: 'Action loss (train and validation)', yTitle: 'L1 action loss',
    series: [{ key: 'action_loss', name: 'train' }, { key: 'val_action_loss', name: 'validation', points: true }], logAbove: 30 },
  { id: 'retention', title: 'Retention loss against its budget ε', yTitle: 'retention loss (MSE)', craftOnly: true,
    series: [{ key: 'retention_loss', name: 'retention loss' }, { key: 'retention_budget', name: 'budget ε' }] },
  { id: 'lambda', title: 'Dual variable λ (after the update)', yTitle: 'λ', craftOnly: true, series: [{ key: 'lambda_after', name: 'λ' }] },
  { id: 'conflict-ratio', title: 'Conflict ratio (conflicting tensors / tensors)', yTitle: 'conflict ratio', craftOnly: true,
    series: [{ key: 'conflict_ratio', name: 'conflict ratio' }] },
  { id: 'grad-norm', title: 'Gradient norm (before clipping)', yTitle: 'global L2 norm', series: [{ key: 'grad_norm', name: 'grad norm' }], logAbove: 100 },
  { id: 'lr', title: 'Learning rate', yTitle: 'learning rate', series: [{ key: 'lr', name: 'lr' }] },
  { id: 'throughput', title: 'Throughput', yTitle: 'samples / s', series: [{ key: 'samples_per_s', name: 'samples/s' }] },
];

/** A chart ready to render, or the reason there is none. */
export interface ChartPlan {
  id: string;
  title: string;
  spec?: TopLevelSpec;
  /** Why there is no chart (nothing to plot). */
  missing?: string;
  /** Sentences shown under the chart (runs left out, thinned curves). */
  notes: string[];
}

/** Points per run and series above which a curve is thinned (the SVG stays small). */
export const MAX_POINTS = 2000;

/** Every k-th row plus the last: keeps the shape of long curves at a fraction of the size. */
function thin<T>(items: T[], max: number): T[] {
  if (items.length <= max) return items;
  const k = Math.ceil(items.length / max);
  const out = items.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== items[items.length - 1]) out.push(items[items.length - 1]!);
  return out;
}

interface Point {
  run: string;
  series: string;
  step: number;
  value: number;
}

export function planLineChart(def: LineChartDef, runs: readonly RunData[], runLabels: string[]): ChartPlan {
  const points: Point[] = [];
  const notes: string[] = [];
  const without: string[] = [];
  let positive = true, min = Infinity, max = -Infinity;
  for (const run of runs) {
    let has = false;
    for (const s of def.series) {
      let pts = run.rows.filter((r: ReportRow) => typeof r[s.key] === 'number' && Number.isFinite(r[s.key]));
      if (pts.length === 0) continue;
      has = true;
      if (pts.length > MAX_POINTS) {
        notes.push(`${run.label}: ${s.name} thinned from ${pts.length} to about ${MAX_POINTS} points`);
        pts = thin(pts, MAX_POINTS);
      }
      for (const r of pts) {
        const value = r[s.key] as number;
        points.push({ run: run.label, series: s.name, step: r.step, value });
        positive &&= value > 0;
        min = Math.min(min, value);
        max = Math.max(max, value);
      }
    }
    if (!has && !(def.craftOnly && run.mode === 'baseline')) without.push(run.label);
  }
  const keys = def.series.map((s) => s.key).join(', ');
  if (without.length > 0 && points.length > 0) notes.push(`no ${keys} in: ${without.join(', ')}`);
  if (points.length === 0) {
    const why = def.craftOnly && runs.length > 0 && runs.every((r) => r.mode === 'baseline')
      ? `no data: ${keys} exist only in CRaFT runs, and every run here is a baseline`
      : `no data: no run logged ${keys}`;
    return { id: def.id, title: def.title, missing: why, notes };
  }
  const log = def.logAbove !== undefined && positive && max / min > def.logAbove;
  if (log) notes.push('log scale');
  const multiSeries = new Set(points.map((p) => p.series)).size > 1;
  // The colour domain is every run of the report, so a run has the same colour in every
  // chart; the legend lists only the runs drawn in this one.
  const drawn = runLabels.filter((l) => points.some((p) => p.run === l));
  const color = { field: 'run', type: 'nominal', title: 'run', scale: { domain: runLabels }, legend: { orient: 'bottom', columns: 3, values: drawn } } as const;
  // The first series (train, retention loss) solid, the others dashed.
  const seriesNames = def.series.map((s) => s.name);
  const dashes = seriesNames.map((_, i) => (i === 0 ? [1, 0] : i === 1 ? [6, 3] : [2, 2]));
  const x = { field: 'step', type: 'quantitative', title: 'step' } as const;
  const y = { field: 'value', type: 'quantitative', title: def.yTitle, scale: log ? { type: 'log' } : { zero: false } } as const;
  const pointSeries = def.series.filter((s) => s.points).map((s) => s.name);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: 240,
    data: { values: points },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1.6, clip: true },
        encoding: {
          x, y, color,
          ...(multiSeries ? { strokeDash: { field: 'series', type: 'nominal', title: 'series', scale: { domain: seriesNames, range: dashes }, legend: { orient: 'bottom' } } } : {}),
          detail: { field: 'series' },
        },
      },
      ...(pointSeries.length > 0 ? [{
        transform: [{ filter: { field: 'series', oneOf: pointSeries } }],
        mark: { type: 'point', filled: true, size: 22, clip: true },
        encoding: { x, y, color },
      }] : []),
    ],
  } as unknown as TopLevelSpec;
  return { id: def.id, title: def.title, spec, notes };
}
