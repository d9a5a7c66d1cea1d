// metrics.jsonl: one JSON object per logged step, written as it comes (a kill -9 loses
// nothing already written), keys in METRIC_KEYS order.
import { existsSync, readFileSync } from 'node:fs';
import { AppendFile } from './append-file.js';
import { replaceFileAtomic } from './fsio.js';
import { type MetricsRow, type MetricsSink, orderedEntries } from './metrics.js';
import { RunError } from './run-error.js';

export interface MetricsFileOptions {
  /**
   * Resuming from a checkpoint at this step: rows with a larger step (written after the
   * checkpoint by the interrupted run) are dropped, then new rows are appended.
   * Undefined: a fresh file (an existing one is replaced).
   */
  resumeStep?: number | undefined;
}

/** One row as a JSON line. Non-finite values become null (JSON has no NaN). */
export function jsonlLine(row: MetricsRow): string {
  const obj: Record<string, number | null> = {};
  for (const [k, v] of orderedEntries(row)) obj[k] = Number.isFinite(v) ? v : null;
  return JSON.stringify(obj) + '\n';
}

/**
 * The content of a JSONL metrics file cut to the lines whose step is <= `step`, or
 * undefined when nothing would be dropped. Reads only. A torn last line (a kill during a
 * write) is dropped; a torn line elsewhere means the file was damaged by something else
 * and is an error naming the line.
 */
export function truncatedJsonl(path: string, step: number): { content: string | undefined; kept: number; dropped: number } {
  if (!existsSync(path)) return { content: undefined, kept: 0, dropped: 0 };
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const keep: string[] = [];
  let dropped = 0;
  lines.forEach((line, i) => {
    let s: unknown;
    try {
      s = (JSON.parse(line) as { step?: unknown }).step;
    } catch {
      if (i === lines.length - 1) {
        dropped++;
        return;
      }
      throw new RunError(`line ${i + 1} is not valid JSON`, { path, field: `line ${i + 1}` });
    }
    if (typeof s !== 'number') throw new RunError(`line ${i + 1} has no numeric step`, { path, field: `line ${i + 1}.step` });
    if (s <= step) keep.push(line);
    else dropped++;
  });
  return { content: dropped > 0 ? keep.map((l) => l + '\n').join('') : undefined, kept: keep.length, dropped };
}

/** Cuts a JSONL metrics file to the steps <= `step` (atomically: temp file, rename). */
export function truncateJsonl(path: string, step: number): { kept: number; dropped: number } {
  const t = truncatedJsonl(path, step);
  if (t.content !== undefined) replaceFileAtomic(path, t.content);
  return { kept: t.kept, dropped: t.dropped };
}

/** The metrics.jsonl sink. */
export class JsonlSink implements MetricsSink {
  private readonly file: AppendFile;

  constructor(readonly path: string, options: MetricsFileOptions = {}) {
    if (options.resumeStep !== undefined) truncateJsonl(path, options.resumeStep);
    this.file = new AppendFile(path, options.resumeStep !== undefined);
  }

  write(row: MetricsRow): void {
    this.file.write(jsonlLine(row));
  }

  flush(): void {
    this.file.flush();
  }

  close(): void {
    this.file.close();
  }
}
