// A run directory (ARCHITECTURE.md §6) from the trainer's side: create or reopen it, find the
// checkpoint to resume from, wire the metrics sinks and the progress display, and save
// checkpoints. The trainer's contract is in the TSDoc of RunDirectory below.
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../formats/tensor.js';
import { checkInteger } from '../validate.js';
import { checkResumeConfig, readConfigFile, RESUME_MUTABLE_KEYS, type RunConfig, writeConfigFile } from './config.js';
import { INVALID_PREFIX, OLD_PREFIX, parseStepDirName, type TensorGroups, TMP_PREFIX, TRASH_PREFIX } from './checkpoint-layout.js';
import { type CheckpointCheck, findLatestCheckpoint } from './checkpoint-read.js';
import { pruneCheckpoints, writeCheckpoint } from './checkpoint-write.js';
import { CsvSink, truncatedCsv } from './csv-sink.js';
import { fsyncDir, makeDirectory, replaceFileAtomic } from './fsio.js';
import { JsonlSink, truncatedJsonl } from './jsonl-sink.js';
import { checkMetricsRow, type MetricsRow, type MetricsSink, MultiSink } from './metrics.js';
import { type ProgressOptions, ProgressReporter } from './progress.js';
import { RunError } from './run-error.js';
import { lockRunDir } from './run-lock.js';
import { TensorBoardSink } from './tensorboard-sink.js';

/** File names inside a run directory. */
export const RUN_FILES = {
  config: 'config.json',
  jsonl: 'metrics.jsonl',
  csv: 'metrics.csv',
  progressLog: 'train_progress.log',
  checkpoints: 'checkpoints',
} as const;

export interface RunDirectoryOptions {
  /** The run directory (runs/<name>). */
  dir: string;
  /** The fully resolved configuration: written to config.json, hashed into checkpoints. */
  config: RunConfig;
  /** Continue the run in `dir` from its newest valid checkpoint. Default false (a new run). */
  resume?: boolean;
  /** The run's last step (for the progress display). */
  totalSteps: number;
  /** Checkpoints kept (>= 2); default 3. */
  keepLast?: number;
  /** Config keys a resume may change; default RESUME_MUTABLE_KEYS. */
  mutableKeys?: readonly string[];
  /** Console progress options, or false for none (train_progress.log is still written). */
  progress?: false | Omit<ProgressOptions, 'totalSteps' | 'startStep' | 'logFile'>;
  /** Write TensorBoard events; default true. */
  tensorboard?: boolean;
  /** Extra sinks that receive every row too. */
  extraSinks?: MetricsSink[];
  /**
   * Where warnings go (checkpoints set aside, a restart from step 0) when the progress
   * display does not show them on stderr (progress: false, or another stream); default
   * a line on stderr. Warnings are never silenced.
   */
  warn?: (line: string) => void;
  /** How a refused resume names config keys (the CLI passes its flag spelling). */
  keyName?: (key: string) => string;
  /**
   * The value of each key a saved config may lack (keys added by later versions): a saved
   * config is read as these defaults overlaid with what it holds, so an older run resumes.
   */
  defaults?: RunConfig;
}

/** What a resume hands back to the trainer. */
export interface ResumePoint {
  /** The checkpoint's step: the trainer continues with step + 1. */
  step: number;
  /** The checkpoint directory. */
  dir: string;
  /** The trainer state exactly as given to saveCheckpoint. */
  trainerState: unknown;
  /** The tensor groups exactly as saved (typed-array views; copy them into place). */
  tensors: Record<string, Record<string, Tensor>>;
  /** state.json's `model`: what the model was (absent in checkpoints that predate it). */
  model?: unknown;
}

interface Note {
  text: string;
  warning: boolean;
}

