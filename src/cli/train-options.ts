// The options of `craftgrad train`: one table, from which yargs gets its options (types,
// groups, descriptions, the defaults shown in --help) and the command gets the mapping to
// the run's configuration. yargs itself sets no defaults: an option that is absent from
// the command line, the environment and the config file is absent from argv, so a resume
// can tell what was asked for from what the saved run already has.
import type { Options } from 'yargs';
import { TRAIN_DEFAULTS, type TrainRunConfig } from '../train/run-config.js';

type Key = keyof TrainRunConfig;

interface Spec {
  key: Key;
  group: string;
  describe: string;
  type: 'number' | 'string' | 'boolean';
  choices?: readonly string[];
  array?: boolean;
  /** Integer at least this, or a number at least / above this (`exclusive`). */
  int?: number;
  min?: number;
  exclusive?: boolean;
  max?: number;
  nullable?: boolean;
}

const MODEL = 'Model:', DATA = 'Data:', TRAIN = 'Optimization:', CRAFT = 'CRaFT:', RUN = 'Run:';

export const TRAIN_OPTION_SPECS: readonly Spec[] = [
  { key: 'data', group: DATA, type: 'string', describe: "'synthetic' (the embedded dataset) or a .npz/.safetensors file with tokens (N,T,D), actions (N,K*A), optional task and episode (N)" },
  { key: 'shots_per_task', group: DATA, type: 'number', int: 1, nullable: true, describe: 'Few-shot: keep the first N training episodes of each task (default: all)' },
  { key: 'val_fraction', group: DATA, type: 'number', min: 0, max: 1, describe: "Fraction of each task's episodes held out for validation" },
  { key: 'steps', group: TRAIN, type: 'number', int: 1, describe: 'Optimizer steps' },
  { key: 'batch_size', group: TRAIN, type: 'number', int: 1, describe: 'Samples per micro-batch' },
  { key: 'grad_accum', group: TRAIN, type: 'number', int: 1, describe: 'Micro-batches accumulated per optimizer step' },
  { key: 'lr', group: TRAIN, type: 'number', min: 0, exclusive: true, describe: 'Peak learning rate (AdamW)' },
  { key: 'warmup', group: TRAIN, type: 'number', int: 0, describe: 'Linear warmup steps from 0.1 x lr' },
  { key: 'schedule', group: TRAIN, type: 'string', choices: ['constant', 'multistep', 'cosine'], describe: 'Learning rate after the warmup' },
  { key: 'decay_after', group: TRAIN, type: 'number', array: true, int: 1, describe: 'multistep: multiply the lr by 0.1 from each of these steps on' },
  { key: 'min_lr', group: TRAIN, type: 'number', min: 0, describe: 'cosine: the final learning rate' },
  { key: 'clip', group: TRAIN, type: 'number', min: 0, describe: 'Clip the global gradient norm to this value (0: off)' },
  { key: 'weight_decay', group: TRAIN, type: 'number', min: 0, describe: 'AdamW decoupled weight decay' },
  { key: 'craft', group: CRAFT, type: 'boolean', describe: 'CRaFT; --no-craft is the baseline (plain fine-tuning on the action loss)' },
  { key: 'projection', group: CRAFT, type: 'boolean', describe: 'Project conflicting action gradients off the retention gradient' },
  { key: 'dual', group: CRAFT, type: 'boolean', describe: 'Adapt λ as a Lagrange multiplier; --no-dual keeps λ fixed' },
  { key: 'lambda', group: CRAFT, type: 'number', min: 0, describe: 'Initial λ (the fixed λ with --no-dual)' },
  { key: 'budget', group: CRAFT, type: 'number', min: 0, describe: 'Retention budget ε (the dual step drives the retention loss towards it)' },
  { key: 'dual_lr', group: CRAFT, type: 'number', min: 0, describe: 'Dual step size η_λ' },
  { key: 'eps', group: CRAFT, type: 'number', min: 0, exclusive: true, describe: "eps in the projection's denominator" },
  { key: 'anchor_type', group: CRAFT, type: 'string', choices: ['concat', 'aq_only', 'raw_only'], describe: 'Bridge features the retention loss compares' },
  { key: 'pooling', group: MODEL, type: 'string', choices: ['mean', 'max'], describe: 'Pooling over tokens' },
  { key: 'tokens', group: MODEL, type: 'number', int: 1, describe: 'Tokens per sample T' },
  { key: 'width', group: MODEL, type: 'number', int: 1, describe: 'Token width D' },
  { key: 'blocks', group: MODEL, type: 'number', int: 1, describe: 'Residual blocks L' },
  { key: 'rank', group: MODEL, type: 'number', int: 1, describe: 'LoRA rank r' },
  { key: 'alpha', group: MODEL, type: 'number', min: 0, exclusive: true, describe: 'LoRA alpha (the update is alpha/r · B·A)' },
  { key: 'bridge_block', group: MODEL, type: 'number', int: 1, nullable: true, describe: 'Bridge block m whose output is the raw latent C_R (default: blocks / 2)' },
  { key: 'head_width', group: MODEL, type: 'number', int: 1, describe: 'Action head hidden width H' },
  { key: 'chunk', group: MODEL, type: 'number', int: 1, describe: 'Action chunk length K' },
  { key: 'action_dims', group: MODEL, type: 'number', int: 1, describe: 'Action dimensions A' },
  { key: 'base_weights', group: MODEL, type: 'string', nullable: true, describe: 'Frozen base weights from a safetensors file (default: seeded initialisation)' },
  { key: 'seed', group: RUN, type: 'number', int: 0, describe: 'Seed of the data, the initialisation and the sampler' },
  { key: 'out', group: RUN, type: 'string', describe: 'Directory that holds run directories' },
  { key: 'name', group: RUN, type: 'string', describe: 'Run name (default: craft-<date>-<time> or baseline-<date>-<time>)' },
  { key: 'save_every', group: RUN, type: 'number', int: 0, describe: 'Checkpoint every N steps (and at the end; 0: only at the end)' },
  { key: 'keep_last', group: RUN, type: 'number', int: 2, describe: 'Checkpoints kept' },
  { key: 'log_every', group: RUN, type: 'number', int: 1, describe: 'Write a metrics row every N steps' },
  { key: 'val_every', group: RUN, type: 'number', int: 0, describe: 'Validate every N steps (0: never)' },
  { key: 'val_time_limit', group: RUN, type: 'number', min: 0, exclusive: true, describe: 'Time limit of one validation pass, seconds' },
];

