// Reads a run's metrics.jsonl for the report. The report is how people look at a broken
// run too, so nothing here throws on bad content: every line that cannot be used is
// skipped and the reasons come back as plain sentences for the page.
import { METRIC_KEYS } from '../run/metrics.js';
import { existsSync, readFileSync } from 'node:fs';

/** The metric keys of ARCHITECTURE.md §5 (the run layer's list: the same contract as the files). */
export const REPORT_METRIC_KEYS = METRIC_KEYS;
export type ReportMetricKey = (typeof REPORT_METRIC_KEYS)[number];

/** One usable row: a step and the values that were numbers (null = logged as non-finite). */
export type ReportRow = { step: number } & Partial<Record<ReportMetricKey, number | null>>;

export interface MetricsRead {
  rows: ReportRow[];
  /** Sentences for the page: what is missing, which lines were skipped and why. */
  problems: string[];
}

const MAX_LISTED = 8;

function listLines(lines: number[]): string {
  const shown = lines.slice(0, MAX_LISTED).join(', ');
  return lines.length > MAX_LISTED ? `${shown} and ${lines.length - MAX_LISTED} more` : shown;
}

/** Parses metrics.jsonl text; `name` is how problems refer to the file. */
export function parseMetricsJsonl(text: string, name = 'metrics.jsonl'): MetricsRead {
  const problems: string[] = [];
  if (text.trim() === '') return { rows: [], problems: [`${name} is empty: no steps were logged`] };
  const lines = text.split('\n');
  const endsClean = lines[lines.length - 1] === '';
  if (endsClean) lines.pop();
  const skipped = new Map<string, number[]>(); // reason -> line numbers
  const skip = (reason: string, line: number) => {
    const l = skipped.get(reason) ?? [];
    l.push(line);
    skipped.set(reason, l);
  };
  const unknown = new Set<string>();
  let rows: ReportRow[] = [];
  lines.forEach((line, i) => {
    const no = i + 1;
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      // A last line without its newline is a write cut short (a killed run), not damage.
      if (i === lines.length - 1 && !endsClean) problems.push(`${name}: the last line (${no}) is cut off and was skipped`);
      else skip('not valid JSON', no);
      return;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return skip('not a JSON object', no);
    const o = obj as Record<string, unknown>;
    if (typeof o.step !== 'number' || !Number.isFinite(o.step)) return skip('no numeric step', no);
    const row: ReportRow = { step: o.step };
    let bad = false;
    for (const [k, v] of Object.entries(o)) {
      if (k === 'step') continue;
      if (!(REPORT_METRIC_KEYS as readonly string[]).includes(k)) {
        unknown.add(k);
        continue;
      }
      if (typeof v === 'number' || v === null) (row as Record<string, number | null>)[k] = v; // null: non-finite in the run
      else bad = true;
    }
    if (bad) skip('a value that is not a number', no);
    // A step at or before the previous one: rows of an interrupted run that a resume did
    // not truncate. The later rows are what the run continued with.
    if (rows.length > 0 && row.step <= rows[rows.length - 1]!.step) {
      const from = rows.findIndex((r) => r.step >= row.step);
      problems.push(`${name}: steps restart at line ${no} (step ${row.step}); the ${rows.length - from} earlier rows from that step on are replaced by the later ones`);
      rows = rows.slice(0, from);
    }
    rows.push(row);
  });
  for (const [reason, nos] of skipped) {
    problems.push(`${name}: skipped ${nos.length} line${nos.length > 1 ? 's' : ''} with ${reason} (line${nos.length > 1 ? 's' : ''} ${listLines(nos)})`);
  }
  if (unknown.size > 0) problems.push(`${name}: ignored unknown keys ${[...unknown].sort().join(', ')}`);
  if (rows.length === 0) problems.push(`${name} has no usable rows: no curves can be drawn`);
  return { rows, problems };
}

/** Reads `path` (metrics.jsonl); a missing or unreadable file is a problem, not an error. */
export function readMetricsJsonl(path: string, name = 'metrics.jsonl'): MetricsRead {
  if (!existsSync(path)) return { rows: [], problems: [`${name} is missing: no metrics to plot`] };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { rows: [], problems: [`${name} could not be read: ${(e as Error).message}`] };
  }
  return parseMetricsJsonl(text, name);
}
