// craftgrad train: a training run of the built-in model (the embedded default with no
// arguments) or, with --model DIR, of a Hugging Face Qwen2 model with LoRA, with progress, metrics files, TensorBoard logs, checkpoints, exact resume,
// a graceful stop on SIGINT/SIGTERM, the run's report and a summary at the end.
import { accessSync, constants, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { backendInfo, setThreads } from '../../backend.js';
import { defaultDevice, parseDevice, requireCuda, type DeviceName } from '../../device.js';
import { resolvePrecision } from '../../precision.js';
import { TRAIN_DEFAULTS, TRAIN_RESUME_MUTABLE_KEYS, type TrainRunConfig } from '../../train/run-config.js';
import { runTrainingSession, type TrainingOutcome } from '../../train/session.js';
import { installStopHandlers, resumeCommand, shellQuote, SIGNAL_EXIT_CODES } from '../../run/signals.js';
import { checkResumeConfig, readConfigFile, type RunConfig } from '../../run/config.js';
import { makeDirectory } from '../../run/fsio.js';
import { RunError } from '../../run/run-error.js';
import { FormatError } from '../../formats/errors.js';
import { writeRunReport } from '../../report/report.js';
import { trainSummary } from '../train-summary.js';
import { UsageError } from '../usage-error.js';
import { applyOptions, checkTrainValues, flag, yargsTrainOptions } from '../train-options.js';
import { CONFIG_OPTIONS, configKey } from '../../train/options.js';
import { World } from '../../parallel/world.js';
import { threadsPerRank } from '../../parallel/launcher.js';
import { availableParallelism } from 'node:os';
import { isVlaModelDirectory } from '../../model/vla/index.js';

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

/** --precision on the run's device ('auto': bf16 where the GPU supports it, else fp32). */
function resolveTrainPrecision(spec: string, device: DeviceName): 'fp32' | 'bf16' {
  try {
    return resolvePrecision(spec, device, '--precision');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Config keys as the user types them: batch_size -> --batch-size. */
const flagName = (key: string): string => `--${flag(key)}`;
const CLI_NAMING = {
  keyName: flagName,
  changeable: TRAIN_RESUME_MUTABLE_KEYS.filter((k) => CONFIG_OPTIONS.some((o) => configKey(o) === k) && k !== 'out' && k !== 'name'),
};

/**
 * Options that follow from others. `--val-fraction 0` holds out no validation split, so
 * validation is off unless `--val-every` was asked for, which is refused: it cannot work.
 */
function impliedOptions(config: TrainRunConfig, argv: Record<string, unknown>): TrainRunConfig {
  if (config.val_fraction === 0 && config.val_every > 0) {
    if (argv['val-every'] !== undefined) {
      throw new UsageError(`--val-every ${config.val_every} needs a validation split, but --val-fraction 0 holds none out: ` +
        'drop --val-every (with --val-fraction 0 validation is off) or give --val-fraction above 0');
    }
    config.val_every = 0;
  }
  // Said here in flags; the schedule's own check names its internal options.
  if (config.schedule === 'cosine' && config.steps <= config.warmup) {
    throw new UsageError(`--steps ${config.steps} must exceed --warmup ${config.warmup} under --schedule cosine (the decay starts after the warmup)`);
  }
  return config;
}

/**
 * Creates the directory that holds run directories now, before data and model are built:
 * one that cannot be created or written is a line and exit code 1 at once.
 */
function ensureOutputDirectory(out: string): void {
  try {
    makeDirectory(out);
    accessSync(out, constants.W_OK);
  } catch (e) {
    throw RunError.fromFs(e, `--out ${out}`, 'cannot create or write the output directory');
  }
}

/** Where the run lives and what it is: a new run, or the saved run with the given options applied. */
function planRun(argv: Record<string, unknown>): { config: TrainRunConfig; dir: string; resume: boolean } {
  for (const [flagName, path] of [['--data', argv.data], ['--base-weights', argv['base-weights']], ['--model', argv.model],
    ['--init-adapter', argv['init-adapter']], ['--init-policy', argv['init-policy']]] as const) {
    if (typeof path === 'string' && path !== 'synthetic' && !existsSync(path)) throw new UsageError(`${flagName} ${path}: no such file or directory`);
  }
  if (typeof argv.resume === 'string') {
    const dir = argv.resume;
    const file = join(dir, 'config.json');
    if (!existsSync(file)) throw new UsageError(`--resume ${dir}: not a run directory (no config.json)`);
    const saved = readConfigFile(file).config as unknown as TrainRunConfig;
    const config = impliedOptions(applyOptions({ ...TRAIN_DEFAULTS, ...saved }, argv), argv);
    if (argv.device !== undefined) config.device = resolveTrainDevice(argv.device as string);
    if (argv.precision !== undefined) config.precision = resolveTrainPrecision(argv.precision as string, config.device);
    // Refused here, before the data is loaded, in the flags the user types.
    // A key the saved run lacks (added by a later version) has the default it ran with.
    checkResumeConfig({ ...TRAIN_DEFAULTS, ...saved } as unknown as RunConfig, config as unknown as RunConfig, file, TRAIN_RESUME_MUTABLE_KEYS, CLI_NAMING);
    return { config, dir, resume: true };
  }
  const config = impliedOptions(applyOptions({ ...TRAIN_DEFAULTS }, argv), argv);
  config.device = resolveTrainDevice((argv.device as string | undefined) ?? 'auto');
  config.precision = resolveTrainPrecision((argv.precision as string | undefined) ?? 'auto', config.device);
  ensureOutputDirectory(config.out);
  if (!config.name) config.name = `${config.craft ? 'craft' : 'baseline'}-${timestamp()}`;
  if (config.name.includes('/') || config.name === '.' || config.name === '..') {
    throw new UsageError(`--name must be a plain name, not a path, got '${config.name}' (use --out for the parent directory)`);
  }
  return { config, dir: join(config.out, config.name), resume: false };
}

/**
 * Errors about what the user asked for (exit 2) rather than failures while running
 * (exit 1): a usage error as such (with the --help line), or a bad input file or a run
 * that cannot be taken (without it).
 */
function asUsageProblem(e: unknown): UsageError | undefined {
  if (e instanceof UsageError) return e;
  if (e instanceof TypeError || e instanceof RangeError) return new UsageError(e.message);
  if (e instanceof FormatError) return new UsageError(e.message, { help: false });
  if (e instanceof RunError && ['CONFIG_MISMATCH', 'RUN_EXISTS', 'NO_RUN', 'LOCKED'].includes(String(e.code))) return new UsageError(e.message, { help: false });
  return undefined;
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
  // Under an MPI launcher: one run over all ranks, planned by rank 0 (same name, same config).
  const world = World.open();
  // Each rank takes its share of the cores unless told (N ranks of all-cores threads would oversubscribe).
  if (world && argv.threads === undefined && !process.env.CRAFTGRAD_THREADS) setThreads(threadsPerRank(availableParallelism()));
  const plan = world ? world.broadcastJson(world.rank === 0 ? planRun(argv) : undefined) : planRun(argv);
  if (world && world.rank > 0) return followRun(plan, world, argv);
  const info = backendInfo();
  const c = plan.config;
  const out = process.stdout;
  const what = c.model === null ? `the built-in model (D=${c.width}, L=${c.blocks}, r=${c.rank})`
    : (await isVlaModelDirectory(c.model)) ? `${c.model} (VLA-Adapter, LoRA r=${c.rank} on every linear layer)`
      : `${c.model} (Qwen2, LoRA r=${c.rank} on ${c.lora_targets.length} linear layers)`;
  out.write(`craftgrad ${info.version}: ${plan.resume ? 'resuming' : 'training'} ${c.craft ? 'CRaFT' : 'the baseline (no CRaFT)'} ` +
    `on ${what}, ` +
    `${c.data === 'synthetic' ? 'synthetic data' : c.data}, ` +
    `${c.device === 'cpu' ? `CPU (${info.cpu.isa}, ${info.cpu.threads} threads)` : `${gpuName(c.device)}, ${c.precision}`}` +
    `${world ? `, ${world.size} ranks (MPI)` : ''}\n  run directory: ${shown(plan.dir)}\n`);
  const stop = installStopHandlers();
  let outcome: TrainingOutcome;
  try {
    outcome = await runTrainingSession({
      config: c, dir: plan.dir, resume: plan.resume, stop, keyName: flagName, world,
      ...(argv.quiet ? { progress: false as const } : {}),
    });
    world?.markComplete();
  } finally {
    stop.dispose();
  }
  if (outcome.stoppedBy) {
    out.write(`Stopped by ${outcome.stoppedBy} after step ${outcome.step}; checkpoint ${shown(outcome.lastCheckpoint ?? outcome.checkpointsDir)}.\n` +
      `Resume with: ${resumeCommand(shown(plan.dir))}\n`);
    return stop.exitCode ?? SIGNAL_EXIT_CODES[outcome.stoppedBy] ?? 1;
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

/** A rank other than 0: the same steps, silently; rank 0 reports and writes the run. */
async function followRun(plan: ReturnType<typeof planRun>, world: World, argv: Record<string, unknown>): Promise<number> {
  const stop = installStopHandlers({ notify: () => {} });
  try {
    const outcome = await runTrainingSession({
      config: plan.config, dir: plan.dir, resume: plan.resume, stop, keyName: flagName, world, progress: false,
      log: (line) => void (line.startsWith('craftgrad: warning') ? undefined : process.stderr.write(`[rank ${world.rank}] ${line}\n`)),
    });
    world.markComplete();
    return outcome.stoppedBy ? (stop.exitCode ?? SIGNAL_EXIT_CODES[outcome.stoppedBy] ?? 1) : 0;
  } finally {
    stop.dispose();
  }
}

export function registerTrain(y: Argv): Argv {
  return y.command(['train', '$0'], 'Train with CRaFT: the built-in model, or a Qwen2 model with --model (the default command)',
    (b) => b.options(yargsTrainOptions()).check((argv) => checkTrainValues(argv as Record<string, unknown>))
      .example('$0 train', 'the embedded default: CRaFT on the synthetic dataset')
      .example('$0 train --no-craft --name baseline', 'the baseline, plain fine-tuning')
      .example('$0 train --no-projection', 'ablation: no gradient projection')
      .example('$0 train --no-dual --lambda 0.5', 'ablation: fixed λ')
      .example('$0 train --shots-per-task 5', 'few-shot: 5 episodes per task')
      .example('$0 train --model Qwen2.5-0.5B --data episodes.npz', 'LoRA on a Hugging Face Qwen2 directory')
      .example('$0 train --resume runs/NAME', 'continue a stopped run exactly where it stopped')
      .example('$0 train --config run.yaml', 'options from a JSON or YAML file'),
    async (argv) => {
      try {
        process.exitCode = await train(argv as Record<string, unknown>);
      } catch (e) {
        const usage = asUsageProblem(e);
        if (usage) throw usage;
        // One "craftgrad: " however the message begins (some errors carry it themselves).
        process.stderr.write(`craftgrad: ${(e as Error).message.replace(/^craftgrad: /, '')}\n`);
        if (process.env.CRAFTGRAD_DEBUG === '1') process.stderr.write(`${(e as Error).stack}\n`);
        process.exitCode = 1;
      }
    });
}
