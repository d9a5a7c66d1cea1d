// metrics.csv: a header of every known key (METRIC_KEYS order), one row per logged step,
// an empty cell where a row has no value (baseline rows, steps without validation), so
// the columns never shift between CRaFT, baseline and resumed runs.
import { existsSync, readFileSync } from 'node:fs';
import { AppendFile } from './append-file.js';
import { replaceFileAtomic } from './fsio.js';
import type { MetricsFileOptions } from './jsonl-sink.js';
import { METRIC_KEYS, type MetricsRow, type MetricsSink } from './metrics.js';
import { RunError } from './run-error.js';

/** The header line (without newline). */
export const CSV_HEADER = METRIC_KEYS.join(',');

// Spelled as Python's float() and pandas read them.
function cell(v: number | undefined): string {
  if (v === undefined) return '';
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}

/**
 * The number of columns of `header` when it is this version's header or an older one
 * (a prefix of it: new keys are only ever appended); undefined for anything else.
 */
function olderColumns(header: string): number | undefined {
  if (header === CSV_HEADER) return METRIC_KEYS.length;
  if (!CSV_HEADER.startsWith(header + ',')) return undefined;
  return header.split(',').length;
}

/** One row as a CSV line. */
export function csvLine(row: MetricsRow): string {
  return METRIC_KEYS.map((k) => cell(row[k])).join(',') + '\n';
}

/**
 * The content of metrics.csv cut to the header and the rows whose step (first column)
 * is <= `step`, or undefined when nothing would change. Reads only. A torn last line is
 * dropped. An older version's header (fewer keys) is widened to this one's, its rows
 * padded with empty cells; any other header is refused: appending would misalign columns.
 */
export function truncatedCsv(path: string, step: number): { content: string | undefined; kept: number; dropped: number } {
  const none = { content: undefined, kept: 0, dropped: 0 };
  if (!existsSync(path)) return none;
  const lines = readFileSync(path, 'utf8').split('\n');
  // Ends in '\n': the last element is '' and every line is complete; otherwise the last is torn.
  const complete = lines[lines.length - 1] === '';
  if (complete) lines.pop();
  if (lines.length === 0 || lines[0] === '') return none;
  const columns = olderColumns(lines[0]!);
  if (columns === undefined) {
    throw new RunError(`header does not match this version's columns (${CSV_HEADER})`, { path, field: 'header' });
  }
  // An older version's file gets the new columns (empty for its rows), so the header
  // stays true for every row appended after the resume.
  const widen = ','.repeat(METRIC_KEYS.length - columns);
  const keep = [CSV_HEADER];
  let dropped = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const torn = !complete && i === lines.length - 1;
    const cells = line.split(',');
    const s = Number(cells[0]);
    if (torn || cells.length !== columns || cells[0] === '' || !Number.isFinite(s)) {
      if (i === lines.length - 1) {
        dropped++;
        continue;
      }
      throw new RunError(`line ${i + 1} is not a valid row`, { path, field: `line ${i + 1}` });
    }
    if (s <= step) keep.push(line + widen);
    else dropped++;
  }
  const changed = dropped > 0 || widen !== '';
  return { content: changed ? keep.map((l) => l + '\n').join('') : undefined, kept: keep.length - 1, dropped };
}

/** Cuts metrics.csv to the header and the steps <= `step` (atomically: temp file, rename). */
export function truncateCsv(path: string, step: number): { kept: number; dropped: number } {
  const t = truncatedCsv(path, step);
  if (t.content !== undefined) replaceFileAtomic(path, t.content);
  return { kept: t.kept, dropped: t.dropped };
}

/** The metrics.csv sink. */
export class CsvSink implements MetricsSink {
  private readonly file: AppendFile;

  constructor(readonly path: string, options: MetricsFileOptions = {}) {
    const resuming = options.resumeStep !== undefined;
    if (resuming) truncateCsv(path, options.resumeStep!);
    const needHeader = !resuming || !existsSync(path) || readFileSync(path).length === 0;
    this.file = new AppendFile(path, resuming);
    if (needHeader) this.file.write(CSV_HEADER + '\n');
  }

  write(row: MetricsRow): void {
    this.file.write(csvLine(row));
  }

  flush(): void {
    this.file.flush();
  }

  close(): void {
    this.file.close();
  }
}
