// Console progress. On a TTY: a live cli-progress bar redrawn in place. Off a TTY (CI
// logs, pipes, files): one plain line every `everySteps` steps or `everySeconds` seconds,
// never a carriage return, so logs stay greppable. The plain lines also go to
// train_progress.log in both cases.
import { closeSync, openSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { appendAll } from './fsio.js';
import type { MetricsRow } from './metrics.js';
import { clock, fitProgressLine, formatStepLine, progressParts } from './progress-format.js';
import { RunError } from './run-error.js';

export interface ProgressOptions {
  /** The run's last step (the bar's total). */
  totalSteps: number;
  /** Step already done when this segment starts (the resume step); default 0. */
  startStep?: number;
  /** Where the console output goes; default process.stderr. */
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Live bar or plain lines; default: whether `stream` is a TTY. */
  tty?: boolean;
  /** train_progress.log path; lines are appended. Omit for no log file. */
  logFile?: string;
  /** Plain-line cadence in steps; default 10. */
  everySteps?: number;
  /** Plain-line cadence in seconds (a line also when this much time passed); default 30. */
  everySeconds?: number;
  /** Clock in milliseconds (tests pin it); default Date.now. */
  now?: () => number;
}

/** Shows training progress on the console and in train_progress.log. */
export class ProgressReporter {
  readonly tty: boolean;
  private readonly stream: NodeJS.WritableStream;
  private readonly total: number;
  private readonly startStep: number;
  private readonly everySteps: number;
  private readonly everyMs: number;
  private readonly now: () => number;
  private readonly t0: number;
  private logFd: number | undefined;
  private lastLineStep: number;
  private lastLineTime: number;
  private multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private lastDraw = 0;

  constructor(options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean((this.stream as NodeJS.WriteStream).isTTY);
    this.total = options.totalSteps;
    this.startStep = options.startStep ?? 0;
    this.everySteps = Math.max(1, options.everySteps ?? 10);
    this.everyMs = (options.everySeconds ?? 30) * 1000;
    this.now = options.now ?? Date.now;
    this.t0 = this.now();
    this.lastLineStep = this.startStep;
    this.lastLineTime = this.t0;
    if (options.logFile !== undefined) {
      try {
        this.logFd = openSync(options.logFile, 'a');
      } catch (e) {
        throw RunError.fromFs(e, options.logFile, 'cannot open the progress log');
      }
    }
    if (this.tty) {
      this.multi = new cliProgress.MultiBar({
        stream: this.stream,
        // The whole line is ours (fitted to the terminal's width); cli-progress only redraws it.
        format: '{line}',
        barsize: 20,
        hideCursor: false,
        gracefulExit: false, // our stop handlers own SIGINT/SIGTERM
        clearOnComplete: false,
        linewrap: false,
      }, cliProgress.Presets.shades_classic);
      this.bar = this.multi.create(this.total, this.startStep, { line: `Step ${this.startStep}/${this.total}` });
    }
  }

  /** Elapsed time and ETA from this segment's throughput. */
  private times(step: number): { elapsed: string; eta: string } {
    const sec = (this.now() - this.t0) / 1000;
    const done = step - this.startStep;
    const eta = done > 0 ? (sec / done) * (this.total - step) : NaN;
    return { elapsed: clock(sec), eta: clock(eta) };
  }

  /** Columns for the live line: the terminal's width less one (a line filling the last column wraps on some terminals). */
  private width(): number {
    const cols = (this.stream as NodeJS.WriteStream).columns;
    return (typeof cols === 'number' && cols > 0 ? cols : 80) - 1;
  }

  /** The full plain line for a row (metrics, elapsed, ETA). */
  plainLine(row: MetricsRow): string {
    const { elapsed, eta } = this.times(row.step);
    return `${formatStepLine(row, this.total)} | elapsed ${elapsed} | ETA ${eta}`;
  }

  /** Reports one optimizer step's metrics. */
  update(row: MetricsRow): void {
    if (this.bar) {
      this.bar.update(row.step, { line: fitProgressLine(progressParts(row, this.total, this.times(row.step)), this.width()) });
      // Redraw here too (throttled): cli-progress redraws on a timer, which never fires
      // while a loop keeps the event loop busy.
      const t = this.now();
      if (t - this.lastDraw >= 100) {
        this.lastDraw = t;
        this.multi!.update();
      }
    }
    const t = this.now();
    const due = row.step - this.lastLineStep >= this.everySteps || t - this.lastLineTime >= this.everyMs || row.step >= this.total;
    if (!due) return;
    this.lastLineStep = row.step;
    this.lastLineTime = t;
    const line = this.plainLine(row);
    if (!this.tty) this.stream.write(line + '\n');
    if (this.logFd !== undefined) appendAll(this.logFd, line + '\n');
  }

  /** A message line (checkpoint saved, resumed, stopping): above the bar on a TTY. */
  message(text: string): void {
    if (this.multi) {
      this.multi.log(text + '\n');
      this.multi.update();
    } else this.stream.write(text + '\n');
    if (this.logFd !== undefined) appendAll(this.logFd, text + '\n');
  }

  /** Stops the bar (its timer would keep the process alive) and closes the log. */
  stop(): void {
    if (this.multi) {
      this.multi.update(); // draw pending log lines and the last state
      this.multi.stop();
      this.multi = undefined;
      this.bar = undefined;
    }
    if (this.logFd !== undefined) {
      closeSync(this.logFd);
      this.logFd = undefined;
    }
  }
}