/**
 * A run directory opened for training.
 *
 * Contract for the trainer (what makes a resume bit-identical):
 * 1. Open with `RunDirectory.open({dir, config, resume, totalSteps})`. When `resumed` is
 *    set, restore everything the next step depends on from `resumed.tensors` and
 *    `resumed.trainerState` (parameters, anchor, AdamW m and v, the step counter used for
 *    bias correction and the LR schedule, λ, RNG state, sampler position/epoch, running
 *    meters), then run steps `resumed.step + 1 ...`. Nothing may be recomputed from
 *    wall-clock time or from anything not in the checkpoint. A resume that finds no valid
 *    checkpoint starts again from step 0 (`resumed` unset, `startStep` 0).
 * 2. Call `begin()` once the state is restored (log() and saveCheckpoint() call it too).
 *    Until then a resume has changed nothing a user had: the metrics files are cut back
 *    to the resume step, invalid checkpoints set aside and config.json rewritten only in
 *    begin(), so a resume that fails while loading leaves the run as it was.
 * 3. After each optimizer step, call `log(row)` with the ARCHITECTURE.md §5 row (or only on
 *    logged steps). Only `step_ms` and `samples_per_s` may differ between an
 *    uninterrupted and a resumed run.
 * 4. Call `saveCheckpoint(step, groups, state, { model })` only at step boundaries, after `log` of
 *    that step: the sinks are fsynced first, so rows up to `step` are always on disk when
 *    the checkpoint is; on resume the rows after the checkpoint are truncated away.
 *    `state` must be JSON-serializable (no NaN/Infinity/BigInt: encode RNG words as
 *    numbers or strings) and must hold `epoch` and `lambda` at top level for `inspect`.
 * 5. Call `close()` at the end (after the final checkpoint).
 */
export class RunDirectory {
  readonly dir: string;
  readonly checkpointsDir: string;
  readonly config: RunConfig;
  /** Set when the run continues from a checkpoint. */
  readonly resumed: ResumePoint | undefined;
  /** The last completed step (0 for a fresh run or a resume with no valid checkpoint). */
  readonly startStep: number;
  /** Newer checkpoints that were invalid and passed over (moved aside to .invalid-* by begin()). */
  readonly skipped: CheckpointCheck[];
  private readonly options: RunDirectoryOptions;
  private readonly notes: Note[];
  private readonly keepLast: number;
  private readonly progressTotal: number;
  private readonly mutableKeys: readonly string[];
  private readonly release: () => void;
  private opened: { sink: MultiSink; progress: ProgressReporter } | undefined;
  private closed = false;

  private constructor(init: {
    options: RunDirectoryOptions; resumed: ResumePoint | undefined; skipped: CheckpointCheck[]; notes: Note[]; release: () => void;
  }) {
    const o = init.options;
    this.options = o;
    this.dir = o.dir;
    this.checkpointsDir = join(o.dir, RUN_FILES.checkpoints);
    this.config = o.config;
    this.resumed = init.resumed;
    this.startStep = init.resumed?.step ?? 0;
    this.skipped = init.skipped;
    this.notes = init.notes;
    this.keepLast = o.keepLast ?? 3;
    this.progressTotal = o.totalSteps;
    this.mutableKeys = o.mutableKeys ?? RESUME_MUTABLE_KEYS;
    this.release = init.release;
  }

