// The training options, stated once: one row per option with its API name (camelCase),
// type, default, help text and limits. The CLI's flags (kebab-case), the run config's keys
// (snake_case, as config.json has them) are derived from the name; the yargs options
// (src/cli/train-options.ts), the run's defaults (TRAIN_DEFAULTS) and the Trainer's
// (TRAINER_DEFAULTS) are generated from this table.
//
// Rows are in config.json's key order (a run's identity first, then data, optimization,
// CRaFT, model and files), which keeps config.json byte-identical to what earlier versions
// wrote. Where a name came before the table and does not derive (the CLI's `--clip` is the
// Trainer's `clipNorm`), the row keeps the existing key: no flag or key a user has changed.
//
// The limits are stated here only: the CLI checks its flags against them
// (src/cli/train-options.ts, in its own words) and the Trainer its options
// (resolveTrainerOptions, TypeError/RangeError from validate.ts).
import { argTypeError, describeValue } from '../errors.js';
import { checkBoolean, checkChoice, checkFiniteNumber, checkInteger, checkPresent } from '../validate.js';

export const OPTION_GROUPS = { data: 'Data:', train: 'Optimization:', craft: 'CRaFT:', model: 'Model:', run: 'Run:' } as const;
export type OptionGroup = keyof typeof OPTION_GROUPS;

export interface TrainingOption {
  /** camelCase: the API's name, the Trainer's option name where `trainer` is set. */
  readonly name: string;
  /** The snake_case config key where it is not snakeCase(name) (names that predate the table). */
  readonly key?: string;
  /** The kebab-case flag where it is not kebabCase(key) (none today). */
  readonly flag?: string;
  readonly type: 'number' | 'string' | 'boolean';
  readonly array?: true;
  readonly choices?: readonly string[];
  /** Other flags yargs accepts for it (e.g. 'bridge-layer'). */
  readonly aliases?: readonly string[];
  /** Integer at least this. */
  readonly int?: number;
  /** Number at least (or, with `exclusive`, above) this. */
  readonly min?: number;
  readonly exclusive?: true;
  /** Number below this. */
  readonly max?: number;
  /** null is a value ("the default" the description states). */
  readonly nullable?: true;
  /** The run's default, in config units. */
  readonly default: unknown;
  /** What --help shows as the default where the value alone would mislead. */
  readonly shownDefault?: string;
  readonly group: OptionGroup;
  readonly describe: string;
  /** The command resolves this one itself (e.g. --device auto): not applied from argv by the table. */
  readonly resolvedByCommand?: true;
  /** Only an API option (no flag, no config key): the Trainer's own constants. */
  readonly apiOnly?: true;
  /**
   * A Trainer option: how a config value becomes the Trainer's (default: as it is), and
   * the Trainer's default where it differs from the run's (`required`: none).
   */
  readonly trainer?: {
    readonly fromConfig?: (v: unknown) => unknown; readonly default?: unknown; readonly required?: true;
    /** The Trainer's value is one of these (where it takes another form than the config's). */
    readonly choices?: readonly string[];
  };
}

/** snake_case of a camelCase name: batchSize -> batch_size. */
export const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** kebab-case of a snake_case key: batch_size -> batch-size. */
export const kebabCase = (key: string): string => key.replace(/_/g, '-');

/** The option's config key (snake_case). */
export const configKey = (o: TrainingOption): string => o.key ?? snakeCase(o.name);
/** The option's flag, without the dashes. */
export const flagName = (o: TrainingOption): string => o.flag ?? kebabCase(configKey(o));

/** A Trainer option under the same value as the config's. */
const asTrainer = {} as const;

