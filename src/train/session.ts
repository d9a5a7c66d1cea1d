// A whole training run (of the built-in model or of a Qwen2 backbone, session-model.ts):
// data, model, trainer and run directory put together, the step loop with checkpoints, exact resume and graceful stop. The CLI's
// `train` command is a thin layer over this; programs can call it directly too.
import { RunDirectory, float32Groups, type RunDirectoryOptions } from '../run/run-directory.js';
import { listCheckpointDirs } from '../run/checkpoint-read.js';
import { RunError } from '../run/run-error.js';
import { resumeCommand } from '../run/signals.js';
import { ConflictLogWriter } from '../run/conflict-log.js';
import type { StopHandlers } from '../run/signals.js';
import { Trainer, type TrainerOptions } from './trainer.js';
import { trainerTensorGroups, trainerStateFromGroups } from './checkpoint-tensors.js';
import type { StepDetail, StepMetrics, StepMetricsSink } from './metrics.js';
import type { TrainerStateJson } from './trainer.js';
import { TRAIN_DEFAULTS, TRAIN_RESUME_MUTABLE_KEYS, type TrainRunConfig } from './run-config.js';
import { trainerOptionsFromConfig } from './options.js';
import { openSessionModel } from './session-model.js';
import { resolvePrecision } from '../precision.js';
// Multi-process training (src/parallel): used only when `world` is given.
import { DataParallelSource, DeviceGroup, HostRelay, deviceReduceMode, FollowerRun, agreedStop, checkSameWeights, dataParallelDesign, startRanks, type DataParallelDesign, type DeviceReducer, type World } from '../parallel/index.js';
import { ShardedStep } from './sharded-step.js';
import type { GradSet } from '../gradset.js';

export interface TrainingSessionOptions {
  config: TrainRunConfig;
  /** The run directory. */
  dir: string;
  /** Continue the run in `dir` from its newest valid checkpoint. */
  resume: boolean;
  /** Console progress (see RunDirectoryOptions.progress). */
  progress?: RunDirectoryOptions['progress'];
  /** When a stop signal arrives: finish the step, save a checkpoint, return. */
  stop?: StopHandlers;
  /** Where notices and warnings go (skipped steps, a capped batch size, checkpoints set aside); default stderr. */
  log?: (line: string) => void;
  /** How refusals name config keys (the CLI passes its flags: batch_size -> --batch-size). */
  keyName?: (key: string) => string;
  /** Multi-process training: this process's rank among the others (src/parallel); absent: one process. */
  world?: World | undefined;
  /**
   * Multi-process: 'sharded' (ZeRO-1: each rank updates its segment of the parameters with
   * its share of the optimizer state) or 'plain' (every rank runs the whole step). Default:
   * CRAFTGRAD_DATA_PARALLEL, else 'sharded'. The sharded step needs the fused optimizer step
   * and at least as many parameters as ranks; otherwise the plain one is used (said on stderr).
   */
  dataParallel?: DataParallelDesign | undefined;
}

export interface TrainingOutcome {
  dir: string;
  checkpointsDir: string;
  /** The checkpoint written last (the final one, or the one made on a stop). */
  lastCheckpoint: string | undefined;
  /** The step the session started after (0 for a new run). */
  startStep: number;
  /** The last step done. */
  step: number;
  /** Set when a signal stopped the run early. */
  stoppedBy: NodeJS.Signals | undefined;
  trainSamples: number;
  valSamples: number;
  elapsedMs: number;
}

/** The Trainer options of a run configuration, through the table of options (exported for the test that the defaults agree). */
export function trainerOptions(c: TrainRunConfig, sinks: StepMetricsSink[], log: (line: string) => void): TrainerOptions {
  return { ...(trainerOptionsFromConfig(c as unknown as Record<string, unknown>) as unknown as TrainerOptions), sinks, log };
}

/** Rows of logged steps only (every `log_every`, the last step, validation steps). */
function everyNth(c: TrainRunConfig, sinks: StepMetricsSink[]): StepMetricsSink {
  return {
    write(row: StepMetrics, detail: StepDetail) {
      if (row.step % c.log_every !== 0 && row.step !== c.steps && row.val_action_loss === undefined) return;
      for (const s of sinks) s.write(row, detail);
    },
  };
}