export const flag = (key: string): string => key.replace(/_/g, '-');

function shownDefault(s: Spec): string {
  if (s.key === 'name') return 'craft-<date>-<time>';
  const v = TRAIN_DEFAULTS[s.key];
  if (v === null) return s.key === 'bridge_block' ? 'blocks / 2' : 'none';
  if (Array.isArray(v)) return v.length ? v.join(' ') : 'none';
  return String(v);
}

/** The yargs options of `train`, without defaults (see the file comment). */
export function yargsTrainOptions(): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const s of TRAIN_OPTION_SPECS) {
    const o: Options = { type: s.type, group: s.group, describe: s.describe, defaultDescription: shownDefault(s) };
    if (s.choices) o.choices = s.choices;
    if (s.array) o.array = true;
    out[flag(s.key)] = o;
  }
  out.device = { type: 'string', group: RUN, describe: "Where to train: auto (the first GPU when CUDA is usable, else the CPU), cpu, cuda or cuda:N", defaultDescription: 'auto' };
  out.resume = { type: 'string', group: RUN, describe: 'Continue the run in RUN_DIR from its newest valid checkpoint', requiresArg: true };
  out.threads = { type: 'number', group: RUN, describe: 'CPU threads (also CRAFTGRAD_THREADS)', defaultDescription: 'the number of cores' };
  out.quiet = { type: 'boolean', group: RUN, describe: 'No progress display (train_progress.log is still written)' };
  return out;
}

/** Checks the values yargs parsed: one clear message naming the option. */
export function checkTrainValues(argv: Record<string, unknown>): true {
  for (const s of TRAIN_OPTION_SPECS) {
    const raw = argv[flag(s.key)];
    if (raw === undefined) continue;
    const name = `--${flag(s.key)}`;
    const values = s.array ? (raw as unknown[]) : [raw];
    for (const v of values) {
      if (s.type !== 'number') {
        if (s.type === 'string' && (typeof v !== 'string' || v === '')) throw new Error(`${name} needs a value`);
        continue;
      }
      if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${name} must be a number`);
      if (!Number.isFinite(v)) throw new Error(`${name} must be finite, got ${v}`);
      if (s.int !== undefined && (!Number.isInteger(v) || v < s.int)) throw new Error(`${name} must be an integer >= ${s.int}, got ${v}`);
      if (s.min !== undefined && (s.exclusive ? v <= s.min : v < s.min)) throw new Error(`${name} must be ${s.exclusive ? '>' : '>='} ${s.min}, got ${v}`);
      if (s.max !== undefined && v >= s.max) throw new Error(`${name} must be < ${s.max}, got ${v}`);
    }
  }
  const threads = argv.threads;
  if (threads !== undefined && (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > 1024)) {
    throw new Error(`--threads must be an integer from 1 to 1024, got ${String(threads)}`);
  }
  return true;
}

/** The run configuration: `base` (the defaults, or a resumed run's saved config) with every given option applied. */
export function applyOptions(base: TrainRunConfig, argv: Record<string, unknown>): TrainRunConfig {
  const c: Record<string, unknown> = { ...base };
  for (const s of TRAIN_OPTION_SPECS) {
    const v = argv[flag(s.key)];
    if (v !== undefined) c[s.key] = s.array ? [...(v as number[])] : v;
  }
  return c as unknown as TrainRunConfig;
}