  /**
   * Creates a new run directory, or with `resume` reopens one: checks the configuration
   * against the saved one (refusing differing keys), clears what a crash left in
   * checkpoints/ (temp directories of unfinished checkpoints) and loads the newest valid
   * checkpoint. A resume changes nothing else until begin().
   */
  static async open(options: RunDirectoryOptions): Promise<RunDirectory> {
    const { dir, config } = options;
    checkInteger(options.keepLast ?? 3, 'keep_last', 2);
    const mutable = options.mutableKeys ?? RESUME_MUTABLE_KEYS;
    const naming = options.keyName ? { keyName: options.keyName } : {};
    const configPath = join(dir, RUN_FILES.config);
    const ckDir = join(dir, RUN_FILES.checkpoints);
    if (options.resume) {
      if (!existsSync(configPath)) {
        throw new RunError(`is not a run directory (no ${RUN_FILES.config}); start a new run instead of resuming`, { path: dir, code: 'NO_RUN' });
      }
      checkResumeConfig({ ...options.defaults, ...readConfigFile(configPath).config }, config, configPath, mutable, naming);
    } else if (existsSync(dir) && readdirSync(dir).some((n) => n === RUN_FILES.config || n === RUN_FILES.checkpoints)) {
      throw new RunError('already holds a run: resume it, or choose another run name or output directory', { path: dir, code: 'RUN_EXISTS' });
    }
    try {
      makeDirectory(dir);
    } catch (e) {
      throw RunError.fromFs(e, dir, 'cannot create the run directory');
    }
    const release = lockRunDir(dir);
    try {
      // config.json first: a process killed before it leaves a directory that a new run
      // may still take over; one killed after it leaves a run that --resume can continue.
      if (!options.resume) writeConfigFile(configPath, config);
      // Leftovers of an atomic replace (config.json, metrics files) cut short by a kill.
      for (const n of readdirSync(dir)) if (/\.tmp-\d+$/.test(n)) rmSync(join(dir, n), { force: true });
      const notes: Note[] = [];
      let resumed: ResumePoint | undefined;
      let skipped: CheckpointCheck[] = [];
      if (options.resume) {
        if (existsSync(ckDir)) notes.push(...repairCheckpointsDir(ckDir).map((text) => ({ text, warning: false })));
        const found = await findLatestCheckpoint(ckDir);
        skipped = found.skipped;
        const latest = found.latest;
        if (latest !== undefined) {
          checkResumeConfig({ ...options.defaults, ...latest.state!.config }, config, join(latest.dir, 'state.json'), mutable, naming);
          resumed = { step: latest.step!, dir: latest.dir, trainerState: latest.state!.trainer, tensors: latest.tensors!, model: latest.state!.model };
        }
      }
      return new RunDirectory({ options, resumed, skipped, notes, release });
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Starts the run's output: on a resume, cuts metrics.jsonl and metrics.csv back to the
   * resume step (a temp file renamed over each, both checked before either is touched),
   * sets invalid checkpoints aside, rewrites config.json; then opens the sinks and the
   * progress display and reports what was found. Idempotent; log() and saveCheckpoint()
   * call it.
   */
  begin(): void {
    if (this.opened) return;
    if (this.closed) throw new RunError('the run directory is closed', { path: this.dir });
    const o = this.options;
    const jsonlPath = join(this.dir, RUN_FILES.jsonl), csvPath = join(this.dir, RUN_FILES.csv);
    const resumeStep = o.resume ? this.startStep : undefined;
    // Every check that can refuse comes before the first change.
    const cuts = resumeStep === undefined ? [] : [
      { path: jsonlPath, content: truncatedJsonl(jsonlPath, resumeStep).content },
      { path: csvPath, content: truncatedCsv(csvPath, resumeStep).content },
    ];
    try {
      makeDirectory(this.checkpointsDir);
    } catch (e) {
      throw RunError.fromFs(e, this.checkpointsDir, 'cannot create the checkpoints directory');
    }
    fsyncDir(this.dir); // the new checkpoints/ entry must survive a power cut too
    const notes = [...this.notes];
    for (const s of this.skipped) {
      // Set aside, not deleted: the files may matter to whoever investigates.
      const aside = join(this.checkpointsDir, `${INVALID_PREFIX}${s.dir.split(/[\\/]/).pop()}-${Date.now()}`);
      renameSync(s.dir, aside);
      notes.push({ text: `craftgrad: warning: checkpoint ${s.dir} is not valid and was moved to ${aside}:\n  ${s.problems.join('\n  ')}`, warning: true });
    }
    if (this.skipped.length > 0) fsyncDir(this.checkpointsDir);
    if (this.resumed) notes.push({ text: `craftgrad: resuming from ${this.resumed.dir} (step ${this.resumed.step})`, warning: false });
    if (o.resume && this.resumed === undefined) {
      notes.push({
        text: `craftgrad: warning: no valid checkpoint in ${this.checkpointsDir}: starting again from step 0 ` +
          '(the run is deterministic: the metrics rows logged before are written again, the same)',
        warning: true,
      });
    }
    // On resume too: the mutable keys (steps, save_every...) may have changed.
    if (o.resume) writeConfigFile(join(this.dir, RUN_FILES.config), this.config);
    for (const c of cuts) if (c.content !== undefined) replaceFileAtomic(c.path, c.content);
    const sinks: MetricsSink[] = [new JsonlSink(jsonlPath, { resumeStep }), new CsvSink(csvPath, { resumeStep })];
    if (o.tensorboard ?? true) sinks.push(new TensorBoardSink(this.dir, { resumeStep }));
    sinks.push(...(o.extraSinks ?? []));
    const p = o.progress === false ? { stream: nullStream(), tty: false } : (o.progress ?? {});
    const progress = new ProgressReporter({
      ...p, totalSteps: o.totalSteps, startStep: this.startStep, logFile: join(this.dir, RUN_FILES.progressLog),
    });
    const shownOnStderr = o.progress !== false && (p.stream === undefined || p.stream === process.stderr);
    const warn = o.warn ?? ((line: string) => void process.stderr.write(line + '\n'));
    for (const n of notes) {
      progress.message(n.text); // the console (unless quiet) and train_progress.log
      if (n.warning && !shownOnStderr) warn(n.text);
    }
    this.opened = { sink: new MultiSink(sinks), progress };
  }

  /** The sinks every row goes to (JSONL, CSV, TensorBoard, extras); begins the output. */
  get sink(): MultiSink {
    this.begin();
    return this.opened!.sink;
  }

  /** The progress display; begins the output. */
  get progress(): ProgressReporter {
    this.begin();
    return this.opened!.progress;
  }

  /**
   * A sink for the trainer's `sinks` option: rows go to `log` (files, TensorBoard,
   * progress). It has no close(): closing is `RunDirectory.close()`'s job, after the final
   * checkpoint.
   */
  get metricsSink(): MetricsSink {
    return { write: (row: MetricsRow) => this.log(row), flush: () => this.sink.flush() };
  }

  /** Writes one metrics row to every sink and updates the progress display. */
  log(row: MetricsRow): void {
    const r = checkMetricsRow(row);
    this.sink.write(r);
    this.progress.update(r);
  }

  /** Whether `step` is a checkpoint step: every `saveEvery` steps and the run's last step. */
  checkpointDue(step: number, saveEvery: number): boolean {
    return (saveEvery > 0 && step % saveEvery === 0) || step === this.progressTotal;
  }

  /**
   * Saves checkpoints/step-NNNNNN atomically after making the metrics durable, then
   * keeps the newest `keepLast`. The tensors must not change until the promise settles
   * (they are serialized group by group). `options.model` describes the model for
   * loaders (state.json's `model`). On failure (RunError naming the path) every
   * earlier checkpoint is intact and the run can go on or stop.
   */
  async saveCheckpoint(step: number, groups: TensorGroups, trainerState: unknown, options: { model?: unknown; files?: Record<string, Uint8Array> } = {}): Promise<string> {
    if (this.closed) throw new RunError('the run directory is closed', { path: this.dir });
    this.sink.flush();
    const path = await writeCheckpoint(this.checkpointsDir, step, groups, trainerState, {
      config: this.config, mutableKeys: this.mutableKeys, ...(options.model === undefined ? {} : { model: options.model }),
      ...(options.files === undefined ? {} : { files: options.files }),
    });
    await pruneCheckpoints(this.checkpointsDir, this.keepLast, step);
    return path;
  }

  /** Flushes and closes the sinks and the progress display (if begun), and releases the lock. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.opened?.sink.close();
    } finally {
      this.opened?.progress.stop();
      this.release();
    }
  }
}

/**
 * The tensors of a resume point as Float32Arrays (what the trainer's
 * trainerStateFromGroups takes). Errors name the group and tensor that is not F32.
 */
export function float32Groups(tensors: Record<string, Record<string, Tensor>>): Record<string, Record<string, Float32Array>> {
  const out: Record<string, Record<string, Float32Array>> = {};
  for (const [g, ts] of Object.entries(tensors)) {
    out[g] = {};
    for (const [k, t] of Object.entries(ts)) {
      if (t.dtype !== 'F32' || !(t.data instanceof Float32Array)) {
        throw new RunError(`tensor ${g}/${k} is ${t.dtype}, expected F32`, { path: `${g}.safetensors`, field: k });
      }
      out[g]![k] = t.data;
    }
  }
  return out;
}

/**
 * Cleans what an interrupted process left in checkpoints/: temp directories of
 * unfinished checkpoints and half-pruned ones are removed; a checkpoint moved aside for
 * replacement whose replacement never arrived is moved back. Returns notes.
 */
export function repairCheckpointsDir(ckDir: string): string[] {
  const notes: string[] = [];
  let changed = false;
  for (const n of readdirSync(ckDir)) {
    const path = join(ckDir, n);
    if (n.startsWith(TMP_PREFIX) || n.startsWith(TRASH_PREFIX)) {
      rmSync(path, { recursive: true, force: true });
      changed = true;
    } else if (n.startsWith(OLD_PREFIX)) {
      const base = /^\.old-(step-\d+)-/.exec(n)?.[1];
      if (base !== undefined && parseStepDirName(base) !== undefined && !existsSync(join(ckDir, base))) {
        renameSync(path, join(ckDir, base));
        notes.push(`craftgrad: restored ${join(ckDir, base)} from an interrupted replacement`);
      } else {
        rmSync(path, { recursive: true, force: true });
      }
      changed = true;
    }
  }
  if (changed) fsyncDir(ckDir);
  return notes;
}

function nullStream(): NodeJS.WritableStream {
  return { write: () => true } as unknown as NodeJS.WritableStream;
}
