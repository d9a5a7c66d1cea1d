// A whole training run of the built-in model: data, model, trainer and run directory put
// together, the step loop with checkpoints, exact resume and graceful stop. The CLI's
// `train` command is a thin layer over this; programs can call it directly too.
import { syntheticDataset, loadDatasetFile, splitByEpisode, nShot, type Dataset } from '../data/index.js';
import { AdapterPolicy, AdapterPolicySource } from '../model/index.js';
import { RunDirectory, float32Groups, type RunDirectoryOptions } from '../run/run-directory.js';
import { ConflictLogWriter } from '../run/conflict-log.js';
import type { StopHandlers } from '../run/signals.js';
import { Trainer, type TrainerOptions } from './trainer.js';
import { trainerTensorGroups, trainerStateFromGroups } from './checkpoint-tensors.js';
import type { StepDetail, StepMetrics, StepMetricsSink } from './metrics.js';
import type { TrainerStateJson } from './trainer.js';
import type { TrainRunConfig } from './run-config.js';

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
  /** Where notices go (skipped steps, data set sizes). */
  log?: (line: string) => void;
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

async function loadData(c: TrainRunConfig): Promise<Dataset> {
  if (c.data === 'synthetic') {
    return syntheticDataset({ seed: c.seed, tokens: c.tokens, width: c.width, chunk: c.chunk, actionDims: c.action_dims });
  }
  return loadDatasetFile(c.data);
}

/** The Trainer options of a run configuration (exported for the test that the defaults agree). */
export function trainerOptions(c: TrainRunConfig, sinks: StepMetricsSink[], log: (line: string) => void): TrainerOptions {
  return {
    steps: c.steps, microBatches: c.grad_accum, mode: c.craft ? 'craft' : 'baseline', projection: c.projection, dual: c.dual,
    lambda: c.lambda, lambdaLr: c.dual_lr, retentionBudget: c.budget, surgeryEps: c.eps, lr: c.lr, weightDecay: c.weight_decay,
    schedule: c.schedule, warmup: c.warmup, decayAfter: c.decay_after, minLr: c.min_lr, clipNorm: c.clip,
    valEvery: c.val_every, valTimeLimitMs: c.val_time_limit * 1000, sinks, log,
  };
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
  const c = o.config;
  const log = o.log ?? ((line: string) => void process.stderr.write(line + '\n'));
  const started = Date.now();

  const all = await loadData(c);
  const split = splitByEpisode(all, { valFraction: c.val_fraction, seed: c.seed });
  const train = c.shots_per_task === null ? split.train : nShot(split.train, c.shots_per_task);
  const modelConfig = {
    tokens: c.tokens, width: c.width, blocks: c.blocks, rank: c.rank, alpha: c.alpha, pooling: c.pooling,
    anchorType: c.anchor_type, headWidth: c.head_width, chunk: c.chunk, actionDims: c.action_dims,
    ...(c.bridge_block === null ? {} : { bridgeBlock: c.bridge_block }),
  };
  const model = c.base_weights === null
    ? AdapterPolicy.create(modelConfig, { seed: c.seed, device: c.device })
    : await AdapterPolicy.fromBaseWeightsFile(c.base_weights, modelConfig, { seed: c.seed, device: c.device });
  const source = new AdapterPolicySource(model, train, {
    batchSize: c.batch_size, seed: c.seed, ...(split.val.size > 0 ? { val: split.val } : {}),
  });

  const run = await RunDirectory.open({
    dir: o.dir, config: c as unknown as RunDirectoryOptions['config'], resume: o.resume, totalSteps: c.steps,
    keepLast: c.keep_last, ...(o.progress === undefined ? {} : { progress: o.progress }),
  });
  let conflicts: ConflictLogWriter | undefined;
  try {
    const sinks: StepMetricsSink[] = [run.metricsSink];
    if (c.craft) {
      conflicts = new ConflictLogWriter(o.dir, source.paramNames, { replace: !o.resume });
      if (run.resumed) conflicts.truncateAfter(run.resumed.step);
      const writer = conflicts;
      sinks.push({ write: (row, detail) => writer.append(row.step, detail.conflicts) });
    }
    const trainer = new Trainer(source, trainerOptions(c, [everyNth(c, sinks)], log));
    const names = source.paramNames;
    if (run.resumed) {
      const groups = float32Groups(run.resumed.tensors);
      if (groups.anchor) model.loadAnchor(run.resumed.tensors.anchor!, 'anchor.safetensors');
      trainer.restoreState(trainerStateFromGroups(run.resumed.trainerState as TrainerStateJson, groups, names, source.params));
    }

    let lastCheckpoint: string | undefined;
    const save = async () => {
      conflicts?.flush();
      const st = trainer.state(false);
      const groups = { ...trainerTensorGroups(st, names), anchor: model.anchorTensors() };
      lastCheckpoint = await run.saveCheckpoint(st.json.step, groups, st.json);
    };
    let stoppedBy: NodeJS.Signals | undefined;
    while (!trainer.done) {
      await trainer.step();
      const step = trainer.stepIndex;
      const stopping = o.stop?.shouldStop() ?? false;
      if (run.checkpointDue(step, c.save_every) || stopping) await save();
      if (stopping) {
        stoppedBy = o.stop!.signal;
        break;
      }
      // Signals are delivered on the event loop: let it turn once per step.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (run.resumed && trainer.stepIndex === run.startStep) lastCheckpoint = run.resumed.dir; // nothing left to run
    await trainer.close();
    return {
      dir: o.dir, checkpointsDir: run.checkpointsDir, lastCheckpoint, startStep: run.startStep, step: trainer.stepIndex,
      stoppedBy, trainSamples: train.size, valSamples: split.val.size, elapsedMs: Date.now() - started,
    };
  } finally {
    conflicts?.close();
    run.close();
  }
}