export async function runTrainingSession(o: TrainingSessionOptions): Promise<TrainingOutcome> {
  let c = o.config;
  const log = o.log ?? ((line: string) => void process.stderr.write(line + '\n'));
  const name = o.keyName ?? ((k: string) => k);
  const started = Date.now();
  // Refused before anything is read or written.
  const design = o.world ? (o.dataParallel ?? dataParallelDesign()) : undefined;
  const deviceReduce = o.world ? deviceReduceMode() : undefined;
  // 'auto' resolved here for the API (the CLI has already); bf16 on the CPU is refused, e.g. a bf16 run resumed there.
  c = { ...c, precision: resolvePrecision(c.precision ?? 'fp32', c.device, name('precision')) };

  const opened = await openSessionModel(c, { resume: o.resume, log, keyName: name, ...(o.world ? { shard: { rank: o.world.rank, ranks: o.world.size } } : {}) });
  c = opened.config;
  const source = opened.source;
  // Multi-process: rank 0 alone has a run directory; the others write nothing.
  const leader = !o.world || o.world.rank === 0;
  const stop = o.world ? agreedStop(o.world, o.stop) : o.stop;

  const run = !leader ? new FollowerRun(o.dir) : await RunDirectory.open({
    dir: o.dir, config: c as unknown as RunDirectoryOptions['config'], resume: o.resume, totalSteps: c.steps,
    keepLast: c.keep_last, warn: log, ...(o.progress === undefined ? {} : { progress: o.progress }),
    defaults: TRAIN_DEFAULTS as unknown as RunDirectoryOptions['config'], mutableKeys: TRAIN_RESUME_MUTABLE_KEYS,
    ...(o.keyName ? { keyName: o.keyName } : {}),
  });
  let conflicts: ConflictLogWriter | undefined;
  try {
    const sinks: StepMetricsSink[] = [run.metricsSink];
    const options = trainerOptions(c, [everyNth(c, sinks)], log);
    let shard: ShardedStep | undefined;
    // Device sets: reduced on the devices with NCCL when every rank can (src/parallel/device-group.ts),
    // else through host copies (host-relay.ts); the same bits either way.
    let devices: DeviceReducer | undefined;
    if (o.world && source.params.device !== 'cpu') {
      const opened = DeviceGroup.open(o.world, source.params.device, deviceReduce);
      devices = opened.group ?? new HostRelay(o.world, source.params.device);
      if (leader) {
        log(opened.group
          ? `craftgrad: gradients are reduced on the GPUs with ${DeviceGroup.describe()}`
          : `craftgrad: gradients are reduced through host memory with MPI (${opened.why})`);
      }
    }
    if (o.world) {
      const wanted = design;
      const why = wanted !== 'sharded' ? undefined
        : options.fused === false ? 'the unfused optimizer step was asked for'
            : source.params.numElements < o.world.size ? 'there are fewer parameters than ranks' : undefined;
      if (wanted === 'sharded' && why === undefined) shard = new ShardedStep(o.world, source.params.sizes, devices);
      if (leader) {
        log(shard
          ? `craftgrad: data-parallel step: sharded (ZeRO-1): each of the ${o.world.size} ranks updates its 1/${o.world.size} of the parameters and holds that share of the optimizer state`
          : `craftgrad: data-parallel step: plain: every rank runs the whole step${wanted === 'sharded' ? ` (the sharded step cannot be used: ${why})` : ''}`);
      }
    }
    const trainer = new Trainer(o.world ? new DataParallelSource(source, o.world, options.microBatches ?? 1, { sharded: shard !== undefined, devices }) : source,
      options, { shard });
    let resumedMoments: { m: GradSet; v: GradSet } | undefined;
    const names = source.paramNames;
    if (run.resumed) {
      try {
        const groups = float32Groups(run.resumed.tensors);
        opened.restore(run.resumed);
        const restored = trainerStateFromGroups(run.resumed.trainerState as TrainerStateJson, groups, names, source.params);
        trainer.restoreState(restored);
        if (shard) resumedMoments = { m: restored.m, v: restored.v };
      } catch (e) {
        // Nothing has been changed yet (see RunDirectory.begin): say which checkpoint did not load.
        throw new RunError(`cannot resume from this checkpoint: ${(e as Error).message}`, { path: run.resumed.dir, code: 'BAD_CHECKPOINT', cause: e });
      }
    }
    // The conflict log's header is checked before anything changes; its records after
    // the resume step are dropped only once the state to resume from is loaded (begin()).
    if (o.world) startRanks(o.world, trainer, opened.rankModel, run, resumedMoments);
    resumedMoments = undefined;
    if (c.craft && leader) conflicts = new ConflictLogWriter(o.dir, names, { replace: !o.resume });
    run.begin();
    if (conflicts) {
      if (o.resume) conflicts.truncateAfter(run.startStep);
      const writer = conflicts;
      sinks.push({ write: (row, detail) => writer.append(row.step, detail.conflicts) });
    }

    let lastCheckpoint: string | undefined;
    let lastSaved = run.startStep;
    // Sharded: every rank takes part in a save (the moments are gathered to rank 0), so the
    // ranks agree on when one is due (rank 0 decides).
    const due = (step: number): boolean => {
      if (!shard) return run.checkpointDue(step, c.save_every);
      return o.world!.sum([leader && run.checkpointDue(step, c.save_every) ? 1 : 0])[0]! > 0;
    };
    const save = async () => {
      if (!leader && !shard) return;
      const st = trainer.state(false);
      if (!leader) {
        lastSaved = st.json.step;
        return;
      }
      conflicts?.flush();
      const parts = opened.checkpointParts(st.json.step);
      const groups = { ...trainerTensorGroups(st, names, source.paramShapes), ...parts.groups };
      lastCheckpoint = await run.saveCheckpoint(st.json.step, groups, st.json, { model: parts.model, ...(parts.files ? { files: parts.files } : {}) });
      lastSaved = st.json.step;
    };
    let stoppedBy: NodeJS.Signals | undefined;
    while (!trainer.done) {
      const before = trainer.stepIndex;
      try {
        await trainer.step();
      } catch (e) {
        // Rolled back to the last completed step: save it, so the work up to it is kept.
        // (Not under the sharded step: saving is collective there, and a step that failed on
        // one rank leaves the others inside another collective.)
        if (!shard && trainer.atStepBoundary && trainer.stepIndex > 0 && lastSaved !== trainer.stepIndex) {
          try {
            await save();
          } catch (saveError) {
            log(`craftgrad: warning: could not save step ${trainer.stepIndex} after the failure: ${(saveError as Error).message}`);
          }
        }
        throw failedDuring(before + 1, e, o.dir, run.checkpointsDir);
      }
      const step = trainer.stepIndex;
      const stopping = stop?.shouldStop() ?? false;
      if (due(step) || stopping) await save();
      if (stopping) {
        stoppedBy = stop!.signal;
        break;
      }
      // Signals are delivered on the event loop: let it turn once per step.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (o.world) {
      const weights = checkSameWeights(o.world, source.params);
      if (leader) log(`craftgrad: the ${o.world.size} ranks hold identical weights (digest ${weights})`);
    }
    if (run.resumed && trainer.stepIndex === run.startStep) lastCheckpoint = run.resumed.dir; // nothing left to run
    await trainer.close();
    return {
      dir: o.dir, checkpointsDir: run.checkpointsDir, lastCheckpoint, startStep: run.startStep, step: trainer.stepIndex,
      stoppedBy, trainSamples: opened.trainSamples, valSamples: opened.valSamples, elapsedMs: Date.now() - started,
    };
  } finally {
    conflicts?.close();
    run.close();
    // A source with threads of its own (the RLDS source's frame workers) stops them.
    await (source as { close?: () => Promise<void> }).close?.();
  }
}

/**
 * The error of a step that failed: what failed, and what the run still has. A step that
 * failed before changing any state was rolled back and the last completed step saved
 * (above); one that failed part-way is never saved. Every row logged before it and every
 * checkpoint stay, and a resume continues from the newest checkpoint, repeating any later
 * steps exactly.
 */
function failedDuring(step: number, e: unknown, dir: string, checkpointsDir: string): RunError {
  const last = listCheckpointDirs(checkpointsDir)[0];
  return new RunError(
    `training failed during step ${step}: ${(e as Error)?.message ?? String(e)}. ` +
      `Kept: the metrics up to step ${step - 1} in ${dir}; ` +
      (last ? `the checkpoint ${last.dir} (step ${last.step}); resume from it with: ${resumeCommand(dir)}` : 'no checkpoint yet (none was due)'),
    { code: 'TRAINING_FAILED', cause: e },
  );
}
