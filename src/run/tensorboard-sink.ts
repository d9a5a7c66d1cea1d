// TensorBoard scalars: one event per row, tags equal to the JSONL keys. Each run segment
// (fresh start or resume) writes its own event file; a resumed segment opens with a
// SessionLog START at the first step it will log, which makes TensorBoard purge the
// points the interrupted segment wrote for steps >= that one.
import { readdirSync } from 'node:fs';
import { TfEventsWriter } from '../formats/tfevents.js';
import { type MetricsRow, type MetricsSink, orderedEntries } from './metrics.js';
import { RunError } from './run-error.js';

export interface TensorBoardSinkOptions {
  /** Resuming from a checkpoint at this step: START is written at resumeStep + 1. */
  resumeStep?: number | undefined;
  /** Seconds between automatic flushes (fsync) of the event file; default 10. */
  flushSeconds?: number;
  /** Host name in the file name (tests pin it). */
  hostname?: string;
}

// TensorBoard reads the files of a directory in name order and the name starts with the
// creation second: a resume within the same second as the previous file must still sort
// after it, or its START would be read first and purge nothing.
function fileWallTime(dir: string): number {
  let last = 0;
  try {
    for (const name of readdirSync(dir)) {
      const m = /^events\.out\.tfevents\.(\d+)\./.exec(name);
      if (m) last = Math.max(last, Number(m[1]));
    }
  } catch {
    // no directory yet: nothing to sort after
  }
  const now = Date.now() / 1000;
  return Math.floor(now) > last ? now : last + 1;
}

/** The TensorBoard scalar sink (events.out.tfevents.* in the run directory). */
export class TensorBoardSink implements MetricsSink {
  readonly writer: TfEventsWriter;
  private readonly flushMs: number;
  private lastFlush = Date.now();

  constructor(readonly dir: string, options: TensorBoardSinkOptions = {}) {
    try {
      this.writer = new TfEventsWriter(dir, {
        wallTime: fileWallTime(dir),
        ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
      });
    } catch (e) {
      throw RunError.fromFs(e, dir, 'cannot create the TensorBoard event file');
    }
    this.flushMs = (options.flushSeconds ?? 10) * 1000;
    if (options.resumeStep !== undefined) {
      this.writer.addSessionLog(options.resumeStep + 1, 'START', { msg: `resumed from step ${options.resumeStep}` });
      this.writer.flush();
    }
  }

  write(row: MetricsRow): void {
    const scalars: Record<string, number> = {};
    for (const [k, v] of orderedEntries(row)) if (k !== 'step') scalars[k] = v;
    this.writer.addScalars(row.step, scalars);
    if (Date.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  flush(): void {
    this.writer.flush();
    this.lastFlush = Date.now();
  }

  close(): void {
    this.writer.close();
  }
}
