// Run reports: one self-contained HTML page of the curves, a summary table and the
// conflict heatmaps of one or several run directories.
export { buildReport, writeReport, writeRunReport, defaultReportPath, REPORT_FILE } from './report.js';
export type { Report, ReportOptions } from './report.js';
export type { RenderedChart } from './html-page.js';
export { loadRun, loadRuns } from './run-load.js';
export type { RunData } from './run-load.js';
export { parseMetricsJsonl, readMetricsJsonl, REPORT_METRIC_KEYS } from './metrics-read.js';
export type { MetricsRead, ReportRow, ReportMetricKey } from './metrics-read.js';
export { summarize, totalStepMs } from './summary.js';
export type { RunSummary, AtStep } from './summary.js';
export { binConflicts } from './heatmap.js';
export type { HeatmapOptions, BinnedConflicts, HeatmapCell } from './heatmap.js';
export { compareRuns } from './comparison.js';
export type { Comparison, ComparisonRow, Difference } from './comparison.js';
// renderVegaLiteSvg (render-svg.ts) stays internal: its spec type is vega-lite's, whose
// declarations do not compile under skipLibCheck false, so it is not on the public surface.
