// The line charts of the report, as vega-lite specs: which metrics each chart shows, how
// runs and series are told apart (colour = run, dash = series), and what the page says
// when a chart has nothing to show.
import type { TopLevelSpec } from 'vega-lite';
import type { ReportMetricKey, ReportRow } from './metrics-read.js';
import type { RunData } from './run-load.js';
import { movingAverage, smoothingWindow } from './moving-average.js';

export interface SeriesDef {
  key: ReportMetricKey;
  name: string;
  /** Draw points too, on top of every other series (sparse series such as validation). */
  points?: boolean;
  /** Noisy per-step series: the raw values faint, a moving average over them solid. */
  smooth?: boolean;
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
  /** Draw each run's retention budget ε (RunData.budget) as a dashed line at the steps of its points. */
  budgetLine?: boolean;
}

const BUDGET = 'budget ε';

export const LINE_CHARTS: readonly LineChartDef[] = [
  { id: 'val-loss', title: 'Validation action loss', yTitle: 'L1 action loss (validation split)',
    series: [{ key: 'val_action_loss', name: 'validation', points: true }] },
  { id: 'val-retention', title: 'Validation retention loss against the budget ε', yTitle: 'retention loss (MSE, validation split)',
    series: [{ key: 'val_retention_loss', name: 'validation retention', points: true }], budgetLine: true, logAbove: 30 },
  { id: 'loss', title: 'Action loss (train and validation)', yTitle: 'L1 action loss',
    series: [{ key: 'action_loss', name: 'train', smooth: true }, { key: 'val_action_loss', name: 'validation', points: true }], logAbove: 30 },
  { id: 'retention', title: 'Retention loss against its budget ε (training batches)', yTitle: 'retention loss (MSE)', craftOnly: true,
    series: [{ key: 'retention_loss', name: 'retention loss' }, { key: 'retention_budget', name: BUDGET }] },
  { id: 'lambda', title: 'Dual variable λ (after the update)', yTitle: 'λ', craftOnly: true, series: [{ key: 'lambda_after', name: 'λ' }] },
  { id: 'conflict-ratio', title: 'Conflict ratio (conflicting tensors / tensors)', yTitle: 'conflict ratio', craftOnly: true,
    series: [{ key: 'conflict_ratio', name: 'conflict ratio', smooth: true }] },
  { id: 'grad-norm', title: 'Gradient norm (before clipping)', yTitle: 'global L2 norm', series: [{ key: 'grad_norm', name: 'grad norm' }], logAbove: 100 },
  { id: 'lr', title: 'Learning rate', yTitle: 'learning rate', series: [{ key: 'lr', name: 'lr' }] },
  { id: 'throughput', title: 'Throughput', yTitle: 'samples / s', series: [{ key: 'samples_per_s', name: 'samples/s', smooth: true }] },
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

/** How a point is drawn: a line of its series, a faint raw line under a moving average, or a line with points on top. */
type Style = 'line' | 'raw' | 'points';

interface Point {
  run: string;
  series: string;
  step: number;
  value: number;
  style: Style;
}

export function planLineChart(def: LineChartDef, runs: readonly RunData[], runLabels: string[]): ChartPlan {
  const points: Point[] = [];
  const notes: string[] = [];
  const without: string[] = [];
  const windows = new Set<number>();
  let positive = true, min = Infinity, max = -Infinity;
  const add = (p: Point) => {
    points.push(p);
    positive &&= p.value > 0;
    min = Math.min(min, p.value);
    max = Math.max(max, p.value);
  };
  for (const run of runs) {
    let has = false;
    for (const s of def.series) {
      const rows = run.rows.filter((r: ReportRow) => typeof r[s.key] === 'number' && Number.isFinite(r[s.key]));
      if (rows.length === 0) continue;
      has = true;
      const raw = rows.map((r) => ({ step: r.step, value: r[s.key] as number }));
      // The moving average is taken over every point, before thinning.
      let series: { style: Style; pts: { step: number; value: number }[] }[] = [{ style: s.points ? 'points' : 'line', pts: raw }];
      if (s.smooth && raw.length >= 3) {
        const w = smoothingWindow(raw.length);
        windows.add(w);
        const avg = movingAverage(raw.map((p) => p.value), w);
        series = [{ style: 'raw', pts: raw }, { style: 'line', pts: raw.map((p, i) => ({ step: p.step, value: avg[i]! })) }];
      }
      if (raw.length > MAX_POINTS) notes.push(`${run.label}: ${s.name} thinned from ${raw.length} to about ${MAX_POINTS} points`);
      for (const { style, pts } of series) for (const p of thin(pts, MAX_POINTS)) add({ run: run.label, series: s.name, step: p.step, value: p.value, style });
      if (def.budgetLine && run.budget !== undefined) {
        for (const p of thin(raw, MAX_POINTS)) add({ run: run.label, series: BUDGET, step: p.step, value: run.budget, style: 'line' });
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
  if (windows.size > 0) notes.push(`faint: every logged step; solid: moving average over ${[...windows].sort((a, b) => a - b).join('/')} steps`);
  const log = def.logAbove !== undefined && positive && max / min > def.logAbove;
  if (log) notes.push('log scale');
  // The colour domain is every run of the report, so a run has the same colour in every
  // chart; the legend lists only the runs drawn in this one.
  const drawn = runLabels.filter((l) => points.some((p) => p.run === l));
  const color = { field: 'run', type: 'nominal', title: 'run', scale: { domain: runLabels }, legend: { orient: 'bottom', columns: 3, values: drawn } } as const;
  // The first series (train, retention loss) solid, the others dashed; the budget always dashed.
  const seriesNames = [...new Set(points.map((p) => p.series))];
  const multiSeries = seriesNames.length > 1;
  const dashes = seriesNames.map((n, i) => (n === BUDGET ? [6, 3] : i === 0 ? [1, 0] : i === 1 ? [6, 3] : [2, 2]));
  const x = { field: 'step', type: 'quantitative', title: 'step' } as const;
  const y = { field: 'value', type: 'quantitative', title: def.yTitle, scale: log ? { type: 'log' } : { zero: false } } as const;
  const only = (...styles: Style[]) => [{ filter: { field: 'style', oneOf: styles } }];
  const dash = multiSeries
    ? { strokeDash: { field: 'series', type: 'nominal', title: 'series', scale: { domain: seriesNames, range: dashes }, legend: { orient: 'bottom' } } }
    : {};
  const has = (style: Style) => points.some((p) => p.style === style);
  // Layer order is drawing order: raw values under their averages, sparse validation
  // series last so no training curve hides them.
  const layers = [
    ...(has('raw') ? [{
      transform: only('raw'),
      mark: { type: 'line', strokeWidth: 1, strokeOpacity: 0.3, clip: true },
      encoding: { x, y, color, detail: { field: 'series' } },
    }] : []),
    ...(has('line') ? [{
      transform: only('line'),
      mark: { type: 'line', strokeWidth: 1.8, clip: true },
      encoding: { x, y, color, ...dash, detail: { field: 'series' } },
    }] : []),
    ...(has('points') ? [{
      transform: only('points'),
      mark: { type: 'line', strokeWidth: 2, clip: true },
      encoding: { x, y, color, ...dash, detail: { field: 'series' } },
    }, {
      transform: only('points'),
      mark: { type: 'point', filled: true, size: 36, stroke: 'white', strokeWidth: 1, opacity: 1, clip: true },
      encoding: { x, y, color },
    }] : []),
  ];
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 560,
    height: 240,
    data: { values: points },
    layer: layers,
  } as unknown as TopLevelSpec;
  return { id: def.id, title: def.title, spec, notes };
}