export const TRAINING_OPTIONS: readonly TrainingOption[] = [
  { name: 'name', type: 'string', default: '', shownDefault: 'craft-<date>-<time>', group: 'run', describe: 'Run name (default: craft-<date>-<time> or baseline-<date>-<time>)' },
  { name: 'out', type: 'string', default: 'runs', group: 'run', describe: 'Directory that holds run directories' },
  {
    name: 'device', type: 'string', default: 'cpu', shownDefault: 'auto', group: 'run', resolvedByCommand: true,
    describe: 'Where to train: auto (the first GPU when CUDA is usable, else the CPU), cpu, cuda or cuda:N',
  },
  { name: 'seed', type: 'number', int: 0, default: 0, group: 'run', describe: 'Seed of the data, the initialisation and the sampler' },
  { name: 'data', type: 'string', default: 'synthetic', group: 'data', describe: "'synthetic' (the embedded dataset) or a .npz/.safetensors file with tokens (N,T,D), actions (N,K*A), optional task and episode (N)" },
  { name: 'shotsPerTask', type: 'number', int: 1, nullable: true, default: null, group: 'data', describe: 'Few-shot: keep the first N training episodes of each task (default: all)' },
  { name: 'valFraction', type: 'number', min: 0, max: 1, default: 0.1, group: 'data', describe: "Fraction of each task's episodes held out for validation" },
  { name: 'steps', type: 'number', int: 1, default: 1500, group: 'train', describe: 'Optimizer steps', trainer: { required: true } },
  { name: 'batchSize', type: 'number', int: 1, default: 32, group: 'train', describe: 'Samples per micro-batch' },
  { name: 'microBatches', key: 'grad_accum', type: 'number', int: 1, default: 1, group: 'train', describe: 'Micro-batches accumulated per optimizer step', trainer: asTrainer },
  { name: 'lr', type: 'number', min: 0, exclusive: true, default: 1e-3, group: 'train', describe: 'Peak learning rate (AdamW)', trainer: asTrainer },
  { name: 'warmup', type: 'number', int: 0, default: 50, group: 'train', describe: 'Linear warmup steps from 0.1 x lr', trainer: asTrainer },
  { name: 'schedule', type: 'string', choices: ['constant', 'multistep', 'cosine'], default: 'constant', group: 'train', describe: 'Learning rate after the warmup', trainer: asTrainer },
  { name: 'decayAfter', type: 'number', array: true, int: 1, default: [], group: 'train', describe: 'multistep: multiply the lr by 0.1 from each of these steps on', trainer: asTrainer },
  { name: 'minLr', type: 'number', min: 0, default: 0, group: 'train', describe: 'cosine: the final learning rate', trainer: asTrainer },
  { name: 'clipNorm', key: 'clip', type: 'number', min: 0, default: 0, group: 'train', describe: 'Clip the global gradient norm to this value (0: off)', trainer: asTrainer },
  { name: 'weightDecay', type: 'number', min: 0, default: 0.01, group: 'train', describe: 'AdamW decoupled weight decay', trainer: asTrainer },
  {
    name: 'mode', key: 'craft', type: 'boolean', default: true, group: 'craft', describe: 'CRaFT; --no-craft is the baseline (plain fine-tuning on the action loss)',
    trainer: { fromConfig: (craft) => (craft ? 'craft' : 'baseline'), choices: ['craft', 'baseline'] },
  },
  { name: 'projection', type: 'boolean', default: true, group: 'craft', describe: 'Project conflicting action gradients off the retention gradient', trainer: asTrainer },
  { name: 'dual', type: 'boolean', default: true, group: 'craft', describe: 'Adapt λ as a Lagrange multiplier; --no-dual keeps λ fixed', trainer: asTrainer },
  { name: 'lambda', type: 'number', min: 0, default: 0, group: 'craft', describe: 'Initial λ (the fixed λ with --no-dual)', trainer: asTrainer },
  { name: 'retentionBudget', key: 'budget', type: 'number', min: 0, default: 2e-4, group: 'craft', describe: 'Retention budget ε (the dual step drives the retention loss towards it)', trainer: asTrainer },
  { name: 'lambdaLr', key: 'dual_lr', type: 'number', min: 0, default: 100, group: 'craft', describe: 'Dual step size η_λ', trainer: asTrainer },
  { name: 'surgeryEps', key: 'eps', type: 'number', min: 0, exclusive: true, default: 1e-8, group: 'craft', describe: "eps in the projection's denominator", trainer: asTrainer },
  { name: 'anchorType', type: 'string', choices: ['concat', 'aq_only', 'raw_only'], default: 'concat', group: 'craft', describe: 'Bridge features the retention loss compares' },
  { name: 'pooling', type: 'string', choices: ['mean', 'max'], default: 'mean', group: 'model', describe: 'Pooling over tokens' },
  { name: 'tokens', type: 'number', int: 1, default: 16, group: 'model', describe: 'Tokens per sample T' },
  { name: 'width', type: 'number', int: 1, default: 256, group: 'model', describe: 'Token width D' },
  { name: 'blocks', type: 'number', int: 1, default: 4, group: 'model', describe: 'Residual blocks L' },
  { name: 'rank', type: 'number', int: 1, default: 16, group: 'model', describe: 'LoRA rank r' },
  { name: 'alpha', type: 'number', min: 0, exclusive: true, default: 32, group: 'model', describe: 'LoRA alpha (the update is alpha/r · B·A)' },
  {
    name: 'bridgeBlock', type: 'number', int: 1, nullable: true, default: null, shownDefault: 'blocks / 2', group: 'model', aliases: ['bridge-layer'],
    describe: 'Bridge block m whose output is the raw latent C_R (default: blocks / 2; with --model, hidden_states[m], default (layers + 1) / 2)',
  },
  { name: 'headWidth', type: 'number', int: 1, default: 256, group: 'model', describe: 'Action head hidden width H' },
  { name: 'chunk', type: 'number', int: 1, default: 8, group: 'model', describe: 'Action chunk length K' },
  { name: 'actionDims', type: 'number', int: 1, default: 7, group: 'model', describe: 'Action dimensions A' },
  { name: 'baseWeights', type: 'string', nullable: true, default: null, group: 'model', describe: 'Frozen base weights from a safetensors file (default: seeded initialisation)' },
  // A pretrained backbone instead of the built-in model (README "Fine-tuning a Qwen2 model").
  // Appended after the built-in model's rows: config.json keeps their order.
  {
    name: 'model', type: 'string', nullable: true, default: null, shownDefault: 'the built-in model', group: 'model',
    describe: 'Fine-tune a Hugging Face Qwen2 model directory (config.json + model.safetensors) with LoRA; --data must then be a sequence dataset file',
  },
  {
    name: 'loraTargets', type: 'string', array: true, choices: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    default: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], group: 'model', describe: 'With --model: the linear layers that get LoRA',
  },
  {
    name: 'bridgeSpan', type: 'string', choices: ['prefix', 'prefix+prompt', 'vision', 'vision+prompt'], default: 'prefix', group: 'model',
    describe: 'With --model: the positions the raw latent C_R covers (a VLA model\'s prefix is its vision tokens: vision = prefix)',
  },
  { name: 'initAdapter', type: 'string', nullable: true, default: null, group: 'model', describe: 'With --model: start from this PEFT adapter directory instead of LoRA B = 0' },
  { name: 'initPolicy', type: 'string', nullable: true, default: null, group: 'model', describe: 'With --model: start from this safetensors file of action_queries and the head instead of the seeded initialisation' },
  // VLA-Adapter (README "Fine-tuning VLA-Adapter"): appended, so config.json keeps the earlier keys' order.
  { name: 'headNoise', type: 'number', min: 0, default: 0.02, group: 'model', describe: 'With a VLA-Adapter --model: std of the action head\'s input perturbation in training (0: none)' },
  { name: 'views', type: 'number', int: 1, default: 2, group: 'model', describe: 'With a VLA-Adapter --model: camera views per sample' },
  { name: 'useProprio', type: 'boolean', default: true, group: 'model', describe: 'With a VLA-Adapter --model: feed the proprio token to the action head (--no-use-proprio: none)' },
  {
    name: 'vlaConfig', type: 'string', nullable: true, default: null, group: 'model',
    describe: 'With a Prismatic base VLM as --model (config.json + checkpoints/*.pt): the VLA-Adapter config directory giving the shapes (config.json + preprocessor_config.json, upstream\'s pretrained_models/configs)',
  },
  {
    name: 'stats', type: 'string', nullable: true, default: null, group: 'data',
    describe: 'With an RLDS dataset directory as --data: normalise with this dataset_statistics.json (default: computed as upstream computes it, and written into every checkpoint)',
  },
  {
    name: 'shuffleBuffer', type: 'number', int: 0, max: 2 ** 31, default: 0, group: 'data',
    describe: "With an RLDS dataset directory as --data: draw samples through a shuffle buffer of N samples as tf.data's shuffle (upstream's shuffle_buffer_size, VLA-Adapter's 100000) over the repeated samples in record order (0: a uniform permutation per epoch)",
  },
  // Appended after the VLA rows: config.json keeps the earlier keys' order, and a run without the key is fp32 (the default here).
  {
    name: 'precision', type: 'string', choices: ['auto', 'fp32', 'bf16'], default: 'fp32', shownDefault: 'auto', group: 'run', resolvedByCommand: true,
    describe: 'Products in fp32 or in bf16 with fp32 accumulation (the seed\'s bf16 autocast; CUDA only); auto: bf16 on a GPU with bf16 tensor cores and cuBLASLt, else fp32. Checked on resume',
  },
  { name: 'saveEvery', type: 'number', int: 0, default: 500, group: 'run', describe: 'Checkpoint every N steps (and at the end; 0: only at the end)' },
  { name: 'keepLast', type: 'number', int: 2, default: 3, group: 'run', describe: 'Checkpoints kept' },
  { name: 'logEvery', type: 'number', int: 1, default: 1, group: 'run', describe: 'Write a metrics row every N steps' },
  // The one default that differs on purpose: the CLI always splits off validation data, while
  // a GradientSource need not have a validation split (AdapterPolicySource's validate() fails
  // without one), so the Trainer validates only when asked. The Trainer takes the time limit
  // in ms: the same limit (> 0) either way.
  { name: 'valEvery', type: 'number', int: 0, default: 100, group: 'run', describe: 'Validate every N steps (0: never)', trainer: { default: 0 } },
  {
    name: 'valTimeLimitMs', key: 'val_time_limit', type: 'number', min: 0, exclusive: true, default: 10, group: 'run',
    describe: 'Time limit of one validation pass, seconds', trainer: { fromConfig: (s) => (s as number) * 1000 },
  },
  // The Trainer's constants the CLI does not offer: PyTorch's AdamW, and the fused step.
  { name: 'betas', type: 'number', array: true, min: 0, max: 1, default: [0.9, 0.999], group: 'train', describe: 'AdamW betas', apiOnly: true, trainer: asTrainer },
  { name: 'adamEps', type: 'number', min: 0, exclusive: true, default: 1e-8, group: 'train', describe: 'AdamW eps', apiOnly: true, trainer: asTrainer },
  { name: 'fused', type: 'boolean', default: true, group: 'train', describe: 'Fused surgery + AdamW (false: surgery then AdamW, for comparison)', apiOnly: true, trainer: asTrainer },
];

