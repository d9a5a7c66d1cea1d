// The report of one or several run directories: load, summarise, plan and render the
// charts, assemble the page, write it. Problems in the runs end up on the page; only a
// failure to write the output file throws.
import { join, resolve } from 'node:path';
import { planHeatmap, type HeatmapOptions } from './heatmap.js';
import { reportPage, type RenderedChart } from './html-page.js';
import { LINE_CHARTS, planLineChart, type ChartPlan } from './line-charts.js';
import { renderVegaLiteSvg } from './render-svg.js';
import { loadRuns, type RunData } from './run-load.js';
import { summarize, type RunSummary } from './summary.js';
import { comparisonTableHtml, summaryTableHtml } from './summary-table.js';
import { replaceFileAtomic } from '../run/fsio.js';

export const REPORT_FILE = 'report.html';

export interface ReportOptions {
  /** Page title; default "craftgrad report: <labels>". */
  title?: string;
  heatmap?: HeatmapOptions;
  /** Timestamp printed on the page (tests pin it); default now. */
  generated?: Date;
}

export interface Report {
  html: string;
  runs: RunData[];
  summaries: RunSummary[];
  charts: RenderedChart[];
  heatmaps: RenderedChart[];
}

async function render(plan: ChartPlan): Promise<RenderedChart> {
  if (!plan.spec) return { id: plan.id, title: plan.title, missing: plan.missing ?? 'no data', notes: plan.notes };
  try {
    return { id: plan.id, title: plan.title, svg: await renderVegaLiteSvg(plan.spec), notes: plan.notes };
  } catch (e) {
    // A chart that cannot be drawn must not take the rest of the report with it.
    return { id: plan.id, title: plan.title, missing: `the chart could not be drawn: ${(e as Error).message}`, notes: plan.notes };
  }
}

function heatmapPlans(runs: readonly RunData[], options: HeatmapOptions | undefined): ChartPlan[] {
  const plans: ChartPlan[] = [];
  runs.forEach((run, i) => {
    if (run.mode === 'baseline' && !run.conflicts) return; // a baseline has no surgery, hence no conflicts
    plans.push({ ...planHeatmap(run.label, run.conflicts, options), id: `conflicts-${i + 1}` });
  });
  if (plans.length === 0) {
    plans.push({ id: 'conflicts', title: 'Conflicting tensors by step', missing: 'no CRaFT run here: baseline runs do no gradient surgery, so there are no conflicts to show', notes: [] });
  }
  return plans;
}

export async function buildReport(runDirs: readonly string[], options: ReportOptions = {}): Promise<Report> {
  const runs = loadRuns(runDirs);
  const labels = runs.map((r) => r.label);
  const summaries = runs.map(summarize);
  const charts = await Promise.all(LINE_CHARTS.map((def) => render(planLineChart(def, runs, labels))));
  const heatmaps = await Promise.all(heatmapPlans(runs, options.heatmap).map(render));
  const html = reportPage({
    title: options.title ?? `craftgrad report: ${labels.join(', ')}`,
    generated: (options.generated ?? new Date()).toISOString(),
    runs: runs.map((r) => ({ label: r.label, dir: r.dir, problems: r.problems })),
    summaryTable: summaryTableHtml(summaries),
    comparisonTable: comparisonTableHtml(summaries),
    charts,
    heatmaps,
  });
  return { html, runs, summaries, charts, heatmaps };
}

/** Where `craftgrad report` writes by default: in the run directory for one run, else in the current directory. */
export function defaultReportPath(runDirs: readonly string[], cwd = process.cwd()): string {
  return runDirs.length === 1 ? join(resolve(runDirs[0]!), REPORT_FILE) : join(resolve(cwd), REPORT_FILE);
}

export async function writeReport(runDirs: readonly string[], outPath?: string, options: ReportOptions = {}): Promise<Report & { path: string }> {
  const report = await buildReport(runDirs, options);
  const path = resolve(outPath ?? defaultReportPath(runDirs));
  replaceFileAtomic(path, report.html);
  return { ...report, path };
}

/**
 * The report of one run, written to RUN_DIR/report.html; returns its path. `craftgrad
 * train` calls this at the end of a run. Throws only when the file cannot be written.
 */
export async function writeRunReport(runDir: string, options: ReportOptions = {}): Promise<string> {
  return (await writeReport([runDir], join(resolve(runDir), REPORT_FILE), options)).path;
}
