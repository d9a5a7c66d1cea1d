// craftgrad train: a training run of the built-in model (the embedded default with no
// arguments), with progress, metrics files, TensorBoard logs, checkpoints, exact resume,
// a graceful stop on SIGINT/SIGTERM, the run's report and a summary at the end.
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { backendInfo, setThreads } from '../../backend.js';
import { defaultDevice, parseDevice, requireCuda, type DeviceName } from '../../device.js';
import { TRAIN_DEFAULTS, type TrainRunConfig } from '../../train/run-config.js';
import { runTrainingSession, type TrainingOutcome } from '../../train/session.js';
import { installStopHandlers, resumeCommand, shellQuote } from '../../run/signals.js';
import { readConfigFile } from '../../run/config.js';
import { RunError } from '../../run/run-error.js';
import { FormatError } from '../../formats/errors.js';
import { writeRunReport } from '../../report/report.js';
import { trainSummary } from '../train-summary.js';
import { UsageError } from '../usage-error.js';
import { applyOptions, checkTrainValues, yargsTrainOptions } from '../train-options.js';

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** 'auto': the first GPU when CUDA is usable, else the CPU; 'cuda' must be usable. */
function resolveTrainDevice(spec: string): DeviceName {
  const device = parseDevice(spec, '--device', defaultDevice());
  if (device.kind === 'cuda') {
    try {
      requireCuda(device.index, '--device');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return device.name;
}

/** Where the run lives and what it is: a new run, or the saved run with the given options applied. */
function planRun(argv: Record<string, unknown>): { config: TrainRunConfig; dir: string; resume: boolean } {
  for (const [flagName, path] of [['--data', argv.data], ['--base-weights', argv['base-weights']]] as const) {
    if (typeof path === 'string' && path !== 'synthetic' && !existsSync(path)) throw new UsageError(`${flagName} ${path}: no such file`);
  }
  if (typeof argv.resume === 'string') {
    const dir = argv.resume;
    const file = join(dir, 'config.json');
    if (!existsSync(file)) throw new UsageError(`--resume ${dir}: not a run directory (no config.json)`);
    const saved = readConfigFile(file).config as unknown as TrainRunConfig;
    const config = applyOptions({ ...TRAIN_DEFAULTS, ...saved }, argv);
    if (argv.device !== undefined) config.device = resolveTrainDevice(argv.device as string);
    return { config, dir, resume: true };
  }
  const config = applyOptions({ ...TRAIN_DEFAULTS }, argv);
  config.device = resolveTrainDevice((argv.device as string | undefined) ?? 'auto');
  if (!config.name) config.name = `${config.craft ? 'craft' : 'baseline'}-${timestamp()}`;
  if (config.name.includes('/') || config.name === '.' || config.name === '..') {
    throw new UsageError(`--name must be a plain name, not a path, got '${config.name}' (use --out for the parent directory)`);
  }
  return { config, dir: join(config.out, config.name), resume: false };
}

/** Errors about what the user asked for (exit 2) rather than failures while running (exit 1). */
function isUsageProblem(e: unknown): boolean {
  if (e instanceof UsageError || e instanceof TypeError || e instanceof RangeError || e instanceof FormatError) return true;
  return e instanceof RunError && ['CONFIG_MISMATCH', 'RUN_EXISTS', 'NO_RUN', 'LOCKED'].includes(String(e.code));
}

function shown(path: string): string {
  const r = relative(process.cwd(), resolve(path));
  return shellQuote(r && !r.startsWith('..') ? r : resolve(path));
}

function gpuName(device: DeviceName): string {
  const index = Number(device.slice('cuda:'.length));
  const d = backendInfo().cuda.devices[index];
  return `${device}${d ? ` (${d.name})` : ''}`;
}

async function train(argv: Record<string, unknown>): Promise<number> {
  if (typeof argv.threads === 'number') setThreads(argv.threads);
  const plan = planRun(argv);
  const info = backendInfo();
  const c = plan.config;
  const out = process.stdout;
  out.write(`craftgrad ${info.version}: ${plan.resume ? 'resuming' : 'training'} ${c.craft ? 'CRaFT' : 'the baseline (no CRaFT)'} ` +
    `on the built-in model (D=${c.width}, L=${c.blocks}, r=${c.rank}), ${c.data === 'synthetic' ? 'synthetic data' : c.data}, ` +
    `${c.device === 'cpu' ? `CPU (${info.cpu.isa}, ${info.cpu.threads} threads)` : gpuName(c.device)}\n  run directory: ${shown(plan.dir)}\n`);
  const stop = installStopHandlers();
  let outcome: TrainingOutcome;
  try {
    outcome = await runTrainingSession({
      config: c, dir: plan.dir, resume: plan.resume, stop,
      ...(argv.quiet ? { progress: false as const } : {}),
    });
  } finally {
    stop.dispose();
  }
  if (outcome.stoppedBy) {
    out.write(`Stopped by ${outcome.stoppedBy} after step ${outcome.step}; checkpoint ${shown(outcome.lastCheckpoint ?? outcome.checkpointsDir)}.\n` +
      `Resume with: ${resumeCommand(shown(plan.dir))}\n`);
    return stop.exitCode ?? 1;
  }
  let reportPath: string | undefined;
  try {
    reportPath = await writeRunReport(plan.dir);
  } catch (e) {
    process.stderr.write(`craftgrad: warning: the run's report could not be written: ${(e as Error).message}\n`);
  }
  out.write(trainSummary({ dir: plan.dir, config: c, outcome, reportPath, show: shown }) + '\n');
  return 0;
}

export function registerTrain(y: Argv): Argv {
  return y.command(['train', '$0'], 'Train the built-in model with CRaFT (the default command)',
    (b) => b.options(yargsTrainOptions()).check((argv) => checkTrainValues(argv as Record<string, unknown>))
      .example('$0 train', 'the embedded default: CRaFT on the synthetic dataset')
      .example('$0 train --no-craft --name baseline', 'the baseline, plain fine-tuning')
      .example('$0 train --no-projection', 'ablation: no gradient projection')
      .example('$0 train --no-dual --lambda 0.5', 'ablation: fixed λ')
      .example('$0 train --shots-per-task 5', 'few-shot: 5 episodes per task')
      .example('$0 train --resume runs/NAME', 'continue a stopped run exactly where it stopped')
      .example('$0 train --config run.yaml', 'options from a JSON or YAML file'),
    async (argv) => {
      try {
        process.exitCode = await train(argv as Record<string, unknown>);
      } catch (e) {
        if (isUsageProblem(e)) throw new UsageError((e as Error).message);
        process.stderr.write(`craftgrad: ${(e as Error).message}\n`);
        if (process.env.CRAFTGRAD_DEBUG === '1') process.stderr.write(`${(e as Error).stack}\n`);
        process.exitCode = 1;
      }
    });
}