/** The rows with a flag and a config key (all but the Trainer's API-only constants). */
export const CONFIG_OPTIONS: readonly TrainingOption[] = TRAINING_OPTIONS.filter((o) => !o.apiOnly);

/** The Trainer's value of an option from a run configuration's. */
export function trainerValue(o: TrainingOption, configValue: unknown): unknown {
  return o.trainer?.fromConfig ? o.trainer.fromConfig(configValue) : configValue;
}

/** The run's defaults by config key, in config.json's order (TRAIN_DEFAULTS). */
export function configDefaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of CONFIG_OPTIONS) out[configKey(o)] = Array.isArray(o.default) ? [...(o.default as unknown[])] : o.default;
  return out;
}

/** The Trainer's defaults by option name (TRAINER_DEFAULTS): every Trainer option but the required ones. */
export function trainerDefaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of TRAINING_OPTIONS) {
    if (!o.trainer || o.trainer.required) continue;
    const v = 'default' in o.trainer ? o.trainer.default : trainerValue(o, o.default);
    out[o.name] = Array.isArray(v) ? Object.freeze([...v]) : v;
  }
  return out;
}

/** The Trainer options a run configuration gives (by config key in, by Trainer name out). */
export function trainerOptionsFromConfig(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of CONFIG_OPTIONS) if (o.trainer) out[o.name] = trainerValue(o, config[configKey(o)]);
  return out;
}

/**
 * `value` when it is a value of option `o` as the API takes it (its type, choices and
 * limits); TypeError/RangeError naming it as `name` otherwise. null passes where the row
 * is nullable; an array row takes an Array whose every element passes.
 */
export function checkOptionValue(o: TrainingOption, value: unknown, name: string): unknown {
  if (o.nullable && value === null) return value;
  if (o.array) {
    if (!Array.isArray(value)) throw argTypeError(`${name} must be an Array, got ${describeValue(value)}`);
    value.forEach((v, i) => checkScalar(o, v, `${name}[${i}]`));
    return value;
  }
  return checkScalar(o, value, name);
}

function checkScalar(o: TrainingOption, value: unknown, name: string): unknown {
  if (o.type === 'boolean') return checkBoolean(value, name);
  if (o.type === 'string') {
    if (o.choices) return checkChoice(value, name, o.choices);
    if (typeof value !== 'string') throw argTypeError(`${name} must be a string, got ${describeValue(value)}`);
    return value;
  }
  if (o.int !== undefined) return checkInteger(value, name, o.int);
  return checkFiniteNumber(value, name, { min: o.min, exclusive: o.exclusive, below: o.max });
}

/**
 * The Trainer's options by name, each absent one given the Trainer's default, each checked
 * against its row of the table (the limits the CLI's flags have), naming it `options.<name>`.
 * Cross-option rules (minLr <= lr, a cosine schedule longer than its warmup) are the
 * schedule's.
 */
export function resolveTrainerOptions(options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const defaults = trainerDefaults();
  const out: Record<string, unknown> = {};
  for (const o of TRAINING_OPTIONS) {
    if (!o.trainer) continue;
    const name = `options.${o.name}`;
    const given = options[o.name];
    const value = given !== undefined ? given : o.trainer.required ? checkPresent(given, name) : defaults[o.name];
    out[o.name] = o.trainer.choices ? checkChoice(value, name, o.trainer.choices) : checkOptionValue(o, value, name);
  }
  return out;
}
